//! PostgreSQL framing: one direction's stream cut into messages.
//!
//! Three shapes cross the wire: typed messages (a type byte, then a 4-byte
//! big-endian length that counts itself but not the type byte), the
//! client's untyped startup packets (length, then a 4-byte code), and the
//! server's one-byte answer to `SSLRequest`/`GSSENCRequest`. Which shape
//! comes next depends on the messages before it, so [`MessageReader::next`]
//! hands out one message at a time and the decoder sets [`Mode`] between
//! them.
//!
//! Only a message's first `keep` bytes are held: a message that lies in one
//! chunk is a slice of it (a reference count), one cut across chunks has its
//! kept prefix copied into a buffer reused from message to message, and the
//! rest of a large `DataRow` or `CopyData` is counted and skipped.

use bytes::{Bytes, BytesMut};

use crate::decoder::Fault;
use crate::Timestamp;

/// The largest startup packet PostgreSQL accepts (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_PACKET: u32 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Type byte + length.
    Typed,
    /// Length + body (the client's startup packets).
    Untyped,
    /// One byte (`S`, `N` or `G` answering an encryption request); an `E`
    /// there starts a typed `ErrorResponse` (a server that predates them).
    SingleByte,
}

/// One message, or its prefix.
#[derive(Debug, Clone)]
pub struct Message {
    /// The type byte; `None` for a startup packet. For a single-byte
    /// answer, the byte itself with `len` 0.
    pub tag: Option<u8>,
    /// The length field (counting itself); 0 for a single-byte answer.
    pub len: u32,
    /// The first bytes of the body (after the length field).
    pub body: Bytes,
    /// When its first byte arrived.
    pub started: Timestamp,
    /// Stream offset of its first byte.
    pub offset: u64,
}

impl Message {
    /// Bytes on the wire.
    pub fn wire_size(&self) -> u64 {
        u64::from(self.len) + u64::from(self.tag.is_some())
    }

    /// Bytes of the body, kept or not.
    pub fn body_len(&self) -> usize {
        self.len.saturating_sub(4) as usize
    }

    /// Whether `body` is the whole body.
    pub fn is_whole(&self) -> bool {
        self.body.len() == self.body_len()
    }
}

/// Why a stream cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FramingError {
    pub offset: u64,
    pub fault: Fault,
}

pub struct MessageReader {
    /// The header so far: up to a type byte and a length.
    head: [u8; 5],
    have: usize,
    /// Inside a body: bytes still to come (`None` between messages).
    left: Option<u32>,
    tag: Option<u8>,
    len: u32,
    keep: usize,
    kept: BytesMut,
    sliced: Option<Bytes>,
    started: Timestamp,
    msg_offset: u64,
    /// Stream offset of `chunk[0]` of the chunk being read.
    base: u64,
    max_message: u32,
    pub mode: Mode,
}

impl MessageReader {
    pub fn new(mode: Mode, max_message: u32) -> Self {
        Self {
            head: [0; 5],
            have: 0,
            left: None,
            tag: None,
            len: 0,
            keep: 0,
            kept: BytesMut::new(),
            sliced: None,
            started: Timestamp::default(),
            msg_offset: 0,
            base: 0,
            max_message,
            mode,
        }
    }

    /// Bytes held for a message cut across chunks (bounded by `keep`).
    #[cfg(test)]
    pub fn held_capacity(&self) -> usize {
        self.kept.capacity()
    }

    /// Stream offset of the byte at `pos` in the current chunk.
    pub fn offset_of(&self, pos: usize) -> u64 {
        self.base + pos as u64
    }

    /// Marks `chunk` (whose bytes before `pos` were read) as consumed.
    pub fn end_chunk(&mut self, len: usize) {
        self.base += len as u64;
    }

    /// The next message completed within `chunk[*pos..]`, advancing `pos`.
    /// `keep(tag, body_len)` says how many body bytes to hold, or `None`
    /// for a type the stream cannot carry: refused before its body is read,
    /// so garbage never makes the reader skip a gigabyte first.
    pub fn next(
        &mut self,
        chunk: &Bytes,
        pos: &mut usize,
        at: Timestamp,
        keep: impl Fn(Option<u8>, usize) -> Option<usize>,
    ) -> Result<Option<Message>, FramingError> {
        while *pos < chunk.len() {
            match self.left {
                None => {
                    if let Some(done) = self.header(chunk, pos, at, &keep)? {
                        return Ok(Some(done));
                    }
                }
                Some(left) => {
                    let n = (left as usize).min(chunk.len() - *pos);
                    if self.sliced.is_none() {
                        let done = self.len as usize - 4 - left as usize;
                        if done < self.keep {
                            let take = (self.keep - done).min(n);
                            if self.kept.capacity() == 0 {
                                self.kept.reserve(self.keep);
                            }
                            self.kept.extend_from_slice(&chunk[*pos..*pos + take]);
                        }
                    }
                    *pos += n;
                    self.left = Some(left - n as u32);
                    if left as usize == n {
                        return Ok(Some(self.complete()));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Reads header bytes; returns a message if the header alone completes
    /// one (a single-byte answer or an empty body).
    fn header(
        &mut self,
        chunk: &Bytes,
        pos: &mut usize,
        at: Timestamp,
        keep: &impl Fn(Option<u8>, usize) -> Option<usize>,
    ) -> Result<Option<Message>, FramingError> {
        if self.have == 0 {
            self.msg_offset = self.offset_of(*pos);
            self.started = at;
            if self.mode == Mode::SingleByte && chunk[*pos] != b'E' {
                *pos += 1;
                return Ok(Some(Message {
                    tag: Some(chunk[*pos - 1]),
                    len: 0,
                    body: Bytes::new(),
                    started: at,
                    offset: self.msg_offset,
                }));
            }
        }
        let typed = self.mode != Mode::Untyped;
        let need = if typed { 5 } else { 4 };
        let n = (need - self.have).min(chunk.len() - *pos);
        self.head[self.have..self.have + n].copy_from_slice(&chunk[*pos..*pos + n]);
        self.have += n;
        *pos += n;
        if self.have < need {
            return Ok(None);
        }
        self.have = 0;
        let (tag, len_bytes) = if typed {
            (Some(self.head[0]), &self.head[1..5])
        } else {
            (None, &self.head[0..4])
        };
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        self.check_len(tag, len)?;
        self.tag = tag;
        self.len = len;
        let body_len = len as usize - 4;
        self.keep = match keep(tag, body_len) {
            Some(k) => k.min(body_len),
            None => {
                let tag = char::from(tag.unwrap_or(0));
                return Err(FramingError {
                    offset: self.msg_offset,
                    fault: Fault::malformed(format!(
                        "unknown message type '{}'",
                        tag.escape_default()
                    )),
                });
            }
        };
        self.kept.clear();
        self.sliced = None;
        if chunk.len() - *pos >= body_len {
            // Whole in this chunk: slice rather than copy. A message that
            // runs on is copied, so that no slice pins the relay's buffer.
            self.sliced = Some(chunk.slice(*pos..*pos + self.keep));
        }
        self.left = Some(body_len as u32);
        if body_len == 0 {
            return Ok(Some(self.complete()));
        }
        Ok(None)
    }

    fn check_len(&self, tag: Option<u8>, len: u32) -> Result<(), FramingError> {
        let (min, max) = match tag {
            Some(_) => (4, self.max_message.saturating_add(4)),
            None => (8, MAX_STARTUP_PACKET),
        };
        if len < min || len > max {
            let what = match tag {
                Some(t) => format!("message '{}'", char::from(t).escape_default()),
                None => "startup packet".to_string(),
            };
            let detail = format!("{what} has length {len}, outside {min}..={max}");
            // A message longer than the decoder holds may be valid; a
            // startup packet that long the server refuses too.
            let fault = if len > max && tag.is_some() {
                Fault::limit(detail)
            } else {
                Fault::malformed(detail)
            };
            return Err(FramingError {
                offset: self.msg_offset,
                fault,
            });
        }
        Ok(())
    }

    fn complete(&mut self) -> Message {
        self.left = None;
        let body = match self.sliced.take() {
            Some(b) => b,
            // `split` leaves the allocation behind for the next message.
            None => self.kept.split().freeze(),
        };
        Message {
            tag: self.tag,
            len: self.len,
            body,
            started: self.started,
            offset: self.msg_offset,
        }
    }
}
