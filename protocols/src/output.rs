//! What decoders report, for every protocol in one type.
//!
//! This is the one place that names each protocol's output: a protocol adds
//! its variant here, and the [`Decoder`](crate::Decoder) trait stays free of
//! them all.

use crate::http::HttpExchange;
use crate::kafka::KafkaExchange;
use crate::postgres::PostgresOutput;
use crate::redis::RedisOutput;
use crate::DecodeFailure;

/// Something a decoder recognised in the traffic.
///
/// Each protocol adds its own variant as it lands; callers match with a
/// wildcard arm so a new protocol does not break them.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Decoded {
    /// An HTTP request and its response (or as much of it as there was).
    Http(Box<HttpExchange>),
    /// A Kafka request and its response.
    Kafka(Box<KafkaExchange>),
    /// A PostgreSQL session, query, notification or the end of decoding
    /// (an encrypted connection).
    Postgres(Box<PostgresOutput>),
    /// A Redis command and its reply, a pushed message, or a run of
    /// commands counted past the pending limit.
    Redis(Box<RedisOutput>),
    /// The decoder cannot follow this connection any further. It is reported
    /// once, as the decoder's last output; the traffic itself is unaffected.
    Failure(DecodeFailure),
}
