//! Edge cases with hand-built frames (real peers are in the integration tests).

use bytes::Bytes;

use super::frame::*;
use super::*;
use crate::http::HttpDecoder;
use crate::http::HttpExchange;
use crate::DecodeFailure;

const C2T: Direction = Direction::ClientToTarget;
const T2C: Direction = Direction::TargetToClient;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// One endpoint's encoder and the bytes it has sent.
struct Peer {
    hpack: loona_hpack::Encoder<'static>,
    bytes: Vec<u8>,
}

impl Peer {
    fn client() -> Self {
        let mut p = Self::server();
        p.bytes.extend_from_slice(PREFACE);
        p.bytes.extend(frame(SETTINGS, 0, 0, &[]));
        p
    }

    fn server() -> Self {
        Self {
            hpack: loona_hpack::Encoder::new(),
            bytes: Vec::new(),
        }
    }

    fn block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        self.hpack
            .encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    fn headers(&mut self, stream: u32, end_stream: bool, headers: &[(&str, &str)]) -> &mut Self {
        let block = self.block(headers);
        let flags = FLAG_END_HEADERS | if end_stream { FLAG_END_STREAM } else { 0 };
        self.bytes.extend(frame(HEADERS, flags, stream, &block));
        self
    }

    fn data(&mut self, stream: u32, end_stream: bool, data: &[u8]) -> &mut Self {
        let flags = if end_stream { FLAG_END_STREAM } else { 0 };
        self.bytes.extend(frame(DATA, flags, stream, data));
        self
    }

    fn raw(&mut self, bytes: Vec<u8>) -> &mut Self {
        self.bytes.extend(bytes);
        self
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes)
    }
}

fn get(path: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "GET".into()),
        (":scheme", "http".into()),
        (":authority", "example.test".into()),
        (":path", path.into()),
        ("user-agent", "test".into()),
    ]
}

fn as_refs<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    h.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

/// Feeds `(direction, bytes)` in order, each split into `split`-byte chunks,
/// with the timestamp counting chunks.
fn run(decoder: &mut dyn Decoder, script: &[(Direction, Vec<u8>)], split: usize) -> Vec<Decoded> {
    let mut out = Vec::new();
    let mut t = 0;
    for (direction, bytes) in script {
        for piece in bytes.chunks(split.max(1)) {
            t += 1;
            decoder.feed(
                *direction,
                &Bytes::copy_from_slice(piece),
                Timestamp(t),
                &mut out,
            );
        }
    }
    decoder.finish(Timestamp(t + 1), &mut out);
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

/// The first field of exactly that name (HTTP/2 names are lower-case).
fn header<'a>(headers: &'a HeaderBlock, name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name == name).map(|h| h.value)
}

fn simple_get_script() -> Vec<(Direction, Vec<u8>)> {
    let mut client = Peer::client();
    let mut server = Peer::server();
    client.headers(1, true, &as_refs(&get("/a?x=1")));
    server
        .raw(frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]))
        .raw(frame(SETTINGS, FLAG_ACK, 0, &[]))
        .headers(
            1,
            false,
            &[(":status", "200"), ("content-type", "text/plain")],
        )
        .data(1, false, b"hel")
        .data(1, true, b"lo");
    vec![(C2T, client.take()), (T2C, server.take())]
}

#[test]
fn a_get_is_one_exchange_at_every_split() {
    let script = simple_get_script();
    for split in [1, 2, 3, 7, 9, 10, 64, 4096] {
        let mut d = Http2Decoder::new(Http2Config::default());
        let out = run(&mut d, &script, split);
        assert!(failures(&out).is_empty(), "split {split}: {out:?}");
        let x = exchanges(&out);
        assert_eq!(x.len(), 1, "split {split}");
        let x = x[0];
        assert_eq!(x.version, "HTTP/2");
        assert_eq!(x.method, "GET");
        assert_eq!(x.path, "/a?x=1");
        assert_eq!(x.status, Some(200));
        assert_eq!(
            header(&x.request_headers, ":authority"),
            Some("example.test")
        );
        assert_eq!(header(&x.request_headers, "user-agent"), Some("test"));
        assert_eq!(header(&x.request_headers, ":path"), None, "shown as path");
        assert_eq!(
            header(&x.response_headers, "content-type"),
            Some("text/plain")
        );
        assert_eq!(&x.response_body.data[..], b"hello");
        assert_eq!(x.response_body.size, 5);
        assert_eq!(x.request_body.size, 0);
        assert!(x.error.is_none());
        assert!(x.response_head_at.unwrap() > x.started);
    }
}

#[test]
fn concurrent_streams_pair_by_id_whatever_the_order() {
    let mut client = Peer::client();
    let mut server = Peer::server();
    for (id, path) in [(1, "/one"), (3, "/three"), (5, "/five")] {
        client.headers(id, true, &as_refs(&get(path)));
    }
    // Answers out of order, DATA interleaved across streams.
    server
        .headers(5, false, &[(":status", "201")])
        .headers(1, false, &[(":status", "404")])
        .data(5, false, b"five-")
        .data(1, true, b"one")
        .headers(3, true, &[(":status", "204")])
        .data(5, true, b"done");
    let mut d = Http2Decoder::new(Http2Config::default());
    let out = run(&mut d, &[(C2T, client.take()), (T2C, server.take())], 5);
    let x = exchanges(&out);
    let seen: Vec<(&str, Option<u16>, &[u8])> = x
        .iter()
        .map(|x| (x.path.as_str(), x.status, &x.response_body.data[..]))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("/one", Some(404), &b"one"[..]),
            ("/three", Some(204), &b""[..]),
            ("/five", Some(201), &b"five-done"[..]),
        ]
    );
}

#[test]
fn continuation_padding_and_priority_are_read_through() {
    let mut client = Peer::client();
    let mut big = get("/long");
    big.push(("x-long", "v".repeat(300)));
    let block = client.block(&as_refs(&big));
    // HEADERS padded and with a priority, then two CONTINUATIONs.
    let mut payload = vec![4u8];
    payload.extend_from_slice(&[0, 0, 0, 0, 16]);
    payload.extend_from_slice(&block[..10]);
    payload.extend_from_slice(&[0; 4]);
    client.raw(frame(
        HEADERS,
        FLAG_PADDED | FLAG_PRIORITY | FLAG_END_STREAM,
        1,
        &payload,
    ));
    client.raw(frame(CONTINUATION, 0, 1, &block[10..100]));
    client.raw(frame(CONTINUATION, FLAG_END_HEADERS, 1, &block[100..]));
    let mut server = Peer::server();
    server.headers(1, true, &[(":status", "200")]);
    let mut d = Http2Decoder::new(Http2Config::default());
    let out = run(&mut d, &[(C2T, client.take()), (T2C, server.take())], 13);
    assert!(failures(&out).is_empty(), "{out:?}");
    let x = exchanges(&out);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].path, "/long");
    assert_eq!(
        header(&x[0].request_headers, "x-long").map(str::len),
        Some(300)
    );
}

#[test]
fn a_frame_inside_a_header_block_is_a_failure_reported_once() {
    let mut client = Peer::client();
    let block = client.block(&as_refs(&get("/")));
    client.raw(frame(HEADERS, 0, 1, &block));
    client.data(1, true, b"oops");
    client.headers(3, true, &as_refs(&get("/after")));
    let mut d = Http2Decoder::new(Http2Config::default());
    let out = run(&mut d, &[(C2T, client.take())], 1000);
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{out:?}");
    assert!(f[0].detail.contains("CONTINUATION"), "{}", f[0].detail);
    assert_eq!(f[0].kind, crate::FailureKind::Malformed);
    assert_eq!(f[0].protocol, "http2");
    assert_eq!(f[0].offset, (PREFACE.len() + 9 + 9 + block.len()) as u64);
    assert!(exchanges(&out).is_empty());
}

#[test]
fn trailers_on_both_sides() {
    let mut client = Peer::client();
    let mut server = Peer::server();
    let mut post = get("/upload");
    post[0].1 = "POST".into();
    client
        .headers(1, false, &as_refs(&post))
        .data(1, false, b"body")
        .headers(1, true, &[("x-checksum", "abc")]);
    server
        .headers(
            1,
            false,
            &[(":status", "200"), ("content-type", "application/grpc")],
        )
        .data(1, false, b"\0\0\0\0\0")
        .headers(1, true, &[("grpc-status", "0"), ("grpc-message", "ok")]);
    let mut d = Http2Decoder::new(Http2Config::default());
    let out = run(&mut d, &[(C2T, client.take()), (T2C, server.take())], 3);
    let x = exchanges(&out);
    assert_eq!(x.len(), 1);
    assert_eq!(x[0].method, "POST");
    assert_eq!(&x[0].request_body.data[..], b"body");
    assert_eq!(header(&x[0].request_trailers, "x-checksum"), Some("abc"));
    assert_eq!(header(&x[0].response_trailers, "grpc-status"), Some("0"));
    assert_eq!(header(&x[0].response_trailers, "grpc-message"), Some("ok"));
    assert_eq!(header(&x[0].response_headers, "grpc-status"), None);
}

#[test]
fn resets_carry_their_error_and_a_no_error_reset_after_the_response_is_clean() {
    let mut client = Peer::client();
    let mut server = Peer::server();
    let mut post = get("/slow");
    post[0].1 = "POST".into();
    client
        .headers(1, true, &as_refs(&get("/cancelled")))
        .headers(3, false, &as_refs(&post))
        .data(3, false, b"partial");
    let mut script = vec![(C2T, client.take())];
    server.headers(3, true, &[(":status", "413")]);
    server.raw(frame(RST_STREAM, 0, 3, &0u32.to_be_bytes()));
    script.push((T2C, server.take()));
    client.raw(frame(RST_STREAM, 0, 1, &8u32.to_be_bytes()));
    script.push((C2T, client.take()));
    let mut d = Http2Decoder::new(Http2Config::default());
    let out = run(&mut d, &script, 1000);
    let x = exchanges(&out);
    assert_eq!(x.len(), 2);
    assert_eq!(x[0].path, "/slow");
    assert_eq!(x[0].status, Some(413));
    assert_eq!(x[0].error, None);
    assert_eq!(x[1].path, "/cancelled");
    assert_eq!(x[1].status, None);
    assert_eq!(
        x[1].error.as_deref(),
        Some("stream reset by the client: CANCEL (0x8)")
    );
}

#[test]
fn goaway_reports_the_streams_it_refused_and_close_reports_the_rest() {
    let mut client = Peer::client();
    let mut server = Peer::server();
    for (id, path) in [(1, "/a"), (3, "/b"), (5, "/c")] {
        client.headers(id, true, &as_refs(&get(path)));
    }
    let mut goaway = 1u32.to_be_bytes().to_vec();
    goaway.extend_from_slice(&0u32.to_be_bytes());
    server
        .raw(frame(GOAWAY, 0, 0, &goaway))
        .headers(1, false, &[(":status", "200")]);
    let mut d = Http2Decoder::new(Http2Config::default());
    let out = run(&mut d, &[(C2T, client.take()), (T2C, server.take())], 1000);
    let x = exchanges(&out);
    let seen: Vec<(&str, Option<&str>)> = x
        .iter()
        .map(|x| (x.path.as_str(), x.error.as_deref()))
        .collect();
    let refused = "not processed: the server sent GOAWAY (last stream 1, NO_ERROR (0x0))";
    assert_eq!(
        seen,
        vec![
            ("/b", Some(refused)),
            ("/c", Some(refused)),
            ("/a", Some("incomplete: the connection closed")),
        ]
    );
}

/// A dynamic table size update to 8192 followed by a header block.
fn block_with_bigger_table(peer: &mut Peer, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut block = loona_hpack::encoder::encode_integer(8192, 5);
    block[0] |= 0x20;
    peer.hpack.set_max_table_size(8192);
    block.extend(peer.block(headers));
    block
}

#[test]
fn a_bigger_hpack_table_needs_the_peers_settings() {
    for server_allows in [false, true] {
        let mut client = Peer::client();
        let mut server = Peer::server();
        if server_allows {
            // SETTINGS_HEADER_TABLE_SIZE = 8192 from the server.
            server.raw(frame(SETTINGS, 0, 0, &[0, 1, 0, 0, 0x20, 0]));
        }
        let mut script = vec![(T2C, server.take())];
        let block = block_with_bigger_table(&mut client, &as_refs(&get("/big-table")));
        client.raw(frame(
            HEADERS,
            FLAG_END_HEADERS | FLAG_END_STREAM,
            1,
            &block,
        ));
        script.push((C2T, client.take()));
        server.headers(1, true, &[(":status", "200")]);
        script.push((T2C, server.take()));
        let mut d = Http2Decoder::new(Http2Config::default());
        let out = run(&mut d, &script, 1000);
        if server_allows {
            assert!(failures(&out).is_empty(), "{out:?}");
            let x = exchanges(&out);
            assert_eq!((x[0].path.as_str(), x[0].status), ("/big-table", Some(200)));
        } else {
            assert_eq!(failures(&out).len(), 1, "{out:?}");
            assert!(failures(&out)[0].detail.starts_with("HPACK"));
        }
    }
}

#[test]
fn capture_limit_truncates_across_data_frames() {
    let mut client = Peer::client();
    let mut server = Peer::server();
    client.headers(1, true, &as_refs(&get("/big")));
    server.headers(1, false, &[(":status", "200")]);
    for _ in 0..10 {
        server.data(1, false, &[b'x'; 1000]);
    }
    server.data(1, true, b"");
    let mut d = Http2Decoder::new(Http2Config {
        capture_limit: 2500,
        ..Http2Config::default()
    });
    let out = run(&mut d, &[(C2T, client.take()), (T2C, server.take())], 4096);
    let x = exchanges(&out);
    assert_eq!(x[0].response_body.data.len(), 2500);
    assert_eq!(x[0].response_body.size, 10_000);
    assert!(x[0].response_body.truncated());
}

#[test]
fn push_promise_becomes_its_own_exchange() {
    let mut client = Peer::client();
    let mut server = Peer::server();
    client.headers(1, true, &as_refs(&get("/page")));
    let promise = server.block(&as_refs(&get("/style.css")));
    let mut payload = 2u32.to_be_bytes().to_vec();
    payload.extend(promise);
    server
        .raw(frame(PUSH_PROMISE, FLAG_END_HEADERS, 1, &payload))
        .headers(1, true, &[(":status", "200")])
        .headers(2, false, &[(":status", "200")])
        .data(2, true, b"body{}");
    let mut d = Http2Decoder::new(Http2Config::default());
    let out = run(&mut d, &[(C2T, client.take()), (T2C, server.take())], 1000);
    let x = exchanges(&out);
    let seen: Vec<&str> = x.iter().map(|x| x.path.as_str()).collect();
    assert_eq!(seen, vec!["/page", "/style.css"]);
    assert_eq!(&x[1].response_body.data[..], b"body{}");
}

#[test]
fn sniffer_picks_http2_from_a_preface_split_byte_by_byte_and_http1_otherwise() {
    let script = simple_get_script();
    let mut d = HttpDecoder::with_capture_limit(1024);
    let out = run(&mut d, &script, 1);
    assert_eq!(d.protocol(), Some("http2"));
    assert_eq!(exchanges(&out).len(), 1);
    assert_eq!(exchanges(&out)[0].version, "HTTP/2");

    let mut d = HttpDecoder::with_capture_limit(1024);
    let http1 = vec![
        (C2T, b"PRIVATE /x HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        (T2C, b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
    ];
    let out = run(&mut d, &http1, 2);
    assert_eq!(d.protocol(), Some("http1"));
    let x = exchanges(&out);
    assert_eq!((x[0].method.as_str(), x[0].status), ("PRIVATE", Some(204)));
}

#[test]
fn sniffer_holds_a_server_settings_frame_that_arrives_before_the_preface() {
    // An HTTP/2 server sends SETTINGS on accept; through the proxy they can
    // come before the client's preface.
    let server_first = frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]);
    let mut client = Peer::client();
    client.headers(1, true, &as_refs(&get("/early")));
    let mut server = Peer::server();
    server.headers(1, true, &[(":status", "204")]);
    let script = vec![
        (T2C, server_first),
        (C2T, client.take()),
        (T2C, server.take()),
    ];
    for split in [1, 4, 9, 4096] {
        let mut d = HttpDecoder::with_capture_limit(1024);
        let out = run(&mut d, &script, split);
        assert!(failures(&out).is_empty(), "split {split}: {out:?}");
        assert_eq!(d.protocol(), Some("http2"), "split {split}");
        let x = exchanges(&out);
        assert_eq!(x.len(), 1, "split {split}");
        assert_eq!((x[0].path.as_str(), x[0].status), ("/early", Some(204)));
    }

    // A server that opens with anything else is HTTP/1's to judge.
    let mut d = HttpDecoder::with_capture_limit(1024);
    let banner = vec![(T2C, b"220 smtp.example ESMTP\r\n".to_vec())];
    run(&mut d, &banner, 4096);
    assert_eq!(d.protocol(), Some("http1"));
}

#[test]
fn h2c_upgrade_continues_the_request_as_stream_one() {
    let mut server = Peer::server();
    let mut server_bytes =
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n".to_vec();
    server
        .raw(frame(SETTINGS, 0, 0, &[]))
        .headers(1, false, &[(":status", "200"), ("server", "test")])
        .data(1, true, b"upgraded!");
    server_bytes.extend(server.take());
    let mut client = Peer::client();
    client.headers(3, true, &as_refs(&get("/second")));
    let mut server2 = Peer {
        hpack: server.hpack,
        bytes: Vec::new(),
    };
    server2.headers(3, true, &[(":status", "404")]);
    let script = vec![
        (
            C2T,
            b"GET /first HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
              Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
                .to_vec(),
        ),
        (T2C, server_bytes),
        (C2T, client.take()),
        (T2C, server2.take()),
    ];
    for split in [1, 5, 4096] {
        let mut d = HttpDecoder::with_capture_limit(1024);
        let out = run(&mut d, &script, split);
        assert!(failures(&out).is_empty(), "split {split}: {out:?}");
        let x = exchanges(&out);
        let seen: Vec<(&str, &str, Option<u16>, &[u8])> = x
            .iter()
            .map(|x| {
                (
                    x.version,
                    x.path.as_str(),
                    x.status,
                    &x.response_body.data[..],
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("HTTP/2", "/first", Some(200), &b"upgraded!"[..]),
                ("HTTP/2", "/second", Some(404), &b""[..]),
            ],
            "split {split}"
        );
        assert_eq!(header(&x[0].request_headers, "Host"), Some("a"));
        assert_eq!(header(&x[0].response_headers, "server"), Some("test"));
    }
}

#[test]
fn garbage_instead_of_frames_fails_once_and_reports_open_streams() {
    let mut client = Peer::client();
    client.headers(1, true, &as_refs(&get("/x")));
    // Index 63 points into an empty dynamic table.
    client.raw(frame(HEADERS, FLAG_END_HEADERS, 3, &[0xbf]));
    let mut d = Http2Decoder::new(Http2Config::default());
    let out = run(&mut d, &[(C2T, client.take()), (T2C, vec![0; 100])], 7);
    let f = failures(&out);
    assert_eq!(f.len(), 1, "{out:?}");
    assert!(f[0].detail.starts_with("HPACK"), "{}", f[0].detail);
    let x = exchanges(&out);
    assert_eq!(x.len(), 1);
    assert!(x[0]
        .error
        .as_deref()
        .unwrap()
        .starts_with("no response: decoding stopped"));
}
