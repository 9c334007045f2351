//! Splitting one direction of an HTTP/2 connection into frames.
//!
//! Written by hand rather than with `h2`'s codec because an observer has
//! needs a client or server does not: it must follow frames across chunk
//! boundaries without owning the stream, hand DATA payloads on as slices of
//! the chunk the proxy forwarded (the codec would copy them into its own
//! buffer), and keep going past frames it has no use for without buffering
//! them. Only non-DATA frames split across chunks are copied, and only up to
//! [`FrameReader::new`]'s limit.

use bytes::{Bytes, BytesMut};

use crate::decoder::Fault;
use crate::Timestamp;

/// The 24 bytes a client sends first.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub(super) const DATA: u8 = 0x0;
pub(super) const HEADERS: u8 = 0x1;
pub(super) const RST_STREAM: u8 = 0x3;
pub(super) const SETTINGS: u8 = 0x4;
pub(super) const PUSH_PROMISE: u8 = 0x5;
pub(super) const GOAWAY: u8 = 0x7;
pub(super) const CONTINUATION: u8 = 0x9;

pub(super) const FLAG_END_STREAM: u8 = 0x1;
pub(super) const FLAG_ACK: u8 = 0x1;
pub(super) const FLAG_END_HEADERS: u8 = 0x4;
pub(super) const FLAG_PADDED: u8 = 0x8;
pub(super) const FLAG_PRIORITY: u8 = 0x20;

/// What the reader found next in the byte stream.
#[derive(Debug)]
pub(super) enum Item {
    /// A whole frame other than DATA. `started` is when its first byte came.
    Frame {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Bytes,
        started: Timestamp,
    },
    /// Part of a DATA frame's data, padding removed (an empty frame yields
    /// one empty piece). `end_stream` is the frame's END_STREAM flag, set on
    /// its last piece only.
    Data {
        stream: u32,
        data: Bytes,
        end_stream: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Matching the client preface; `matched` bytes of it seen so far.
    Preface {
        matched: usize,
    },
    Header,
    /// A padded DATA frame's pad-length byte.
    DataPadLength {
        stream: u32,
        flags: u8,
        len: u32,
    },
    Data {
        stream: u32,
        flags: u8,
        data_left: u32,
        pad_left: u32,
    },
    Payload {
        kind: u8,
        flags: u8,
        stream: u32,
        len: u32,
    },
    /// A frame nobody needs (unknown type or too big to keep): counted past.
    Skip {
        left: u32,
    },
}

/// Incremental frame splitter for one direction.
pub(super) struct FrameReader {
    state: State,
    head: [u8; 9],
    head_len: usize,
    /// A non-DATA payload that spans chunks.
    partial: BytesMut,
    started: Timestamp,
    /// Largest non-DATA payload kept.
    max_payload: u32,
    /// Bytes of this direction consumed so far.
    offset: u64,
    /// Where the current frame (or the preface) began.
    unit_start: u64,
}

impl FrameReader {
    /// `expect_preface`: this is the client side of a connection that starts
    /// with the HTTP/2 preface (prior knowledge, or after an h2c upgrade).
    pub(super) fn new(expect_preface: bool, max_payload: u32) -> Self {
        Self {
            state: if expect_preface {
                State::Preface { matched: 0 }
            } else {
                State::Header
            },
            head: [0; 9],
            head_len: 0,
            partial: BytesMut::new(),
            started: Timestamp::default(),
            max_payload,
            offset: 0,
            unit_start: 0,
        }
    }

    /// Offset in this direction of the frame being read.
    pub(super) fn unit_start(&self) -> u64 {
        self.unit_start
    }

    /// The next item in `chunk` from `*pos` on, or `None` when the chunk is used up.
    pub(super) fn next(
        &mut self,
        chunk: &Bytes,
        pos: &mut usize,
        at: Timestamp,
    ) -> Result<Option<Item>, Fault> {
        loop {
            let rest = &chunk[*pos..];
            match self.state {
                State::Preface { matched } => {
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    let n = (PREFACE.len() - matched).min(rest.len());
                    if rest[..n] != PREFACE[matched..matched + n] {
                        return Err(Fault::malformed("not the HTTP/2 client preface"));
                    }
                    self.advance(pos, n);
                    self.state = if matched + n == PREFACE.len() {
                        self.unit_start = self.offset;
                        State::Header
                    } else {
                        State::Preface {
                            matched: matched + n,
                        }
                    };
                }
                State::Header => {
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    if self.head_len == 0 {
                        self.started = at;
                        self.unit_start = self.offset;
                    }
                    let n = (9 - self.head_len).min(rest.len());
                    self.head[self.head_len..self.head_len + n].copy_from_slice(&rest[..n]);
                    self.head_len += n;
                    self.advance(pos, n);
                    if self.head_len == 9 {
                        self.head_len = 0;
                        if let Some(item) = self.on_header()? {
                            return Ok(Some(item));
                        }
                    }
                }
                State::DataPadLength { stream, flags, len } => {
                    let Some(&pad) = rest.first() else {
                        return Ok(None);
                    };
                    self.advance(pos, 1);
                    let pad = u32::from(pad);
                    if pad >= len {
                        return Err(Fault::malformed(format!(
                            "DATA frame padding ({pad}) is not shorter than the frame ({len})"
                        )));
                    }
                    self.state = State::Data {
                        stream,
                        flags,
                        data_left: len - 1 - pad,
                        pad_left: pad,
                    };
                    if len - 1 - pad == 0 {
                        return Ok(Some(self.data_piece(chunk, pos, 0)));
                    }
                }
                State::Data {
                    stream,
                    flags,
                    data_left,
                    pad_left,
                } => {
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    if data_left > 0 {
                        let n = (data_left as usize).min(rest.len());
                        return Ok(Some(self.data_piece(chunk, pos, n)));
                    }
                    // Only padding is left.
                    let n = (pad_left as usize).min(rest.len());
                    self.advance(pos, n);
                    let pad_left = pad_left - n as u32;
                    self.state = if pad_left == 0 {
                        State::Header
                    } else {
                        State::Data {
                            stream,
                            flags,
                            data_left,
                            pad_left,
                        }
                    };
                }
                State::Payload {
                    kind,
                    flags,
                    stream,
                    len,
                } => {
                    let need = len as usize - self.partial.len();
                    if self.partial.is_empty() && rest.len() >= need {
                        // The whole payload is in this chunk: a slice, no copy.
                        let payload = chunk.slice(*pos..*pos + need);
                        self.advance(pos, need);
                        self.state = State::Header;
                        return Ok(Some(Item::Frame {
                            kind,
                            flags,
                            stream,
                            payload,
                            started: self.started,
                        }));
                    }
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    let n = need.min(rest.len());
                    self.partial.extend_from_slice(&rest[..n]);
                    self.advance(pos, n);
                    if self.partial.len() == len as usize {
                        let payload = self.partial.split().freeze();
                        self.state = State::Header;
                        return Ok(Some(Item::Frame {
                            kind,
                            flags,
                            stream,
                            payload,
                            started: self.started,
                        }));
                    }
                }
                State::Skip { left } => {
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    let n = (left as usize).min(rest.len());
                    self.advance(pos, n);
                    self.state = if n == left as usize {
                        State::Header
                    } else {
                        State::Skip {
                            left: left - n as u32,
                        }
                    };
                }
            }
        }
    }

    fn advance(&mut self, pos: &mut usize, n: usize) {
        *pos += n;
        self.offset += n as u64;
    }

    /// A frame header is complete: decide how to read its payload.
    fn on_header(&mut self) -> Result<Option<Item>, Fault> {
        let h = self.head;
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        let kind = h[3];
        let flags = h[4];
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        if kind == DATA {
            if flags & FLAG_PADDED != 0 {
                if len == 0 {
                    return Err(Fault::malformed("padded DATA frame without a pad length"));
                }
                self.state = State::DataPadLength { stream, flags, len };
                return Ok(None);
            }
            self.state = State::Data {
                stream,
                flags,
                data_left: len,
                pad_left: 0,
            };
            if len == 0 {
                // Nothing to wait for: the (empty) frame is complete now.
                self.state = State::Header;
                return Ok(Some(Item::Data {
                    stream,
                    data: Bytes::new(),
                    end_stream: flags & FLAG_END_STREAM != 0,
                }));
            }
            return Ok(None);
        }
        if !is_known(kind) {
            self.state = if len == 0 {
                State::Header
            } else {
                State::Skip { left: len }
            };
            return Ok(None);
        }
        if len > self.max_payload {
            return Err(Fault::limit(format!(
                "a frame of type {kind:#x} with {len} bytes, more than the {} kept",
                self.max_payload
            )));
        }
        self.state = State::Payload {
            kind,
            flags,
            stream,
            len,
        };
        if len == 0 {
            self.state = State::Header;
            return Ok(Some(Item::Frame {
                kind,
                flags,
                stream,
                payload: Bytes::new(),
                started: self.started,
            }));
        }
        Ok(None)
    }

    /// Takes `n` data bytes at `*pos` as one piece of the current DATA frame.
    fn data_piece(&mut self, chunk: &Bytes, pos: &mut usize, n: usize) -> Item {
        let State::Data {
            stream,
            flags,
            data_left,
            pad_left,
        } = self.state
        else {
            unreachable!("data_piece outside a DATA frame");
        };
        let data = chunk.slice(*pos..*pos + n);
        self.advance(pos, n);
        let data_left = data_left - n as u32;
        let last = data_left == 0;
        self.state = if last && pad_left == 0 {
            State::Header
        } else {
            State::Data {
                stream,
                flags,
                data_left,
                pad_left,
            }
        };
        // Trailing padding belongs to the frame but carries nothing; the
        // piece is "last" once the data is all there.
        Item::Data {
            stream,
            data,
            end_stream: last && flags & FLAG_END_STREAM != 0,
        }
    }
}

/// Frame types of RFC 9113 (DATA handled apart): PRIORITY, PING and
/// WINDOW_UPDATE are read but need nothing from the observer.
fn is_known(kind: u8) -> bool {
    kind <= CONTINUATION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn read_all(reader: &mut FrameReader, bytes: &[u8], split: usize) -> Vec<Item> {
        let mut items = Vec::new();
        for piece in bytes.chunks(split.max(1)) {
            let chunk = Bytes::copy_from_slice(piece);
            let mut pos = 0;
            while let Some(item) = reader.next(&chunk, &mut pos, Timestamp(0)).unwrap() {
                items.push(item);
            }
            assert_eq!(pos, chunk.len());
        }
        items
    }

    #[test]
    fn padded_data_yields_only_the_data_at_every_split() {
        let mut payload = vec![3u8];
        payload.extend_from_slice(b"hello");
        payload.extend_from_slice(&[0, 0, 0]);
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(DATA, FLAG_PADDED | FLAG_END_STREAM, 1, &payload));
        bytes.extend(frame(HEADERS, FLAG_END_HEADERS, 3, b"xyz"));
        for split in 1..bytes.len() {
            let mut r = FrameReader::new(true, 1024);
            let items = read_all(&mut r, &bytes, split);
            let mut data = Vec::new();
            let mut saw_end = false;
            for item in &items {
                if let Item::Data {
                    stream,
                    data: d,
                    end_stream,
                } = item
                {
                    assert_eq!(*stream, 1);
                    data.extend_from_slice(d);
                    saw_end |= *end_stream;
                }
            }
            assert_eq!(data, b"hello", "split {split}");
            assert!(saw_end, "split {split}");
            let Some(Item::Frame {
                kind,
                stream,
                payload,
                ..
            }) = items.last()
            else {
                panic!("split {split}: no HEADERS frame after the DATA");
            };
            assert_eq!((*kind, *stream, &payload[..]), (HEADERS, 3, &b"xyz"[..]));
        }
    }

    #[test]
    fn empty_end_stream_data_frame_is_one_last_piece() {
        let mut r = FrameReader::new(false, 1024);
        let items = read_all(&mut r, &frame(DATA, FLAG_END_STREAM, 5, b""), 100);
        assert!(matches!(
            items[..],
            [Item::Data {
                stream: 5,
                end_stream: true,
                ..
            }]
        ));
    }

    #[test]
    fn unknown_frame_types_are_skipped_unbuffered() {
        let mut bytes = frame(0xfa, 0, 0, &[7; 5000]);
        bytes.extend(frame(SETTINGS, 0, 0, b""));
        let mut r = FrameReader::new(false, 16);
        let items = read_all(&mut r, &bytes, 7);
        assert!(matches!(items[..], [Item::Frame { kind: SETTINGS, .. }]));
    }

    #[test]
    fn payload_in_one_chunk_is_a_slice() {
        let chunk = Bytes::from(frame(HEADERS, FLAG_END_HEADERS, 1, b"block"));
        let mut r = FrameReader::new(false, 1024);
        let mut pos = 0;
        let Some(Item::Frame { payload, .. }) = r.next(&chunk, &mut pos, Timestamp(0)).unwrap()
        else {
            panic!("no frame");
        };
        assert_eq!(payload.as_ptr(), chunk[9..].as_ptr());
    }

    #[test]
    fn wrong_preface_and_oversized_frames_are_errors() {
        let mut r = FrameReader::new(true, 1024);
        let chunk = Bytes::from_static(b"GET / HTTP/1.1\r\n");
        assert!(r.next(&chunk, &mut 0, Timestamp(0)).is_err());

        let mut r = FrameReader::new(false, 4);
        let chunk = Bytes::from(frame(HEADERS, 0, 1, b"12345"));
        assert!(r.next(&chunk, &mut 0, Timestamp(0)).is_err());

        let mut r = FrameReader::new(false, 1024);
        let chunk = Bytes::from(frame(DATA, FLAG_PADDED, 1, &[4, 1, 2]));
        assert!(r.next(&chunk, &mut 0, Timestamp(0)).is_err());
    }
}
