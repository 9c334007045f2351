//! A request gate: the client's HTTP/1.x stream cut into requests, each held
//! at its head until a verdict says what becomes of it.
//!
//! Fault injection in a byte-exact observing proxy has to decide on a request
//! before any of it reaches the target: answer it in the target's place,
//! delay it, or close the connection at it. `httparse` parses a complete
//! head, but nothing on crates.io cuts a live client stream into requests
//! while forwarding it as slices, so the gate reuses the decoder's
//! [`Reader`] (heads split across chunks, length and chunked bodies,
//! trailers) and adds only the decisions.
//!
//! Sans-IO like the rest of the crate: the gate says what to forward,
//! swallow, wait for, answer or close, and the proxy does it; durations are
//! values handed through, never measured. Whatever the gate cannot follow
//! (HTTP/2, an upgrade or CONNECT, a body it cannot delimit, a malformed or
//! oversized head) is forwarded untouched from then on: faults are injected
//! only where the gate is sure where requests begin and end.

use std::time::Duration;

use bytes::Bytes;

use super::framing::{Framing, Part, Reader};
use super::HEADER_SLOTS;
use super::{asks_to_upgrade, has_token, owned_headers, request_framing, version_name};
use crate::http::HeaderBlock;

/// A request head as the gate saw it, given to the verdict callback.
#[derive(Debug)]
pub struct RequestHead<'a> {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    pub version: &'static str,
    /// The method, as sent.
    pub method: &'a str,
    /// The request target, query included.
    pub path: &'a str,
    /// The header fields, in order.
    pub headers: &'a HeaderBlock,
    /// Whether a body follows (content-length > 0 or chunked).
    pub has_body: bool,
}

/// What becomes of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward the request as sent.
    Pass,
    /// Forward it after waiting this long (the whole client→target direction
    /// waits; HTTP/1 is in order anyway).
    Delay(Duration),
    /// Forward it; its response is to be held this long before the client
    /// gets it.
    DelayResponse(Duration),
    /// Do not forward it (its head and body are swallowed); answer the
    /// client with this response instead.
    Respond(Response),
    /// Do not forward it; close the connection at this request (nothing
    /// more is forwarded either way).
    Close,
}

/// A response the gate sends in the target's place.
///
/// The gate frames it: `content-length` is added, and any
/// `content-length`, `transfer-encoding` or `connection` field given here is
/// left out, as is a field that is not valid on the wire (a name that is not
/// a token, a value with CR, LF or NUL), so a fault cannot desynchronise the
/// client. A status outside 100–999 is sent as 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 503.
    pub status: u16,
    /// Extra header fields, e.g. `("x-tapmesh-fault", "name")`.
    pub headers: Vec<(String, String)>,
    /// The body (not sent after HEAD, 1xx, 204 or 304, which have none).
    pub body: Bytes,
}

/// What to do with a stretch of the client's stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Bytes to write to the target now (slices of the input chunk: no copies).
    Forward(Bytes),
    /// Bytes of a swallowed request (not forwarded; the caller still shows
    /// them to its decoder).
    Swallow(Bytes),
    /// Wait this long before acting on the segments that follow.
    Wait(Duration),
    /// The response to a request just forwarded is to be held this long (the
    /// caller tracks responses).
    DelayResponse(Duration),
    /// Write these bytes to the client, after the responses to every request
    /// forwarded before it.
    Respond {
        /// A complete HTTP/1.x response.
        bytes: Bytes,
        /// How many requests this gate forwarded to the target before this one.
        after_requests: u64,
    },
    /// Close the connection; the gate swallows everything after this.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Cutting requests and asking for verdicts.
    Gating,
    /// Stopped looking: every byte is forwarded.
    PassThrough,
    /// After a `Close`: every byte is swallowed.
    Closed,
}

/// Cuts one connection's client→target stream into requests and says, for
/// each, what to forward, swallow, wait for, answer or close. See the module
/// docs.
pub struct RequestGate {
    reader: Reader,
    state: State,
    /// Whether the body being read is of a request the gate answered itself.
    swallowing: bool,
    /// Bytes of an unfinished head that the reader keeps from earlier chunks.
    held: usize,
    max_head: usize,
    forwarded: u64,
}

impl RequestGate {
    /// A gate for one connection, from its first byte; a head longer than
    /// `max_head` bytes stops the gate (everything is forwarded from there).
    pub fn new(max_head: usize) -> Self {
        Self {
            reader: Reader::new(max_head),
            state: State::Gating,
            swallowing: false,
            held: 0,
            max_head,
            forwarded: 0,
        }
    }

    /// Cuts `chunk` into segments appended to `out` (in order), calling
    /// `decide` once per complete request head, in order; not for the heads
    /// that end the gating (see [`RequestGate::is_passthrough`]), which are
    /// forwarded as they are.
    pub fn feed(
        &mut self,
        chunk: &Bytes,
        decide: &mut dyn FnMut(&RequestHead<'_>) -> Verdict,
        out: &mut Vec<Segment>,
    ) {
        let mut emit = Emitter {
            chunk,
            out,
            run: None,
        };
        let mut pos = 0;
        while pos < chunk.len() {
            match self.state {
                State::Gating => self.step(chunk, &mut pos, decide, &mut emit),
                State::PassThrough => {
                    emit.bytes(Fate::Forward, pos, chunk.len());
                    pos = chunk.len();
                }
                State::Closed => {
                    emit.bytes(Fate::Swallow, pos, chunk.len());
                    pos = chunk.len();
                }
            }
        }
        emit.flush();
    }

    /// Whether the gate has stopped looking (HTTP/2 preface, upgrade,
    /// CONNECT, malformed input, closed): from now on every byte is
    /// forwarded (or swallowed after `Close`) without verdicts.
    pub fn is_passthrough(&self) -> bool {
        self.state != State::Gating
    }

    /// Requests forwarded to the target so far.
    pub fn forwarded(&self) -> u64 {
        self.forwarded
    }

    /// Reads one part of the stream at `pos` and emits what becomes of it.
    fn step(
        &mut self,
        chunk: &Bytes,
        pos: &mut usize,
        decide: &mut dyn FnMut(&RequestHead<'_>) -> Verdict,
        emit: &mut Emitter<'_>,
    ) {
        let start = *pos;
        // Skipped here rather than by the reader: empty lines between
        // requests go on at once, while a head's bytes are held.
        if self.reader.skip_empty_lines(chunk, pos) > 0 {
            emit.bytes(Fate::Forward, start, *pos);
            return;
        }
        // In a head (or between messages), not in a body.
        let at_head = self.reader.body_complete();
        match self.reader.next(chunk, pos) {
            Ok(None) if at_head => self.held += *pos - start,
            Ok(Some(Part::Head(head))) => {
                let bytes = if std::mem::take(&mut self.held) > 0 {
                    HeadBytes::Joined(head.clone())
                } else {
                    HeadBytes::InChunk(start, *pos)
                };
                self.on_head(&head, bytes, decide, emit);
            }
            Ok(_) => {
                emit.bytes(self.fate(), start, *pos);
                if self.reader.body_complete() {
                    self.swallowing = false;
                }
            }
            // The only failure at a head: longer than `max_head`.
            Err(_) if at_head => self.give_up_head(start, *pos, emit),
            Err(_) => {
                emit.bytes(self.fate(), start, *pos);
                self.give_up_body(emit);
            }
        }
        if *pos == start && self.state == State::Gating {
            // Never expected; it would otherwise spin on this chunk forever.
            self.stop(State::PassThrough);
        }
    }

    fn fate(&self) -> Fate {
        if self.swallowing {
            Fate::Swallow
        } else {
            Fate::Forward
        }
    }

    fn on_head(
        &mut self,
        head: &[u8],
        bytes: HeadBytes,
        decide: &mut dyn FnMut(&RequestHead<'_>) -> Verdict,
        emit: &mut Emitter<'_>,
    ) {
        // The reader bounds only a head still arriving; one that came whole
        // in a chunk may be longer.
        let request = (head.len() <= self.max_head)
            .then(|| parse_request(head))
            .flatten();
        let Some(request) = request else {
            // Forwarded as it came: the target decides what it makes of it.
            emit.head(bytes, Fate::Forward);
            return self.stop(State::PassThrough);
        };
        if request.leaves_http() {
            // Whether the target agrees is in its response, which the gate
            // does not see: the rest may not be HTTP/1 at all.
            emit.head(bytes, Fate::Forward);
            self.forwarded += 1;
            return self.stop(State::PassThrough);
        }
        self.reader.set_framing(request.framing);
        match decide(&request.head()) {
            Verdict::Pass => self.forward(bytes, emit),
            Verdict::Delay(wait) => {
                emit.push(Segment::Wait(wait));
                self.forward(bytes, emit);
            }
            Verdict::DelayResponse(hold) => {
                self.forward(bytes, emit);
                emit.push(Segment::DelayResponse(hold));
            }
            Verdict::Respond(response) => {
                emit.head(bytes, Fate::Swallow);
                let close = request.closes_after_answer();
                emit.push(Segment::Respond {
                    bytes: render(&response, &request, close),
                    after_requests: self.forwarded,
                });
                if close {
                    emit.push(Segment::Close);
                    self.stop(State::Closed);
                } else {
                    self.swallowing = request.has_body();
                }
            }
            Verdict::Close => {
                emit.head(bytes, Fate::Swallow);
                emit.push(Segment::Close);
                self.stop(State::Closed);
            }
        }
    }

    fn forward(&mut self, head: HeadBytes, emit: &mut Emitter<'_>) {
        emit.head(head, Fate::Forward);
        self.forwarded += 1;
    }

    /// A head over `max_head`: what was held of it goes on as it came, and
    /// the gate stops looking.
    fn give_up_head(&mut self, start: usize, pos: usize, emit: &mut Emitter<'_>) {
        let mut kept = self.reader.take_pending();
        // Past the held bytes, the reader may have kept some of this chunk
        // too; those not advanced over are forwarded from the chunk itself.
        kept.truncate(std::mem::take(&mut self.held) + (pos - start));
        if !kept.is_empty() {
            emit.push(Segment::Forward(kept.freeze()));
        }
        self.stop(State::PassThrough);
    }

    /// A body that cannot be followed (a bad chunk line, trailers too long).
    fn give_up_body(&mut self, emit: &mut Emitter<'_>) {
        if self.swallowing {
            // The target never saw this request's head, so it must not get
            // the rest of its body; and the next request cannot be found.
            emit.push(Segment::Close);
            self.stop(State::Closed);
        } else {
            self.stop(State::PassThrough);
        }
    }

    fn stop(&mut self, state: State) {
        self.state = state;
        self.swallowing = false;
        // Its buffer is of no use any more.
        self.reader = Reader::new(0);
    }
}

/// A request head parsed, borrowing from the head's bytes.
struct ParsedRequest<'h> {
    version: &'static str,
    method: &'h str,
    path: &'h str,
    headers: HeaderBlock,
    framing: Framing,
}

/// `None` for whatever the gate does not gate: the HTTP/2 preface, a head
/// `httparse` rejects, a body that cannot be delimited.
fn parse_request(head: &[u8]) -> Option<ParsedRequest<'_>> {
    if head.starts_with(b"PRI * HTTP/2.0") {
        return None;
    }
    let mut slots = [httparse::EMPTY_HEADER; HEADER_SLOTS];
    let mut req = httparse::Request::new(&mut slots);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) {
        return None;
    }
    let headers = owned_headers(req.headers);
    let framing = request_framing(&headers).ok()?;
    Some(ParsedRequest {
        version: version_name(req.version),
        method: req.method?,
        path: req.path?,
        headers,
        framing,
    })
}

impl ParsedRequest<'_> {
    fn head(&self) -> RequestHead<'_> {
        RequestHead {
            version: self.version,
            method: self.method,
            path: self.path,
            headers: &self.headers,
            has_body: self.has_body(),
        }
    }

    fn has_body(&self) -> bool {
        self.framing != Framing::Length(0)
    }

    /// CONNECT, or a request to switch protocols.
    fn leaves_http(&self) -> bool {
        self.method.eq_ignore_ascii_case("CONNECT") || asks_to_upgrade(&self.headers)
    }

    /// Whether the connection must close after the gate answers this request.
    fn closes_after_answer(&self) -> bool {
        let asked = has_token(&self.headers, "connection", "close")
            || (self.version == "HTTP/1.0"
                && !has_token(&self.headers, "connection", "keep-alive"));
        // The client may be waiting for a 100 Continue and never send the
        // body, or send it after all: where its next request starts is unknown.
        let body_may_not_come =
            self.has_body() && has_token(&self.headers, "expect", "100-continue");
        asked || body_may_not_come
    }
}

/// The bytes of `response`, answering `request`.
fn render(response: &Response, request: &ParsedRequest<'_>, close: bool) -> Bytes {
    let status = if (100..=999).contains(&response.status) {
        response.status
    } else {
        500
    };
    let mut text = format!("{} {status} {}\r\n", request.version, reason(status));
    for (name, value) in &response.headers {
        let framing = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f));
        if !framing && is_token(name) && is_field_value(value) {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        }
    }
    // RFC 9110 §8.6: none for 1xx and 204.
    if status >= 200 && status != 204 {
        text.push_str(&format!("content-length: {}\r\n", response.body.len()));
    }
    if close {
        text.push_str("connection: close\r\n");
    } else if request.version == "HTTP/1.0" {
        // An HTTP/1.0 client closes unless told the connection stays open.
        text.push_str("connection: keep-alive\r\n");
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    // A body after these would be read as the start of the next response.
    let bodiless = request.method.eq_ignore_ascii_case("HEAD")
        || status < 200
        || status == 204
        || status == 304;
    if !bodiless {
        bytes.extend_from_slice(&response.body);
    }
    Bytes::from(bytes)
}

fn reason(status: u16) -> &'static str {
    let common = match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    // Clients ignore the phrase; one by class is as good as any.
    match (common, status / 100) {
        ("", 1) => "Informational",
        ("", 2) => "Success",
        ("", 3) => "Redirection",
        ("", 4) => "Client Error",
        ("", _) => "Server Error",
        (phrase, _) => phrase,
    }
}

/// RFC 9110 §5.6.2.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_field_value(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'\0'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Forward,
    Swallow,
}

impl Fate {
    fn segment(self, bytes: Bytes) -> Segment {
        match self {
            Fate::Forward => Segment::Forward(bytes),
            Fate::Swallow => Segment::Swallow(bytes),
        }
    }
}

/// Where a complete head's bytes are: in the chunk being fed, or joined by
/// the reader from earlier chunks and this one.
enum HeadBytes {
    InChunk(usize, usize),
    Joined(Bytes),
}

/// The segments of one fed chunk. Consecutive bytes with the same fate come
/// out as one slice, so a connection that only passes costs a segment a chunk.
struct Emitter<'a> {
    chunk: &'a Bytes,
    out: &'a mut Vec<Segment>,
    /// The run being gathered: its fate and its range in the chunk.
    run: Option<(Fate, usize, usize)>,
}

impl Emitter<'_> {
    fn bytes(&mut self, fate: Fate, from: usize, to: usize) {
        if from == to {
            return;
        }
        if let Some((f, _, end)) = &mut self.run {
            if *f == fate && *end == from {
                *end = to;
                return;
            }
        }
        self.flush();
        self.run = Some((fate, from, to));
    }

    fn head(&mut self, head: HeadBytes, fate: Fate) {
        match head {
            HeadBytes::InChunk(from, to) => self.bytes(fate, from, to),
            HeadBytes::Joined(bytes) => self.push(fate.segment(bytes)),
        }
    }

    fn push(&mut self, segment: Segment) {
        self.flush();
        self.out.push(segment);
    }

    fn flush(&mut self) {
        if let Some((fate, from, to)) = self.run.take() {
            self.out.push(fate.segment(self.chunk.slice(from..to)));
        }
    }
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
