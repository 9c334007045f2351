//! Events for tests, written as the JSON that matters to the test: what
//! it leaves out gets a neutral default.

use serde_json::{json, Value};

use super::Event;

/// An event from `partial` JSON: the envelope's missing fields and, for a
/// known payload, its missing fields take defaults (seq 1, an edge `a->b`,
/// zero sizes, no status, empty headers and bodies).
pub(crate) fn event(partial: Value) -> Event {
    let mut whole = json!({
        "seq": 1, "type": "request.completed", "timestamp": "2026-11-23T00:00:00Z", "environment": "e",
    });
    let Value::Object(fields) = partial else {
        panic!("an event is an object: {partial}");
    };
    for (name, value) in fields {
        let value = match (payload_defaults(&name), value) {
            (Some(Value::Object(mut defaults)), Value::Object(given)) => {
                defaults.extend(given);
                Value::Object(defaults)
            }
            (_, value) => value,
        };
        whole[name] = value;
    }
    serde_json::from_value(whole.clone()).unwrap_or_else(|e| panic!("{whole}: {e}"))
}

fn payload_defaults(name: &str) -> Option<Value> {
    let edge = json!({"connection": 1, "source": "a", "target": "b", "ingress": "default"});
    let mut defaults = match name {
        "connection" => json!({"id": 1, "client_addr": "127.0.0.1:1", "bytes_in": 0,
            "bytes_out": 0, "duration_ms": 0.0}),
        "request" => json!({"version": "HTTP/1.1", "method": "GET", "path": "/",
            "status_code": null, "latency_ms": null, "request_size": 0, "response_size": 0,
            "request_headers": {}, "response_headers": {},
            "request_body": "", "request_body_encoding": "utf8", "request_body_truncated": false,
            "response_body": "", "response_body_encoding": "utf8", "response_body_truncated": false}),
        "grpc_call" => json!({"service": "", "method": "", "path": "", "grpc_status": null,
            "grpc_status_name": null, "grpc_message": null, "http_status": null,
            "latency_ms": null, "request_size": 0, "response_size": 0, "request_messages": 0,
            "response_messages": 0, "request_metadata": {}, "response_metadata": {},
            "request_body_decoded": null, "response_body_decoded": null,
            "request_body_truncated": false, "response_body_truncated": false,
            "decoded_with": null, "health_check": false}),
        "kafka_request" => json!({"api_key": 0, "api_name": null, "api_version": 0,
            "correlation_id": 0, "client_id": null, "latency_ms": null, "request_size": 0,
            "response_size": null, "error_code": null, "topics": null}),
        "query" => json!({"protocol": "simple", "sql": "", "latency_ms": 0.0,
            "request_size": 0, "response_size": 0}),
        "command" => json!({"command": "PING", "arg_count": 0, "reply": null, "error": null,
            "latency_ms": null, "request_size": 0, "response_size": 0}),
        "push" => json!({"kind": "message", "size": 0}),
        "decode_error" => json!({"protocol": "http", "direction": "client_to_target",
            "offset": 0, "reason": ""}),
        _ => return None,
    };
    for (field, value) in edge.as_object().expect("an object") {
        if field != "connection" || name != "connection" {
            defaults[field] = value.clone();
        }
    }
    Some(defaults)
}
