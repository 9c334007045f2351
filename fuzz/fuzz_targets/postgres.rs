//! Arbitrary bytes, cut into arbitrary chunks in both directions, fed to
//! the PostgreSQL decoder. It may not panic; it reports at most one
//! failure, as its last output, and nothing after an `Encrypted` end.
//! The first input byte picks whether the client starts typed (a
//! connection already past its startup, so the fuzzer reaches queries
//! without having to build a startup packet first).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::postgres::{PostgresConfig, PostgresDecoder, PostgresOutput};
use tapmesh_protocols::{Decoded, Decoder, Direction, Timestamp};

/// A startup packet and the server's AuthenticationOk + ReadyForQuery.
const STARTUP: &[u8] = b"\0\0\0\x13\0\x03\0\0user\0fuzz\0\0";
const READY: &[u8] = b"R\0\0\0\x08\0\0\0\0Z\0\0\0\x05I";

fuzz_target!(|data: &[u8]| {
    let config = PostgresConfig {
        capture_limit: 256,
        param_limit: 16,
        max_message_size: 4096,
        max_pending: 8,
        max_statements: 4,
    };
    let mut decoder = PostgresDecoder::new(config);
    let mut out = Vec::new();
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    if first & 1 == 1 {
        decoder.feed(Direction::ClientToTarget, &Bytes::from_static(STARTUP), Timestamp(0), &mut out);
        decoder.feed(Direction::TargetToClient, &Bytes::from_static(READY), Timestamp(0), &mut out);
    }
    let mut t = 0;
    let mut ended = false;
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
        let before = out.len();
        decoder.feed(direction, &Bytes::copy_from_slice(chunk), Timestamp(t), &mut out);
        if ended {
            assert_eq!(out.len(), before, "output after the decoder ended");
        }
        ended |= check(&out);
    }
    let before = out.len();
    decoder.finish(Timestamp(t + 1), &mut out);
    if ended {
        assert_eq!(out.len(), before, "output after the decoder ended");
    }
    check(&out);
});

/// Checks the outputs so far; returns whether the decoder has ended.
fn check(out: &[Decoded]) -> bool {
    let ends = out
        .iter()
        .filter(|d| match d {
            Decoded::Failure(_) => true,
            Decoded::Postgres(o) => matches!(
                **o,
                PostgresOutput::Encrypted { .. } | PostgresOutput::CancelRequest { .. }
            ),
            _ => false,
        })
        .count();
    assert!(ends <= 1, "more than one end: {out:?}");
    for d in out {
        if let Decoded::Postgres(o) = d {
            if let PostgresOutput::Query(q) = &**o {
                // What is kept of a message (1 KiB here), as lossy UTF-8.
                assert!(q.sql.len() <= 3 * 1024, "sql over the kept floor");
                assert!(q.notices.len() <= 4);
            }
        }
    }
    if ends == 1 {
        let last_is_end = matches!(out.last(), Some(Decoded::Failure(_)))
            || matches!(out.last(), Some(Decoded::Postgres(o)) if matches!(**o, PostgresOutput::Encrypted { .. } | PostgresOutput::CancelRequest { .. }));
        assert!(last_is_end, "an end is the last output: {out:?}");
    }
    ends == 1
}
