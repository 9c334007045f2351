//! Arbitrary bytes, cut into arbitrary chunks in both directions, fed to the
//! Redis decoder with small limits (so that caps, the pending limit and the
//! nesting limit are all reached). It may not panic; it reports at most one
//! failure, as its last output, and nothing after it.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::redis::{RedisConfig, RedisDecoder, RedisOutput};
use tapmesh_protocols::{Decoded, Decoder, Direction, Timestamp};

fuzz_target!(|data: &[u8]| {
    let config = RedisConfig {
        capture_limit: 64,
        render_limit: 128,
        max_values: 16,
        max_pending: 8,
        max_pending_bytes: 512,
        max_depth: 8,
        max_bulk_len: 4096,
        max_aggregate_len: 1024,
    };
    let mut decoder = RedisDecoder::new(config);
    let mut out = Vec::new();
    let mut rest = data;
    let mut t = 0;
    // Each segment: one control byte (direction in the top bit, length in
    // the rest), then that many bytes.
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
        decoder.feed(direction, &Bytes::copy_from_slice(chunk), Timestamp(t), &mut out);
    }
    decoder.finish(Timestamp(t + 1), &mut out);
    let failures = out.iter().filter(|d| matches!(d, Decoded::Failure(_))).count();
    assert!(failures <= 1, "more than one failure");
    if failures == 1 {
        assert!(matches!(out.last(), Some(Decoded::Failure(_))), "a failure is the last output");
    }
    for d in &out {
        if let Decoded::Redis(o) = d {
            match o.as_ref() {
                RedisOutput::Command(c) => {
                    assert!(c.request_size > 0);
                    assert!(c.args.len() <= 16);
                    assert!(c.args.iter().map(|a| a.text.len()).sum::<usize>() <= 4 * 256);
                    if let Some(r) = &c.reply {
                        // Renderings stop at the limit (plus the marker).
                        assert!(r.rendered.len() <= 128 * r.replies.max(1) as usize + 8);
                    }
                }
                RedisOutput::Push(p) => assert!(p.size > 0),
                RedisOutput::Skipped(s) => assert!(s.commands > 0),
            }
        }
    }
});
