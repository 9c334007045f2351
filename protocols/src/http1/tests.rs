//! Edge cases of HTTP/1.x as real clients and servers produce it, as bytes.
//! (The proxy's integration tests drive real curl and nginx.)

use super::*;
use crate::http::HttpExchange;
use crate::{DecodeFailure, FailureKind};

/// Runs a conversation: `(direction, bytes)` in order, each split into
/// pieces of `step` bytes, then the given end-of-stream calls and finish.
fn run(
    config: Http1Config,
    script: &[(Direction, &[u8])],
    step: usize,
    close: bool,
) -> Vec<Decoded> {
    let mut d = Http1Decoder::new(config);
    let mut out = Vec::new();
    let mut t = 0;
    for (dir, bytes) in script {
        for piece in bytes.chunks(step) {
            t += 1;
            d.feed(
                *dir,
                &Bytes::copy_from_slice(piece),
                Timestamp(t * 1_000_000),
                &mut out,
            );
        }
    }
    if close {
        d.end_of_stream(
            Direction::TargetToClient,
            Timestamp(t * 1_000_000 + 1),
            &mut out,
        );
    }
    d.finish(Timestamp(t * 1_000_000 + 2), &mut out);
    out
}

fn exchanges(out: &[Decoded]) -> Vec<&HttpExchange> {
    out.iter()
        .filter_map(|d| match d {
            Decoded::Http(x) => Some(&**x),
            _ => None,
        })
        .collect()
}

fn failures(out: &[Decoded]) -> Vec<&DecodeFailure> {
    out.iter()
        .filter_map(|d| match d {
            Decoded::Failure(f) => Some(f),
            _ => None,
        })
        .collect()
}

const C: Direction = Direction::ClientToTarget;
const S: Direction = Direction::TargetToClient;

/// Every split of the stream must give the same exchanges.
fn every_split(script: &[(Direction, &[u8])], close: bool, check: impl Fn(&[Decoded])) {
    let longest = script.iter().map(|(_, b)| b.len()).max().unwrap();
    for step in [1, 2, 3, 7, 16, longest] {
        check(&run(Http1Config::default(), script, step, close));
    }
}

#[test]
fn get_with_query_and_content_length_response() {
    every_split(
        &[
            (
                C,
                b"GET /items?id=7&x=1 HTTP/1.1\r\nHost: shop\r\nAccept: */*\r\n\r\n",
            ),
            (
                S,
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
            ),
        ],
        false,
        |out| {
            let x = exchanges(out);
            assert_eq!(x.len(), 1);
            let x = x[0];
            assert_eq!(
                (x.method.as_str(), x.path.as_str(), x.status),
                ("GET", "/items?id=7&x=1", Some(200))
            );
            assert_eq!(x.version, "HTTP/1.1");
            assert_eq!(x.request_header("host"), Some("shop"));
            assert_eq!(x.response_header("content-type"), Some("text/plain"));
            assert_eq!(&x.response_body.data[..], b"hello");
            assert_eq!((x.request_body.size, x.response_body.size), (0, 5));
            assert!(x.error.is_none());
            assert!(x.latency_ms().unwrap() > 0.0);
            assert!(failures(out).is_empty());
        },
    );
}

#[test]
fn pipelined_requests_pair_in_order() {
    every_split(
        &[
            (C, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz"),
            (S, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nAHTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nBHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
        ],
        false,
        |out| {
            let x = exchanges(out);
            let summary: Vec<_> = x.iter().map(|x| (x.path.as_str(), x.status.unwrap(), x.response_body.data.clone())).collect();
            assert_eq!(
                summary,
                [("/a", 200, Bytes::from_static(b"A")), ("/b", 404, Bytes::from_static(b"B")), ("/c", 201, Bytes::new())]
            );
            assert_eq!(&x[2].request_body.data[..], b"xyz");
        },
    );
}

#[test]
fn chunked_request_and_response_with_trailers() {
    every_split(
        &[
            (C, b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-Check: 5\r\n\r\n"),
            (S, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n4\r\nWiki\r\n0\r\nX-Sum: 42\r\n\r\n"),
        ],
        false,
        |out| {
            let x = exchanges(out);
            assert_eq!(x.len(), 1);
            assert_eq!(&x[0].request_body.data[..], b"abcde");
            assert_eq!(
                x[0].request_trailers,
                [("X-Check", "5")].into_iter().collect::<HeaderBlock>()
            );
            assert_eq!(&x[0].response_body.data[..], b"Wiki");
            assert_eq!(
                x[0].response_trailers,
                [("X-Sum", "42")].into_iter().collect::<HeaderBlock>()
            );
        },
    );
}

#[test]
fn no_body_after_head_204_and_304() {
    every_split(
        &[
            (C, b"HEAD /big HTTP/1.1\r\n\r\nGET /gone HTTP/1.1\r\n\r\nGET /same HTTP/1.1\r\n\r\n"),
            (S, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"),
        ],
        false,
        |out| {
            let x = exchanges(out);
            let s: Vec<_> = x.iter().map(|x| (x.status.unwrap(), x.response_body.size)).collect();
            assert_eq!(s, [(200, 0), (204, 0), (304, 0)]);
            assert!(x.iter().all(|x| x.error.is_none()));
        },
    );
}

#[test]
fn expect_100_continue_is_skipped() {
    every_split(
        &[
            (
                C,
                b"PUT /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
            ),
            (S, b"HTTP/1.1 100 Continue\r\n\r\n"),
            (C, b"data"),
            (S, b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
        ],
        false,
        |out| {
            let x = exchanges(out);
            assert_eq!(x.len(), 1);
            assert_eq!(x[0].status, Some(201));
            assert_eq!(&x[0].request_body.data[..], b"data");
            // Latency runs to the final response's head, not the interim one.
            assert!(x[0].response_head_at.unwrap() > x[0].started);
        },
    );
}

#[test]
fn close_delimited_response_ends_at_fin() {
    every_split(
        &[
            (C, b"GET / HTTP/1.0\r\n\r\n"),
            (S, b"HTTP/1.0 200 OK\r\n\r\nuntil the end"),
        ],
        true,
        |out| {
            let x = exchanges(out);
            assert_eq!(x.len(), 1);
            assert_eq!(x[0].version, "HTTP/1.0");
            assert_eq!(&x[0].response_body.data[..], b"until the end");
            assert!(x[0].error.is_none(), "{:?}", x[0].error);
        },
    );
}

#[test]
fn upgrade_reports_one_exchange_then_stops_decoding() {
    every_split(
        &[
            (C, b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"),
            (S, b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello"),
            (C, b"\x81\x85\x00\x00\x00\x00hello not http at all"),
        ],
        false,
        |out| {
            let x = exchanges(out);
            assert_eq!(x.len(), 1);
            assert_eq!(x[0].status, Some(101));
            assert!(x[0].error.is_none());
            assert!(failures(out).is_empty(), "frames after 101 are not HTTP and not an error");
        },
    );
}

#[test]
fn connect_tunnel() {
    every_split(
        &[
            (C, b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n"),
            (S, b"HTTP/1.1 200 Connection Established\r\n\r\n"),
            (C, b"\x00\x00\x00\x08binary"),
        ],
        false,
        |out| {
            let x = exchanges(out);
            assert_eq!(x.len(), 1);
            assert_eq!(
                (x[0].method.as_str(), x[0].path.as_str(), x[0].status),
                ("CONNECT", "db:5432", Some(200))
            );
            assert!(failures(out).is_empty());
        },
    );
}

#[test]
fn capture_limit_truncates_but_counts() {
    let config = Http1Config {
        capture_limit: 4,
        ..Http1Config::default()
    };
    let out = run(
        config,
        &[
            (
                C,
                b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789",
            ),
            (S, b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabcdef"),
        ],
        3,
        false,
    );
    let x = exchanges(&out);
    assert_eq!(&x[0].request_body.data[..], b"0123");
    assert_eq!(x[0].request_body.size, 10);
    assert!(x[0].request_body.truncated());
    assert_eq!(&x[0].response_body.data[..], b"abcd");
    assert!(x[0].response_body.truncated());
}

#[test]
fn garbage_after_a_valid_request_fails_once_keeping_what_was_decoded() {
    let out = run(
        Http1Config::default(),
        &[
            (C, b"GET /ok HTTP/1.1\r\n\r\n"),
            (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            (C, b"\x16\x03\x01\x02\x00 definitely not http\r\n\r\n"),
        ],
        1000,
        false,
    );
    let x = exchanges(&out);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].status, Some(200));
    let f = failures(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].direction, Direction::ClientToTarget);
    assert_eq!(
        f[0].offset, 20,
        "the garbage starts right after the first request"
    );
    assert!(
        f[0].detail.contains("invalid request head"),
        "{}",
        f[0].detail
    );
    assert_eq!(f[0].kind, FailureKind::Malformed);
    assert!(
        matches!(out.last(), Some(Decoded::Failure(_))),
        "the failure is the last output"
    );
}

#[test]
fn response_without_request_is_a_failure() {
    let out = run(
        Http1Config::default(),
        &[(S, b"HTTP/1.1 200 OK\r\n\r\n")],
        100,
        false,
    );
    assert!(failures(&out)[0].detail.contains("no request waiting"));
    assert_eq!(failures(&out)[0].kind, FailureKind::UnexpectedMessage);
}

#[test]
fn conflicting_content_lengths_are_refused() {
    let out = run(
        Http1Config::default(),
        &[(
            C,
            b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        )],
        100,
        false,
    );
    assert!(failures(&out)[0]
        .detail
        .contains("conflicting Content-Length"));
}

/// Content-Length and Transfer-Encoding together: framed by the chunks
/// (RFC 9112 §6.3), as the next pipelined request shows, and flagged.
#[test]
fn length_and_chunked_together_are_framed_by_the_chunks_and_flagged() {
    let request: &[u8] = b"POST /up HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
    let responses: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
    for step in [1, 7, 500] {
        let out = run(
            Http1Config::default(),
            &[(C, request), (S, responses)],
            step,
            false,
        );
        assert!(failures(&out).is_empty(), "{out:?}");
        let x = exchanges(&out);
        assert_eq!(x.len(), 2, "step {step}");
        assert_eq!((x[0].method.as_str(), x[0].path.as_str()), ("POST", "/up"));
        assert_eq!(&x[0].request_body.data[..], b"abc");
        assert_eq!(x[0].request_body.size, 3);
        assert_eq!(&x[0].response_body.data[..], b"ok");
        assert_eq!(
            x[0].warnings,
            [
                warning::REQUEST_CONTENT_LENGTH_AND_TRANSFER_ENCODING,
                warning::RESPONSE_CONTENT_LENGTH_AND_TRANSFER_ENCODING,
            ]
        );
        assert_eq!((x[1].method.as_str(), x[1].path.as_str()), ("GET", "/next"));
        assert_eq!(&x[1].response_body.data[..], b"hi");
        assert!(x[1].warnings.is_empty());
    }
}

/// Only a message framed by Transfer-Encoding is flagged: a response that
/// has no body by its status, or one framed by Content-Length alone, is not.
#[test]
fn no_warning_where_the_length_is_not_overridden() {
    let out = run(
        Http1Config::default(),
        &[
            (C, b"HEAD /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
            (
                S,
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            ),
        ],
        100,
        false,
    );
    let x = exchanges(&out);
    assert_eq!(x.len(), 2, "{out:?}");
    assert!(x.iter().all(|x| x.warnings.is_empty()), "{x:?}");
}

/// Content-Length values that disagree make the message's length unknowable
/// (RFC 9112 §6.3): the decoder gives up, in either direction; identical
/// repeats are one length.
#[test]
fn content_lengths_that_agree_are_one_and_those_that_do_not_a_failure() {
    let out = run(
        Http1Config::default(),
        &[
            (
                C,
                b"POST / HTTP/1.1\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc",
            ),
            (
                S,
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            ),
        ],
        100,
        false,
    );
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{out:?}");
    assert_eq!(f[0].direction, S);
    assert_eq!(f[0].offset, 0);
    assert_eq!(f[0].detail, "conflicting Content-Length values");
}

#[test]
fn connection_closed_before_the_response_is_reported() {
    let out = run(
        Http1Config::default(),
        &[(C, b"GET /slow HTTP/1.1\r\n\r\n")],
        100,
        false,
    );
    let x = exchanges(&out);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].status, None);
    assert!(x[0].error.as_deref().unwrap().starts_with("no response"));
}

#[test]
fn early_response_waits_for_the_request_body() {
    // The server answers before the upload is done, then the upload finishes.
    let out = run(
        Http1Config::default(),
        &[
            (C, b"POST /up HTTP/1.1\r\nContent-Length: 6\r\n\r\nabc"),
            (
                S,
                b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
            ),
            (C, b"def"),
        ],
        100,
        false,
    );
    let x = exchanges(&out);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].status, Some(413));
    assert_eq!(&x[0].request_body.data[..], b"abcdef");
    assert!(x[0].error.is_none());
}

#[test]
fn too_many_pipelined_requests_fail() {
    let config = Http1Config {
        max_pending: 2,
        ..Http1Config::default()
    };
    let out = run(
        config,
        &[(
            C,
            b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n",
        )],
        100,
        false,
    );
    assert!(failures(&out)[0].detail.contains("more than 2 requests"));
    assert_eq!(failures(&out)[0].kind, FailureKind::LimitExceeded);
    assert_eq!(
        exchanges(&out).len(),
        2,
        "the two accepted requests are reported as unanswered"
    );
}

#[test]
fn http2_prior_knowledge_is_named_as_such() {
    let out = run(
        Http1Config::default(),
        &[(C, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04")],
        100,
        false,
    );
    let f = failures(&out);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].offset, 0);
    assert!(
        f[0].detail.starts_with("HTTP/2 with prior knowledge"),
        "{}",
        f[0].detail
    );
    assert_eq!(f[0].kind, FailureKind::Unsupported);
}
