//! What an HTTP decoder (HTTP/1.1 or HTTP/2) reports: one exchange, a
//! request paired with its response.

use bytes::{Bytes, BytesMut};

use crate::Timestamp;

/// One header field as it crossed the wire (name case kept; values that are
/// not UTF-8 are shown lossily).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl Header {
    pub(crate) fn from_raw(name: &str, value: &[u8]) -> Self {
        Self {
            name: name.to_string(),
            value: String::from_utf8_lossy(value).into_owned(),
        }
    }
}

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
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The final status; `None` if no response arrived.
    pub status: Option<u16>,
    pub request_headers: Vec<Header>,
    pub response_headers: Vec<Header>,
    pub request_trailers: Vec<Header>,
    pub response_trailers: Vec<Header>,
    pub request_body: CapturedBody,
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
}

impl HttpExchange {
    /// Request start to response head, in milliseconds.
    pub fn latency_ms(&self) -> Option<f64> {
        self.response_head_at
            .map(|at| at.millis_since(self.started))
    }

    /// The first header of that name (case-insensitive), in the request.
    pub fn request_header(&self, name: &str) -> Option<&str> {
        find(&self.request_headers, name)
    }

    /// The first header of that name (case-insensitive), in the response.
    pub fn response_header(&self, name: &str) -> Option<&str> {
        find(&self.response_headers, name)
    }
}

fn find<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
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
}
