//! What the Redis decoder reports: commands with their replies, pushed
//! messages, and runs of commands counted but not kept.

use crate::Timestamp;

/// One output of the Redis decoder, inside [`crate::Decoded::Redis`].
#[derive(Debug, Clone, PartialEq)]
pub enum RedisOutput {
    /// A command and its reply (or replies).
    Command(RedisCommand),
    /// Something the server sent unasked: a pub/sub message, a key
    /// invalidation, a `MONITOR` line.
    Push(RedisPush),
    /// Commands past [`super::RedisConfig::max_pending`] that were counted,
    /// paired and dropped rather than kept; reported once their replies
    /// are in.
    Skipped(SkippedCommands),
}

/// A command paired with its reply.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisCommand {
    /// The command's name upper-cased; for a container command with a
    /// subcommand, both words (`CLIENT TRACKING`, `CONFIG GET`).
    pub command: String,
    /// The arguments after the name (and subcommand), as many as the
    /// capture limits kept; secrets are shown as `[redacted]`.
    pub args: Vec<RedisArg>,
    /// How many arguments the command had, kept or not.
    pub arg_count: u64,
    /// Some argument was cut short or not kept at all.
    pub truncated: bool,
    /// Typed as an inline line (`PING\r\n`) rather than a RESP array.
    pub inline: bool,
    /// Run inside `MULTI` … `EXEC`: its reply is its element of the EXEC's
    /// reply (or the `QUEUED`/error it got when the transaction did not run).
    pub transaction: bool,
    /// `None` when no reply was due (`CLIENT REPLY OFF|SKIP`) or the
    /// connection ended first.
    pub reply: Option<RedisReply>,
    /// The reply's error, where it is one.
    pub error: Option<RedisError>,
    /// When the command's first byte arrived.
    pub started: Timestamp,
    /// When its (last) reply's last byte arrived.
    pub finished: Option<Timestamp>,
    /// From `started` to `finished`.
    pub latency_ms: Option<f64>,
    /// Bytes of the command on the wire.
    pub request_size: u64,
    /// Bytes of its reply or replies on the wire.
    pub response_size: u64,
    /// The connection spoke RESP3 when the reply came (after `HELLO 3`).
    pub resp3: bool,
}

/// An argument as text where it is UTF-8, else base64 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisArg {
    /// The argument as text: as it was if UTF-8, else base64 of its bytes.
    pub text: String,
    /// Which of the two `text` is.
    pub encoding: ArgEncoding,
    /// Its true size in bytes.
    pub size: u64,
    /// Only a prefix was kept.
    pub truncated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// How an argument's bytes are shown as text.
pub enum ArgEncoding {
    /// The bytes were UTF-8 and are shown as they were.
    Utf8,
    /// Standard base64 of the bytes.
    Base64,
}

impl ArgEncoding {
    /// The encoding's name in events (`utf8`, `base64`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "utf8",
            Self::Base64 => "base64",
        }
    }
}

/// A reply: its type and a bounded rendering.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisReply {
    /// The type of the value (past an attribute that preceded it); for a
    /// transaction's EXEC, its array.
    pub ty: RespType,
    /// JSON-ish text: strings quoted (base64 objects where not UTF-8),
    /// numbers bare, maps as objects, errors as `{"error": …}`, several
    /// replies (a `SUBSCRIBE` of many channels) one after another.
    pub rendered: String,
    /// The rendering or a value in it was cut by a capture limit.
    pub truncated: bool,
    /// Replies the command got: one, or one per channel for (un)subscribe.
    pub replies: u32,
}

/// An error reply, its code apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisError {
    /// The upper-case word that starts it: `ERR`, `WRONGTYPE`, `NOAUTH` …
    pub code: Option<String>,
    /// The rest of the text.
    pub message: String,
}

/// A message the server pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisPush {
    /// `message`, `pmessage`, `smessage`, `invalidate`, `monitor`, an
    /// unasked `subscribe`-family notice, or whatever a RESP3 push names.
    pub kind: String,
    /// The channel of a message (or of a `subscribe`-family notice).
    pub channel: Option<RedisArg>,
    /// The pattern a `pmessage` matched.
    pub pattern: Option<RedisArg>,
    /// The message (capped); for other kinds, a rendering of the rest
    /// (the invalidated keys, the monitored command line).
    pub payload: Option<RedisArg>,
    /// Arrived as a RESP3 push (`>`) rather than a RESP2 array in
    /// subscribed mode or a `MONITOR` line.
    pub resp3: bool,
    /// When its last byte arrived.
    pub at: Timestamp,
    /// Bytes on the wire.
    pub size: u64,
}

/// Commands counted past the pending limit: paired with their replies,
/// never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCommands {
    /// How many commands.
    pub commands: u64,
    /// Bytes of those commands.
    pub request_size: u64,
    /// Bytes of their replies.
    pub response_size: u64,
}

/// A RESP type, as a reply or a value inside one has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RespType {
    /// `+OK`
    SimpleString,
    /// `-ERR …` or a RESP3 bulk error (`!`).
    Error,
    /// `:42`
    Integer,
    /// `$5\r\nhello`
    Bulk,
    /// `_`, and RESP2's null bulk (`$-1`) and null array (`*-1`).
    Null,
    /// `*`
    Array,
    /// `%` (RESP3)
    Map,
    /// `~` (RESP3)
    Set,
    /// `,` (RESP3)
    Double,
    /// `#` (RESP3)
    Boolean,
    /// `(` (RESP3)
    BigNumber,
    /// `=` (RESP3): a bulk string with a three-letter format (`txt`, `mkd`).
    Verbatim,
    /// `|` (RESP3): out-of-band key-value pairs before a value.
    Attribute,
    /// `>` (RESP3): data the server sends unasked.
    Push,
}

impl RespType {
    /// The lower-case name events use.
    pub fn name(self) -> &'static str {
        match self {
            Self::SimpleString => "simple_string",
            Self::Error => "error",
            Self::Integer => "integer",
            Self::Bulk => "bulk",
            Self::Null => "null",
            Self::Array => "array",
            Self::Map => "map",
            Self::Set => "set",
            Self::Double => "double",
            Self::Boolean => "boolean",
            Self::BigNumber => "big_number",
            Self::Verbatim => "verbatim",
            Self::Attribute => "attribute",
            Self::Push => "push",
        }
    }

    /// Whether values of this type contain others (array, map, set, attribute,
    /// push).
    pub fn is_aggregate(self) -> bool {
        matches!(
            self,
            Self::Array | Self::Map | Self::Set | Self::Attribute | Self::Push
        )
    }

    /// Elements that follow an aggregate of `count` entries.
    pub(crate) fn children(self, count: u64) -> u64 {
        match self {
            Self::Map | Self::Attribute => count.saturating_mul(2),
            _ => count,
        }
    }
}
