//! RESP framing: one direction's byte stream in, one complete message at a
//! time out, as a small bounded tree.
//!
//! [`RespReader`] is a byte-level state machine, so a message may be cut
//! anywhere across chunks and nothing is buffered but what is kept: a bulk
//! string of any length is streamed through (its length counted, only a
//! prefix kept, within the message's byte budget), and only the first
//! [`Limits::max_nodes`] values of a message are kept as nodes. Header lines
//! (type byte, length or number) are short by nature and capped; the text of
//! a simple string, error or big number is streamed like a bulk string,
//! because a `MONITOR` line or an error can carry a whole command.
//!
//! The request side also reads inline commands (`PING\r\n` typed by hand),
//! turned into the same tree as a multibulk command so that the rest of the
//! decoder sees one shape.

use crate::decoder::Fault;
use crate::Timestamp;

use super::inline;
pub use super::types::RespType;

/// One value of a message, in pre-order; children follow their aggregate
/// at `depth + 1`.
#[derive(Debug, Clone)]
pub struct Node {
    pub ty: RespType,
    pub depth: u8,
    /// Strings: the true length in bytes. Aggregates: the entry count
    /// (pairs, for maps and attributes). Header scalars: the text's length.
    pub len: u64,
    /// Where the kept bytes of a scalar start in [`Message::bytes`].
    pub start: u32,
    /// How many of its bytes are kept.
    pub kept: u32,
}

/// A complete message: the kept part of its tree.
#[derive(Debug, Default)]
pub struct Message {
    pub nodes: Vec<Node>,
    pub bytes: Vec<u8>,
    /// Bytes on the wire.
    pub size: u64,
    /// When its first byte arrived.
    pub started: Timestamp,
    /// Stream offset of its first byte.
    pub offset: u64,
    /// Some values were not kept ([`Limits::max_nodes`]).
    pub dropped_nodes: bool,
    /// Typed by hand: one line of words rather than a multibulk array.
    pub inline: bool,
}

impl Message {
    /// The kept bytes of node `i`.
    pub fn data(&self, i: usize) -> &[u8] {
        let n = &self.nodes[i];
        &self.bytes[n.start as usize..(n.start + n.kept) as usize]
    }

    fn clear(&mut self) {
        self.nodes.clear();
        self.bytes.clear();
        self.dropped_nodes = false;
        self.inline = false;
    }
}

/// Bounds that make garbage a failure rather than memory or a stuck stream.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_bulk: u64,
    pub max_count: u64,
    pub max_nodes: usize,
}

/// Why a stream cannot be read as RESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub offset: u64,
    pub fault: Fault,
}

/// Which side's grammar to apply: commands are multibulk arrays of bulk
/// strings or inline lines; replies are any RESP value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Request,
    Reply,
}

/// A header line (type byte and a number) never needs more than this.
const MAX_HEADER: usize = 64;
/// Redis's own limit on an inline command (PROTO_INLINE_MAX_SIZE).
pub const MAX_INLINE: usize = 64 * 1024;

enum State {
    /// Expecting a value's type byte.
    Start,
    /// Reading the rest of a header line (into `line`).
    Header(u8),
    /// Streaming the text of a `+`, `-` or `(` line; `cr` when the last
    /// byte seen was `\r`.
    Text { node: Option<usize>, cr: bool },
    /// Inside a bulk payload.
    Bulk { left: u64, node: Option<usize> },
    /// After a bulk payload: `\r\n` must follow (`have` of it seen).
    BulkEnd { have: u8 },
    /// Reading an inline command line (into `line`).
    Inline,
}

struct Frame {
    ty: RespType,
    /// Values still to come.
    left: u64,
}

pub struct RespReader {
    side: Side,
    limits: Limits,
    state: State,
    stack: Vec<Frame>,
    line: Vec<u8>,
    msg: Message,
    /// Byte budget of the message being read.
    keep: usize,
    /// Stream offset of the next byte.
    offset: u64,
    in_message: bool,
}

impl RespReader {
    pub fn new(side: Side, limits: Limits) -> Self {
        Self {
            side,
            limits,
            state: State::Start,
            stack: Vec::new(),
            line: Vec::new(),
            msg: Message::default(),
            keep: 0,
            offset: 0,
            in_message: false,
        }
    }

    /// Bytes of strings to keep for the next message to start.
    pub fn set_keep(&mut self, keep: usize) {
        self.keep = keep;
    }

    /// Whether nothing of a message is held (between messages).
    pub fn at_boundary(&self) -> bool {
        !self.in_message
    }

    /// The message the last [`RespReader::feed`] completed.
    pub fn message(&self) -> &Message {
        &self.msg
    }

    /// Reads `data` up to the end of one message. Returns the bytes used
    /// and whether a message is complete (then see [`RespReader::message`],
    /// valid until the next call).
    pub fn feed(&mut self, data: &[u8], at: Timestamp) -> Result<(usize, bool), Failure> {
        let mut pos = 0;
        let mut done = false;
        while pos < data.len() && !done {
            let base = self.offset + pos as u64;
            let used = match self.state {
                State::Start => self.start(data[pos], base, at)?,
                State::Header(ty) => self.header(ty, &data[pos..], base)?,
                State::Text { node, cr } => self.text(node, cr, &data[pos..]),
                State::Bulk { left, node } => self.bulk(left, node, &data[pos..]),
                State::BulkEnd { have } => self.bulk_end(have, data[pos], base)?,
                State::Inline => self.inline(&data[pos..], base)?,
            };
            pos += used.0;
            done = used.1;
        }
        self.offset += pos as u64;
        if done {
            self.msg.size = self.offset - self.msg.offset;
            self.in_message = false;
        }
        Ok((pos, done))
    }

    /// A type byte; returns (bytes used, message complete).
    fn start(&mut self, b: u8, offset: u64, at: Timestamp) -> Result<(usize, bool), Failure> {
        let top = self.stack.is_empty();
        if !self.in_message {
            // Blank lines between commands are what a person at a telnet
            // prompt sends by pressing enter; Redis ignores them.
            if self.side == Side::Request && (b == b'\r' || b == b'\n') {
                return Ok((1, false));
            }
            self.in_message = true;
            self.msg.clear();
            self.msg.started = at;
            self.msg.offset = offset;
        }
        let fail = |fault: Fault| Err(Failure { offset, fault });
        match (self.side, b) {
            (Side::Request, b'*') if top => self.state = State::Header(b),
            (Side::Request, _) if top => {
                if !inline::may_start(b) {
                    return fail(Fault::malformed(format!(
                        "byte 0x{b:02x} starts neither a RESP array nor an inline command"
                    )));
                }
                self.msg.inline = true;
                self.state = State::Inline;
            }
            (Side::Request, b'$') => self.state = State::Header(b),
            (Side::Request, _) => {
                return fail(Fault::malformed(format!(
                    "byte 0x{b:02x} in a command array where a bulk string ($) must be"
                )))
            }
            (Side::Reply, b'+' | b'-' | b'(') => {
                let ty = match b {
                    b'+' => RespType::SimpleString,
                    b'-' => RespType::Error,
                    _ => RespType::BigNumber,
                };
                let node = self.add_node(ty, 0);
                self.state = State::Text { node, cr: false };
            }
            (Side::Reply, b':' | b'#' | b',' | b'_' | b'$' | b'!' | b'=')
            | (Side::Reply, b'*' | b'%' | b'~' | b'|' | b'>') => self.state = State::Header(b),
            (Side::Reply, _) => {
                return fail(Fault::malformed(format!("byte 0x{b:02x} is no RESP type")))
            }
        }
        self.line.clear();
        if matches!(self.state, State::Inline) {
            self.line.push(b);
        }
        Ok((1, false))
    }

    /// Collects a header line; at its end, starts the value it announces.
    fn header(&mut self, ty: u8, data: &[u8], offset: u64) -> Result<(usize, bool), Failure> {
        let (used, complete) = match data.iter().position(|&c| c == b'\n') {
            Some(nl) => (nl + 1, true),
            None => (data.len(), false),
        };
        let content = &data[..if complete { used - 1 } else { used }];
        if self.line.len() + content.len() > MAX_HEADER {
            return Err(Failure {
                offset,
                fault: Fault::limit(format!(
                    "a '{}' header line longer than {MAX_HEADER} bytes",
                    ty as char
                )),
            });
        }
        self.line.extend_from_slice(content);
        if !complete {
            return Ok((used, false));
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let line = std::mem::take(&mut self.line);
        let result = self.value(ty, &line, offset);
        self.line = line;
        result.map(|done| (used, done))
    }

    /// The value a complete header line announces.
    fn value(&mut self, ty: u8, line: &[u8], offset: u64) -> Result<bool, Failure> {
        let fail = |fault: Fault| Err(Failure { offset, fault });
        let text = std::str::from_utf8(line).unwrap_or("");
        let scalar = match ty {
            b':' if text.parse::<i64>().is_ok() => Some(RespType::Integer),
            b'#' if text == "t" || text == "f" => Some(RespType::Boolean),
            b',' if is_double(text) => Some(RespType::Double),
            b'_' if text.is_empty() => Some(RespType::Null),
            b':' | b'#' | b',' | b'_' => {
                return fail(Fault::malformed(format!(
                    "'{}' line {:?} is malformed",
                    ty as char,
                    lossy(line)
                )))
            }
            _ => None,
        };
        if let Some(scalar) = scalar {
            // Numbers are short (the header cap), so they are kept whatever
            // the budget: a reply is never shown without its value.
            if let Some(i) = self.add_node(scalar, line.len() as u64) {
                self.msg.nodes[i].start = self.msg.bytes.len() as u32;
                self.msg.nodes[i].kept = line.len() as u32;
                self.msg.bytes.extend_from_slice(line);
            }
            return Ok(self.complete(scalar));
        }
        if text == "?" {
            return fail(Fault::unsupported(
                "RESP3 streamed strings and aggregates are not supported",
            ));
        }
        let len = match text.parse::<i64>() {
            Ok(-1) if matches!(ty, b'$' | b'*') => {
                self.add_node(RespType::Null, 0);
                return Ok(self.complete(RespType::Null));
            }
            Ok(n) if n >= 0 => n as u64,
            _ => {
                return fail(Fault::malformed(format!(
                    "'{}' length {:?} is not valid",
                    ty as char,
                    lossy(line)
                )))
            }
        };
        match ty {
            b'$' | b'!' | b'=' => self.start_bulk(ty, len, offset),
            _ => self.start_aggregate(ty, len, offset),
        }
    }

    fn start_bulk(&mut self, ty: u8, len: u64, offset: u64) -> Result<bool, Failure> {
        if len > self.limits.max_bulk {
            return Err(Failure {
                offset,
                fault: Fault::limit(format!(
                    "bulk length {len} is over {} bytes",
                    self.limits.max_bulk
                )),
            });
        }
        let ty = match ty {
            b'$' => RespType::Bulk,
            b'!' => RespType::Error,
            _ => RespType::Verbatim,
        };
        let node = self.add_node(ty, len);
        if let Some(i) = node {
            self.msg.nodes[i].start = self.msg.bytes.len() as u32;
        }
        self.state = if len == 0 {
            State::BulkEnd { have: 0 }
        } else {
            State::Bulk { left: len, node }
        };
        Ok(false)
    }

    fn start_aggregate(&mut self, ty: u8, count: u64, offset: u64) -> Result<bool, Failure> {
        let fail = |fault: Fault| Err(Failure { offset, fault });
        if count > self.limits.max_count {
            return fail(Fault::limit(format!(
                "aggregate of {count} entries is over the limit of {}",
                self.limits.max_count
            )));
        }
        if self.stack.len() >= self.limits.max_depth {
            return fail(Fault::limit(format!(
                "values nested deeper than {} levels",
                self.limits.max_depth
            )));
        }
        let ty = match ty {
            b'*' => RespType::Array,
            b'%' => RespType::Map,
            b'~' => RespType::Set,
            b'|' => RespType::Attribute,
            _ => RespType::Push,
        };
        self.add_node(ty, count);
        let left = ty.children(count);
        if left == 0 {
            return Ok(self.complete(ty));
        }
        self.stack.push(Frame { ty, left });
        self.state = State::Start;
        Ok(false)
    }

    /// Streams a `+`, `-` or `(` line's text to its `\n`.
    fn text(&mut self, node: Option<usize>, cr: bool, data: &[u8]) -> (usize, bool) {
        let (used, complete) = match data.iter().position(|&c| c == b'\n') {
            Some(nl) => (nl + 1, true),
            None => (data.len(), false),
        };
        let content = &data[..if complete { used - 1 } else { used }];
        let cr = if content.is_empty() {
            cr
        } else {
            content.last() == Some(&b'\r')
        };
        if let Some(i) = node {
            self.keep_bytes(i, content, true);
        }
        if !complete {
            self.state = State::Text { node, cr };
            return (used, false);
        }
        if let Some(i) = node {
            if cr {
                // The `\r` of the line's end is no part of the text.
                let n = &mut self.msg.nodes[i];
                if n.len == u64::from(n.kept) && n.kept > 0 {
                    n.kept -= 1;
                    self.msg.bytes.pop();
                }
                n.len -= 1;
            }
        }
        let ty = node.map_or(RespType::SimpleString, |i| self.msg.nodes[i].ty);
        (used, self.complete(ty))
    }

    fn bulk(&mut self, left: u64, node: Option<usize>, data: &[u8]) -> (usize, bool) {
        let n = (left.min(data.len() as u64)) as usize;
        if let Some(i) = node {
            self.keep_bytes(i, &data[..n], false);
        }
        let left = left - n as u64;
        self.state = if left == 0 {
            State::BulkEnd { have: 0 }
        } else {
            State::Bulk { left, node }
        };
        (n, false)
    }

    fn bulk_end(&mut self, have: u8, b: u8, offset: u64) -> Result<(usize, bool), Failure> {
        let want = if have == 0 { b'\r' } else { b'\n' };
        if b != want {
            return Err(Failure {
                offset,
                fault: Fault::malformed(format!("bulk string not followed by CRLF (0x{b:02x})")),
            });
        }
        if have == 0 {
            self.state = State::BulkEnd { have: 1 };
            return Ok((1, false));
        }
        // The type of a completed bulk does not matter to `complete` unless
        // it is an attribute, which a bulk never is.
        Ok((1, self.complete(RespType::Bulk)))
    }

    fn inline(&mut self, data: &[u8], offset: u64) -> Result<(usize, bool), Failure> {
        let (used, complete) = match data.iter().position(|&c| c == b'\n') {
            Some(nl) => (nl + 1, true),
            None => (data.len(), false),
        };
        let content = &data[..if complete { used - 1 } else { used }];
        if self.line.len() + content.len() > MAX_INLINE {
            return Err(Failure {
                offset,
                fault: Fault::limit(format!("inline command longer than {MAX_INLINE} bytes")),
            });
        }
        self.line.extend_from_slice(content);
        if !complete {
            return Ok((used, false));
        }
        let line = std::mem::take(&mut self.line);
        let words = inline::split(&line);
        self.line = line;
        self.state = State::Start;
        let words = words.map_err(|detail| Failure {
            offset: self.msg.offset,
            fault: Fault::malformed(detail),
        })?;
        self.inline_message(&words);
        Ok((used, true))
    }

    /// Turns an inline command's words into a command array.
    fn inline_message(&mut self, words: &[Vec<u8>]) {
        self.add_node(RespType::Array, words.len() as u64);
        for word in words {
            if let Some(i) = self.add_node_at(RespType::Bulk, word.len() as u64, 1) {
                self.keep_bytes(i, word, false);
            }
        }
    }

    /// Adds a node at the current depth, unless the node cap was reached.
    fn add_node(&mut self, ty: RespType, len: u64) -> Option<usize> {
        self.add_node_at(ty, len, self.stack.len())
    }

    fn add_node_at(&mut self, ty: RespType, len: u64, depth: usize) -> Option<usize> {
        if self.msg.dropped_nodes || self.msg.nodes.len() >= self.limits.max_nodes {
            // Once one node is dropped all later ones are, so the children
            // an aggregate keeps are always its first ones.
            self.msg.dropped_nodes = true;
            return None;
        }
        self.msg.nodes.push(Node {
            ty,
            depth: depth as u8,
            len,
            start: self.msg.bytes.len() as u32,
            kept: 0,
        });
        Some(self.msg.nodes.len() - 1)
    }

    /// Keeps what the message's byte budget allows of `data` for node `i`;
    /// `count` adds all of it to the node's length (a line's text, whose
    /// length no header announced).
    fn keep_bytes(&mut self, i: usize, data: &[u8], count: bool) {
        let room = self.keep.saturating_sub(self.msg.bytes.len());
        let take = room.min(data.len());
        self.msg.bytes.extend_from_slice(&data[..take]);
        let n = &mut self.msg.nodes[i];
        n.kept += take as u32;
        if count {
            n.len += data.len() as u64;
        }
    }

    /// A value of type `ty` is complete: closes the aggregates it completes.
    /// Returns whether the message is complete.
    fn complete(&mut self, mut ty: RespType) -> bool {
        self.state = State::Start;
        loop {
            // An attribute describes the value after it and is no element
            // of its own: the parent still waits for that value.
            if ty == RespType::Attribute {
                return false;
            }
            let Some(frame) = self.stack.last_mut() else {
                return true;
            };
            frame.left -= 1;
            if frame.left > 0 {
                return false;
            }
            ty = frame.ty;
            self.stack.pop();
        }
    }
}

/// A RESP3 double: digits, a sign, a point, an exponent, or `inf`/`nan`.
fn is_double(text: &str) -> bool {
    !text.is_empty()
        && (text.parse::<f64>().is_ok() || matches!(text, "inf" | "-inf" | "nan" | "-nan"))
}

fn lossy(line: &[u8]) -> String {
    String::from_utf8_lossy(&line[..line.len().min(32)]).into_owned()
}
