//! HTTP/1.0 and HTTP/1.1: every request paired with its response.
//!
//! Heads are parsed with `httparse`; what it does not cover (heads split
//! across chunks, body framing, chunked bodies and trailers, pairing) lives in
//! `framing.rs` and here. Requests may be pipelined: they queue in order and
//! each response completes the oldest request still waiting. Interim 1xx
//! responses (100-continue) are skipped; a 101 or a successful CONNECT ends
//! HTTP on the connection: that exchange is reported and the rest of the
//! bytes are only counted by the proxy.
//!
//! [`RequestGate`] cuts the client's stream the same way, before it is
//! forwarded, so that faults can be injected per request.

mod framing;
mod gate;

use std::collections::VecDeque;

use bytes::Bytes;

use crate::decoder::Fault;
use crate::http::{warning, ExchangeBuilder, HeaderBlock};
use crate::http2::UpgradedRequest;
use crate::{Decoded, Decoder, Direction, Timestamp};
use framing::{Framing, Part, Reader};
pub use gate::{RequestGate, RequestHead, Response, Segment, Verdict};

/// Header slots parsed into on the stack (no allocation per message);
/// `max_headers` above this is capped to it.
const HEADER_SLOTS: usize = 128;

/// Limits that bound a connection's memory.
#[derive(Debug, Clone)]
pub struct Http1Config {
    /// Body bytes kept per message; the rest are counted.
    pub capture_limit: usize,
    /// Largest request or response head.
    pub max_head: usize,
    /// Most header fields in one head (at most 128).
    pub max_headers: usize,
    /// Most requests waiting for responses (pipelining).
    pub max_pending: usize,
}

impl Default for Http1Config {
    fn default() -> Self {
        Self {
            capture_limit: 64 * 1024,
            max_head: 64 * 1024,
            max_headers: 128,
            max_pending: 1024,
        }
    }
}

const PROTOCOL: &str = "http1";

/// Decodes one HTTP/1.x connection. See the module docs.
pub struct Http1Decoder {
    config: Http1Config,
    requests: Reader,
    responses: Reader,
    /// Requests in order; the oldest ones may have their response already.
    pending: VecDeque<ExchangeBuilder>,
    /// Index in `pending` of the request whose response is being read.
    responding: usize,
    /// After a 101 or CONNECT: nothing more to decode.
    tunnel: bool,
    /// A 101 to `Upgrade: h2c`: HTTP/2 follows and its decoder takes over.
    h2c: Option<H2cHandover>,
}

/// What an HTTP/2 decoder needs to carry on after `Upgrade: h2c`.
#[derive(Debug)]
pub(crate) struct H2cHandover {
    /// The request that asked for the upgrade; its response comes on stream 1.
    pub request: UpgradedRequest,
    /// The server's bytes after the 101 head, in the chunk that carried it:
    /// the first HTTP/2 frames.
    pub server_bytes: Bytes,
}

impl Http1Decoder {
    /// A decoder for one connection, from its first byte.
    pub fn new(config: Http1Config) -> Self {
        Self {
            requests: Reader::new(config.max_head),
            responses: Reader::new(config.max_head),
            config,
            pending: VecDeque::new(),
            responding: 0,
            tunnel: false,
            h2c: None,
        }
    }

    /// After the server agreed to `Upgrade: h2c`, what the HTTP/2 decoder
    /// continues from. This decoder decodes nothing more once it returns.
    pub(crate) fn take_h2c_handover(&mut self) -> Option<H2cHandover> {
        self.h2c.take()
    }

    fn fail(
        &mut self,
        direction: Direction,
        offset: u64,
        fault: Fault,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) {
        // What was decoded before the failure is still reported.
        self.flush_incomplete(at, &format!("decoding stopped: {}", fault.detail), out);
        out.push(Decoded::Failure(fault.at(PROTOCOL, direction, offset)));
    }

    /// Reports finished exchanges, oldest first, as long as the oldest is finished.
    fn emit_ready(&mut self, at: Timestamp, out: &mut Vec<Decoded>) {
        while self
            .pending
            .front()
            .is_some_and(ExchangeBuilder::is_complete)
        {
            let p = self.pending.pop_front().expect("checked");
            self.responding -= 1;
            out.push(Decoded::Http(Box::new(p.finish(at, None))));
        }
    }

    /// Reports every unfinished exchange as cut off.
    fn flush_incomplete(&mut self, at: Timestamp, why: &str, out: &mut Vec<Decoded>) {
        for p in self.pending.drain(..) {
            out.push(Decoded::Http(Box::new(p.cut_off(at, why))));
        }
        self.responding = 0;
    }

    fn feed_requests(
        &mut self,
        chunk: &Bytes,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let mut pos = 0;
        while let Some(part) = self.requests.next(chunk, &mut pos)? {
            if self.tunnel {
                return Ok(());
            }
            match part {
                Part::Head(head) => {
                    if self.pending.len() >= self.config.max_pending {
                        return Err(Fault::limit(format!(
                            "more than {} requests waiting for responses",
                            self.config.max_pending
                        )));
                    }
                    let (pending, framing) = self.parse_request(&head, at)?;
                    self.pending.push_back(pending);
                    self.requests.set_framing(framing);
                    if framing == Framing::Length(0) {
                        self.request_finished(at, out);
                    }
                }
                Part::Body(body) => {
                    let p = self
                        .pending
                        .back_mut()
                        .ok_or_else(|| Fault::unexpected("request body without a request"))?;
                    p.body(Direction::ClientToTarget, body);
                    if self.requests.body_complete() {
                        self.request_finished(at, out);
                    }
                }
                Part::Trailers(block) => {
                    let trailers = parse_trailers(&block, self.config.max_headers)?;
                    self.pending
                        .back_mut()
                        .ok_or_else(|| Fault::unexpected("trailers without a request"))?
                        .request_trailers = trailers;
                    self.request_finished(at, out);
                }
            }
        }
        Ok(())
    }

    fn request_finished(&mut self, at: Timestamp, out: &mut Vec<Decoded>) {
        if let Some(p) = self.pending.back_mut() {
            p.request_done = true;
        }
        self.emit_ready(at, out);
    }

    fn parse_request(
        &self,
        head: &[u8],
        at: Timestamp,
    ) -> Result<(ExchangeBuilder, Framing), Fault> {
        if head.starts_with(b"PRI * HTTP/2.0") {
            return Err(Fault::unsupported(
                "HTTP/2 with prior knowledge: not decoded by the HTTP/1 decoder",
            ));
        }
        let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
        let slots = &mut slots[..self.config.max_headers.min(HEADER_SLOTS)];
        let mut req = httparse::Request::new(slots);
        match req.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(Fault::malformed("incomplete request head"))
            }
            Err(e) => return Err(Fault::malformed(format!("invalid request head: {e}"))),
        }
        let headers = owned_headers(req.headers);
        let framing = request_framing(&headers)?;
        let mut exchange = ExchangeBuilder::new(
            version_name(req.version),
            req.method.unwrap_or_default().to_string(),
            req.path.unwrap_or_default().to_string(),
            headers,
            at,
            self.config.capture_limit,
        );
        if framing == Framing::Chunked && has_content_length(&exchange.request_headers) {
            exchange
                .warnings
                .push(warning::REQUEST_CONTENT_LENGTH_AND_TRANSFER_ENCODING);
        }
        Ok((exchange, framing))
    }

    fn feed_responses(
        &mut self,
        chunk: &Bytes,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let mut pos = 0;
        while let Some(part) = self.responses.next(chunk, &mut pos)? {
            if self.tunnel {
                return Ok(());
            }
            match part {
                Part::Head(head) => {
                    self.on_response_head(&head, at, out)?;
                    if let Some(h2c) = self.h2c.as_mut() {
                        h2c.server_bytes = chunk.slice(pos..);
                        return Ok(());
                    }
                }
                Part::Body(body) => {
                    let p = self
                        .pending
                        .get_mut(self.responding)
                        .ok_or_else(|| Fault::unexpected("response body without a request"))?;
                    p.body(Direction::TargetToClient, body);
                    if self.responses.body_complete() {
                        self.response_finished(at, out);
                    }
                }
                Part::Trailers(block) => {
                    let trailers = parse_trailers(&block, self.config.max_headers)?;
                    self.pending
                        .get_mut(self.responding)
                        .ok_or_else(|| Fault::unexpected("trailers without a request"))?
                        .response_trailers = trailers;
                    self.response_finished(at, out);
                }
            }
        }
        Ok(())
    }

    fn on_response_head(
        &mut self,
        head: &[u8],
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
        let slots = &mut slots[..self.config.max_headers.min(HEADER_SLOTS)];
        let mut resp = httparse::Response::new(slots);
        match resp.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            Ok(httparse::Status::Partial) => {
                return Err(Fault::malformed("incomplete response head"))
            }
            Err(e) => return Err(Fault::malformed(format!("invalid response head: {e}"))),
        }
        let status = resp.code.unwrap_or_default();
        let Some(p) = self.pending.get_mut(self.responding) else {
            return Err(Fault::unexpected(format!(
                "a {status} response with no request waiting for it"
            )));
        };
        if (100..200).contains(&status) && status != 101 {
            // Interim (100 Continue, 103 Early Hints): the final response follows.
            self.responses.set_framing(Framing::Length(0));
            return Ok(());
        }
        let headers = owned_headers(resp.headers);
        let is_connect = p.method.eq_ignore_ascii_case("CONNECT");
        let switching = (status == 101 || (is_connect && (200..300).contains(&status)))
            && (is_connect || asks_to_upgrade(&p.request_headers));
        let framing = if switching {
            Framing::Tunnel
        } else {
            response_framing(&p.method, status, &headers)?
        };
        // Close-delimited is by Transfer-Encoding only when one is present.
        if has_content_length(&headers)
            && (framing == Framing::Chunked
                || (framing == Framing::UntilClose && final_transfer_coding(&headers).is_some()))
        {
            p.warnings
                .push(warning::RESPONSE_CONTENT_LENGTH_AND_TRANSFER_ENCODING);
        }
        p.response_head(status, headers, at);
        self.responses.set_framing(framing);
        match framing {
            Framing::Tunnel
                if status == 101 && p.request_headers.get("upgrade").is_some_and(is_h2c) =>
            {
                // Not the end of HTTP: the same exchange goes on as stream 1
                // of an HTTP/2 connection, so it is handed over, unreported.
                let p = self.pending.remove(self.responding).expect("checked");
                self.tunnel = true;
                self.requests.set_framing(Framing::Tunnel);
                self.h2c = Some(H2cHandover {
                    request: UpgradedRequest {
                        method: p.method,
                        path: p.path,
                        headers: p.request_headers,
                        body: p.request_body.finish(),
                        started: p.started,
                    },
                    server_bytes: Bytes::new(),
                });
            }
            Framing::Tunnel => {
                // HTTP ends here: report the exchange and stop decoding.
                p.request_done = true;
                self.tunnel = true;
                self.requests.set_framing(Framing::Tunnel);
                self.response_finished(at, out);
            }
            Framing::Length(0) => self.response_finished(at, out),
            _ => {}
        }
        Ok(())
    }

    fn response_finished(&mut self, at: Timestamp, out: &mut Vec<Decoded>) {
        if let Some(p) = self.pending.get_mut(self.responding) {
            p.response_done = true;
            self.responding += 1;
        }
        self.emit_ready(at, out);
    }
}

impl Http1Decoder {
    /// Between messages both ways, every request answered (see
    /// [`Decoder::is_idle`]).
    pub fn is_idle(&self) -> bool {
        !self.tunnel
            && self.pending.is_empty()
            && self.requests.is_idle()
            && self.responses.is_idle()
    }
}

impl Decoder for Http1Decoder {
    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>) {
        if self.tunnel {
            return;
        }
        let (result, offset) = match direction {
            Direction::ClientToTarget => (
                self.feed_requests(chunk, at, out),
                self.requests.unit_start(),
            ),
            Direction::TargetToClient => (
                self.feed_responses(chunk, at, out),
                self.responses.unit_start(),
            ),
        };
        if let Err(fault) = result {
            self.fail(direction, offset, fault, at, out);
        }
    }

    fn end_of_stream(&mut self, direction: Direction, at: Timestamp, out: &mut Vec<Decoded>) {
        if direction == Direction::TargetToClient && self.responses.is_until_close() {
            // A close-delimited body ends here, complete.
            self.response_finished(at, out);
        }
    }

    fn finish(&mut self, at: Timestamp, out: &mut Vec<Decoded>) {
        let why = if self.requests.is_idle() && self.responses.is_idle() {
            "the connection closed before the response"
        } else {
            "the connection closed mid-message"
        };
        self.flush_incomplete(at, why, out);
    }
}

/// Whether a request asks to switch protocols: `Connection: upgrade` with
/// an `Upgrade` header.
fn asks_to_upgrade(headers: &HeaderBlock) -> bool {
    has_token(headers, "connection", "upgrade") && headers.get("upgrade").is_some()
}

/// Whether an `Upgrade` header names h2c (the cleartext HTTP/2 token).
fn is_h2c(upgrade: &str) -> bool {
    upgrade
        .split(',')
        .any(|token| token.trim().eq_ignore_ascii_case("h2c"))
}

/// Parsed header fields as owned values (they outlive the chunk they came from).
fn owned_headers(parsed: &[httparse::Header<'_>]) -> HeaderBlock {
    let bytes = parsed.iter().map(|h| h.name.len() + h.value.len()).sum();
    let mut block = HeaderBlock::with_capacity(parsed.len(), bytes);
    for h in parsed {
        block.push(h.name, h.value);
    }
    block
}

fn version_name(minor: Option<u8>) -> &'static str {
    match minor {
        Some(0) => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// Whether any `name` header lists `token` (comma-separated, case-insensitive).
fn has_token(headers: &HeaderBlock, name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The last transfer coding, if any `Transfer-Encoding` is present.
fn final_transfer_coding(headers: &HeaderBlock) -> Option<String> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|h| h.value.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .rfind(|t| !t.is_empty())
}

/// Asked only of a message framed by Transfer-Encoding: with a
/// Content-Length too, the length is ignored (RFC 9112 §6.3) and the
/// exchange flagged, since a recipient that went by the length would cut
/// the stream elsewhere. Forwarding stays byte for byte either way.
fn has_content_length(headers: &HeaderBlock) -> bool {
    headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("content-length"))
}

/// `Content-Length`, rejecting conflicting or malformed values.
fn content_length(headers: &HeaderBlock) -> Result<Option<u64>, Fault> {
    let mut found: Option<u64> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        for v in h.value.split(',') {
            let n: u64 = v
                .trim()
                .parse()
                .map_err(|_| Fault::malformed(format!("invalid Content-Length {:?}", h.value)))?;
            if found.is_some_and(|f| f != n) {
                return Err(Fault::malformed("conflicting Content-Length values"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// RFC 9112 §6.3 for requests: chunked, else Content-Length, else no body.
fn request_framing(headers: &HeaderBlock) -> Result<Framing, Fault> {
    match final_transfer_coding(headers).as_deref() {
        Some("chunked") => Ok(Framing::Chunked),
        Some(other) => Err(Fault::unsupported(format!(
            "a request body with transfer coding {other:?} cannot be delimited"
        ))),
        None => Ok(Framing::Length(content_length(headers)?.unwrap_or(0))),
    }
}

/// RFC 9112 §6.3 for responses.
fn response_framing(method: &str, status: u16, headers: &HeaderBlock) -> Result<Framing, Fault> {
    if method.eq_ignore_ascii_case("HEAD")
        || status == 204
        || status == 304
        || (100..200).contains(&status)
    {
        return Ok(Framing::Length(0));
    }
    match final_transfer_coding(headers).as_deref() {
        Some("chunked") => Ok(Framing::Chunked),
        Some(_) => Ok(Framing::UntilClose),
        None => Ok(match content_length(headers)? {
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }),
    }
}

fn parse_trailers(block: &[u8], max_headers: usize) -> Result<HeaderBlock, Fault> {
    if block.is_empty() {
        return Ok(HeaderBlock::new());
    }
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    match httparse::parse_headers(block, &mut slots[..max_headers.min(HEADER_SLOTS)]) {
        Ok(httparse::Status::Complete((_, headers))) => Ok(owned_headers(headers)),
        Ok(httparse::Status::Partial) => Err(Fault::malformed("incomplete trailer section")),
        Err(e) => Err(Fault::malformed(format!("invalid trailer section: {e}"))),
    }
}

#[cfg(test)]
mod tests;
