//! The `grpc_call` payload of `grpc.call.completed`.

use super::HeaderMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One gRPC call (unary or streaming): an HTTP/2 stream whose request was
/// `application/grpc`, with its status, metadata and decoded messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GrpcCallInfo {
    /// The connection's id, as in its `connection.*` events.
    pub connection: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    /// `pkg.Service`.
    pub service: String,
    /// The method's name within the service.
    pub method: String,
    /// The HTTP request path, `/pkg.Service/Method`.
    pub path: String,
    /// The gRPC status code; `null` when the call has none (cut off before
    /// a status without a reset).
    pub grpc_status: Option<u32>,
    /// `OK`, `NOT_FOUND` …
    pub grpc_status_name: Option<String>,
    /// `grpc-message`, percent-decoded.
    pub grpc_message: Option<String>,
    /// The HTTP status of the response head, if one came.
    pub http_status: Option<u16>,
    /// From the request's first byte to the response head.
    pub latency_ms: Option<f64>,
    /// Every request body byte (gRPC framing included), captured or not.
    pub request_size: u64,
    pub response_size: u64,
    /// Messages each way, counted as they passed.
    pub request_messages: u64,
    pub response_messages: u64,
    /// Request headers without pseudo-headers and gRPC's own framing
    /// headers (`content-type`, `grpc-encoding` …); names lower-cased.
    pub request_metadata: HeaderMap,
    /// The response's initial and trailing metadata, likewise.
    pub response_metadata: HeaderMap,
    /// Every captured message of the call, in protobuf's JSON mapping (or
    /// the schema-less shape, keyed by field number).
    pub request_body_decoded: serde_json::Value,
    pub response_body_decoded: serde_json::Value,
    /// Messages left out of `*_body_decoded` (past the capture limit, or
    /// undecodable).
    pub request_body_truncated: bool,
    pub response_body_truncated: bool,
    /// `descriptor_set`, `reflection` or `schemaless`; `null` when no
    /// message of the call was decoded (none sent, or all past the capture
    /// limit).
    pub decoded_with: Option<String>,
    /// What could not be decoded, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decode_problems: Vec<String>,
    /// A `grpc.health.v1.Health` call (a readiness probe): views may hide it.
    pub health_check: bool,
    /// Why the call is incomplete (reset, cut off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
