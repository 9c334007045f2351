//! An HTTP exchange (a request paired with its response) and the capture
//! of its bodies.

use bytes::{Bytes, BytesMut};

use super::HeaderBlock;
use crate::grpc::StreamMessageCounters;
use crate::{Direction, Timestamp};

/// A message body: the captured prefix and the true size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapturedBody {
    /// The first `capture_limit` bytes (as sent, before any content decoding).
    pub data: Bytes,
    /// Every body byte, captured or not (chunk framing excluded).
    pub size: u64,
}

impl CapturedBody {
    /// Whether bytes past the capture limit were left out.
    pub fn truncated(&self) -> bool {
        self.size > self.data.len() as u64
    }
}

/// A request and its response, as one decoder saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpExchange {
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    pub version: &'static str,
    /// The request method (`GET`, `CONNECT` …).
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The final status; `None` if no response arrived.
    pub status: Option<u16>,
    /// The request head's fields (HTTP/2: less pseudo-headers other than
    /// `:authority` and `:scheme`).
    pub request_headers: HeaderBlock,
    /// The final response head's fields (HTTP/2: less pseudo-headers).
    pub response_headers: HeaderBlock,
    /// Trailers after the request body (chunked HTTP/1, or HTTP/2).
    pub request_trailers: HeaderBlock,
    /// Trailers after the response body (gRPC's status lives here).
    pub response_trailers: HeaderBlock,
    /// The request body as sent (content codings not undone).
    pub request_body: CapturedBody,
    /// The response body as sent (content codings not undone).
    pub response_body: CapturedBody,
    /// The request's first byte.
    pub started: Timestamp,
    /// The end of the final response head (interim 1xx responses skipped).
    pub response_head_at: Option<Timestamp>,
    /// When the exchange completed (or was cut off).
    pub completed: Timestamp,
    /// Why the exchange is incomplete, if it is.
    pub error: Option<String>,
    /// For a gRPC call over HTTP/2, its messages counted as they passed
    /// (exact whatever the capture limit kept).
    pub grpc_messages: Option<crate::grpc::StreamMessageCounters>,
    /// What about the exchange's framing a server or intermediary might
    /// read differently (see [`warning`]); empty (and unallocated) for
    /// ordinary traffic.
    pub warnings: Vec<&'static str>,
}

/// The texts of [`HttpExchange::warnings`]: stable, for tools to match on.
pub mod warning {
    /// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and the
    /// message was framed by it; a recipient that went by Content-Length
    /// instead would see a different message boundary (request smuggling).
    pub const REQUEST_CONTENT_LENGTH_AND_TRANSFER_ENCODING: &str =
        "request: content-length and transfer-encoding both present";
    /// The same in a response (response splitting, cache poisoning).
    pub const RESPONSE_CONTENT_LENGTH_AND_TRANSFER_ENCODING: &str =
        "response: content-length and transfer-encoding both present";
}

impl HttpExchange {
    /// Request start to response head, in milliseconds.
    pub fn latency_ms(&self) -> Option<f64> {
        self.response_head_at
            .map(|at| at.millis_since(self.started))
    }

    /// The first header of that name (case-insensitive), in the request.
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request_headers.get(name)
    }

    /// The first header of that name (case-insensitive), in the response.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        self.response_headers.get(name)
    }
}

/// Captures a body up to a limit while counting all of it. A body that
/// arrives in one chunk is kept as a slice of that chunk (no copy); only a
/// body spread over several chunks is copied, and only up to the limit.
#[derive(Debug)]
pub(crate) struct BodyCapture {
    limit: usize,
    size: u64,
    first: Option<Bytes>,
    joined: BytesMut,
}

impl BodyCapture {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            size: 0,
            first: None,
            joined: BytesMut::new(),
        }
    }

    /// Goes on capturing a body that another decoder began (an HTTP/1.1
    /// request that upgraded to HTTP/2, say).
    pub(crate) fn resume(body: CapturedBody, limit: usize) -> Self {
        let mut capture = Self::new(limit);
        capture.size = body.size - body.data.len() as u64;
        capture.push(body.data);
        capture
    }

    /// `part` is a slice of the chunk the proxy forwarded.
    pub(crate) fn push(&mut self, part: Bytes) {
        self.size += part.len() as u64;
        let held = self.first.as_ref().map_or(0, Bytes::len) + self.joined.len();
        let room = self.limit.saturating_sub(held);
        if room == 0 || part.is_empty() {
            return;
        }
        let part = part.slice(..room.min(part.len()));
        match self.first.take() {
            None if self.joined.is_empty() => self.first = Some(part),
            first => {
                if let Some(first) = first {
                    self.joined.extend_from_slice(&first);
                }
                self.joined.extend_from_slice(&part);
            }
        }
    }

    pub(crate) fn finish(self) -> CapturedBody {
        let data = match self.first {
            Some(first) => first,
            None => self.joined.freeze(),
        };
        CapturedBody {
            data,
            size: self.size,
        }
    }
}

/// A request on its way to becoming an [`HttpExchange`], in either HTTP
/// version: the request head as soon as it is parsed, both bodies captured
/// as they pass, the response head when it comes. HTTP/1 queues one per
/// request on the connection, HTTP/2 keeps one per stream; what differs
/// between them (pairing, framing) stays in their decoders.
#[derive(Debug)]
pub(crate) struct ExchangeBuilder {
    pub version: &'static str,
    pub method: String,
    pub path: String,
    pub request_headers: HeaderBlock,
    pub request_trailers: HeaderBlock,
    pub request_body: BodyCapture,
    pub request_done: bool,
    pub started: Timestamp,
    pub status: Option<u16>,
    pub response_headers: HeaderBlock,
    pub response_trailers: HeaderBlock,
    pub response_body: BodyCapture,
    pub response_head_at: Option<Timestamp>,
    pub response_done: bool,
    /// A gRPC call's messages, counted from the body as it passes.
    pub grpc: Option<StreamMessageCounters>,
    pub warnings: Vec<&'static str>,
}

impl ExchangeBuilder {
    /// An exchange whose request head has just been read (its first byte
    /// came at `started`).
    pub(crate) fn new(
        version: &'static str,
        method: String,
        path: String,
        request_headers: HeaderBlock,
        started: Timestamp,
        capture_limit: usize,
    ) -> Self {
        Self {
            version,
            method,
            path,
            request_headers,
            request_trailers: HeaderBlock::new(),
            request_body: BodyCapture::new(capture_limit),
            request_done: false,
            started,
            status: None,
            response_headers: HeaderBlock::new(),
            response_trailers: HeaderBlock::new(),
            response_body: BodyCapture::new(capture_limit),
            response_head_at: None,
            response_done: false,
            grpc: None,
            warnings: Vec::new(),
        }
    }

    /// The final response head (not an interim 1xx) was read at `at`.
    pub(crate) fn response_head(&mut self, status: u16, headers: HeaderBlock, at: Timestamp) {
        self.status = Some(status);
        self.response_headers = headers;
        self.response_head_at = Some(at);
    }

    /// A piece of the body that travelled in `direction`: a slice of the
    /// chunk the proxy forwarded.
    pub(crate) fn body(&mut self, direction: Direction, data: Bytes) {
        if let Some(counters) = self.grpc.as_mut() {
            counters.feed(direction, &data);
        }
        match direction {
            Direction::ClientToTarget => self.request_body.push(data),
            Direction::TargetToClient => self.response_body.push(data),
        }
    }

    /// Both the request and the response have ended.
    pub(crate) fn is_complete(&self) -> bool {
        self.request_done && self.response_done
    }

    /// The exchange as reported at `completed`; `error` says why it is
    /// incomplete, if it is.
    pub(crate) fn finish(self, completed: Timestamp, error: Option<String>) -> HttpExchange {
        HttpExchange {
            version: self.version,
            method: self.method,
            path: self.path,
            status: self.status,
            request_headers: self.request_headers,
            response_headers: self.response_headers,
            request_trailers: self.request_trailers,
            response_trailers: self.response_trailers,
            request_body: self.request_body.finish(),
            response_body: self.response_body.finish(),
            started: self.started,
            response_head_at: self.response_head_at,
            completed,
            error,
            grpc_messages: self.grpc,
            warnings: self.warnings,
        }
    }

    /// The exchange as reported when the connection ends (or decoding
    /// stops) at `at` for the reason `why`: cut off, unless it had
    /// completed.
    pub(crate) fn cut_off(self, at: Timestamp, why: &str) -> HttpExchange {
        let error = if self.is_complete() {
            None
        } else if self.status.is_none() {
            Some(format!("no response: {why}"))
        } else {
            Some(format!("incomplete: {why}"))
        };
        self.finish(at, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_chunk_body_is_a_slice_of_the_chunk() {
        let chunk = Bytes::from_static(b"HEADERSbody!");
        let mut c = BodyCapture::new(100);
        c.push(chunk.slice(7..));
        let body = c.finish();
        assert_eq!(&body.data[..], b"body!");
        assert_eq!(body.data.as_ptr(), chunk[7..].as_ptr(), "no copy");
        assert!(!body.truncated());
    }

    #[test]
    fn spread_body_is_joined_up_to_the_limit_and_counted_in_full() {
        let mut c = BodyCapture::new(5);
        c.push(Bytes::from_static(b"abc"));
        c.push(Bytes::from_static(b"defgh"));
        c.push(Bytes::from_static(b"ijk"));
        let body = c.finish();
        assert_eq!(&body.data[..], b"abcde");
        assert_eq!(body.size, 11);
        assert!(body.truncated());
    }

    #[test]
    fn zero_limit_captures_nothing_but_counts() {
        let mut c = BodyCapture::new(0);
        c.push(Bytes::from_static(b"abc"));
        let body = c.finish();
        assert!(body.data.is_empty());
        assert_eq!(body.size, 3);
    }

    fn get(path: &str) -> ExchangeBuilder {
        ExchangeBuilder::new(
            "HTTP/1.1",
            "GET".into(),
            path.into(),
            HeaderBlock::new(),
            Timestamp(1_000_000),
            4,
        )
    }

    #[test]
    fn a_builder_gathers_heads_and_bodies_into_one_exchange() {
        let mut b = get("/x");
        b.body(Direction::ClientToTarget, Bytes::from_static(b"abcdef"));
        b.request_done = true;
        b.response_head(
            200,
            [("a", "1")].into_iter().collect(),
            Timestamp(3_000_000),
        );
        assert!(!b.is_complete());
        b.body(Direction::TargetToClient, Bytes::from_static(b"ok"));
        b.response_done = true;
        assert!(b.is_complete());
        let x = b.finish(Timestamp(4_000_000), None);
        assert_eq!((x.status, x.latency_ms()), (Some(200), Some(2.0)));
        assert_eq!(
            (&x.request_body.data[..], x.request_body.size),
            (&b"abcd"[..], 6)
        );
        assert_eq!(&x.response_body.data[..], b"ok");
        assert_eq!(x.response_header("A"), Some("1"));
        assert_eq!(x.grpc_messages, None);
    }

    #[test]
    fn cut_off_says_how_far_the_exchange_got() {
        let x = get("/a").cut_off(Timestamp(5), "closed");
        assert_eq!(x.error.as_deref(), Some("no response: closed"));
        let mut b = get("/b");
        b.response_head(200, HeaderBlock::new(), Timestamp(5));
        let x = b.cut_off(Timestamp(6), "closed");
        assert_eq!(x.error.as_deref(), Some("incomplete: closed"));
        let mut b = get("/c");
        b.response_head(204, HeaderBlock::new(), Timestamp(5));
        (b.request_done, b.response_done) = (true, true);
        assert_eq!(b.cut_off(Timestamp(6), "closed").error, None);
    }

    #[test]
    fn a_grpc_exchange_counts_its_messages_both_ways() {
        let mut b = get("/pkg.S/M");
        b.grpc = Some(StreamMessageCounters::default());
        b.body(
            Direction::ClientToTarget,
            Bytes::from_static(b"\0\0\0\0\x01z"),
        );
        b.body(Direction::TargetToClient, Bytes::from_static(b"\0\0\0\0\0"));
        let counts = b.finish(Timestamp(9), None).grpc_messages.unwrap();
        assert_eq!(
            (counts.request.messages(), counts.response.messages()),
            (1, 1)
        );
    }
}
