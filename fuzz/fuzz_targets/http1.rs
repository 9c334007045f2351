//! Arbitrary bytes, cut into arbitrary chunks in both directions, fed to the
//! HTTP/1 decoder. It must not panic, must report at most one failure and
//! only as its last output, and must keep captured bodies within the limit.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::http1::{Http1Config, Http1Decoder};
use tapmesh_protocols::{Decoded, Decoder, Direction, Timestamp};

fuzz_target!(|data: &[u8]| {
    let config = Http1Config {
        capture_limit: 64,
        max_head: 512,
        max_headers: 16,
        max_pending: 8,
    };
    let mut decoder = Http1Decoder::new(config);
    let mut out = Vec::new();
    let mut rest = data;
    let mut t = 0;
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
        failed |= check(&out, failed);
    }
    if !failed {
        decoder.end_of_stream(Direction::TargetToClient, Timestamp(t + 1), &mut out);
        decoder.finish(Timestamp(t + 2), &mut out);
        check(&out, failed);
    }
});

/// Checks the outputs so far; returns whether the decoder has given up.
fn check(out: &[Decoded], already_failed: bool) -> bool {
    let failures = out.iter().filter(|d| matches!(d, Decoded::Failure(_))).count();
    assert!(failures <= 1, "more than one failure");
    if failures == 1 {
        assert!(!already_failed || matches!(out.last(), Some(Decoded::Failure(_))));
        assert!(matches!(out.last(), Some(Decoded::Failure(_))), "a failure is the last output");
    }
    for d in out {
        if let Decoded::Http(x) = d {
            assert!(x.request_body.data.len() <= 64 && x.response_body.data.len() <= 64);
            assert!(x.request_body.size >= x.request_body.data.len() as u64);
            assert!(x.response_body.size >= x.response_body.data.len() as u64);
        }
    }
    failures == 1
}
