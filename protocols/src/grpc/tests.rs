//! End-to-end tests of the gRPC layer: real protobuf encodings (made with
//! prost-reflect from a test `.proto` compiled by protox) inside gRPC framing
//! inside `HttpExchange`s as the HTTP/2 decoder reports them.

use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use serde_json::{json, Value};

use super::*;
use crate::http::{CapturedBody, Field, HeaderBlock, HttpExchange};
use crate::Timestamp;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/grpc")
}

const INVENTORY: &str = "shop/inventory.proto";
const SERVICE: &str = "shop.inventory.v1.Inventory";

fn proto_registry() -> SchemaRegistry {
    SchemaRegistry::from_proto_files(&[INVENTORY], &[data_dir()]).unwrap()
}

/// The test files as an encoded `FileDescriptorSet`, imports included, as
/// `protoc --descriptor_set_out --include_imports` writes it.
fn descriptor_set_bytes() -> Vec<u8> {
    protox::compile([INVENTORY], [data_dir()])
        .unwrap()
        .encode_to_vec()
}

/// A full item in protobuf's JSON mapping, as prost-reflect prints it.
fn item_json() -> Value {
    json!({
        "sku": "SKU-42",
        "displayName": "Teapot, \"short & stout\"",
        "price": {"currency": "EUR", "units": "12", "nanos": 500000000},
        "tags": ["kitchen", "ceramic"],
        "colour": "BLUE",
        "stockBySite": {"berlin": 3, "lyon": 0},
        "updatedAt": "2026-11-23T03:00:00Z",
        "thumbnail": "AAEC/w==",
        "weightKg": 0.75
    })
}

fn encode(descriptor: &MessageDescriptor, value: &Value) -> Vec<u8> {
    DynamicMessage::deserialize(descriptor.clone(), value)
        .unwrap()
        .encode_to_vec()
}

fn message_type(registry: &SchemaRegistry, name: &str) -> MessageDescriptor {
    registry.pool().get_message_by_name(name).unwrap()
}

fn frame(compressed: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![u8::from(compressed)];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn block(fields: &[(&str, &str)]) -> HeaderBlock {
    fields.iter().copied().collect()
}

/// The same block with `content-type` set to `value`.
fn with_content_type(headers: &HeaderBlock, value: &str) -> HeaderBlock {
    headers
        .iter()
        .map(|h| match h.name {
            "content-type" => Field {
                name: h.name,
                value,
            },
            _ => h,
        })
        .collect()
}

fn body(data: Vec<u8>) -> CapturedBody {
    CapturedBody {
        size: data.len() as u64,
        data: Bytes::from(data),
    }
}

/// A completed unary call as the HTTP/2 decoder would report it.
fn exchange(path: &str, request: Vec<u8>, response: Vec<u8>) -> HttpExchange {
    HttpExchange {
        version: "HTTP/2",
        method: "POST".into(),
        path: path.into(),
        status: Some(200),
        request_headers: block(&[
            (":method", "POST"),
            (":path", path),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("grpc-timeout", "1S"),
            ("x-request-id", "abc-123"),
        ]),
        response_headers: block(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("x-served-by", "inventory-1"),
        ]),
        request_trailers: HeaderBlock::new(),
        response_trailers: block(&[("grpc-status", "0")]),
        request_body: body(request),
        response_body: body(response),
        started: Timestamp(0),
        response_head_at: Some(Timestamp(1_000_000)),
        completed: Timestamp(2_000_000),
        error: None,
        grpc_messages: None,
        warnings: Vec::new(),
    }
}

fn get_item_exchange(registry: &SchemaRegistry) -> HttpExchange {
    let request = encode(
        &message_type(registry, "shop.inventory.v1.GetItemRequest"),
        &json!({"sku": "SKU-42", "includeHistory": true}),
    );
    let response = encode(
        &message_type(registry, "shop.inventory.v1.Item"),
        &item_json(),
    );
    exchange(
        "/shop.inventory.v1.Inventory/GetItem",
        frame(false, &request),
        frame(false, &response),
    )
}

#[test]
fn proto_files_decode_what_was_encoded() {
    let registry = proto_registry();
    let ex = get_item_exchange(&registry);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let decoded = decode_call(&ex, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::DescriptorSet));
    assert_eq!(
        decoded.request.to_json(),
        json!([{"sku": "SKU-42", "includeHistory": true}])
    );
    assert_eq!(decoded.response.to_json(), json!([item_json()]));
    assert!(decoded.request.problems.is_empty() && decoded.response.problems.is_empty());
    assert!(!decoded.request.truncated && !decoded.response.truncated);
}

#[test]
fn a_descriptor_set_decodes_the_same() {
    let registry = SchemaRegistry::from_descriptor_set(&descriptor_set_bytes()).unwrap();
    let ex = get_item_exchange(&proto_registry());
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let decoded = decode_call(&ex, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::DescriptorSet));
    assert_eq!(decoded.decoded_with.unwrap().as_str(), "descriptor_set");
    assert_eq!(decoded.response.to_json(), json!([item_json()]));
}

/// Nothing was decoded, so nothing says how: a call with no message either
/// way, and one whose messages were all cut off by the capture limit.
#[test]
fn decoded_with_is_none_when_no_message_was_decoded() {
    let registry = proto_registry();
    let empty = exchange("/shop.inventory.v1.Inventory/GetItem", vec![], vec![]);
    let call = GrpcCall::from_exchange(&empty, None).unwrap();
    let decoded = decode_call(&empty, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, None);
    assert_eq!(decoded.request.to_json(), json!([]));
    assert_eq!(decoded.response.to_json(), json!([]));

    // Each body captured up to 3 bytes: within both messages' 5-byte prefix.
    let mut cut = get_item_exchange(&registry);
    for body in [&mut cut.request_body, &mut cut.response_body] {
        body.data = body.data.slice(..3);
    }
    let call = GrpcCall::from_exchange(&cut, None).unwrap();
    let decoded = decode_call(&cut, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, None);
    assert!(decoded.request.truncated && decoded.response.truncated);
    assert_eq!(
        decoded.response.problems,
        ["response message 1: cut off within its 5-byte prefix"]
    );

    // Nothing captured at all: no cut shows in the framing, yet the
    // messages are missing.
    let mut none = get_item_exchange(&registry);
    for body in [&mut none.request_body, &mut none.response_body] {
        body.data = Bytes::new();
    }
    let call = GrpcCall::from_exchange(&none, None).unwrap();
    let decoded = decode_call(&none, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, None);
    assert!(decoded.request.truncated && decoded.response.truncated);
    assert!(decoded.request.problems.is_empty(), "{decoded:?}");

    // One message decoded either way is enough to say how.
    let mut half = get_item_exchange(&registry);
    half.response_body.data = half.response_body.data.slice(..3);
    let call = GrpcCall::from_exchange(&half, None).unwrap();
    let decoded = decode_call(&half, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::DescriptorSet));
}

/// `-bin` metadata reaches the call's metadata as base64 of its bytes,
/// however it crossed the wire.
#[test]
fn binary_metadata_is_base64_of_its_bytes() {
    let mut ex = exchange("/shop.inventory.v1.Inventory/GetItem", vec![], vec![]);
    ex.request_headers.push("trace-bin", b"\0\xff\xfe\x80");
    ex.request_headers.push("pair-bin", b"/wA");
    ex.response_trailers.push("echo-bin", b"//6A");
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.request_metadata.get("trace-bin"), Some("//6A"));
    assert_eq!(call.request_metadata.get("pair-bin"), Some("/wA="));
    assert_eq!(call.request_metadata.get("x-request-id"), Some("abc-123"));
    assert_eq!(call.response_metadata.get("echo-bin"), Some("//6A"));
}

#[test]
fn garbage_is_not_a_descriptor_set() {
    assert!(SchemaRegistry::from_descriptor_set(&[0xff, 0xff, 0xff]).is_err());
    let missing = SchemaRegistry::from_proto_files(&["nope.proto"], &[data_dir()]);
    assert!(missing.unwrap_err().0.contains("nope.proto"));
}

#[test]
fn reflection_answers_are_added_as_their_imports_arrive() {
    let set = prost_types::FileDescriptorSet::decode(&descriptor_set_bytes()[..]).unwrap();
    let file = |name: &str| {
        set.file
            .iter()
            .find(|f| f.name() == name)
            .unwrap()
            .encode_to_vec()
    };
    let mut registry = SchemaRegistry::new();
    // The service's file first, alone: it must wait for its imports.
    let progress = registry.add_reflection_files([file(INVENTORY)]);
    assert_eq!(progress.added, Vec::<String>::new());
    assert_eq!(
        progress.missing,
        ["google/protobuf/timestamp.proto", "shop/common.proto"]
    );
    assert!(!registry.knows_service(SERVICE));

    // One import; the other is still missing.
    let progress = registry.add_reflection_files([file("shop/common.proto")]);
    assert_eq!(progress.added, ["shop/common.proto"]);
    assert_eq!(progress.missing, ["google/protobuf/timestamp.proto"]);

    // The last one (sent twice, as servers do) releases the waiting file.
    let ts = file("google/protobuf/timestamp.proto");
    let progress = registry.add_reflection_files([&ts, &ts]);
    assert_eq!(
        progress.added,
        ["google/protobuf/timestamp.proto", INVENTORY]
    );
    assert!(progress.missing.is_empty());
    assert!(registry.knows_service(SERVICE));

    let ex = get_item_exchange(&proto_registry());
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let decoded = decode_call(&ex, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::Reflection));
    assert_eq!(decoded.response.to_json(), json!([item_json()]));
}

#[test]
fn a_descriptor_set_keeps_its_source_when_reflection_repeats_it() {
    let mut registry = proto_registry();
    let set = prost_types::FileDescriptorSet::decode(&descriptor_set_bytes()[..]).unwrap();
    let progress = registry.add_reflection_files(set.file.iter().map(Message::encode_to_vec));
    assert!(progress.added.is_empty(), "{progress:?}");
    let schema = registry.method(SERVICE, "GetItem").unwrap();
    assert_eq!(schema.source, SchemaSource::DescriptorSet);
    assert_eq!(schema.output.full_name(), "shop.inventory.v1.Item");
    assert!(registry.method(SERVICE, "NoSuchMethod").is_none());
}

#[test]
fn unknown_methods_decode_schemaless_with_the_documented_shape() {
    let ex = get_item_exchange(&proto_registry());
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let decoded = decode_call(&ex, &call, &SchemaRegistry::new(), &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::Schemaless));
    assert_eq!(decoded.decoded_with.unwrap().as_str(), "schemaless");
    assert_eq!(decoded.request.to_json(), json!([{"1": "SKU-42", "2": 1}]));
    let weight = 0.75f64.to_bits();
    // prost-reflect encodes map entries in hash order: compare them sorted.
    let mut response = decoded.response.to_json();
    response[0]["6"]
        .as_array_mut()
        .unwrap()
        .sort_by_key(|entry| entry["1"].to_string());
    assert_eq!(
        response,
        json!([{
            "1": "SKU-42",
            "2": "Teapot, \"short & stout\"",
            "3": {"1": "EUR", "2": 12, "3": 500000000},
            "4": ["kitchen", "ceramic"],
            "5": 2,
            // Map entries are messages {1: key, 2: value}; a zero value is
            // not encoded at all.
            "6": [{"1": "berlin", "2": 3}, {"1": "lyon"}],
            "7": {"1": 1_795_402_800}, // date -u -d 2026-11-23T03:00:00Z +%s
            "8": {"bytes": "AAEC/w=="},
            "9": {"fixed64": weight.to_string(), "double": 0.75},
        }])
    );
}

#[test]
fn a_message_that_does_not_fit_its_schema_is_shown_schemaless() {
    let registry = proto_registry();
    // Field 1 of GetItemRequest is a string; send a varint there.
    let ex = exchange(
        "/shop.inventory.v1.Inventory/GetItem",
        frame(false, &[0x08, 0x07]),
        vec![],
    );
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let decoded = decode_call(&ex, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::DescriptorSet));
    assert_eq!(decoded.request.to_json(), json!([{"1": 7}]));
    assert_eq!(decoded.request.problems.len(), 1);
    assert!(
        decoded.request.problems[0]
            .starts_with("request message 1: does not decode as shop.inventory.v1.GetItemRequest"),
        "{:?}",
        decoded.request.problems
    );
}

#[test]
fn server_streams_decode_every_message_and_gzip_is_undone() {
    let registry = proto_registry();
    let level = message_type(&registry, "shop.inventory.v1.StockLevel");
    let levels = [
        json!({"site": "berlin", "count": 3}),
        json!({"site": "lyon"}),
        json!({"site": "oslo", "count": 4000000000u32}),
    ];
    let mut response = Vec::new();
    for (i, value) in levels.iter().enumerate() {
        let payload = encode(&level, value);
        // Senders choose per message: compress the odd ones only.
        if i % 2 == 1 {
            response.extend(frame(true, &gzip(&payload)));
        } else {
            response.extend(frame(false, &payload));
        }
    }
    let mut ex = exchange(
        "/shop.inventory.v1.Inventory/WatchStock",
        frame(false, &[]),
        response,
    );
    ex.response_headers.push_str("grpc-encoding", "gzip");
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.response_encoding.as_deref(), Some("gzip"));
    assert_eq!(
        call.response_messages,
        MessageCount {
            messages: 3,
            exact: true
        }
    );
    let decoded = decode_call(&ex, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.request.to_json(), json!([{}]));
    assert_eq!(decoded.response.to_json(), Value::Array(levels.to_vec()));
    assert!(decoded.response.problems.is_empty());
}

#[test]
fn an_unknown_encoding_is_reported_and_the_rest_still_decodes() {
    let mut ex = exchange(
        "/x.Y/Z",
        [
            frame(true, b"\x28\xb5\x2f\xfd"),
            frame(false, &[0x08, 0x01]),
        ]
        .concat(),
        vec![],
    );
    ex.request_headers.push_str("grpc-encoding", "zstd");
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let decoded = decode_call(&ex, &call, &SchemaRegistry::new(), &DecodeLimits::default());
    assert_eq!(decoded.request.to_json(), json!([{"1": 1}]));
    assert!(decoded.request.truncated);
    assert_eq!(
        decoded.request.problems,
        ["request message 1: cannot decompress grpc-encoding \"zstd\""]
    );
}

#[test]
fn a_truncated_body_decodes_what_was_captured_and_counts_at_least_that() {
    let registry = proto_registry();
    let level = message_type(&registry, "shop.inventory.v1.StockLevel");
    let one = frame(
        false,
        &encode(&level, &json!({"site": "berlin", "count": 3})),
    );
    let full: Vec<u8> = (0..5).flat_map(|_| one.clone()).collect();
    let mut ex = exchange("/shop.inventory.v1.Inventory/WatchStock", vec![], vec![]);
    // Captured: two messages and 3 bytes of the third, of five.
    ex.response_body = CapturedBody {
        data: Bytes::from(full[..2 * one.len() + 3].to_vec()),
        size: full.len() as u64,
    };
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(
        call.response_messages,
        MessageCount {
            messages: 2,
            exact: false
        }
    );
    let decoded = decode_call(&ex, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.response.messages.len(), 2);
    assert!(decoded.response.truncated);
    assert_eq!(
        decoded.response.problems,
        ["response message 3: cut off within its 5-byte prefix"]
    );

    // With counters fed while the whole body passed, the count is exact.
    let mut counters = StreamMessageCounters::default();
    counters.feed(crate::Direction::TargetToClient, &full);
    let call = GrpcCall::from_exchange(&ex, Some(&counters)).unwrap();
    assert_eq!(
        call.response_messages,
        MessageCount {
            messages: 5,
            exact: true
        }
    );
}

#[test]
fn decoding_limits_bound_messages_kept() {
    let ex = exchange(
        "/x.Y/Z",
        (0..10).flat_map(|_| frame(false, &[0x08, 0x01])).collect(),
        vec![],
    );
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let limits = DecodeLimits {
        max_messages: 3,
        ..DecodeLimits::default()
    };
    let decoded = decode_call(&ex, &call, &SchemaRegistry::new(), &limits);
    assert_eq!(decoded.request.messages.len(), 3);
    assert!(decoded.request.truncated);
    assert_eq!(call.request_messages.messages, 10);
}

#[test]
fn summary_of_an_ok_call() {
    let ex = get_item_exchange(&proto_registry());
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.service, SERVICE);
    assert_eq!(call.method, "GetItem");
    assert_eq!(call.status, Some(0));
    assert_eq!(call.status_name(), Some("OK"));
    assert_eq!(call.status_source, Some(StatusSource::Trailers));
    assert_eq!(call.message, None);
    assert!(!call.is_health_check);
    assert_eq!(
        call.request_metadata,
        block(&[("grpc-timeout", "1S"), ("x-request-id", "abc-123")])
    );
    assert_eq!(
        call.response_metadata,
        block(&[("x-served-by", "inventory-1")])
    );
    assert_eq!(call.request_messages.messages, 1);
    assert_eq!(call.response_messages.messages, 1);
}

#[test]
fn trailing_metadata_follows_initial_metadata() {
    let mut ex = exchange("/a.B/C", vec![], vec![]);
    ex.response_trailers = block(&[
        ("grpc-status", "5"),
        ("grpc-message", "item%20not%20found%3A%20%E2%9C%97"),
        ("x-trace", "t1"),
    ]);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.status, Some(5));
    assert_eq!(call.status_name(), Some("NOT_FOUND"));
    assert_eq!(call.message.as_deref(), Some("item not found: ✗"));
    assert_eq!(
        call.response_metadata,
        block(&[("x-served-by", "inventory-1"), ("x-trace", "t1")])
    );
}

#[test]
fn trailers_only_responses_carry_the_status_in_headers() {
    let mut ex = exchange("/a.B/C", frame(false, b""), vec![]);
    ex.response_headers = block(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-status", "12"),
        ("grpc-message", "unknown method C"),
    ]);
    ex.response_trailers = HeaderBlock::new();
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.status, Some(12));
    assert_eq!(call.status_name(), Some("UNIMPLEMENTED"));
    assert_eq!(call.status_source, Some(StatusSource::TrailersOnly));
    assert_eq!(call.message.as_deref(), Some("unknown method C"));
    assert!(call.response_metadata.is_empty());
    assert_eq!(call.response_messages.messages, 0);
}

#[test]
fn a_reset_stream_is_cancelled() {
    let mut ex = exchange("/a.B/C", frame(false, b"\x08\x01"), vec![]);
    ex.response_trailers = HeaderBlock::new();
    ex.error = Some("stream reset by client: CANCEL".into());
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.status, Some(CANCELLED));
    assert_eq!(call.status_name(), Some("CANCELLED"));
    assert_eq!(call.status_source, Some(StatusSource::Reset));

    // A status that did arrive wins over a later error.
    ex.response_trailers = block(&[("grpc-status", "4")]);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.status_name(), Some("DEADLINE_EXCEEDED"));
}

#[test]
fn a_reset_after_the_deadline_is_deadline_exceeded() {
    // started at 0, completed at 2 ms (see `exchange`).
    for (timeout, expected) in [
        ("1m", "DEADLINE_EXCEEDED"),
        ("1500u", "DEADLINE_EXCEEDED"),
        ("5S", "CANCELLED"),
        ("junk", "CANCELLED"),
    ] {
        let mut ex = exchange("/a.B/C", frame(false, b"\x08\x01"), vec![]);
        ex.response_trailers = HeaderBlock::new();
        ex.request_headers = ex
            .request_headers
            .iter()
            .filter(|h| h.name != "grpc-timeout")
            .collect();
        ex.request_headers.push_str("grpc-timeout", timeout);
        ex.error = Some("stream reset by the client: CANCEL (0x8)".into());
        let call = GrpcCall::from_exchange(&ex, None).unwrap();
        assert_eq!(call.status_name(), Some(expected), "grpc-timeout {timeout}");
    }
}

#[test]
fn statuses_without_grpc_status() {
    let mut ex = exchange("/a.B/C", vec![], vec![]);
    ex.response_trailers = HeaderBlock::new();
    ex.status = Some(503);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.status_name(), Some("UNAVAILABLE"));
    assert_eq!(call.status_source, Some(StatusSource::HttpStatus));

    ex.status = Some(200);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!((call.status, call.status_source), (None, None));

    ex.response_trailers = block(&[("grpc-status", "banana")]);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(call.status_name(), Some("UNKNOWN"));

    ex.response_trailers = block(&[("grpc-status", "99")]);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!((call.status, call.status_name()), (Some(99), None));
}

#[test]
fn health_checks_are_flagged() {
    let ex = exchange("/grpc.health.v1.Health/Check", vec![], vec![]);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert!(call.is_health_check);
    assert_eq!(call.service, HEALTH_SERVICE);
    assert_eq!(call.method, "Check");
}

#[test]
fn only_grpc_content_types_are_calls() {
    for ct in [
        "application/grpc",
        "application/grpc+proto",
        "Application/GRPC+json",
        "application/grpc; charset=utf-8",
    ] {
        assert!(is_grpc_content_type(ct), "{ct}");
    }
    for ct in ["application/json", "application/grpcx", "text/plain", ""] {
        assert!(!is_grpc_content_type(ct), "{ct}");
    }
    let mut ex = exchange("/a.B/C", vec![], vec![]);
    ex.request_headers = with_content_type(&ex.request_headers, "application/json");
    assert_eq!(GrpcCall::from_exchange(&ex, None), None);
    ex.request_headers = ex
        .request_headers
        .iter()
        .filter(|h| h.name != "content-type")
        .collect();
    assert_eq!(GrpcCall::from_exchange(&ex, None), None);
}

#[test]
fn odd_paths_keep_everything_visible() {
    let ex = exchange("/no-method", vec![], vec![]);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    assert_eq!(
        (call.service.as_str(), call.method.as_str()),
        ("", "no-method")
    );
}

/// A small deterministic generator, so split points differ per round but
/// every run tests the same ones.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn counter_agrees_with_the_splitter_across_arbitrary_chunkings() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for round in 0..200 {
        let mut body = Vec::new();
        let messages = rng.below(12);
        for _ in 0..messages {
            let len = [0, 1, 4, 5, 6, 300][rng.below(6)];
            body.extend(frame(rng.below(2) == 1, &vec![0xab; len]));
        }
        // Sometimes end inside a message.
        let cut = if round % 3 == 0 && !body.is_empty() {
            rng.below(body.len())
        } else {
            body.len()
        };
        let body = &body[..cut];
        let split = split_messages(&Bytes::copy_from_slice(body), usize::MAX);

        let mut counter = GrpcMessageCounter::new();
        let mut at = 0;
        while at < body.len() {
            let step = 1 + rng.below(40);
            let end = (at + step).min(body.len());
            counter.feed(&body[at..end]);
            at = end;
        }
        assert_eq!(
            counter.messages(),
            split.messages.len() as u64,
            "round {round}"
        );
        assert_eq!(
            counter.compressed_messages(),
            split.messages.iter().filter(|m| m.compressed).count() as u64
        );
        assert_eq!(
            counter.in_message(),
            split.cut_off.is_some(),
            "round {round}"
        );
    }
}

#[test]
fn the_json_codec_shows_messages_as_sent() {
    let mut ex = exchange(
        "/shop.inventory.v1.Inventory/GetItem",
        frame(false, br#"{"sku":"SKU-42"}"#),
        [
            frame(false, br#"{"sku":"SKU-42","tags":["a"]}"#),
            frame(false, &[0x08, 0x01]),
        ]
        .concat(),
    );
    ex.request_headers = with_content_type(&ex.request_headers, "application/grpc+json");
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    // The registry knows the method, but the JSON codec needs no schema.
    let decoded = decode_call(&ex, &call, &proto_registry(), &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::Schemaless));
    assert_eq!(decoded.request.to_json(), json!([{"sku": "SKU-42"}]));
    assert_eq!(
        decoded.response.to_json(),
        json!([{"sku": "SKU-42", "tags": ["a"]}, {"1": 1}])
    );
    assert_eq!(decoded.response.problems.len(), 1);
    assert!(decoded.response.problems[0].starts_with("response message 2: is not JSON"));
    assert!(is_json_codec("application/grpc+JSON; charset=utf-8"));
    assert!(!is_json_codec("application/grpc+proto"));
    assert!(!is_json_codec("application/grpc"));
}

/// Fixtures written by protoc and Python protobuf (see
/// `tests/data/grpc/generate.py`): an independent encoder and compiler.
fn protoc_fixture(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(name)).unwrap()
}

#[test]
fn a_protoc_descriptor_set_decodes_what_python_protobuf_encoded() {
    let registry =
        SchemaRegistry::from_descriptor_set(&protoc_fixture("inventory.protoset")).unwrap();
    let expected: Value = serde_json::from_slice(&protoc_fixture("item.json")).unwrap();
    let ex = exchange(
        "/shop.inventory.v1.Inventory/GetItem",
        vec![],
        frame(false, &protoc_fixture("item.bin")),
    );
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let decoded = decode_call(&ex, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::DescriptorSet));
    assert_eq!(decoded.response.to_json(), json!([expected]));
}

#[test]
fn python_protobuf_encodings_decode_schemaless_with_their_signs() {
    let value =
        schemaless::decode_schemaless(&protoc_fixture("item.bin"), schemaless::DEFAULT_MAX_DEPTH);
    assert_eq!(value["1"], json!("PY-7"));
    // int64 -3 and int32 -250000000 travel as 10-byte varints.
    assert_eq!(value["3"], json!({"1": "GBP", "2": -3, "3": -250000000}));
    assert_eq!(value["4"], json!(["independent", "encoder", "ünïcödé"]));
    assert_eq!(value["5"], json!(1));
    // 1999-12-31T23:59:59.500Z
    assert_eq!(value["7"], json!({"1": 946_684_799, "2": 500_000_000}));
}

#[test]
fn decoding_limits_bound_decompressed_bytes_per_message_and_per_body() {
    // Each message: 40 KiB of zeros in a field, gzip-compressed to ~100 bytes.
    let mut payload = vec![0x0a, 0x80, 0xc0, 0x02]; // field 1, length 40960
    payload.extend(vec![0u8; 40 * 1024]);
    let squeezed = gzip(&payload);
    let mut ex = exchange(
        "/x.Y/Z",
        (0..10).flat_map(|_| frame(true, &squeezed)).collect(),
        vec![],
    );
    ex.request_headers.push_str("grpc-encoding", "gzip");
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let limits = DecodeLimits {
        max_message_bytes: 50 * 1024,
        max_body_bytes: 100 * 1024,
        ..DecodeLimits::default()
    };
    let decoded = decode_call(&ex, &call, &SchemaRegistry::new(), &limits);
    // Two whole messages, the third cut at what the body's budget has left.
    assert_eq!(decoded.request.messages.len(), 3);
    assert_eq!(
        decoded.request.messages[0]["1"]["bytes"]
            .as_str()
            .unwrap()
            .len(),
        40 * 1024 / 3 * 4 + 4
    );
    assert!(decoded.request.truncated);
    assert_eq!(
        decoded.request.problems,
        [
            format!(
                "request message 3: decompressed output incomplete (broken, or over {} bytes)",
                100 * 1024 - 2 * payload.len()
            ),
            "request message 4 and later: not decoded, past the 102400 bytes decoded per body"
                .to_string(),
        ]
    );

    // An uncompressed message over the per-message limit is skipped alone.
    let big = frame(false, &payload);
    let small = frame(false, &[0x08, 0x01]);
    let ex = exchange("/x.Y/Z", [big, small].concat(), vec![]);
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let limits = DecodeLimits {
        max_message_bytes: 1024,
        ..DecodeLimits::default()
    };
    let decoded = decode_call(&ex, &call, &SchemaRegistry::new(), &limits);
    assert_eq!(decoded.request.to_json(), json!([{"1": 1}]));
    assert_eq!(
        decoded.request.problems,
        ["request message 1: not decoded, its 40964 bytes are over the 1024 allowed"]
    );
}

#[test]
fn an_invalid_reflection_file_is_refused_alone() {
    use prost_types::{field_descriptor_proto::Type, DescriptorProto, FieldDescriptorProto};
    let broken = prost_types::FileDescriptorProto {
        name: Some("broken.proto".into()),
        package: Some("broken".into()),
        message_type: vec![DescriptorProto {
            name: Some("M".into()),
            field: vec![FieldDescriptorProto {
                name: Some("f".into()),
                number: Some(1),
                r#type: Some(Type::Message as i32),
                type_name: Some(".broken.Nowhere".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut registry = SchemaRegistry::new();
    let set = prost_types::FileDescriptorSet::decode(&descriptor_set_bytes()[..]).unwrap();
    // The broken file arrives in the same level as a good one.
    let mut files: Vec<Vec<u8>> = vec![broken.encode_to_vec(), vec![0xff; 3]];
    files.extend(set.file.iter().map(Message::encode_to_vec));
    let progress = registry.add_reflection_files(files);
    assert_eq!(
        progress.added,
        [
            "google/protobuf/timestamp.proto",
            "shop/common.proto",
            INVENTORY
        ]
    );
    assert_eq!(progress.refused.len(), 2, "{progress:?}");
    assert!(progress.refused[0].starts_with("file 1: not a FileDescriptorProto"));
    assert!(progress.refused[1].starts_with("broken.proto: invalid descriptors"));
    assert!(registry.pool().get_file_by_name("broken.proto").is_none());
    assert!(registry.method(SERVICE, "GetItem").is_some());
    // Nothing of it is left waiting.
    let progress = registry.add_reflection_files(Vec::<Vec<u8>>::new());
    assert_eq!(progress, ReflectionProgress::default());
}

/// The FileDescriptorProtos of a real grpcio-reflection answer, in the order
/// the server sent them (see `tests/data/grpc/reflect.py`).
fn grpcio_reflection_answer() -> Vec<Vec<u8>> {
    (0..3)
        .map(|i| protoc_fixture(&format!("reflection/{i:02}.bin")))
        .collect()
}

#[test]
fn a_grpcio_reflection_answer_decodes_python_protobuf_messages() {
    let answer = grpcio_reflection_answer();
    let mut registry = SchemaRegistry::new();
    // grpcio sends the service's file before its imports: fed one by one,
    // as a runtime reading the stream would, it waits for them.
    let first = registry.add_reflection_files([&answer[0]]);
    assert!(first.added.is_empty());
    assert_eq!(
        first.missing,
        ["google/protobuf/timestamp.proto", "shop/common.proto"]
    );
    let rest = registry.add_reflection_files(&answer[1..]);
    assert_eq!(
        rest.added,
        [
            "google/protobuf/timestamp.proto",
            "shop/common.proto",
            INVENTORY
        ]
    );
    assert!(rest.missing.is_empty() && rest.refused.is_empty());

    let expected: Value = serde_json::from_slice(&protoc_fixture("item.json")).unwrap();
    let ex = exchange(
        "/shop.inventory.v1.Inventory/GetItem",
        vec![],
        frame(false, &protoc_fixture("item.bin")),
    );
    let call = GrpcCall::from_exchange(&ex, None).unwrap();
    let decoded = decode_call(&ex, &call, &registry, &DecodeLimits::default());
    assert_eq!(decoded.decoded_with, Some(DecodedWith::Reflection));
    assert_eq!(decoded.decoded_with.unwrap().as_str(), "reflection");
    assert_eq!(decoded.response.to_json(), json!([expected]));
}
