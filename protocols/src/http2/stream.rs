//! An HTTP/2 stream's request head, as the start of an exchange.

use crate::grpc::{is_grpc_content_type, StreamMessageCounters};
use crate::http::{ExchangeBuilder, HeaderBlock};
use crate::Timestamp;

/// The exchange of a stream opened by a request head (HEADERS from the
/// client, or a PUSH_PROMISE from the server): the pseudo-headers give its
/// method and path, and a gRPC call has its messages counted.
pub(super) fn open(
    mut headers: HeaderBlock,
    started: Timestamp,
    capture_limit: usize,
) -> ExchangeBuilder {
    let method = pseudo_value(&headers, ":method").unwrap_or_default();
    let path = match pseudo_value(&headers, ":path") {
        Some(path) => path,
        // CONNECT names an authority, not a path.
        None => pseudo_value(&headers, ":authority").unwrap_or_default(),
    };
    // `:authority` and `:scheme` say where the request went; they stay
    // visible among the headers (as `host` would in HTTP/1).
    headers.retain(|h| !h.name.starts_with(':') || h.name == ":authority" || h.name == ":scheme");
    let grpc = headers
        .get("content-type")
        .filter(|value| is_grpc_content_type(value))
        .map(|_| StreamMessageCounters::default());
    let mut exchange = ExchangeBuilder::new(
        super::VERSION,
        method,
        path,
        headers,
        started,
        capture_limit,
    );
    exchange.grpc = grpc;
    exchange
}

/// The value of a pseudo-header field (`:method` …), whose names are
/// lower-case by definition.
pub(super) fn pseudo_value(headers: &HeaderBlock, name: &str) -> Option<String> {
    headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.to_string())
}
