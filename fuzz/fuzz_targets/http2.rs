//! Arbitrary bytes, cut into arbitrary chunks in both directions, fed to the
//! HTTP decoder of an `http` edge (sniffing, HTTP/1, h2c upgrade, HTTP/2).
//! Half the runs start with the HTTP/2 preface so the fuzzer reaches the
//! frame and HPACK code at once. The decoder must not panic, must report at
//! most one failure and only as its last output, and must keep captured
//! bodies within the limit.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::http1::Http1Config;
use tapmesh_protocols::http2::Http2Config;
use tapmesh_protocols::http::HttpDecoder;
use tapmesh_protocols::{Decoded, Decoder, Direction, Timestamp};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const LIMIT: usize = 64;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let mut decoder = HttpDecoder::new(
        Http1Config {
            capture_limit: LIMIT,
            max_head: 512,
            max_headers: 16,
            max_pending: 8,
        },
        Http2Config {
            capture_limit: LIMIT,
            max_frame_payload: 4096,
            max_header_block: 4096,
            max_streams: 16,
            max_table_size: 8192,
        },
    );
    let mut out = Vec::new();
    let mut t = 0;
    if mode & 1 == 1 {
        decoder.feed(
            Direction::ClientToTarget,
            &Bytes::from_static(PREFACE),
            Timestamp(0),
            &mut out,
        );
    }
    let mut rest = data;
    let mut failed = false;
    // Each segment: one control byte (direction in the top bit, length in the
    // rest), then that many bytes.
    while let Some((&control, tail)) = rest.split_first() {
        let len = usize::from(control & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        let direction = if control & 0x80 == 0 {
            Direction::ClientToTarget
        } else {
            Direction::TargetToClient
        };
        t += 1;
        if !failed {
            decoder.feed(direction, &Bytes::copy_from_slice(chunk), Timestamp(t), &mut out);
        }
        failed |= check(&out);
    }
    if !failed {
        decoder.end_of_stream(Direction::TargetToClient, Timestamp(t + 1), &mut out);
        decoder.finish(Timestamp(t + 2), &mut out);
        check(&out);
    }
});

/// Checks the outputs so far; returns whether the decoder has given up.
fn check(out: &[Decoded]) -> bool {
    let failures = out.iter().filter(|d| matches!(d, Decoded::Failure(_))).count();
    assert!(failures <= 1, "more than one failure");
    if failures == 1 {
        assert!(matches!(out.last(), Some(Decoded::Failure(_))), "a failure is the last output");
    }
    for d in out {
        if let Decoded::Http(x) = d {
            assert!(x.request_body.data.len() <= LIMIT && x.response_body.data.len() <= LIMIT);
            assert!(x.request_body.size >= x.request_body.data.len() as u64);
            assert!(x.response_body.size >= x.response_body.data.len() as u64);
            assert!(x.completed >= x.started);
        }
    }
    failures == 1
}
