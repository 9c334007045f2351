//! Kafka framing: every request and response is a 4-byte big-endian size
//! followed by that many bytes.
//!
//! [`FrameReader`] follows one direction's stream and hands out each frame's
//! first `keep` bytes. A frame that lies inside one chunk is a slice of that
//! chunk (a reference count, no copy); only a frame cut across chunks has its
//! kept prefix copied, into a buffer reused from frame to frame. Bytes past
//! `keep` are counted and skipped, never copied.

use bytes::{Bytes, BytesMut};

use crate::decoder::Fault;
use crate::Timestamp;

/// One complete frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The size field: the frame's length after the 4-byte size itself.
    pub size: u32,
    /// The first `min(size, keep)` bytes after the size field.
    pub prefix: Bytes,
    /// When the frame's first byte arrived.
    pub started: Timestamp,
    /// Stream offset of the frame's size field.
    pub offset: u64,
}

impl Frame {
    /// Bytes on the wire, size field included.
    pub fn wire_size(&self) -> u64 {
        u64::from(self.size) + 4
    }

    /// Whether `prefix` is the whole frame.
    pub fn is_whole(&self) -> bool {
        self.prefix.len() as u64 == u64::from(self.size)
    }
}

/// Why a stream cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FramingError {
    /// Offset of the size field within the stream.
    pub offset: u64,
    pub fault: Fault,
}

enum State {
    /// Reading the 4-byte size (`have` of them so far).
    Size { buf: [u8; 4], have: usize },
    /// Inside a frame body: `left` bytes still to come.
    Body { size: u32, left: u32 },
}

pub struct FrameReader {
    state: State,
    /// Stream offset of the next byte.
    offset: u64,
    /// Stream offset of the current frame's size field.
    frame_offset: u64,
    started: Timestamp,
    max_frame: u32,
    /// The current frame's prefix, when it spans chunks.
    kept: BytesMut,
    /// How much of the current frame to keep.
    keep: usize,
    /// The current frame's prefix when it lies in one chunk.
    sliced: Option<Bytes>,
}

impl FrameReader {
    /// A frame larger than `max_frame` bytes is a framing error.
    pub fn new(max_frame: u32) -> Self {
        Self {
            state: State::Size {
                buf: [0; 4],
                have: 0,
            },
            offset: 0,
            frame_offset: 0,
            started: Timestamp::default(),
            max_frame,
            kept: BytesMut::new(),
            keep: 0,
            sliced: None,
        }
    }

    /// Bytes of the stream seen so far.
    #[cfg(test)]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether the reader is between frames (nothing partial held).
    #[cfg(test)]
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Size { have: 0, .. })
    }

    /// Follows `chunk`, calling `on_frame` for every frame it completes.
    /// `keep(size)` says how many of a frame's first bytes to keep.
    pub fn feed(
        &mut self,
        chunk: &Bytes,
        at: Timestamp,
        keep: impl Fn(u32) -> usize,
        mut on_frame: impl FnMut(Frame),
    ) -> Result<(), FramingError> {
        let mut pos = 0;
        while pos < chunk.len() {
            match &mut self.state {
                State::Size { buf, have } => {
                    if *have == 0 {
                        self.frame_offset = self.offset + pos as u64;
                        self.started = at;
                    }
                    let n = (4 - *have).min(chunk.len() - pos);
                    buf[*have..*have + n].copy_from_slice(&chunk[pos..pos + n]);
                    *have += n;
                    pos += n;
                    if *have < 4 {
                        break;
                    }
                    let size = i32::from_be_bytes(*buf);
                    if size < 0 || size as u32 > self.max_frame {
                        let offset = self.frame_offset;
                        self.offset += pos as u64;
                        let detail =
                            format!("frame size {size} is outside 0..={} bytes", self.max_frame);
                        // A negative size is no Kafka; a large one may be,
                        // past what the decoder holds.
                        let fault = if size < 0 {
                            Fault::malformed(detail)
                        } else {
                            Fault::limit(detail)
                        };
                        return Err(FramingError { offset, fault });
                    }
                    let size = size as u32;
                    self.keep = keep(size).min(size as usize);
                    self.kept.clear();
                    self.sliced = None;
                    if chunk.len() - pos >= size as usize {
                        // The whole frame is in this chunk: slice its prefix.
                        // (A frame that runs on has its prefix copied, so
                        // that no slice keeps the relay's read buffer from
                        // being reused for the chunks that follow.)
                        self.sliced = Some(chunk.slice(pos..pos + self.keep));
                    }
                    self.state = State::Body { size, left: size };
                }
                State::Body { size, left } => {
                    let size = *size;
                    let n = (*left as usize).min(chunk.len() - pos);
                    if self.sliced.is_none() {
                        let done = (size - *left) as usize;
                        if done < self.keep {
                            let take = (self.keep - done).min(n);
                            if self.kept.capacity() == 0 {
                                self.kept.reserve(self.keep);
                            }
                            self.kept.extend_from_slice(&chunk[pos..pos + take]);
                        }
                    }
                    *left -= n as u32;
                    pos += n;
                }
            }
            if let State::Body { size, left: 0 } = self.state {
                let prefix = match self.sliced.take() {
                    Some(prefix) => prefix,
                    // `split` leaves the buffer's allocation behind for the
                    // next frame once this prefix is dropped.
                    None => self.kept.split().freeze(),
                };
                self.state = State::Size {
                    buf: [0; 4],
                    have: 0,
                };
                on_frame(Frame {
                    size,
                    prefix,
                    started: self.started,
                    offset: self.frame_offset,
                });
            }
        }
        self.offset += chunk.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    fn collect(reader: &mut FrameReader, chunks: &[&[u8]], keep: usize) -> Vec<Frame> {
        let mut frames = Vec::new();
        for (i, c) in chunks.iter().enumerate() {
            reader
                .feed(
                    &Bytes::copy_from_slice(c),
                    Timestamp(i as u64),
                    |_| keep,
                    |f| frames.push(f),
                )
                .unwrap();
        }
        frames
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut stream = frame(b"hello");
        stream.extend(frame(b""));
        stream.extend(frame(b"world!"));
        for cut in 0..stream.len() {
            let mut reader = FrameReader::new(1024);
            let frames = collect(&mut reader, &[&stream[..cut], &stream[cut..]], 100);
            let bodies: Vec<&[u8]> = frames.iter().map(|f| &f.prefix[..]).collect();
            assert_eq!(bodies, [&b"hello"[..], b"", b"world!"], "cut at {cut}");
            assert!(reader.at_boundary());
            assert_eq!(reader.offset(), stream.len() as u64);
        }
    }

    #[test]
    fn keeps_only_the_prefix_and_times_the_first_byte() {
        let stream = frame(b"0123456789");
        let mut reader = FrameReader::new(1024);
        let frames = collect(&mut reader, &[&stream[..6], &stream[6..]], 4);
        assert_eq!(&frames[0].prefix[..], b"0123");
        assert_eq!(frames[0].size, 10);
        assert_eq!(frames[0].wire_size(), 14);
        assert!(!frames[0].is_whole());
        assert_eq!(frames[0].started, Timestamp(0));
    }

    #[test]
    fn oversized_or_negative_size_is_an_error() {
        let mut reader = FrameReader::new(8);
        let err = reader
            .feed(
                &Bytes::from_static(b"\0\0\0\x09abc"),
                Timestamp(0),
                |_| 9,
                |_| {},
            )
            .unwrap_err();
        assert_eq!(err.offset, 0);
        let mut reader = FrameReader::new(8);
        let mut stream = frame(b"ok");
        stream.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        let err = reader
            .feed(&Bytes::from(stream), Timestamp(0), |_| 9, |_| {})
            .unwrap_err();
        assert_eq!(err.offset, 6);
        assert_eq!(err.fault.kind, crate::FailureKind::Malformed);
        assert!(err.fault.detail.contains("-1"), "{:?}", err.fault);
    }
}
