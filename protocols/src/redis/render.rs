//! What a message's kept tree looks like to a person: arguments as text or
//! base64, errors split into code and message, and a reply as a JSON-ish
//! string capped in size.
//!
//! The tree ([`Message`]) is already bounded; the rendering is capped again
//! because one kept byte can take several to show (escapes, base64).

use std::borrow::Cow;
use std::fmt::Write;

use base64::Engine;

use super::resp::{Message, RespType};
use super::types::{ArgEncoding, RedisArg, RedisError};

/// Shown instead of a secret, in arguments and in replies.
pub const REDACTED: &str = "[redacted]";

/// An argument's kept bytes (`size` on the wire) as text where they are
/// UTF-8, else base64.
pub fn arg(data: &[u8], size: u64) -> RedisArg {
    let truncated = (data.len() as u64) < size;
    match std::str::from_utf8(data) {
        Ok(text) => utf8_arg(text, size, truncated),
        // A multi-byte character cut by the capture limit is still text.
        Err(e) if truncated && e.error_len().is_none() => {
            let text = std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or_default();
            utf8_arg(text, size, truncated)
        }
        Err(_) => RedisArg {
            text: base64::engine::general_purpose::STANDARD.encode(data),
            encoding: ArgEncoding::Base64,
            size,
            truncated,
        },
    }
}

fn utf8_arg(text: &str, size: u64, truncated: bool) -> RedisArg {
    RedisArg {
        text: text.to_owned(),
        encoding: ArgEncoding::Utf8,
        size,
        truncated,
    }
}

/// A secret argument: its size and place stay, its bytes do not.
pub fn redacted_arg(size: u64) -> RedisArg {
    RedisArg {
        text: REDACTED.to_owned(),
        encoding: ArgEncoding::Utf8,
        size,
        truncated: false,
    }
}

/// An error reply's text split as Redis writes it: an upper-case code
/// (`ERR`, `WRONGTYPE`, `MOVED` …) and the message after it.
pub fn error(text: &[u8]) -> RedisError {
    let text = String::from_utf8_lossy(text);
    let (first, rest) = text.split_once(' ').unwrap_or((&text, ""));
    let is_code = !first.is_empty()
        && first
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    if is_code {
        RedisError {
            code: Some(first.to_owned()),
            message: rest.to_owned(),
        }
    } else {
        RedisError {
            code: None,
            message: text.into_owned(),
        }
    }
}

/// The node after node `i`'s subtree.
pub fn subtree_end(msg: &Message, i: usize) -> usize {
    let depth = msg.nodes[i].depth;
    let mut j = i + 1;
    while j < msg.nodes.len() && msg.nodes[j].depth > depth {
        j += 1;
    }
    j
}

/// The node of a message's value, past an attribute that may precede it;
/// `None` if it was not kept.
pub fn top(msg: &Message) -> Option<usize> {
    let mut i = 0;
    while msg.nodes.get(i)?.ty == RespType::Attribute {
        i = subtree_end(msg, i);
    }
    Some(i)
}

/// The kept elements of aggregate `i`, attributes skipped.
pub fn children(msg: &Message, i: usize) -> Vec<usize> {
    let depth = msg.nodes[i].depth;
    let mut out = Vec::new();
    let mut j = i + 1;
    while j < msg.nodes.len() && msg.nodes[j].depth > depth {
        if msg.nodes[j].ty != RespType::Attribute {
            out.push(j);
        }
        j = subtree_end(msg, j);
    }
    out
}

/// A string-like node's kept text (lossy), for names and kinds.
pub fn text(msg: &Message, i: usize) -> Cow<'_, str> {
    String::from_utf8_lossy(msg.data(i))
}

/// A capped rendering in progress.
pub struct Render {
    pub out: String,
    limit: usize,
    pub truncated: bool,
    /// Some string or aggregate was shown in part (capture limits).
    pub cut: bool,
    /// Values after these keys (top-level map or flat key/value array) are
    /// shown as [`REDACTED`]: `CONFIG GET requirepass` answers the password.
    pub secret_keys: &'static [&'static str],
}

impl Render {
    pub fn new(limit: usize) -> Self {
        Self {
            out: String::new(),
            limit,
            truncated: false,
            cut: false,
            secret_keys: &[],
        }
    }

    /// Appends `s` as it is (a separator between replies).
    pub fn raw(&mut self, s: &str) {
        self.push(s);
    }

    fn push(&mut self, s: &str) {
        if self.truncated {
            return;
        }
        let room = self.limit.saturating_sub(self.out.len());
        if s.len() <= room {
            self.out.push_str(s);
            return;
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.out.push_str(&s[..cut]);
        self.out.push('…');
        self.truncated = true;
    }

    /// Renders node `i` and what it holds; returns the node after it.
    pub fn value(&mut self, msg: &Message, i: usize) -> usize {
        let node = &msg.nodes[i];
        if self.truncated {
            return subtree_end(msg, i);
        }
        match node.ty {
            RespType::SimpleString | RespType::Bulk => self.string(msg.data(i), node.len),
            RespType::Verbatim => {
                // `txt:` says how to show it, and is no part of the text.
                let data = msg.data(i);
                let skip = if data.len() >= 4 && data[3] == b':' {
                    4
                } else {
                    0
                };
                self.string(&data[skip..], node.len.saturating_sub(skip as u64));
            }
            RespType::Error => {
                self.push("{\"error\":");
                self.string(msg.data(i), node.len);
                self.push("}");
            }
            RespType::Integer | RespType::BigNumber => self.push(&text(msg, i)),
            RespType::Double => match text(msg, i).as_ref() {
                t @ ("inf" | "-inf" | "nan" | "-nan") => self.push(&format!("\"{t}\"")),
                t => self.push(t),
            },
            RespType::Boolean => self.push(if msg.data(i) == b"t" { "true" } else { "false" }),
            RespType::Null => self.push("null"),
            RespType::Attribute => {
                // The value the attribute describes follows it at its depth.
                self.push("{\"attribute\":");
                self.aggregate(msg, i);
                self.push(",\"value\":");
                let mut next = subtree_end(msg, i);
                if next < msg.nodes.len() && msg.nodes[next].depth == node.depth {
                    next = self.value(msg, next);
                } else {
                    self.cut = true;
                    self.push("null");
                }
                self.push("}");
                return next;
            }
            _ => self.aggregate(msg, i),
        }
        subtree_end(msg, i)
    }

    fn aggregate(&mut self, msg: &Message, i: usize) {
        let node = &msg.nodes[i];
        let pairs = matches!(node.ty, RespType::Map | RespType::Attribute);
        self.push(if pairs { "{" } else { "[" });
        let elements = children(msg, i);
        let redact = !self.secret_keys.is_empty() && node.depth == 0;
        let mut secret_next = false;
        for (k, &c) in elements.iter().enumerate() {
            if self.truncated {
                return;
            }
            let sep = match (pairs, k % 2) {
                (true, 1) => ":",
                _ if k == 0 => "",
                _ => ",",
            };
            self.push(sep);
            if secret_next {
                self.push(&format!("\"{REDACTED}\""));
                secret_next = false;
                continue;
            }
            if redact && k % 2 == 0 {
                let key = text(msg, c).to_ascii_lowercase();
                secret_next = self.secret_keys.contains(&key.as_str());
            }
            if pairs && k % 2 == 0 && !is_string(msg.nodes[c].ty) {
                // JSON keys are strings: show any other key as its rendering.
                let mut inner = Render::new(self.limit.saturating_sub(self.out.len()));
                inner.value(msg, c);
                self.string(inner.out.as_bytes(), inner.out.len() as u64);
            } else {
                self.value(msg, c);
            }
        }
        let declared = if pairs {
            node.len.saturating_mul(2)
        } else {
            node.len
        };
        let missing = declared.saturating_sub(elements.len() as u64);
        if missing > 0 {
            self.cut = true;
            let sep = if elements.is_empty() { "" } else { "," };
            self.push(&format!("{sep}\"…({missing} more)\""));
        }
        self.push(if pairs { "}" } else { "]" });
    }

    /// A JSON string of `data` (`size` bytes on the wire), or base64 of it
    /// when it is not UTF-8.
    fn string(&mut self, data: &[u8], size: u64) {
        let cut = (data.len() as u64) < size;
        let shown = match std::str::from_utf8(data) {
            Ok(s) => Some(s),
            Err(e) if cut && e.error_len().is_none() => {
                std::str::from_utf8(&data[..e.valid_up_to()]).ok()
            }
            Err(_) => None,
        };
        let mut s = String::with_capacity(data.len() + 2);
        match shown {
            Some(text) => {
                s.push('"');
                escape(text, &mut s);
                if cut {
                    s.push('…');
                }
                s.push('"');
            }
            None => {
                s.push_str("{\"base64\":\"");
                s.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
                s.push_str(if cut { "…\"}" } else { "\"}" });
            }
        }
        self.cut |= cut;
        self.push(&s);
    }
}

fn is_string(ty: RespType) -> bool {
    matches!(
        ty,
        RespType::SimpleString | RespType::Bulk | RespType::Verbatim
    )
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}
