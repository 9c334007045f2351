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

use bytes::Bytes;

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

/// Why a decoder gave up on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeFailure {
    /// The protocol the decoder was decoding (`http1`, `kafka` …).
    pub protocol: &'static str,
    /// The direction whose bytes could not be decoded.
    pub direction: Direction,
    /// Offset of the offending byte within that direction's stream.
    pub offset: u64,
    /// A human-readable reason.
    pub reason: String,
}

/// Something a decoder recognised in the traffic.
///
/// Each protocol adds its own variant as it lands; callers match with a
/// wildcard arm so a new protocol does not break them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decoded {
    /// An HTTP request and its response (or as much of it as there was).
    Http(Box<crate::http::HttpExchange>),
    /// A Kafka request and its response.
    Kafka(Box<crate::kafka::KafkaExchange>),
    /// A PostgreSQL session, query, notification or the end of decoding
    /// (an encrypted connection).
    Postgres(Box<crate::postgres::PostgresOutput>),
    /// A Redis command and its reply, a pushed message, or a run of
    /// commands counted past the pending limit.
    Redis(Box<crate::redis::RedisOutput>),
    /// The decoder cannot follow this connection any further. It is reported
    /// once, as the decoder's last output; the traffic itself is unaffected.
    Failure(DecodeFailure),
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
