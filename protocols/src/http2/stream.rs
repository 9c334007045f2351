//! One HTTP/2 stream on its way to becoming an [`HttpExchange`].

use crate::grpc::{is_grpc_content_type, StreamMessageCounters};
use crate::http::{BodyCapture, HeaderBlock, HttpExchange};
use crate::Timestamp;

pub(super) struct Stream {
    pub id: u32,
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
    /// A gRPC call's messages, counted from the DATA frames as they pass.
    pub grpc: Option<StreamMessageCounters>,
}

impl Stream {
    /// A stream opened by a request head (HEADERS from the client, or a
    /// PUSH_PROMISE from the server).
    pub fn open(
        id: u32,
        mut headers: HeaderBlock,
        started: Timestamp,
        capture_limit: usize,
    ) -> Self {
        let method = pseudo_value(&headers, ":method").unwrap_or_default();
        let path = match pseudo_value(&headers, ":path") {
            Some(path) => path,
            // CONNECT names an authority, not a path.
            None => pseudo_value(&headers, ":authority").unwrap_or_default(),
        };
        // `:authority` and `:scheme` say where the request went; they stay
        // visible among the headers (as `host` would in HTTP/1).
        headers
            .retain(|h| !h.name.starts_with(':') || h.name == ":authority" || h.name == ":scheme");
        let grpc = headers
            .get("content-type")
            .filter(|value| is_grpc_content_type(value))
            .map(|_| StreamMessageCounters::default());
        Self {
            id,
            method,
            path,
            request_headers: headers,
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
            grpc,
        }
    }

    pub fn is_complete(&self) -> bool {
        self.request_done && self.response_done
    }

    pub fn into_exchange(self, completed: Timestamp, error: Option<String>) -> HttpExchange {
        HttpExchange {
            version: "HTTP/2",
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
            warnings: Vec::new(),
        }
    }
}

/// The value of a pseudo-header field (`:method` …), whose names are
/// lower-case by definition.
pub(super) fn pseudo_value(headers: &HeaderBlock, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.to_string())
}
