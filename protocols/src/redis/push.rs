//! What the server sends unasked: pub/sub messages, key invalidations,
//! `MONITOR` lines, and (un)subscribe notices, as [`RedisPush`] outputs.

use super::command::Class;
use super::render::{self, children, Render};
use super::resp::{Message, RespType};
use super::types::{ArgEncoding, RedisArg, RedisOutput, RedisPush};
use crate::{Decoded, Timestamp};

/// The kind an aggregate names by its first element (`message`,
/// `invalidate` …), lower-cased; `None` if it starts with no string.
pub fn kind(msg: &Message, i: usize) -> Option<String> {
    let first = *children(msg, i).first()?;
    let ty = msg.nodes[first].ty;
    if !matches!(
        ty,
        RespType::Bulk | RespType::SimpleString | RespType::Verbatim
    ) || msg.nodes[first].len > 32
    {
        return None;
    }
    Some(render::text(msg, first).to_ascii_lowercase())
}

/// Which subscriptions an (un)subscribe notice of this kind counts.
pub fn subscribe_class(kind: &str) -> Option<Class> {
    match kind {
        "subscribe" | "unsubscribe" => Some(Class::Channel),
        "psubscribe" | "punsubscribe" => Some(Class::Pattern),
        "ssubscribe" | "sunsubscribe" => Some(Class::Shard),
        _ => None,
    }
}

/// The subscription count a notice `[kind, channel, count]` ends with.
pub fn subscribe_count(msg: &Message, i: usize) -> Option<u64> {
    let elements = children(msg, i);
    if elements.len() != 3 || msg.nodes[elements[2]].ty != RespType::Integer {
        return None;
    }
    render::text(msg, elements[2]).parse().ok()
}

/// Whether a simple string is a `MONITOR` line:
/// `1712345678.123456 [0 127.0.0.1:50000] "SET" "k" "v"`.
pub fn is_monitor_line(text: &[u8]) -> bool {
    text.first().is_some_and(u8::is_ascii_digit)
        && text
            .iter()
            .take(32)
            .position(|&c| c == b' ')
            .is_some_and(|sp| text.get(sp + 1) == Some(&b'['))
}

pub fn monitor(msg: &Message, i: usize, at: Timestamp) -> Decoded {
    output_of(RedisPush {
        kind: "monitor".into(),
        channel: None,
        pattern: None,
        payload: Some(render::arg(msg.data(i), msg.nodes[i].len)),
        resp3: false,
        at,
        size: msg.size,
    })
}

/// A pushed aggregate `i` (a RESP3 push, or a RESP2 array in subscribed
/// mode) as a [`RedisPush`].
pub fn output(msg: &Message, i: usize, at: Timestamp, limit: usize) -> Decoded {
    let elements = children(msg, i);
    let kind = kind(msg, i).unwrap_or_else(|| "push".into());
    // A null (an unsubscribe notice's channel when none was held) is none.
    let string = |k: usize| {
        elements
            .get(k)
            .filter(|&&e| msg.nodes[e].ty != RespType::Null)
            .map(|&e| element(msg, e, limit))
    };
    let (channel, pattern, payload) = match kind.as_str() {
        "message" | "smessage" => (string(1), None, string(2)),
        "pmessage" => (string(2), string(1), string(3)),
        _ if subscribe_class(&kind).is_some() => (string(1), None, string(2)),
        // Anything else (invalidate, server notices): the rest, rendered.
        _ => (None, None, Some(rest(msg, &elements, limit))),
    };
    // RESP2 clients with CLIENT TRACKING … REDIRECT get invalidations as
    // messages on this channel.
    let kind = match &channel {
        Some(c) if kind == "message" && c.text == "__redis__:invalidate" => "invalidate".to_owned(),
        _ => kind,
    };
    output_of(RedisPush {
        kind,
        channel,
        pattern,
        payload,
        resp3: msg.nodes[i].ty == RespType::Push,
        at,
        size: msg.size,
    })
}

fn output_of(push: RedisPush) -> Decoded {
    Decoded::Redis(Box::new(RedisOutput::Push(push)))
}

/// A string element as an argument; any other value as its rendering.
fn element(msg: &Message, e: usize, limit: usize) -> RedisArg {
    match msg.nodes[e].ty {
        RespType::Bulk | RespType::SimpleString | RespType::Verbatim => {
            let arg = render::arg(msg.data(e), msg.nodes[e].len);
            if arg.text.len() > limit {
                return rendered(msg, &[e], limit);
            }
            arg
        }
        _ => rendered(msg, &[e], limit),
    }
}

/// Elements after the kind: one shown alone, several as an array.
fn rest(msg: &Message, elements: &[usize], limit: usize) -> RedisArg {
    let rest = elements.get(1..).unwrap_or_default();
    if rest.len() == 1 {
        return element(msg, rest[0], limit);
    }
    let mut r = Render::new(limit);
    r.raw("[");
    for (k, &e) in rest.iter().enumerate() {
        if k > 0 {
            r.raw(",");
        }
        r.value(msg, e);
    }
    r.raw("]");
    text_arg(r)
}

fn rendered(msg: &Message, nodes: &[usize], limit: usize) -> RedisArg {
    let mut r = Render::new(limit);
    for &e in nodes {
        r.value(msg, e);
    }
    text_arg(r)
}

fn text_arg(r: Render) -> RedisArg {
    RedisArg {
        size: r.out.len() as u64,
        truncated: r.truncated || r.cut,
        text: r.out,
        encoding: ArgEncoding::Utf8,
    }
}
