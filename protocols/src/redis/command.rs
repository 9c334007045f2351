//! A command's name, arguments and what kind of exchange it starts, read
//! from the kept tree of one request.
//!
//! The kind decides how replies pair with it: most commands get one reply;
//! `SUBSCRIBE a b` gets one per channel; `MULTI` … `EXEC` queue; `HELLO`,
//! `MONITOR`, `RESET` and `CLIENT REPLY` change what later replies mean.

use super::redact;
use super::render::{self, children, redacted_arg};
use super::resp::{Message, RespType};
use super::types::RedisArg;

/// Commands whose first argument is a subcommand, reported as two words.
const CONTAINERS: &[&str] = &[
    "ACL", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE",
    "OBJECT", "PUBSUB", "SCRIPT", "SENTINEL", "SLOWLOG", "XGROUP", "XINFO",
];

/// Which subscriptions a (un)subscribe command is about: Redis counts
/// channels and patterns together, shard channels apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Channel,
    Pattern,
    Shard,
}

/// `CLIENT REPLY ON|OFF|SKIP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplySwitch {
    On,
    Off,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    /// One reply per channel named.
    Subscribe(Class, u64),
    /// One reply per channel named; with none, one per subscription held
    /// (or a single one when there are none).
    Unsubscribe(Class, u64),
    Multi,
    Exec,
    Discard,
    /// The protocol version asked for, if any.
    Hello(Option<u8>),
    Monitor,
    ClientReply(ReplySwitch),
    Reset,
    /// Its reply may hold secrets (`requirepass`).
    ConfigGet,
}

/// A command as read from its request.
#[derive(Debug)]
pub struct Parsed {
    pub command: String,
    pub args: Vec<RedisArg>,
    pub arg_count: u64,
    pub truncated: bool,
    pub kind: Kind,
    /// Bytes of argument text held (for the pending-bytes budget).
    pub held: usize,
}

/// The command in a request message; `None` for an empty one (`*0`, a
/// blank inline line), which Redis skips without a reply.
pub fn parse(msg: &Message) -> Option<Parsed> {
    let root = msg.nodes.first()?;
    if root.ty != RespType::Array || root.len == 0 {
        return None;
    }
    let words = children(msg, 0);
    let name = upper(msg.data(*words.first()?));
    let sub =
        (CONTAINERS.contains(&name.as_str()) && words.len() > 1).then(|| upper(msg.data(words[1])));
    let skip = if sub.is_some() { 2 } else { 1 };
    let command = match &sub {
        Some(sub) => format!("{name} {sub}"),
        None => name,
    };
    let arg_nodes = &words[skip.min(words.len())..];
    let data = |n: usize| arg_nodes.get(n).map(|&i| msg.data(i));
    // Only a few commands carry secrets; the rest skip the bookkeeping.
    let secret = if redact::may_hold_secrets(&command) {
        let data: Vec<&[u8]> = arg_nodes.iter().map(|&i| msg.data(i)).collect();
        redact::secrets(&command, &data)
    } else {
        Vec::new()
    };
    let mut truncated = msg.dropped_nodes;
    let mut held = 0;
    let args = arg_nodes
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let size = msg.nodes[i].len;
            let arg = if secret.get(n).copied().unwrap_or(false) {
                redacted_arg(size)
            } else {
                render::arg(msg.data(i), size)
            };
            truncated |= arg.truncated;
            held += arg.text.len();
            arg
        })
        .collect();
    let kind = kind(&command, arg_nodes.len() as u64, data(0));
    Some(Parsed {
        arg_count: root.len.saturating_sub(skip as u64),
        command,
        args,
        truncated,
        kind,
        held,
    })
}

/// A word as Redis reads it: case does not matter (lossy for the odd
/// non-UTF-8 byte).
fn upper(word: &[u8]) -> String {
    match std::str::from_utf8(word) {
        Ok(text) => text.to_ascii_uppercase(),
        Err(_) => String::from_utf8_lossy(word).to_ascii_uppercase(),
    }
}

fn kind(command: &str, n: u64, first: Option<&[u8]>) -> Kind {
    // Upper-cased only for the two commands that read it.
    let first = || first.map(upper);
    match command {
        "SUBSCRIBE" => Kind::Subscribe(Class::Channel, n),
        "PSUBSCRIBE" => Kind::Subscribe(Class::Pattern, n),
        "SSUBSCRIBE" => Kind::Subscribe(Class::Shard, n),
        "UNSUBSCRIBE" => Kind::Unsubscribe(Class::Channel, n),
        "PUNSUBSCRIBE" => Kind::Unsubscribe(Class::Pattern, n),
        "SUNSUBSCRIBE" => Kind::Unsubscribe(Class::Shard, n),
        "MULTI" => Kind::Multi,
        "EXEC" => Kind::Exec,
        "DISCARD" => Kind::Discard,
        "HELLO" => Kind::Hello(first().and_then(|v| v.parse().ok())),
        "MONITOR" => Kind::Monitor,
        "RESET" => Kind::Reset,
        "CONFIG GET" => Kind::ConfigGet,
        "CLIENT REPLY" => match first().as_deref() {
            Some("ON") => Kind::ClientReply(ReplySwitch::On),
            Some("OFF") => Kind::ClientReply(ReplySwitch::Off),
            Some("SKIP") => Kind::ClientReply(ReplySwitch::Skip),
            // A bad argument gets an error reply, like any command.
            _ => Kind::Plain,
        },
        _ => Kind::Plain,
    }
}
