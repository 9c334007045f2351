//! The interface through which a decoder sees a connection's traffic.
//!
//! The proxy reads a chunk once, freezes it as [`Bytes`], writes it to the
//! other side and then hands *the same* `Bytes` to [`Decoder::feed`]: a
//! decoder that wants to keep part of a chunk (a captured body, say) clones or
//! slices it, which costs a reference count, never a copy of the payload.
//!
//! A decoder observes; it cannot alter, hold back or drop traffic, because by
//! the time it sees a chunk that chunk has already been forwarded. When it
//! meets bytes it cannot make sense of it reports one [`Decoded::Failure`] and
//! the caller stops feeding it for the rest of the connection.

use std::fmt;

use bytes::Bytes;

use crate::Decoded;

/// Which way a chunk travelled through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client (the connection's initiator) to the target.
    ClientToTarget,
    /// From the target back to the client.
    TargetToClient,
}

impl Direction {
    /// The other direction of the same connection.
    pub fn reverse(self) -> Self {
        match self {
            Self::ClientToTarget => Self::TargetToClient,
            Self::TargetToClient => Self::ClientToTarget,
        }
    }
}

/// A point in time on the caller's monotonic clock, in nanoseconds.
///
/// Decoders only ever subtract two timestamps of the same connection (to get
/// a latency), so the origin is the caller's choice. Within a connection the
/// timestamps a decoder is given never decrease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Nanoseconds since the caller's origin.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// Milliseconds from `earlier` to `self` (zero if `earlier` is later),
    /// as the fractional milliseconds the event schema uses.
    pub fn millis_since(self, earlier: Timestamp) -> f64 {
        self.0.saturating_sub(earlier.0) as f64 / 1_000_000.0
    }
}

/// Why a decoder gave up, by category: what a tool counts and matches on,
/// while [`DecodeFailure::detail`] says what exactly happened.
///
/// New categories may come with new protocols, so match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// The bytes break the protocol's framing or syntax: an invalid head, a
    /// size outside what the protocol allows, an unknown message type, a
    /// header block HPACK cannot decode.
    Malformed,
    /// A bound the decoder keeps on a connection's memory was reached: a
    /// head, frame, header block or value too large, too many requests
    /// waiting. The traffic may well be valid.
    LimitExceeded,
    /// Well-formed, but a version or feature of the protocol this decoder
    /// does not follow (PostgreSQL startup other than 3.x, RESP3 streamed
    /// values, HTTP/2 sent to the HTTP/1 decoder, a body framing that
    /// cannot be delimited).
    Unsupported,
    /// A message that does not fit the conversation so far: a response
    /// with no request waiting for it, a reused correlation id, an answer
    /// to a question nobody asked.
    UnexpectedMessage,
    /// The connection switched to encryption (TLS, GSSAPI): what follows
    /// cannot be read, by design.
    Encrypted,
    /// A response the proxy rewrites (a Kafka broker address) could not be
    /// rewritten; it was forwarded unchanged.
    RewriteFailed,
}

impl FailureKind {
    /// A stable snake_case name, as events and summaries carry it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::LimitExceeded => "limit_exceeded",
            Self::Unsupported => "unsupported",
            Self::UnexpectedMessage => "unexpected_message",
            Self::Encrypted => "encrypted",
            Self::RewriteFailed => "rewrite_failed",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a decoder gave up on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    /// The protocol the decoder was decoding (`http1`, `kafka` …).
    pub protocol: &'static str,
    /// The direction whose bytes could not be decoded.
    pub direction: Direction,
    /// Offset of the offending byte within that direction's stream.
    pub offset: u64,
    /// What kind of trouble it was.
    pub kind: FailureKind,
    /// What exactly went wrong, for a person to read.
    pub detail: String,
}

/// `<kind>: <detail>`, for instance `malformed: invalid request head: invalid token`.
impl fmt::Display for DecodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// A failure before it is placed on the connection: decoders' inner
/// functions return it, and the decoder adds the protocol, direction and
/// offset it knows at the top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub kind: FailureKind,
    pub detail: String,
}

impl Fault {
    pub(crate) fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn malformed(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::Malformed, detail)
    }

    pub(crate) fn limit(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::LimitExceeded, detail)
    }

    pub(crate) fn unsupported(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::Unsupported, detail)
    }

    pub(crate) fn unexpected(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::UnexpectedMessage, detail)
    }

    /// The failure, placed at `offset` of `direction`'s stream.
    pub(crate) fn at(
        self,
        protocol: &'static str,
        direction: Direction,
        offset: u64,
    ) -> DecodeFailure {
        DecodeFailure {
            protocol,
            direction,
            offset,
            kind: self.kind,
            detail: self.detail,
        }
    }
}

/// A per-connection protocol decoder.
///
/// The caller feeds every chunk of both directions in the order it forwarded
/// them and finally calls [`Decoder::finish`]. Output goes into `out`, a
/// buffer the caller owns and reuses, so feeding a chunk that completes
/// nothing allocates nothing.
pub trait Decoder: Send {
    /// Observe one chunk that has just been forwarded in `direction`.
    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>);

    /// The sender of `direction` closed its side (FIN). The other direction
    /// may still carry data; close-delimited messages end here.
    fn end_of_stream(&mut self, direction: Direction, at: Timestamp, out: &mut Vec<Decoded>) {
        let _ = (direction, at, out);
    }

    /// Whether the connection is between messages in both directions:
    /// nothing of a request or response is pending. A proxy that starts
    /// cutting the stream into messages mid-connection (to inject a fault)
    /// may start only here. `false` unless the decoder knows.
    fn is_idle(&self) -> bool {
        false
    }

    /// The connection is gone. Report what can still be reported (an
    /// exchange that was cut off, for instance) and release all state.
    fn finish(&mut self, at: Timestamp, out: &mut Vec<Decoded>) {
        let _ = (at, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_since_is_fractional_and_never_negative() {
        let start = Timestamp(1_000_000);
        assert_eq!(Timestamp(3_500_000).millis_since(start), 2.5);
        assert_eq!(Timestamp(0).millis_since(start), 0.0);
    }

    #[test]
    fn a_failure_shows_its_kind_then_its_detail() {
        let failure =
            Fault::limit("a head longer than 8 bytes").at("http1", Direction::ClientToTarget, 3);
        assert_eq!(failure.kind, FailureKind::LimitExceeded);
        assert_eq!(
            failure.to_string(),
            "limit_exceeded: a head longer than 8 bytes"
        );
    }

    #[test]
    fn kind_names_are_distinct_snake_case() {
        let kinds = [
            FailureKind::Malformed,
            FailureKind::LimitExceeded,
            FailureKind::Unsupported,
            FailureKind::UnexpectedMessage,
            FailureKind::Encrypted,
            FailureKind::RewriteFailed,
        ];
        let names: std::collections::HashSet<_> = kinds.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), kinds.len());
        for name in names {
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
        }
    }

    #[test]
    fn reverse_flips_direction() {
        assert_eq!(
            Direction::ClientToTarget.reverse(),
            Direction::TargetToClient
        );
        assert_eq!(
            Direction::TargetToClient.reverse(),
            Direction::ClientToTarget
        );
    }
}
