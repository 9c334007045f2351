//! The payloads of Redis edges: `command` (`redis.command.completed`) and
//! `push` (`redis.push`: a pub/sub message, a key invalidation, a
//! `MONITOR` line).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One command and its reply on an observed edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisCommandInfo {
    /// The connection's id, as in its `connection.*` events.
    pub connection: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    /// Upper-cased; with its subcommand for container commands
    /// (`CONFIG GET`, `CLIENT TRACKING`).
    pub command: String,
    /// The arguments after the name, as many as the capture limit kept;
    /// secrets (`AUTH`, `HELLO … AUTH`, `CONFIG SET requirepass`) read
    /// `[redacted]`. UTF-8 as text, anything else in base64 (its index in
    /// `binary_args`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub binary_args: Vec<u32>,
    /// How many arguments the command had, kept or not.
    pub arg_count: u64,
    /// An argument was cut short or not kept.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub args_truncated: bool,
    /// Typed as an inline line (`PING\r\n`), not a RESP array.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
    /// Queued in `MULTI` … `EXEC`; its reply is its element of EXEC's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub transaction: bool,
    /// `None` when no reply was due (`CLIENT REPLY OFF`) or the connection
    /// ended first.
    pub reply: Option<RedisReplyInfo>,
    pub error: Option<RedisErrorInfo>,
    /// The connection spoke RESP3 (after `HELLO 3`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resp3: bool,
    /// First byte of the command to last byte of its reply; `None` without
    /// a reply.
    pub latency_ms: Option<f64>,
    pub request_size: u64,
    pub response_size: u64,
}

/// A reply: its RESP type and a bounded JSON-like rendering.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisReplyInfo {
    /// `simple_string`, `bulk`, `integer`, `null`, `array`, `map`, `error` …
    #[serde(rename = "type")]
    pub ty: String,
    /// Strings quoted, numbers bare, aggregates as arrays or objects.
    pub value: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    /// Replies the command got where more than one (a `SUBSCRIBE` of
    /// several channels answers once per channel).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub replies: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// An error reply, its code apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisErrorInfo {
    /// The upper-case word it starts with: `ERR`, `WRONGTYPE`, `NOAUTH` …
    pub code: Option<String>,
    pub message: String,
}

/// Something the server sent without being asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedisPushInfo {
    pub connection: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    /// `message`, `pmessage`, `smessage`, `invalidate`, `monitor` …
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The pattern a `pmessage` matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The message (capped; base64 where not UTF-8, see
    /// `payload_encoding`); for other kinds a rendering of the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(default, skip_serializing_if = "is_utf8")]
    pub payload_encoding: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_truncated: bool,
    /// Arrived as a RESP3 push (`>`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resp3: bool,
    pub size: u64,
}

fn is_utf8(encoding: &str) -> bool {
    encoding.is_empty() || encoding == "utf8"
}
