//! Arbitrary bytes, cut into arbitrary chunks in both directions, fed to the
//! HTTP/1 decoder. It must not panic, must report at most one failure and
//! only as its last output, and must keep captured bodies within the limit.
//!
//! The client's chunks also go through a `RequestGate`, with verdicts of
//! every kind picked from the requests themselves (one target, not two: CI
//! time is short). It must not panic, must put out every byte it was fed, in
//! order, holding back at most `max_head` of them, and after `Close` may only
//! swallow.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tapmesh_protocols::http1::{
    Http1Config, Http1Decoder, RequestGate, RequestHead, Response, Segment, Verdict,
};
use tapmesh_protocols::{Decoded, Decoder, Direction, Timestamp};

const GATE_MAX_HEAD: usize = 512;

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
    let mut gate = GateCheck::default();
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
        let chunk = Bytes::copy_from_slice(chunk);
        if direction == Direction::ClientToTarget {
            gate.feed(&chunk);
        }
        if !failed {
            decoder.feed(direction, &chunk, Timestamp(t), &mut out);
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

/// A `RequestGate` fed the client's chunks, and what it put out so far.
struct GateCheck {
    gate: RequestGate,
    /// Every client byte fed.
    fed: Vec<u8>,
    /// How many of them came out as `Forward` or `Swallow`.
    out: usize,
    closed: bool,
}

impl Default for GateCheck {
    fn default() -> Self {
        Self {
            gate: RequestGate::new(GATE_MAX_HEAD),
            fed: Vec::new(),
            out: 0,
            closed: false,
        }
    }
}

impl GateCheck {
    fn feed(&mut self, chunk: &Bytes) {
        self.fed.extend_from_slice(chunk);
        let was_passthrough = self.gate.is_passthrough();
        let mut asked = 0;
        let mut segments = Vec::new();
        self.gate.feed(
            chunk,
            &mut |head: &RequestHead<'_>| {
                asked += 1;
                verdict(head)
            },
            &mut segments,
        );
        assert!(
            !was_passthrough || asked == 0,
            "a verdict asked after pass-through"
        );
        for segment in segments {
            match &segment {
                Segment::Forward(b) | Segment::Swallow(b) => {
                    assert!(!self.closed || matches!(segment, Segment::Swallow(_)));
                    let end = self.out + b.len();
                    assert_eq!(&self.fed[self.out..end], &b[..], "bytes out of order");
                    self.out = end;
                }
                Segment::Respond {
                    bytes,
                    after_requests,
                } => {
                    assert!(!self.closed && *after_requests <= self.gate.forwarded());
                    let mut slots = [httparse::EMPTY_HEADER; 16];
                    let parsed = httparse::Response::new(&mut slots).parse(bytes);
                    assert!(matches!(parsed, Ok(httparse::Status::Complete(_))));
                }
                Segment::Close => {
                    assert!(!self.closed, "closed twice");
                    self.closed = true;
                }
                Segment::Wait(_) | Segment::DelayResponse(_) => assert!(!self.closed),
            }
        }
        assert!(
            self.fed.len() - self.out <= GATE_MAX_HEAD,
            "held more than a head"
        );
        assert!(!self.closed || self.gate.is_passthrough());
    }
}

/// Every kind of verdict, picked by the request's own lengths.
fn verdict(head: &RequestHead<'_>) -> Verdict {
    let respond = |status| {
        Verdict::Respond(Response {
            status,
            headers: vec![("x-tapmesh-fault".into(), head.path.into())],
            body: Bytes::from_static(b"fault"),
        })
    };
    match (head.method.len() + head.path.len()) % 7 {
        0 => Verdict::Pass,
        1 => Verdict::Delay(Duration::from_millis(5)),
        2 => Verdict::DelayResponse(Duration::from_millis(5)),
        3 => respond(503),
        4 => respond(204),
        5 => respond(head.path.len() as u16),
        _ => Verdict::Close,
    }
}
