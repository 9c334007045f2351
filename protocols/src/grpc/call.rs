//! One gRPC call seen as an HTTP exchange: its summary ([`GrpcCall`]) and
//! its messages decoded to JSON ([`decode_call`]).

use bytes::Bytes;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::Value;

use super::counter::StreamMessageCounters;
use super::framing::{count_captured, decompress, split_messages, MessageCount};
use super::schema::{DecodedWith, SchemaRegistry};
use super::schemaless::{decode_schemaless, DEFAULT_MAX_DEPTH};
use super::status::{
    percent_decode, status_from_http, status_name, CANCELLED, DEADLINE_EXCEEDED, UNKNOWN,
};
use crate::http::{HeaderBlock, HttpExchange};

/// The service whose calls are health probes (`/grpc.health.v1.Health/Check`
/// and `/Watch`), which users usually want to hide.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// Headers that carry gRPC's own framing rather than the application's
/// metadata; they are left out of `request_metadata` / `response_metadata`
/// (pseudo-headers such as `:path` are left out too). The encodings are
/// reported on their own ([`GrpcCall::request_encoding`]); `grpc-timeout`,
/// `user-agent`, `grpc-status-details-bin` and every custom key are kept.
pub const FRAMING_HEADERS: [&str; 7] = [
    "content-type",
    "te",
    "content-length",
    "grpc-encoding",
    "grpc-accept-encoding",
    "grpc-status",
    "grpc-message",
];

/// Whether a request `content-type` makes the exchange a gRPC call:
/// `application/grpc`, optionally followed by `+codec` (`+proto`, `+json`)
/// or parameters.
pub fn is_grpc_content_type(content_type: &str) -> bool {
    let ct = content_type.trim().as_bytes();
    let prefix = b"application/grpc";
    ct.len() >= prefix.len()
        && ct[..prefix.len()].eq_ignore_ascii_case(prefix)
        && matches!(ct.get(prefix.len()), None | Some(b'+' | b';' | b' '))
}

/// Where a call's status came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusSource {
    /// `grpc-status` in the response trailers: the normal case.
    Trailers,
    /// `grpc-status` in the response headers: a trailers-only response
    /// (the server failed before sending anything).
    TrailersOnly,
    /// The stream was reset (or the connection lost) before any status:
    /// the client saw `CANCELLED`.
    Reset,
    /// No `grpc-status`, but an HTTP status other than 200, mapped as gRPC
    /// clients map it (404 → `UNIMPLEMENTED`, 503 → `UNAVAILABLE` …).
    HttpStatus,
}

/// The summary of one gRPC call: everything in a `grpc_call` event except
/// the decoded messages (see [`decode_call`]) and what the HTTP exchange
/// already has (timing, sizes, raw bodies).
#[derive(Debug, Clone, PartialEq)]
pub struct GrpcCall {
    /// `pkg.Service`, from `:path` `/pkg.Service/Method`; empty if the path
    /// does not have that form.
    pub service: String,
    /// `Method`; the whole path (less its leading `/`) if it does not have
    /// the `/service/method` form.
    pub method: String,
    /// The status code, `None` while no status is known (no response, or a
    /// response that ended without `grpc-status` and without error).
    pub status: Option<u32>,
    /// Where `status` came from (trailers, headers, or the HTTP status).
    pub status_source: Option<StatusSource>,
    /// `grpc-message`, percent-decoded.
    pub message: Option<String>,
    /// Request headers less pseudo-headers and [`FRAMING_HEADERS`].
    pub request_metadata: HeaderBlock,
    /// Response headers then trailers, less pseudo-headers and
    /// [`FRAMING_HEADERS`] (gRPC's initial and trailing metadata together).
    pub response_metadata: HeaderBlock,
    /// Messages the client sent.
    pub request_messages: MessageCount,
    /// Messages the server sent.
    pub response_messages: MessageCount,
    /// The request's `grpc-encoding`, if sent.
    pub request_encoding: Option<String>,
    /// The response's `grpc-encoding`, if sent.
    pub response_encoding: Option<String>,
    /// A `grpc.health.v1.Health` call: a probe, not application traffic.
    pub is_health_check: bool,
}

impl GrpcCall {
    /// The summary of `exchange` if it is a gRPC call (request
    /// `content-type` `application/grpc…`), else `None`.
    ///
    /// `counters` are the stream's [`StreamMessageCounters`] if the HTTP/2
    /// decoder kept them: counts are then exact whatever the capture limit.
    /// Without them messages are counted in the captured bodies, exactly if
    /// the bodies were captured whole, as lower bounds if not.
    pub fn from_exchange(
        exchange: &HttpExchange,
        counters: Option<&StreamMessageCounters>,
    ) -> Option<Self> {
        if !is_grpc_content_type(exchange.request_header("content-type")?) {
            return None;
        }
        let path = exchange.path.split('?').next().unwrap_or_default();
        let path = path.strip_prefix('/').unwrap_or(path);
        let (service, method) = match path.split_once('/') {
            Some((service, method)) if !service.is_empty() && !method.contains('/') => {
                (service.to_string(), method.to_string())
            }
            _ => (String::new(), path.to_string()),
        };
        let (status, status_source, message) = call_status(exchange);
        let exact = |counter: &super::GrpcMessageCounter| MessageCount {
            messages: counter.messages(),
            exact: true,
        };
        let (request_messages, response_messages) = match counters {
            Some(c) => (exact(&c.request), exact(&c.response)),
            None => (
                count_captured(&exchange.request_body),
                count_captured(&exchange.response_body),
            ),
        };
        Some(Self {
            is_health_check: service == HEALTH_SERVICE,
            service,
            method,
            status,
            status_source,
            message,
            request_metadata: metadata(&exchange.request_headers, &HeaderBlock::new()),
            response_metadata: metadata(&exchange.response_headers, &exchange.response_trailers),
            request_messages,
            response_messages,
            request_encoding: exchange.request_header("grpc-encoding").map(str::to_string),
            response_encoding: exchange
                .response_header("grpc-encoding")
                .map(str::to_string),
        })
    }

    /// `OK`, `NOT_FOUND` …; `None` without a status or for a code gRPC does
    /// not define.
    pub fn status_name(&self) -> Option<&'static str> {
        self.status.and_then(status_name)
    }
}

fn call_status(exchange: &HttpExchange) -> (Option<u32>, Option<StatusSource>, Option<String>) {
    let from = |headers: &HeaderBlock, source| {
        let status = headers.get("grpc-status")?;
        // A status a client cannot parse is UNKNOWN to it.
        let code = status.trim().parse().unwrap_or(UNKNOWN);
        let message = headers.get("grpc-message").map(percent_decode);
        Some((Some(code), Some(source), message))
    };
    if let Some(found) = from(&exchange.response_trailers, StatusSource::Trailers)
        .or_else(|| from(&exchange.response_headers, StatusSource::TrailersOnly))
    {
        return found;
    }
    if exchange.error.is_some() {
        // A client whose deadline (`grpc-timeout`) ran out cancels the
        // stream itself: what it saw was DEADLINE_EXCEEDED, not CANCELLED.
        let deadline_passed = exchange
            .request_header("grpc-timeout")
            .and_then(grpc_timeout_nanos)
            .is_some_and(|timeout| {
                exchange
                    .completed
                    .as_nanos()
                    .saturating_sub(exchange.started.as_nanos())
                    >= timeout
            });
        let code = if deadline_passed {
            DEADLINE_EXCEEDED
        } else {
            CANCELLED
        };
        return (Some(code), Some(StatusSource::Reset), None);
    }
    match exchange.status {
        Some(http) if http != 200 => (
            Some(status_from_http(http)),
            Some(StatusSource::HttpStatus),
            None,
        ),
        _ => (None, None, None),
    }
}

/// `grpc-timeout` (`200m`, `5S`, `1H` …: digits then a unit) in nanoseconds.
fn grpc_timeout_nanos(value: &str) -> Option<u64> {
    let value = value.trim();
    let unit = value.chars().last()?;
    let amount: u64 = value[..value.len() - unit.len_utf8()].parse().ok()?;
    let scale: u64 = match unit {
        'H' => 3_600_000_000_000,
        'M' => 60_000_000_000,
        'S' => 1_000_000_000,
        'm' => 1_000_000,
        'u' => 1_000,
        'n' => 1,
        _ => return None,
    };
    amount.checked_mul(scale)
}

fn metadata(headers: &HeaderBlock, trailers: &HeaderBlock) -> HeaderBlock {
    headers
        .iter()
        .chain(trailers.iter())
        .filter(|h| {
            !h.name.starts_with(':')
                && !FRAMING_HEADERS
                    .iter()
                    .any(|f| h.name.eq_ignore_ascii_case(f))
        })
        .collect()
}

/// Bounds on decoding one body, against hostile or enormous input.
#[derive(Debug, Clone)]
pub struct DecodeLimits {
    /// Messages decoded per body; the rest are counted, not decoded.
    pub max_messages: usize,
    /// Decompressed bytes kept per message.
    pub max_message_bytes: usize,
    /// Payload bytes (after decompression) decoded per body, all messages
    /// together: a body of many small compressed messages cannot expand
    /// past it. Decoding stops, reported, when it is spent.
    pub max_body_bytes: usize,
    /// Nesting followed by the schema-less decoder.
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_messages: 1024,
            // A decoded message takes some tens of times its wire size in
            // memory (a JSON value per packed varint): keep both modest.
            max_message_bytes: 256 << 10,
            max_body_bytes: 1 << 20,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// The messages of one body as JSON.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedBody {
    /// One value per message, in order, up to the capture limit and
    /// [`DecodeLimits::max_messages`].
    pub messages: Vec<Value>,
    /// Some of the body's messages are missing from `messages`: cut off by
    /// the capture limit, past `max_messages`, or not decodable.
    pub truncated: bool,
    /// What went wrong, one sentence each (`response message 2: …`).
    pub problems: Vec<String>,
}

impl DecodedBody {
    /// The `*_body_decoded` value of the event: an array of the messages.
    pub fn to_json(&self) -> Value {
        Value::Array(self.messages.clone())
    }
}

/// Both bodies of a call as JSON, and how they were decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedCall {
    /// The client's messages.
    pub request: DecodedBody,
    /// The server's messages.
    pub response: DecodedBody,
    /// The registry's source for the method, or `Schemaless` if it does not
    /// know the method; `None` when no message of the call was decoded
    /// (none sent, or all cut off by the capture limit), since then nothing
    /// was. A message that does not match the schema is shown schema-less
    /// (and named in `problems`) without changing this.
    pub decoded_with: Option<DecodedWith>,
}

/// How the payloads of one body are turned into JSON.
#[derive(Debug, Clone, Copy)]
pub enum PayloadDecoder<'a> {
    /// Protobuf with this message type.
    Schema(&'a MessageDescriptor),
    /// Protobuf without a schema: see [`super::decode_schemaless`].
    Schemaless,
    /// The call uses gRPC's JSON codec (`application/grpc+json`): each
    /// payload is a JSON document, shown as it is.
    Json,
}

/// Whether a gRPC `content-type` names the JSON codec (`application/grpc+json`).
pub fn is_json_codec(content_type: &str) -> bool {
    let codec = content_type.split(';').next().unwrap_or_default().trim();
    codec
        .split_once('+')
        .is_some_and(|(_, codec)| codec.eq_ignore_ascii_case("json"))
}

/// Decodes every captured message of a call with the first source that
/// knows its method: the registry (descriptor sets, `.proto` files or
/// reflection), else the schema-less decoder. A call in gRPC's JSON codec
/// needs no schema: its messages are shown as sent and `decoded_with` is
/// `schemaless`. No I/O.
pub fn decode_call(
    exchange: &HttpExchange,
    call: &GrpcCall,
    registry: &SchemaRegistry,
    limits: &DecodeLimits,
) -> DecodedCall {
    let json = exchange
        .request_header("content-type")
        .is_some_and(is_json_codec);
    let schema = if json {
        None
    } else {
        registry.method(&call.service, &call.method)
    };
    let (input, output) = match (&schema, json) {
        (_, true) => (PayloadDecoder::Json, PayloadDecoder::Json),
        (Some(s), false) => (
            PayloadDecoder::Schema(&s.input),
            PayloadDecoder::Schema(&s.output),
        ),
        (None, false) => (PayloadDecoder::Schemaless, PayloadDecoder::Schemaless),
    };
    let mut request = decode_body(
        &exchange.request_body.data,
        call.request_encoding.as_deref(),
        input,
        limits,
    );
    let mut response = decode_body(
        &exchange.response_body.data,
        call.response_encoding.as_deref(),
        output,
        limits,
    );
    for (body, direction, captured) in [
        (&mut request, "request", &exchange.request_body),
        (&mut response, "response", &exchange.response_body),
    ] {
        // The capture limit can fall between messages (or before the
        // first): the framing then shows no cut, yet messages are missing.
        body.truncated |= captured.truncated();
        for problem in &mut body.problems {
            *problem = format!("{direction} {problem}");
        }
    }
    let decoded_any = !request.messages.is_empty() || !response.messages.is_empty();
    DecodedCall {
        decoded_with: decoded_any
            .then(|| schema.map_or(DecodedWith::Schemaless, |s| s.source.into())),
        request,
        response,
    }
}

/// Decodes the messages of one captured body (`data` as sent, framing
/// included) with `decoder`. `encoding` is that direction's
/// `grpc-encoding`. Problems are worded `message N: …` (counting from 1) or
/// `body: …`. A payload that does not decode as its schema (or as JSON) is
/// shown schema-less, with a problem saying so.
pub fn decode_body(
    data: &Bytes,
    encoding: Option<&str>,
    decoder: PayloadDecoder<'_>,
    limits: &DecodeLimits,
) -> DecodedBody {
    let split = split_messages(data, limits.max_messages);
    let mut body = DecodedBody::default();
    let mut budget = limits.max_body_bytes;
    for (index, message) in split.messages.iter().enumerate() {
        let n = index + 1;
        if budget == 0 {
            body.truncated = true;
            body.problems.push(format!(
                "message {n} and later: not decoded, past the {} bytes decoded per body",
                limits.max_body_bytes
            ));
            break;
        }
        let room = limits.max_message_bytes.min(budget);
        if !message.compressed && message.payload.len() > room {
            body.truncated = true;
            body.problems.push(format!(
                "message {n}: not decoded, its {} bytes are over the {room} allowed",
                message.payload.len()
            ));
            continue;
        }
        let payload = match decompress(message, encoding, room) {
            Ok(payload) => payload,
            Err(reason) => {
                body.problems.push(format!("message {n}: {reason}"));
                body.truncated = true;
                continue;
            }
        };
        budget -= payload.data.len().min(budget);
        if payload.truncated {
            body.truncated = true;
            body.problems.push(format!(
                "message {n}: decompressed output incomplete (broken, or over {room} bytes)"
            ));
        }
        let decoded = match decoder {
            PayloadDecoder::Schema(descriptor) => with_schema(descriptor, &payload.data)
                .map_err(|e| format!("does not decode as {}: {e}", descriptor.full_name())),
            PayloadDecoder::Json => {
                serde_json::from_slice(&payload.data).map_err(|e| format!("is not JSON: {e}"))
            }
            PayloadDecoder::Schemaless => Ok(decode_schemaless(&payload.data, limits.max_depth)),
        };
        let value = decoded.unwrap_or_else(|reason| {
            body.problems
                .push(format!("message {n}: {reason}; shown schema-less"));
            decode_schemaless(&payload.data, limits.max_depth)
        });
        body.messages.push(value);
    }
    if split.omitted > 0 {
        body.truncated = true;
        body.problems.push(format!(
            "body: {} more messages not decoded (limit {})",
            split.omitted, limits.max_messages
        ));
    }
    if let Some(cut) = split.cut_off {
        body.truncated = true;
        let n = split.messages.len() as u64 + split.omitted + 1;
        body.problems.push(match cut.declared_length {
            Some(length) => format!(
                "message {n}: cut off, {} of its {} payload bytes captured",
                cut.captured - super::framing::PREFIX_LEN,
                length
            ),
            None => format!("message {n}: cut off within its 5-byte prefix"),
        });
    }
    body
}

/// A payload decoded with its descriptor, in protobuf's canonical JSON
/// mapping (lowerCamelCase names, 64-bit integers as strings, enums by name,
/// default values left out).
fn with_schema(descriptor: &MessageDescriptor, payload: &[u8]) -> Result<Value, String> {
    let message = DynamicMessage::decode(descriptor.clone(), payload).map_err(|e| e.to_string())?;
    serde_json::to_value(&message).map_err(|e| e.to_string())
}
