//! One readable line per event (`tapmesh events`, `tapmesh up`).

use serde_json::Value;

use super::payload;

/// `seq time type edge what`, e.g.
/// `12 10:00:01.234 request.completed orders->inventory GET /items?id=7 → 200 3.1ms 0B↑ 120B↓`.
pub fn one_line(event: &Value) -> String {
    let seq = event["seq"].as_u64().unwrap_or_default();
    let time = event["timestamp"]
        .as_str()
        .and_then(|t| t.split('T').nth(1))
        .map(|t| t.trim_end_matches('Z'))
        .map(|t| t.get(..12).unwrap_or(t))
        .unwrap_or_default();
    let kind = event["type"].as_str().unwrap_or("?");
    let p = payload(event).cloned().unwrap_or(Value::Null);
    let edge = match (p["source"].as_str(), p["target"].as_str()) {
        (Some(s), Some(t)) => format!("{s}->{t}"),
        _ => event["service"].as_str().unwrap_or("").to_string(),
    };
    let what = describe(kind, &p);
    format!("{seq:>6} {time:<12} {kind:<24} {edge:<28} {what}")
}

fn describe(kind: &str, p: &Value) -> String {
    let latency = |p: &Value| {
        p["latency_ms"]
            .as_f64()
            .map(|ms| format!(" {ms:.1}ms"))
            .unwrap_or_default()
    };
    let error = |p: &Value| {
        p["error"]
            .as_str()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default()
    };
    match kind {
        "request.completed" => format!(
            "{} {} → {}{} {}↑ {}↓{}",
            s(&p["method"]),
            s(&p["path"]),
            p["status_code"]
                .as_u64()
                .map_or("-".to_string(), |c| c.to_string()),
            latency(p),
            bytes(&p["request_size"]),
            bytes(&p["response_size"]),
            error(p),
        ),
        "grpc.call.completed" => format!(
            "{}/{} → {}{}{} {}↑ {}↓ msgs{}",
            s(&p["service"]),
            s(&p["method"]),
            p["grpc_status_name"].as_str().unwrap_or("-"),
            p["grpc_message"]
                .as_str()
                .filter(|m| !m.is_empty())
                .map(|m| format!(" {m:?}"))
                .unwrap_or_default(),
            latency(p),
            p["request_messages"].as_u64().unwrap_or_default(),
            p["response_messages"].as_u64().unwrap_or_default(),
            error(p),
        ),
        "kafka.request.completed" => format!(
            "{} v{} corr={}{}{}",
            s(&p["api_name"]),
            p["api_version"].as_i64().unwrap_or_default(),
            p["correlation_id"].as_i64().unwrap_or_default(),
            p["error_code"]
                .as_i64()
                .filter(|&c| c != 0)
                .map(|c| format!(" error_code={c}"))
                .unwrap_or_default(),
            latency(p),
        ),
        "connection.opened" => format!("from {}", s(&p["client_addr"])),
        "connection.closed" => format!(
            "{}↑ {}↓ {:.1}ms{}",
            bytes(&p["bytes_in"]),
            bytes(&p["bytes_out"]),
            p["duration_ms"].as_f64().unwrap_or_default(),
            error(p),
        ),
        "decode.error" => format!(
            "{} gave up at {} byte {}: {}",
            s(&p["protocol"]),
            s(&p["direction"]),
            p["offset"].as_u64().unwrap_or_default(),
            s(&p["reason"]),
        ),
        _ => {
            // Lifecycle and unknown events: their scalar fields, briefly.
            let mut parts = Vec::new();
            if let Some(map) = p.as_object() {
                for (k, v) in map {
                    if v.is_string() || v.is_number() || v.is_boolean() {
                        parts.push(format!("{k}={}", v.to_string().trim_matches('"')));
                    }
                }
            }
            parts.join(" ")
        }
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// `512B`, `3.2KiB`, `1.5MiB`.
fn bytes(v: &Value) -> String {
    let n = v.as_u64().unwrap_or_default();
    match n {
        0..1024 => format!("{n}B"),
        1024..1_048_576 => format!("{:.1}KiB", n as f64 / 1024.0),
        _ => format!("{:.1}MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_name_what_happened() {
        let e = json!({"seq": 12, "type": "request.completed", "timestamp": "2026-11-23T10:00:01.234567Z",
            "environment": "e", "request": {"source": "orders", "target": "inventory", "method": "GET",
            "path": "/items?id=7", "status_code": 200, "latency_ms": 3.06, "request_size": 0, "response_size": 2048}});
        let line = one_line(&e);
        assert!(line.contains("10:00:01.234 "), "{line}");
        assert!(line.contains("orders->inventory"), "{line}");
        assert!(
            line.contains("GET /items?id=7 → 200 3.1ms 0B↑ 2.0KiB↓"),
            "{line}"
        );

        let g = json!({"seq": 13, "type": "grpc.call.completed", "timestamp": "2026-11-23T10:00:01Z",
            "environment": "e", "grpc_call": {"source": "a", "target": "b", "service": "shop.Inv", "method": "Get",
            "grpc_status_name": "NOT_FOUND", "grpc_message": "no item", "request_messages": 1, "response_messages": 0}});
        assert!(one_line(&g).contains("shop.Inv/Get → NOT_FOUND \"no item\" 1↑ 0↓ msgs"));
    }
}
