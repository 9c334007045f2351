//! Arbitrary bytes, cut into arbitrary chunks in both directions, fed to the
//! Kafka decoder, and the response direction also through the broker
//! address rewriter. Neither may panic; the decoder reports at most one
//! failure, as its last output; the rewriter, whose map refuses every
//! broker, forwards every byte it did not rewrite unchanged and in order.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::kafka::{BrokerAddressMap, KafkaConfig, KafkaDecoder, ResponseRewriter};
use tapmesh_protocols::{Decoded, Decoder, Direction, Timestamp};

struct Map;

impl BrokerAddressMap for Map {
    fn proxy_address(&mut self, _node_id: i32, _host: &str, _port: i32) -> Result<(String, i32), String> {
        // Refuse every broker: each held frame then goes out as it came.
        Err("no listener".into())
    }
}

fuzz_target!(|data: &[u8]| {
    let config = KafkaConfig {
        capture_limit: 256,
        max_frame_size: 4096,
        max_pending: 8,
        ..KafkaConfig::default()
    };
    let mut decoder = KafkaDecoder::new(config);
    let mut rewriter = ResponseRewriter::new(4096);
    let mut out = Vec::new();
    let mut forwarded = Vec::new();
    let mut failures = Vec::new();
    let mut pieces = Vec::new();
    let mut rest = data;
    let mut t = 0;
    let mut failed = false;
    // Each segment: one control byte (direction in the top bit, length in
    // the rest), then that many bytes.
    while let Some((&control, tail)) = rest.split_first() {
        let len = usize::from(control & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        let chunk = Bytes::copy_from_slice(chunk);
        let direction = if control & 0x80 == 0 {
            rewriter.observe_request(&chunk);
            Direction::ClientToTarget
        } else {
            rewriter.rewrite_response(chunk.clone(), &mut Map, &mut pieces, &mut failures);
            for p in pieces.drain(..) {
                forwarded.extend_from_slice(&p);
            }
            Direction::TargetToClient
        };
        t += 1;
        if !failed {
            decoder.feed(direction, &chunk, Timestamp(t), &mut out);
        }
        failed |= check(&out, failed);
    }
    rewriter.end_of_stream(&mut pieces);
    for p in pieces.drain(..) {
        forwarded.extend_from_slice(&p);
    }
    // Unless a frame was rewritten, every response byte went out as it
    // came, in order, none lost or held.
    if rewriter.rewritten() == 0 {
        assert_eq!(forwarded, response_bytes(data));
    }
    if !failed {
        decoder.finish(Timestamp(t + 1), &mut out);
        check(&out, failed);
    }
});

/// The target → client bytes of the input, in order.
fn response_bytes(data: &[u8]) -> Vec<u8> {
    let mut all = Vec::new();
    let mut rest = data;
    while let Some((&control, tail)) = rest.split_first() {
        let len = usize::from(control & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        if control & 0x80 != 0 {
            all.extend_from_slice(chunk);
        }
    }
    all
}

/// Checks the outputs so far; returns whether the decoder has given up.
fn check(out: &[Decoded], already_failed: bool) -> bool {
    let failures = out.iter().filter(|d| matches!(d, Decoded::Failure(_))).count();
    assert!(failures <= 1, "more than one failure");
    if failures == 1 {
        assert!(!already_failed || matches!(out.last(), Some(Decoded::Failure(_))));
        assert!(matches!(out.last(), Some(Decoded::Failure(_))), "a failure is the last output");
    }
    for d in out {
        if let Decoded::Kafka(x) = d {
            assert!(x.request_size >= 4);
            assert!(x.response_size.is_none_or(|s| s >= 4));
        }
    }
    failures == 1
}
