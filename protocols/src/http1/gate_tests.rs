//! The gate as the proxy drives it: client bytes in arbitrary chunks, a
//! verdict per request, segments out.

use super::*;

const REQ1: &[u8] = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
const REQ2: &[u8] = b"POST /b?q=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Sum: 9\r\n\r\n";

/// What the callback was asked about.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    version: &'static str,
    method: String,
    path: String,
    has_body: bool,
}

/// Feeds `pieces` in order, answering the n-th request with `verdicts[n]`
/// (`Pass` past the end).
fn run(
    gate: &mut RequestGate,
    pieces: &[&[u8]],
    verdicts: &[Verdict],
) -> (Vec<Segment>, Vec<Asked>) {
    let mut asked = Vec::new();
    let mut out = Vec::new();
    for piece in pieces {
        gate.feed(
            &Bytes::copy_from_slice(piece),
            &mut |head: &RequestHead<'_>| {
                asked.push(Asked {
                    version: head.version,
                    method: head.method.to_string(),
                    path: head.path.to_string(),
                    has_body: head.has_body,
                });
                verdicts
                    .get(asked.len() - 1)
                    .cloned()
                    .unwrap_or(Verdict::Pass)
            },
            &mut out,
        );
    }
    (out, asked)
}

/// `input` fed as two chunks, cut at `at`.
fn run_split(input: &[u8], at: usize, max_head: usize, verdicts: &[Verdict]) -> Outcome {
    let mut gate = RequestGate::new(max_head);
    let (segments, asked) = run(&mut gate, &[&input[..at], &input[at..]], verdicts);
    Outcome {
        segments: joined(segments),
        asked,
        gate,
    }
}

struct Outcome {
    segments: Vec<Segment>,
    asked: Vec<Asked>,
    gate: RequestGate,
}

/// Adjacent `Forward`s (and `Swallow`s) joined: where chunks were cut
/// must not matter.
fn joined(segments: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for s in segments {
        match (out.last_mut(), s) {
            (Some(Segment::Forward(a)), Segment::Forward(b)) => {
                *a = [&a[..], &b[..]].concat().into()
            }
            (Some(Segment::Swallow(a)), Segment::Swallow(b)) => {
                *a = [&a[..], &b[..]].concat().into()
            }
            (_, s) => out.push(s),
        }
    }
    out
}

fn forward(b: &[u8]) -> Segment {
    Segment::Forward(Bytes::copy_from_slice(b))
}

fn swallow(b: &[u8]) -> Segment {
    Segment::Swallow(Bytes::copy_from_slice(b))
}

fn request(method: &str, path: &str, has_body: bool) -> Asked {
    Asked {
        version: "HTTP/1.1",
        method: method.into(),
        path: path.into(),
        has_body,
    }
}

fn respond(status: u16, body: &'static [u8]) -> Verdict {
    Verdict::Respond(Response {
        status,
        headers: vec![("x-tapmesh-fault".into(), "f".into())],
        body: Bytes::from_static(body),
    })
}

/// A response the gate wrote, parsed: status, headers (lowercased), body.
fn parse_response(bytes: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut slots = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(n) = resp.parse(bytes).unwrap() else {
        panic!("incomplete response {:?}", String::from_utf8_lossy(bytes));
    };
    let headers = resp
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8(h.value.to_vec()).unwrap();
            (h.name.to_ascii_lowercase(), value)
        })
        .collect();
    (resp.code.unwrap(), headers, bytes[n..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn every_split_of_two_pipelined_requests_is_forwarded_byte_for_byte() {
    let input = [REQ1, REQ2].concat();
    for at in 0..=input.len() {
        let o = run_split(&input, at, 1024, &[]);
        assert_eq!(o.segments, [forward(&input)], "split at {at}");
        assert_eq!(
            o.asked,
            [request("POST", "/a", true), request("POST", "/b?q=1", true)],
            "split at {at}"
        );
        assert_eq!(o.gate.forwarded(), 2);
        assert!(!o.gate.is_passthrough());
    }
    for step in 1..=input.len() {
        let pieces: Vec<&[u8]> = input.chunks(step).collect();
        let (segments, asked) = run(&mut RequestGate::new(1024), &pieces, &[]);
        assert_eq!(joined(segments), [forward(&input)], "step {step}");
        assert_eq!(asked.len(), 2);
    }
}

#[test]
fn a_passing_connection_costs_one_segment_a_chunk() {
    let pieces: [&[u8]; 4] = [
        b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhe",
        b"llo\r\nGET / HTTP/1.1\r\n\r\n",
        b"\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    ];
    let mut gate = RequestGate::new(1024);
    let (segments, _) = run(&mut gate, &pieces, &[]);
    // The empty lines between requests go on too.
    let expected: Vec<Segment> = pieces.iter().map(|p| forward(p)).collect();
    assert_eq!(segments, expected);
    assert_eq!(gate.forwarded(), 3);
}

#[test]
fn a_head_split_across_chunks_is_held_until_complete() {
    let mut gate = RequestGate::new(1024);
    let head = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    for i in 0..head.len() - 1 {
        let (segments, asked) = run(&mut gate, &[&head[i..=i]], &[]);
        assert!(segments.is_empty() && asked.is_empty(), "byte {i}");
    }
    let (segments, asked) = run(&mut gate, &[&head[head.len() - 1..]], &[]);
    assert_eq!(segments, [forward(head)]);
    assert_eq!(asked, [request("GET", "/slow", false)]);
}

#[test]
fn respond_to_the_first_of_two_pipelined_requests() {
    let input = [REQ1, REQ2].concat();
    for at in 0..=input.len() {
        let o = run_split(&input, at, 1024, &[respond(503, b"down")]);
        let [Segment::Swallow(head), Segment::Respond {
            bytes,
            after_requests,
        }, Segment::Swallow(body), Segment::Forward(rest)] = &o.segments[..]
        else {
            panic!("split at {at}: {:?}", o.segments);
        };
        assert_eq!([&head[..], &body[..]].concat(), REQ1, "split at {at}");
        assert_eq!(&rest[..], REQ2);
        assert_eq!(*after_requests, 0);
        let (status, headers, body) = parse_response(bytes);
        assert_eq!(status, 503);
        assert!(bytes.starts_with(b"HTTP/1.1 503 Service Unavailable\r\n"));
        assert_eq!(header(&headers, "content-length"), Some("4"));
        assert_eq!(header(&headers, "x-tapmesh-fault"), Some("f"));
        assert_eq!(header(&headers, "connection"), None);
        assert_eq!(body, b"down");
        assert_eq!(o.asked.len(), 2);
        assert_eq!(o.gate.forwarded(), 1);
    }
}

#[test]
fn respond_to_the_second_request_swallows_its_chunked_body_and_trailers() {
    let input = [REQ1, REQ2, b"GET /3 HTTP/1.1\r\n\r\n"].concat();
    for at in 0..=input.len() {
        let o = run_split(&input, at, 1024, &[Verdict::Pass, respond(429, b"")]);
        let swallowed: Vec<u8> = o
            .segments
            .iter()
            .flat_map(|s| match s {
                Segment::Swallow(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(swallowed, REQ2, "split at {at}");
        assert_eq!(o.segments.first(), Some(&forward(REQ1)));
        assert_eq!(
            o.segments.last(),
            Some(&forward(b"GET /3 HTTP/1.1\r\n\r\n"))
        );
        let respond = o.segments.iter().find_map(|s| match s {
            Segment::Respond {
                bytes,
                after_requests,
            } => Some((bytes.clone(), *after_requests)),
            _ => None,
        });
        let (bytes, after_requests) = respond.expect("a response");
        assert_eq!(after_requests, 1);
        assert_eq!(parse_response(&bytes).0, 429);
        assert_eq!(o.gate.forwarded(), 2);
    }
}

#[test]
fn expect_100_continue_with_a_body_is_answered_and_closed() {
    let head = b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    let mut gate = RequestGate::new(1024);
    let (segments, asked) = run(&mut gate, &[head], &[respond(413, b"no")]);
    let [Segment::Swallow(h), Segment::Respond { bytes, .. }, Segment::Close] = &segments[..]
    else {
        panic!("{segments:?}");
    };
    assert_eq!(&h[..], head);
    let (status, headers, body) = parse_response(bytes);
    assert_eq!((status, body.as_slice()), (413, b"no".as_slice()));
    assert_eq!(header(&headers, "connection"), Some("close"));
    assert_eq!(asked.len(), 1);
    assert!(gate.is_passthrough());
    let (segments, asked) = run(&mut gate, &[b"hello", b"GET / HTTP/1.1\r\n\r\n"], &[]);
    assert_eq!(
        segments,
        [swallow(b"hello"), swallow(b"GET / HTTP/1.1\r\n\r\n")]
    );
    assert!(asked.is_empty());
    assert_eq!(gate.forwarded(), 0);
}

#[test]
fn http_1_0_is_answered_in_http_1_0_and_closed_unless_kept_alive() {
    let mut gate = RequestGate::new(1024);
    let (segments, asked) = run(
        &mut gate,
        &[b"GET / HTTP/1.0\r\n\r\n"],
        &[respond(404, b"x")],
    );
    assert_eq!(asked[0].version, "HTTP/1.0");
    let [_, Segment::Respond { bytes, .. }, Segment::Close] = &segments[..] else {
        panic!("{segments:?}");
    };
    assert!(bytes.starts_with(b"HTTP/1.0 404 Not Found\r\n"));
    assert_eq!(
        header(&parse_response(bytes).1, "connection"),
        Some("close")
    );

    let mut gate = RequestGate::new(1024);
    let input = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n";
    let (segments, _) = run(&mut gate, &[input], &[respond(500, b"")]);
    let [_, Segment::Respond { bytes, .. }, Segment::Forward(rest)] = &segments[..] else {
        panic!("{segments:?}");
    };
    let (status, headers, _) = parse_response(bytes);
    assert_eq!(status, 500);
    assert_eq!(header(&headers, "connection"), Some("keep-alive"));
    assert_eq!(&rest[..], b"GET /2 HTTP/1.0\r\n\r\n");
}

#[test]
fn a_request_that_asks_to_close_is_answered_and_closed() {
    let input = b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n";
    let (segments, _) = run(&mut RequestGate::new(1024), &[input], &[respond(502, b"")]);
    assert!(matches!(
        &segments[..],
        [Segment::Swallow(_), Segment::Respond { .. }, Segment::Close]
    ));
}

#[test]
fn delays_come_before_the_request_or_after_its_head() {
    let (r1, r2, r3): (&[u8], &[u8], &[u8]) = (
        b"GET /1 HTTP/1.1\r\n\r\n",
        b"GET /2 HTTP/1.1\r\n\r\n",
        b"GET /3 HTTP/1.1\r\n\r\n",
    );
    let verdicts = [
        Verdict::Delay(Duration::from_secs(1)),
        Verdict::DelayResponse(Duration::from_secs(2)),
    ];
    let mut gate = RequestGate::new(1024);
    let (segments, _) = run(&mut gate, &[&[r1, r2, r3].concat()], &verdicts);
    assert_eq!(
        segments,
        [
            Segment::Wait(Duration::from_secs(1)),
            forward(&[r1, r2].concat()),
            Segment::DelayResponse(Duration::from_secs(2)),
            forward(r3),
        ]
    );
    assert_eq!(gate.forwarded(), 3);
}

#[test]
fn close_swallows_the_request_and_everything_after() {
    let (r1, r2, r3): (&[u8], &[u8], &[u8]) = (
        b"GET /1 HTTP/1.1\r\n\r\n",
        b"GET /2 HTTP/1.1\r\n\r\n",
        b"GET /3 HTTP/1.1\r\n\r\n",
    );
    let mut gate = RequestGate::new(1024);
    let (segments, asked) = run(
        &mut gate,
        &[&[r1, r2, r3].concat(), b"more"],
        &[Verdict::Pass, Verdict::Close],
    );
    assert_eq!(
        segments,
        [
            forward(r1),
            swallow(r2),
            Segment::Close,
            swallow(r3),
            swallow(b"more")
        ]
    );
    assert_eq!(asked.len(), 2);
    assert_eq!(gate.forwarded(), 1);
    assert!(gate.is_passthrough());
}

/// Fed split at every point: forwarded byte for byte, no verdict asked.
fn passes_through_untouched(input: &[u8], max_head: usize) {
    for at in 0..=input.len() {
        let o = run_split(input, at, max_head, &[]);
        assert_eq!(o.segments, [forward(input)], "split at {at}");
        assert!(o.asked.is_empty(), "split at {at}");
        assert!(o.gate.is_passthrough(), "split at {at}");
    }
}

#[test]
fn http2_prior_knowledge_passes_through() {
    passes_through_untouched(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
        1024,
    );
}

#[test]
fn upgrade_and_connect_are_forwarded_and_end_the_gating() {
    let h2c = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\nPRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    passes_through_untouched(h2c, 1024);
    let connect =
        b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n\x00\x00\x00\x08\x04\xd2\x16\x2f";
    passes_through_untouched(connect, 1024);
    assert_eq!(run_split(connect, 0, 1024, &[]).gate.forwarded(), 1);
}

#[test]
fn malformed_or_undelimited_heads_pass_through() {
    passes_through_untouched(
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\nGET / HTTP/1.1\r\n\r\n",
        1024,
    );
    passes_through_untouched(
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08GET / HTTP/1.1\r\n\r\n",
        1024,
    );
    passes_through_untouched(
        b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        1024,
    );
}

#[test]
fn an_oversized_head_passes_through_with_what_was_held() {
    let mut input = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..20 {
        input.extend_from_slice(format!("X-Filler-{i}: abcdefghij\r\n").as_bytes());
    }
    input.extend_from_slice(b"\r\nGET /2 HTTP/1.1\r\n\r\n");
    passes_through_untouched(&input, 64);
    for step in 1..40 {
        let pieces: Vec<&[u8]> = input.chunks(step).collect();
        let mut gate = RequestGate::new(64);
        let (segments, asked) = run(&mut gate, &pieces, &[]);
        assert_eq!(joined(segments), [forward(&input)], "step {step}");
        assert!(asked.is_empty() && gate.is_passthrough());
    }
}

#[test]
fn a_bad_body_ends_gating_or_closes_an_answered_request() {
    let input =
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET / HTTP/1.1\r\n\r\n";
    let o = run_split(input, 0, 1024, &[]);
    assert_eq!(o.segments, [forward(input)]);
    assert!(o.gate.is_passthrough());

    // The target never saw the head: nothing of this body may reach it.
    let o = run_split(input, 0, 1024, &[respond(400, b"")]);
    assert!(matches!(
        &o.segments[..],
        [
            Segment::Swallow(_),
            Segment::Respond { .. },
            Segment::Swallow(_),
            Segment::Close,
            Segment::Swallow(_)
        ]
    ));
}

#[test]
fn responses_are_framed_by_the_gate() {
    let verdict = Verdict::Respond(Response {
        status: 204,
        headers: vec![
            ("content-length".into(), "99".into()),
            ("x-evil".into(), "a\r\nx-injected: 1".into()),
            ("bad name".into(), "v".into()),
            ("x-ok".into(), "yes".into()),
        ],
        body: Bytes::from_static(b"ignored"),
    });
    let (segments, _) = run(
        &mut RequestGate::new(1024),
        &[b"GET / HTTP/1.1\r\n\r\n"],
        &[verdict],
    );
    let Segment::Respond { bytes, .. } = &segments[1] else {
        panic!("{segments:?}");
    };
    assert_eq!(&bytes[..], b"HTTP/1.1 204 No Content\r\nx-ok: yes\r\n\r\n");

    // HEAD: the length of the body the response would have, no body.
    let (segments, _) = run(
        &mut RequestGate::new(1024),
        &[b"HEAD / HTTP/1.1\r\n\r\n"],
        &[respond(599, b"abc")],
    );
    let Segment::Respond { bytes, .. } = &segments[1] else {
        panic!("{segments:?}");
    };
    assert_eq!(
        &bytes[..],
        b"HTTP/1.1 599 Server Error\r\nx-tapmesh-fault: f\r\ncontent-length: 3\r\n\r\n"
    );
}
