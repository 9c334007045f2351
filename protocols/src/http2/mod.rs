//! HTTP/2 (RFC 9113) over cleartext: every stream as one exchange.
//!
//! Each direction has its own `frame::FrameReader` and its own HPACK
//! context, because each endpoint compresses the header blocks it sends with
//! a table of its own. A header block is gathered across CONTINUATION frames
//! and decoded once complete; a direction's SETTINGS_HEADER_TABLE_SIZE bounds
//! the table of the *other* direction's encoder. Streams are paired by id and
//! reported when both sides have ended, when either side resets the stream
//! (RST_STREAM, with its error), when a GOAWAY says the server never
//! processed it, or when the connection closes.
//!
//! Flow control, priorities and pings are the endpoints' business: the
//! decoder reads past them. It never needs a reply from anyone, so it follows
//! a connection from its first byte whether the client used prior knowledge
//! or an `Upgrade: h2c` (see `Http2Decoder::after_upgrade`).

mod frame;
mod peer;
mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};

use crate::decoder::Fault;
use crate::http::{BodyCapture, CapturedBody, ExchangeBuilder, HeaderBlock};
use crate::{Decoded, Decoder, Direction, Timestamp};
use frame::Item;
use peer::{Peer, PendingBlock};

pub(crate) use frame::PREFACE;

const PROTOCOL: &str = "http2";

/// [`HttpExchange::version`](crate::http::HttpExchange::version) of every exchange.
const VERSION: &str = "HTTP/2";

/// The HPACK table size every encoder starts with (RFC 7541 §4.2).
const DEFAULT_TABLE_SIZE: usize = 4096;

/// Limits that bound a connection's memory.
#[derive(Debug, Clone)]
pub struct Http2Config {
    /// Body bytes kept per message; the rest are counted.
    pub capture_limit: usize,
    /// Largest non-DATA frame payload kept (header blocks, settings …).
    pub max_frame_payload: u32,
    /// Largest header block, compressed, across its CONTINUATION frames, and
    /// largest header list once decoded (names + values + 32 per field).
    pub max_header_block: usize,
    /// Most streams open at once.
    pub max_streams: usize,
    /// Largest HPACK dynamic table a peer may make the decoder keep.
    pub max_table_size: usize,
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            capture_limit: 64 * 1024,
            max_frame_payload: 1 << 20,
            max_header_block: 256 * 1024,
            max_streams: 4096,
            max_table_size: 64 * 1024,
        }
    }
}

/// The request that asked for `Upgrade: h2c`, as the HTTP/1 decoder saw it.
/// Its response arrives on stream 1 of the HTTP/2 connection that follows.
#[derive(Debug, Clone)]
pub(crate) struct UpgradedRequest {
    pub method: String,
    pub path: String,
    pub headers: HeaderBlock,
    pub body: CapturedBody,
    pub started: Timestamp,
}

/// Decodes one HTTP/2 connection. See the module docs.
pub struct Http2Decoder {
    config: Http2Config,
    client: Peer,
    server: Peer,
    /// Open streams by id, each on its way to becoming an exchange.
    streams: HashMap<u32, ExchangeBuilder>,
    /// The highest stream the client opened: a lower id is not a new stream.
    last_client_stream: u32,
    failed: bool,
}

impl Http2Decoder {
    /// A connection that starts with the client preface (prior knowledge).
    pub fn new(config: Http2Config) -> Self {
        Self {
            client: Peer::new(true, &config),
            server: Peer::new(false, &config),
            config,
            streams: HashMap::new(),
            last_client_stream: 0,
            failed: false,
        }
    }

    /// A connection that switched from HTTP/1.1 with `Upgrade: h2c`: the
    /// upgrade request is stream 1, already sent in full; the client sends
    /// the preface next and the server starts straight with frames.
    pub(crate) fn after_upgrade(config: Http2Config, request: UpgradedRequest) -> Self {
        let mut decoder = Self::new(config);
        let settings = request
            .headers
            .get("http2-settings")
            .and_then(|value| base64url_decode(value.trim()));
        if let Some(settings) = settings {
            // The client's initial SETTINGS travel in this header.
            let _ = decoder.apply_settings(Direction::ClientToTarget, &settings);
        }
        let limit = decoder.config.capture_limit;
        let mut stream = ExchangeBuilder::new(
            VERSION,
            request.method,
            request.path,
            request.headers,
            request.started,
            limit,
        );
        stream.request_body = BodyCapture::resume(request.body, limit);
        stream.request_done = true;
        decoder.streams.insert(1, stream);
        decoder.last_client_stream = 1;
        decoder
    }

    fn peer(&mut self, direction: Direction) -> &mut Peer {
        match direction {
            Direction::ClientToTarget => &mut self.client,
            Direction::TargetToClient => &mut self.server,
        }
    }

    fn fail(&mut self, direction: Direction, fault: Fault, at: Timestamp, out: &mut Vec<Decoded>) {
        self.failed = true;
        let offset = self.peer(direction).reader.unit_start();
        self.flush_all(at, &format!("decoding stopped: {}", fault.detail), out);
        out.push(Decoded::Failure(fault.at(PROTOCOL, direction, offset)));
    }

    /// Reports every open stream as cut off, in stream order.
    fn flush_all(&mut self, at: Timestamp, why: &str, out: &mut Vec<Decoded>) {
        let mut ids: Vec<u32> = self.streams.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let s = self.streams.remove(&id).expect("listed");
            out.push(Decoded::Http(Box::new(s.cut_off(at, why))));
        }
    }

    fn feed_side(
        &mut self,
        direction: Direction,
        chunk: &Bytes,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let mut pos = 0;
        loop {
            let item = self.peer(direction).reader.next(chunk, &mut pos, at)?;
            match item {
                None => return Ok(()),
                Some(Item::Data {
                    stream,
                    data,
                    end_stream,
                    ..
                }) => {
                    self.expect_no_block(direction)?;
                    self.on_data(direction, stream, data, end_stream, at, out);
                }
                Some(Item::Frame {
                    kind,
                    flags,
                    stream,
                    payload,
                    started,
                }) => self.on_frame(direction, kind, flags, stream, payload, started, at, out)?,
            }
        }
    }

    /// A header block must not be interleaved with other frames (RFC 9113 §6.10).
    fn expect_no_block(&mut self, direction: Direction) -> Result<(), Fault> {
        match &self.peer(direction).block {
            Some(b) => Err(Fault::malformed(format!(
                "expected a CONTINUATION of stream {}'s header block",
                b.stream
            ))),
            None => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)] // one frame's fields, taken apart once
    fn on_frame(
        &mut self,
        direction: Direction,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Bytes,
        started: Timestamp,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        if kind == frame::CONTINUATION {
            let max = self.config.max_header_block;
            let side = self.peer(direction);
            let Some(block) = side.block.as_mut() else {
                return Err(Fault::malformed(
                    "CONTINUATION without a header block to continue",
                ));
            };
            if block.stream != stream {
                return Err(Fault::malformed(format!(
                    "CONTINUATION for stream {stream} inside stream {}'s header block",
                    block.stream
                )));
            }
            if block.fragment.len() + payload.len() > max {
                return Err(Fault::limit(format!(
                    "a header block larger than {max} bytes"
                )));
            }
            block.fragment.extend_from_slice(&payload);
            if flags & frame::FLAG_END_HEADERS != 0 {
                let block = side.block.take().expect("checked");
                self.on_header_block(direction, block, at, out)?;
            }
            return Ok(());
        }
        self.expect_no_block(direction)?;
        match kind {
            frame::HEADERS | frame::PUSH_PROMISE => {
                let (promised, fragment) = header_fragment(kind, flags, &payload)?;
                if fragment.len() > self.config.max_header_block {
                    return Err(Fault::limit(format!(
                        "a header block larger than {} bytes",
                        self.config.max_header_block
                    )));
                }
                let block = PendingBlock {
                    stream,
                    promised,
                    end_stream: kind == frame::HEADERS && flags & frame::FLAG_END_STREAM != 0,
                    started,
                    fragment: BytesMut::from(&fragment[..]),
                };
                if flags & frame::FLAG_END_HEADERS != 0 {
                    self.on_header_block(direction, block, at, out)?;
                } else {
                    self.peer(direction).block = Some(block);
                }
            }
            frame::SETTINGS if flags & frame::FLAG_ACK == 0 => {
                self.apply_settings(direction, &payload)?;
            }
            frame::RST_STREAM => {
                let code = read_u32(&payload, 0)
                    .ok_or_else(|| Fault::malformed("RST_STREAM shorter than 4 bytes"))?;
                self.on_reset(direction, stream, code, at, out);
            }
            frame::GOAWAY => {
                let short = || Fault::malformed("GOAWAY shorter than 8 bytes");
                let last = read_u32(&payload, 0).ok_or_else(short)? & 0x7fff_ffff;
                let code = read_u32(&payload, 4).ok_or_else(short)?;
                self.on_goaway(direction, last, code, at, out);
            }
            // SETTINGS acks, PRIORITY, PING, WINDOW_UPDATE: nothing to observe.
            _ => {}
        }
        Ok(())
    }

    fn apply_settings(&mut self, direction: Direction, payload: &[u8]) -> Result<(), Fault> {
        if payload.len() % 6 != 0 {
            return Err(Fault::malformed(format!(
                "SETTINGS of {} bytes, not a multiple of 6",
                payload.len()
            )));
        }
        let max = self.config.max_table_size;
        for setting in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
            if id == 0x1 {
                // HEADER_TABLE_SIZE: the sender's decoder accepts a table
                // this big from the other side's encoder.
                self.peer(direction.reverse())
                    .allow_table_size(value, max)?;
            }
        }
        Ok(())
    }

    fn on_header_block(
        &mut self,
        direction: Direction,
        block: PendingBlock,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let max = self.config.max_header_block;
        let headers = self.peer(direction).decode_block(&block.fragment, max)?;
        let limit = self.config.capture_limit;
        match (direction, block.promised) {
            (Direction::TargetToClient, Some(promised)) => {
                // A pushed response: the promise carries its request.
                self.open_stream(promised, stream::open(headers, block.started, limit))?;
                if let Some(s) = self.streams.get_mut(&promised) {
                    s.request_done = true;
                }
            }
            (Direction::ClientToTarget, _) => match self.streams.get_mut(&block.stream) {
                Some(s) => {
                    // A second block from the client is its trailers.
                    s.request_trailers = headers;
                    s.request_done |= block.end_stream;
                }
                None if block.stream > self.last_client_stream => {
                    self.last_client_stream = block.stream;
                    let mut s = stream::open(headers, block.started, limit);
                    s.request_done = block.end_stream;
                    self.open_stream(block.stream, s)?;
                }
                // Trailers of a stream reported already (reset, say).
                None => {}
            },
            (Direction::TargetToClient, None) => {
                let Some(s) = self.streams.get_mut(&block.stream) else {
                    // A stream reported already (reset, say): nothing to add.
                    return Ok(());
                };
                if s.status.is_none() {
                    let mut headers = headers;
                    let status = stream::pseudo_value(&headers, ":status")
                        .and_then(|v| v.parse::<u16>().ok())
                        .ok_or_else(|| {
                            Fault::malformed("a response header block without a valid :status")
                        })?;
                    if (100..200).contains(&status) {
                        // Interim (100 Continue, 103 Early Hints): the final head follows.
                        return Ok(());
                    }
                    headers.retain(|h| !h.name.starts_with(':'));
                    s.response_head(status, headers, at);
                } else {
                    s.response_trailers = headers;
                }
                s.response_done |= block.end_stream;
            }
        }
        self.emit_if_complete(block.stream, at, out);
        Ok(())
    }

    fn open_stream(&mut self, id: u32, stream: ExchangeBuilder) -> Result<(), Fault> {
        if self.streams.len() >= self.config.max_streams {
            return Err(Fault::limit(format!(
                "more than {} streams open at once",
                self.config.max_streams
            )));
        }
        self.streams.insert(id, stream);
        Ok(())
    }

    fn on_data(
        &mut self,
        direction: Direction,
        stream: u32,
        data: Bytes,
        end_stream: bool,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) {
        let Some(s) = self.streams.get_mut(&stream) else {
            return;
        };
        s.body(direction, data);
        match direction {
            Direction::ClientToTarget => s.request_done |= end_stream,
            Direction::TargetToClient => s.response_done |= end_stream,
        }
        if end_stream {
            self.emit_if_complete(stream, at, out);
        }
    }

    fn emit_if_complete(&mut self, stream: u32, at: Timestamp, out: &mut Vec<Decoded>) {
        if self
            .streams
            .get(&stream)
            .is_some_and(ExchangeBuilder::is_complete)
        {
            let s = self.streams.remove(&stream).expect("checked");
            out.push(Decoded::Http(Box::new(s.finish(at, None))));
        }
    }

    fn on_reset(
        &mut self,
        direction: Direction,
        stream: u32,
        code: u32,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) {
        let Some(s) = self.streams.remove(&stream) else {
            return;
        };
        // A server may end a stream whose response is complete with
        // NO_ERROR to stop an unwanted request body (RFC 9113 §8.1).
        let error = if code == 0 && s.response_done {
            None
        } else {
            let who = match direction {
                Direction::ClientToTarget => "client",
                Direction::TargetToClient => "server",
            };
            Some(format!("stream reset by the {who}: {}", error_name(code)))
        };
        out.push(Decoded::Http(Box::new(s.finish(at, error))));
    }

    fn on_goaway(
        &mut self,
        direction: Direction,
        last: u32,
        code: u32,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) {
        // Streams the sender's peer opened above `last` were never processed.
        let peer_opened_odd = direction == Direction::TargetToClient;
        let mut ids: Vec<u32> = self
            .streams
            .keys()
            .copied()
            .filter(|&id| id > last && (id % 2 == 1) == peer_opened_odd)
            .collect();
        ids.sort_unstable();
        let who = match direction {
            Direction::ClientToTarget => "client",
            Direction::TargetToClient => "server",
        };
        for id in ids {
            let s = self.streams.remove(&id).expect("listed");
            let error = format!(
                "not processed: the {who} sent GOAWAY (last stream {last}, {})",
                error_name(code)
            );
            out.push(Decoded::Http(Box::new(s.finish(at, Some(error)))));
        }
    }
}

impl Decoder for Http2Decoder {
    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>) {
        if self.failed {
            return;
        }
        if let Err(fault) = self.feed_side(direction, chunk, at, out) {
            self.fail(direction, fault, at, out);
        }
    }

    fn finish(&mut self, at: Timestamp, out: &mut Vec<Decoded>) {
        if !self.failed {
            self.flush_all(at, "the connection closed", out);
        }
    }
}

/// The header block fragment of a HEADERS or PUSH_PROMISE payload, without
/// padding and priority fields; for a PUSH_PROMISE also the promised stream.
fn header_fragment(kind: u8, flags: u8, payload: &Bytes) -> Result<(Option<u32>, Bytes), Fault> {
    let mut start = 0usize;
    let mut end = payload.len();
    if flags & frame::FLAG_PADDED != 0 {
        let pad = *payload
            .first()
            .ok_or_else(|| Fault::malformed("padded frame without a pad length"))?
            as usize;
        start = 1;
        end = end
            .checked_sub(pad)
            .filter(|&e| e >= start)
            .ok_or_else(|| Fault::malformed("padding longer than the frame"))?;
    }
    let mut promised = None;
    if kind == frame::PUSH_PROMISE {
        let id = read_u32(&payload[..end], start)
            .ok_or_else(|| Fault::malformed("PUSH_PROMISE too short"))?;
        promised = Some(id & 0x7fff_ffff);
        start += 4;
    } else if flags & frame::FLAG_PRIORITY != 0 {
        start += 5;
    }
    if start > end {
        return Err(Fault::malformed("header frame too short for its flags"));
    }
    Ok((promised, payload.slice(start..end)))
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// RFC 9113 §7 error code names.
fn error_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x5 => "STREAM_CLOSED",
        0x6 => "FRAME_SIZE_ERROR",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0x9 => "COMPRESSION_ERROR",
        0xa => "CONNECT_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        0xc => "INADEQUATE_SECURITY",
        0xd => "HTTP_1_1_REQUIRED",
        _ => return format!("error {code:#x}"),
    };
    format!("{name} ({code:#x})")
}

/// Decodes the `HTTP2-Settings` header's base64url (no padding).
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}
