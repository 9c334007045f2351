//! gRPC on top of HTTP/2: call summaries, message framing and decoding
//! messages to JSON. Sans-IO like the rest of the crate; the one function
//! that reads files is the explicit loader [`SchemaRegistry::add_proto_files`].
//!
//! # For the HTTP/2 decoder and the runtime
//!
//! 1. **Recognise a call.** A request whose `content-type` is
//!    `application/grpc…` ([`is_grpc_content_type`]) is a gRPC call.
//! 2. **Count messages while they pass** (optional, cheap): keep a
//!    [`StreamMessageCounters`] per such stream and call
//!    `counters.feed(direction, data_frame_payload)` for every DATA frame
//!    (padding stripped). It follows only the 5-byte prefixes, copies nothing
//!    and makes the counts exact even past the capture limit.
//! 3. **Summarise.** When the exchange completes,
//!    [`GrpcCall::from_exchange`]`(&exchange, Some(&counters))` gives
//!    service, method, status (trailers, trailers-only headers, `CANCELLED`
//!    for a reset, or mapped from a non-200 HTTP status), percent-decoded
//!    `grpc-message`, metadata, counts and `is_health_check`. It returns
//!    `None` for an exchange that is not gRPC. It expects a trailers-only
//!    response (one HEADERS frame with END_STREAM) in `response_headers`,
//!    real trailers in `response_trailers`, and `error` set when the stream
//!    was reset or the connection lost before the response ended. Without counters the counts
//!    come from the captured bodies ([`MessageCount::exact`] says whether
//!    they are exact or lower bounds).
//! 4. **Decode.** [`decode_call`]`(&exchange, &call, &registry, &limits)`
//!    splits both captured bodies into messages, decompresses gzip/deflate
//!    ones (bounded), and decodes each to JSON with the method's schema from
//!    the [`SchemaRegistry`], or schema-less ([`decode_schemaless`]) when no
//!    schema knows the method. [`DecodedBody::to_json`] is the event's
//!    `*_body_decoded` array, [`DecodedWith::as_str`] its `decoded_with`.
//!    Decoding is the costly part: it belongs off the traffic path (it
//!    needs only the exchange and a registry snapshot).
//! 5. **Schemas.** Build the registry at start-up from the spec's
//!    descriptor sets ([`SchemaRegistry::add_descriptor_set`]) or `.proto`
//!    files ([`SchemaRegistry::add_proto_files`]). Feed gRPC reflection
//!    answers (`FileDescriptorProto` bytes) to
//!    [`SchemaRegistry::add_reflection_files`] as they arrive; it reports
//!    which imports are still missing so they can be asked for next, and
//!    refuses a bad file alone, never the whole answer.
//!    [`SchemaRegistry::knows_service`] says whether asking is needed.
//!
//! Event field mapping: `grpc_status` = [`GrpcCall::status`],
//! `grpc_status_name` = [`GrpcCall::status_name`], `grpc_message` =
//! [`GrpcCall::message`], `request_messages` / `response_messages` =
//! `.messages` of the counts.

mod call;
mod counter;
mod framing;
mod schema;
mod schemaless;
mod status;

pub use call::{
    decode_body, decode_call, is_grpc_content_type, is_json_codec, DecodeLimits, DecodedBody,
    DecodedCall, GrpcCall, PayloadDecoder, StatusSource, FRAMING_HEADERS, HEALTH_SERVICE,
};
pub use counter::{GrpcMessageCounter, StreamMessageCounters};
pub use framing::{
    count_captured, decompress, split_messages, CutOffMessage, FramedMessage, FramedMessages,
    MessageCount, Payload, PREFIX_LEN,
};
pub use schema::{
    DecodedWith, MethodSchema, ReflectionProgress, SchemaError, SchemaRegistry, SchemaSource,
    MAX_WAITING_FILES,
};
pub use schemaless::{decode_schemaless, DEFAULT_MAX_DEPTH};
pub use status::{
    percent_decode, status_from_http, status_name, CANCELLED, DEADLINE_EXCEEDED, UNKNOWN,
};

#[cfg(test)]
mod tests;
