//! One readable line per event (`tapmesh events`, `tapmesh up`).

use chrono::SecondsFormat;

use crate::events::{Event, EventKind, Payload};

/// `seq time type edge what`, e.g.
/// `12 10:00:01.234 request.completed orders->inventory GET /items?id=7 → 200 3.1ms 0B↑ 120B↓`.
pub fn one_line(event: &Event) -> String {
    let seq = event.seq;
    // As written in the event's JSON, cut to milliseconds.
    let stamp = event.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let time = stamp
        .split('T')
        .nth(1)
        .map(|t| t.trim_end_matches('Z'))
        .map(|t| t.get(..12).unwrap_or(t))
        .unwrap_or_default();
    let kind = event.type_name();
    let edge = match (event.source(), event.target()) {
        (Some(s), Some(t)) => format!("{s}->{t}"),
        _ => event.service.as_deref().unwrap_or("").to_string(),
    };
    let what = describe(event);
    format!("{seq:>6} {time:<12} {kind:<24} {edge:<28} {what}")
}

fn describe(event: &Event) -> String {
    let error = |e: &Option<String>| e.as_ref().map(|e| format!(" ({e})")).unwrap_or_default();
    match &event.payload {
        Payload::Request(r) => format!(
            "{} {} → {}{} {}↑ {}↓{}",
            r.method,
            r.path,
            r.status_code.map_or("-".to_string(), |c| c.to_string()),
            latency(r.latency_ms),
            bytes(r.request_size),
            bytes(r.response_size),
            error(&r.error),
        ),
        Payload::GrpcCall(g) => format!(
            "{}/{} → {}{}{} {}↑ {}↓ msgs{}",
            g.service,
            g.method,
            g.grpc_status_name.as_deref().unwrap_or("-"),
            g.grpc_message
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| format!(" {m:?}"))
                .unwrap_or_default(),
            latency(g.latency_ms),
            g.request_messages,
            g.response_messages,
            error(&g.error),
        ),
        Payload::KafkaRequest(k) => format!(
            "{} v{} corr={}{}{}",
            k.api_name.as_deref().unwrap_or(""),
            k.api_version,
            k.correlation_id,
            k.error_code
                .filter(|&c| c != 0)
                .map(|c| format!(" error_code={c}"))
                .unwrap_or_default(),
            latency(k.latency_ms),
        ),
        Payload::Query(q) => query(q),
        Payload::RedisCommand(c) => redis_command(c),
        Payload::RedisPush(p) => format!(
            "{} {} {}",
            p.kind,
            p.channel.as_deref().unwrap_or("-"),
            one_line_sql(p.payload.as_deref().unwrap_or(""))
        ),
        Payload::Connection(c) if event.kind == EventKind::ConnectionOpened => {
            format!("from {}", c.client_addr)
        }
        Payload::Connection(c) => format!(
            "{}↑ {}↓ {:.1}ms{}",
            bytes(c.bytes_in),
            bytes(c.bytes_out),
            c.duration_ms,
            error(&c.error),
        ),
        Payload::DecodeError(d) => format!(
            "{} gave up at {} byte {}{}: {}",
            d.protocol,
            d.direction,
            d.offset,
            d.kind
                .as_deref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default(),
            d.reason,
        ),
        Payload::Fault(f) => format!(
            "{} ({}): {}{}",
            f.fault,
            f.kind,
            f.detail,
            f.request_seq
                .map(|seq| format!(" [#{seq}]"))
                .unwrap_or_default()
        ),
        _ => scalars(event),
    }
}

fn latency(ms: Option<f64>) -> String {
    ms.map(|ms| format!(" {ms:.1}ms")).unwrap_or_default()
}

fn query(q: &crate::events::QueryInfo) -> String {
    let outcome = match (&q.error, &q.command) {
        (Some(e), _) => format!("{} {}: {}", e.severity, e.code, e.message),
        (None, Some(command)) => match q.rows {
            Some(rows) => format!("{command} {rows}"),
            None => command.clone(),
        },
        (None, None) => "-".to_string(),
    };
    format!(
        "{} → {outcome}{}",
        one_line_sql(&q.sql),
        latency(Some(q.latency_ms))
    )
}

fn redis_command(c: &crate::events::RedisCommandInfo) -> String {
    let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
    let call = one_line_sql(&format!("{} {}", c.command, args.join(" ")));
    let outcome = match (&c.error, &c.reply) {
        (Some(e), _) => format!("{} {}", e.code.as_deref().unwrap_or("error"), e.message),
        (None, Some(r)) => one_line_sql(&r.value),
        (None, None) => "-".to_string(),
    };
    format!("{call} → {outcome}{}", latency(c.latency_ms))
}

/// A statement (or a Redis command, a reply) on one line: whitespace runs
/// as one space, at most 80 characters.
fn one_line_sql(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

/// Lifecycle and unknown events: the scalar fields of their payload's
/// JSON, by name. Read from the JSON rather than field by field so that
/// a payload this version does not know, or a field added to a known one,
/// shows without a change here.
fn scalars(event: &Event) -> String {
    let json = match &event.payload {
        Payload::Unknown(_)
        | Payload::Lifecycle(_)
        | Payload::Log(_)
        | Payload::Note(_)
        | Payload::Dropped(_) => event.payload.to_json(),
        _ => None,
    };
    let Some(serde_json::Value::Object(fields)) = json else {
        return String::new();
    };
    fields
        .iter()
        .filter(|(_, v)| v.is_string() || v.is_number() || v.is_boolean())
        .map(|(k, v)| format!("{k}={}", v.to_string().trim_matches('"')))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `512B`, `3.2KiB`, `1.5MiB`.
fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n}B"),
        1024..1_048_576 => format!("{:.1}KiB", n as f64 / 1024.0),
        _ => format!("{:.1}MiB", n as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixtures::event;
    use serde_json::json;

    #[test]
    fn lines_name_what_happened() {
        let e = event(
            json!({"seq": 12, "type": "request.completed", "timestamp": "2026-11-23T10:00:01.234567Z",
            "environment": "e", "request": {"source": "orders", "target": "inventory", "method": "GET",
            "path": "/items?id=7", "status_code": 200, "latency_ms": 3.06, "request_size": 0, "response_size": 2048}}),
        );
        let line = one_line(&e);
        assert!(line.contains("10:00:01.234 "), "{line}");
        assert!(line.contains("orders->inventory"), "{line}");
        assert!(
            line.contains("GET /items?id=7 → 200 3.1ms 0B↑ 2.0KiB↓"),
            "{line}"
        );

        let g = event(
            json!({"seq": 13, "type": "grpc.call.completed", "timestamp": "2026-11-23T10:00:01Z",
            "environment": "e", "grpc_call": {"source": "a", "target": "b", "service": "shop.Inv", "method": "Get",
            "grpc_status_name": "NOT_FOUND", "grpc_message": "no item", "request_messages": 1, "response_messages": 0}}),
        );
        assert!(one_line(&g).contains("shop.Inv/Get → NOT_FOUND \"no item\" 1↑ 0↓ msgs"));
    }

    #[test]
    fn redis_lines_show_the_command_and_its_reply_or_error() {
        let get = event(
            json!({"type": "redis.command.completed", "command": {"source": "orders",
            "target": "cache", "command": "GET", "args": ["item:sku-1"], "arg_count": 1,
            "reply": {"type": "bulk", "value": "\"{\\\"stock\\\": 3}\""}, "latency_ms": 0.42}}),
        );
        let line = one_line(&get);
        assert!(line.contains("orders->cache"), "{line}");
        assert!(
            line.contains(r#"GET item:sku-1 → "{\"stock\": 3}" 0.4ms"#),
            "{line}"
        );
        let wrong = event(
            json!({"type": "redis.command.completed", "command": {"command": "INCR",
            "args": ["name"], "arg_count": 1, "reply": {"type": "error", "value": "{}"},
            "error": {"code": "WRONGTYPE", "message": "Operation against a key"}, "latency_ms": 0.1}}),
        );
        assert!(one_line(&wrong).contains("INCR name → WRONGTYPE Operation against a key 0.1ms"));
        let push = event(json!({"type": "redis.push", "push": {"kind": "message",
            "channel": "orders", "payload": "order-1", "size": 40}}));
        assert!(
            one_line(&push).contains("message orders order-1"),
            "{}",
            one_line(&push)
        );
    }
}
