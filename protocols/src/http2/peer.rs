//! One endpoint's side of an HTTP/2 connection: its frames, its HPACK
//! context, the header block it is midway through.

use bytes::BytesMut;

use super::frame::FrameReader;
use super::{Http2Config, DEFAULT_TABLE_SIZE};
use crate::decoder::Fault;
use crate::http::HeaderBlock;
use crate::Timestamp;

/// A header block being gathered across CONTINUATION frames.
pub(super) struct PendingBlock {
    pub stream: u32,
    /// For a PUSH_PROMISE, the stream it promises.
    pub promised: Option<u32>,
    pub end_stream: bool,
    pub started: Timestamp,
    pub fragment: BytesMut,
}

/// What one endpoint sends: its frames, the HPACK table of its encoder,
/// the header block it is midway through.
pub(super) struct Peer {
    pub reader: FrameReader,
    hpack: loona_hpack::Decoder<'static>,
    /// The table size the other endpoint allows this side's encoder.
    allowed_table_size: usize,
    pub block: Option<PendingBlock>,
}

impl Peer {
    pub fn new(expect_preface: bool, config: &Http2Config) -> Self {
        let mut hpack = loona_hpack::Decoder::new();
        hpack.set_max_allowed_table_size(DEFAULT_TABLE_SIZE);
        Self {
            reader: FrameReader::new(expect_preface, config.max_frame_payload),
            hpack,
            allowed_table_size: DEFAULT_TABLE_SIZE,
            block: None,
        }
    }

    /// The peer advertised SETTINGS_HEADER_TABLE_SIZE = `size` for this
    /// side's encoder. An observer cannot know when the encoder takes a
    /// smaller size into use, so it allows the largest one ever advertised.
    pub fn allow_table_size(&mut self, size: u32, max: usize) -> Result<(), Fault> {
        let size = size as usize;
        if size <= self.allowed_table_size {
            return Ok(());
        }
        if size > max {
            return Err(Fault::limit(format!(
                "HPACK table size {size} is above the {max} bytes the decoder keeps"
            )));
        }
        self.allowed_table_size = size;
        self.hpack.set_max_allowed_table_size(size);
        Ok(())
    }

    /// Decodes a complete header block with this side's HPACK context,
    /// refusing a header list over `max` bytes (names, values and 32 per
    /// field).
    pub fn decode_block(&mut self, fragment: &[u8], max: usize) -> Result<HeaderBlock, Fault> {
        let mut headers = HeaderBlock::new();
        let mut list_size = 0usize;
        self.hpack
            .decode_with_cb(fragment, |name, value| {
                // RFC 9113 §6.5.2 counts 32 bytes of overhead per field.
                list_size += name.len() + value.len() + 32;
                if list_size <= max {
                    headers.push(&String::from_utf8_lossy(&name), &value);
                }
            })
            .map_err(|e| Fault::malformed(format!("HPACK: {e:?}")))?;
        if list_size > max {
            return Err(Fault::limit(format!(
                "a header list larger than {max} bytes"
            )));
        }
        Ok(headers)
    }
}
