//! Turning what a decoder recognised into events.

use std::sync::Arc;

use tapmesh_protocols::grpc::{DecodedCall, GrpcCall};
use tapmesh_protocols::http::{HeaderBlock, HttpExchange};
use tapmesh_protocols::kafka::KafkaExchange;
use tapmesh_protocols::{DecodeFailure, Direction};

use crate::events::{
    BodyEncoding, DecodeErrorInfo, GrpcCallInfo, HeaderMap, KafkaRequestInfo, KafkaTopicPartition,
    RequestInfo,
};
use crate::redact::Redactor;

/// The edge a connection crosses, as events name it.
pub(crate) struct Edge<'a> {
    pub connection: u64,
    pub source: &'a Arc<str>,
    pub target: &'a Arc<str>,
    pub ingress: &'a Arc<str>,
}

impl Edge<'_> {
    pub fn to_owned(&self) -> OwnedEdge {
        OwnedEdge {
            connection: self.connection,
            source: self.source.clone(),
            target: self.target.clone(),
            ingress: self.ingress.clone(),
        }
    }
}

/// An [`Edge`] that outlives its connection (for events published later).
pub(crate) struct OwnedEdge {
    connection: u64,
    source: Arc<str>,
    target: Arc<str>,
    ingress: Arc<str>,
}

impl OwnedEdge {
    pub fn borrow(&self) -> Edge<'_> {
        Edge {
            connection: self.connection,
            source: &self.source,
            target: &self.target,
            ingress: &self.ingress,
        }
    }
}

/// Builds the event from the exchange, moving its strings rather than
/// copying them: this runs once per request on the traffic path. Secrets
/// are hidden here, before the event exists (see [`crate::redact`]); an
/// exchange with nothing secret costs that a look at its header names and
/// bodies' content types.
pub(crate) fn request_info(
    edge: &Edge<'_>,
    mut x: HttpExchange,
    redact: Option<&Redactor>,
) -> RequestInfo {
    let (mut request_body, request_body_encoding) = BodyEncoding::encode(&x.request_body.data);
    let (mut response_body, response_body_encoding) = BodyEncoding::encode(&x.response_body.data);
    if let Some(redact) = redact {
        let body = |body: &mut String, encoding, headers: &HeaderBlock| {
            if encoding == BodyEncoding::Utf8 {
                let content_type = headers.get("content-type");
                redact.body(body, content_type, headers.get("content-encoding"));
            }
        };
        body(&mut request_body, request_body_encoding, &x.request_headers);
        body(
            &mut response_body,
            response_body_encoding,
            &x.response_headers,
        );
        redact.target(&mut x.path);
        for block in [
            &mut x.request_headers,
            &mut x.response_headers,
            &mut x.request_trailers,
            &mut x.response_trailers,
        ] {
            *block = redact.headers(std::mem::take(block));
        }
    }
    RequestInfo {
        connection: edge.connection,
        source: edge.source.clone(),
        target: edge.target.clone(),
        ingress: edge.ingress.clone(),
        version: x.version.to_string(),
        latency_ms: x.latency_ms().map(round_micros),
        status_code: x.status,
        request_size: x.request_body.size,
        response_size: x.response_body.size,
        request_body,
        request_body_encoding,
        request_body_truncated: x.request_body.truncated(),
        response_body,
        response_body_encoding,
        response_body_truncated: x.response_body.truncated(),
        method: x.method,
        path: x.path,
        request_headers: HeaderMap::from_block(x.request_headers),
        response_headers: HeaderMap::from_block(x.response_headers),
        request_trailers: HeaderMap::from_block(x.request_trailers),
        response_trailers: HeaderMap::from_block(x.response_trailers),
        warnings: x.warnings.iter().map(|w| w.to_string()).collect(),
        error: x.error,
        fault: None,
    }
}

/// As [`request_info`], for a gRPC call: its metadata and decoded
/// messages are redacted.
pub(crate) fn grpc_call_info(
    edge: &Edge<'_>,
    x: &HttpExchange,
    call: GrpcCall,
    decoded: &DecodedCall,
    redact: Option<&Redactor>,
) -> GrpcCallInfo {
    let metadata = |block: HeaderBlock| match redact {
        Some(redact) => redact.metadata(block),
        None => block,
    };
    let messages = |mut value: serde_json::Value| {
        if let Some(redact) = redact {
            redact.messages(&mut value);
        }
        value
    };
    let mut problems = decoded.request.problems.clone();
    problems.extend(decoded.response.problems.iter().cloned());
    GrpcCallInfo {
        connection: edge.connection,
        source: edge.source.clone(),
        target: edge.target.clone(),
        ingress: edge.ingress.clone(),
        grpc_status_name: call.status_name().map(str::to_string),
        service: call.service,
        method: call.method,
        path: x.path.clone(),
        grpc_status: call.status,
        grpc_message: call.message,
        http_status: x.status,
        latency_ms: x.latency_ms().map(round_micros),
        request_size: x.request_body.size,
        response_size: x.response_body.size,
        request_messages: call.request_messages.messages,
        response_messages: call.response_messages.messages,
        request_metadata: HeaderMap::from_block(metadata(call.request_metadata)),
        response_metadata: HeaderMap::from_block(metadata(call.response_metadata)),
        request_body_decoded: messages(decoded.request.to_json()),
        response_body_decoded: messages(decoded.response.to_json()),
        request_body_truncated: decoded.request.truncated,
        response_body_truncated: decoded.response.truncated,
        decoded_with: decoded.decoded_with.map(|d| d.as_str().to_string()),
        decode_problems: problems,
        health_check: call.is_health_check,
        error: x.error.clone(),
    }
}

pub(crate) fn kafka_request_info(edge: &Edge<'_>, x: &KafkaExchange) -> KafkaRequestInfo {
    KafkaRequestInfo {
        connection: edge.connection,
        source: edge.source.clone(),
        target: edge.target.clone(),
        ingress: edge.ingress.clone(),
        api_key: x.api_key,
        api_name: x.api_name.map(str::to_string),
        api_version: x.api_version,
        correlation_id: x.correlation_id,
        client_id: x.client_id.as_deref().map(str::to_string),
        latency_ms: x.latency_ms().map(round_micros),
        request_size: x.request_size,
        response_size: x.response_size,
        error_code: x.error_code,
        topics: x.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| KafkaTopicPartition {
                    topic: t.topic.clone(),
                    partition: t.partition,
                    records: t.records,
                    bytes: t.bytes,
                    error_code: t.error_code,
                })
                .collect()
        }),
    }
}

pub(crate) fn decode_error_info(edge: &Edge<'_>, failure: DecodeFailure) -> DecodeErrorInfo {
    DecodeErrorInfo {
        connection: edge.connection,
        source: edge.source.clone(),
        target: edge.target.clone(),
        ingress: edge.ingress.clone(),
        protocol: failure.protocol.to_string(),
        direction: match failure.direction {
            Direction::ClientToTarget => "client_to_target",
            Direction::TargetToClient => "target_to_client",
        }
        .to_string(),
        offset: failure.offset,
        kind: Some(failure.kind.name().to_string()),
        reason: failure.detail,
    }
}

/// Milliseconds with microsecond precision (12.345, not 12.344999999).
pub(crate) fn round_micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}
