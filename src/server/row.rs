//! An event as one row of the web view's list (`?view=row` on the event
//! stream): the columns the list shows, the clauses a click on them adds,
//! and what the map counts, in about a tenth of the event's JSON.
//!
//! A page that follows a busy environment takes every event; sending each
//! one whole (headers, bodies, decoded messages) would cost the daemon and
//! the browser many times what the list needs, and the proxy shares the
//! machine with both. The detail panel fetches an event whole, by seq.
//!
//! `{"seq", "type", "ts" (ms since the epoch), "edge" ("a->b", or the
//! service), "what", "wf"/"wv" (the field and value a click on `what`
//! filters on), "st" (status), "sf"/"sv" (the same for the status),
//! "lat" (ms), "size" (bytes), "call" (a call the map counts), "err" (it
//! failed, by the summary's rule)}`; absent fields are left out.

use crate::events::json::{write_f64, write_str, write_str_parts, write_u64};
use crate::events::{Event, Payload};
use crate::inspect::call_failed;

/// The most bytes of `what` a row carries.
const WHAT_MAX: usize = 300;

/// Appends `event`'s row (no newline).
pub fn write_row(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"seq\":");
    write_u64(out, event.seq);
    out.extend_from_slice(b",\"type\":");
    write_str(out, event.type_name());
    out.extend_from_slice(b",\"ts\":");
    write_u64(out, event.timestamp.timestamp_millis().max(0) as u64);
    let mut row = Row { out };
    match &event.payload {
        Payload::Request(r) => {
            row.edge(&r.source, &r.target);
            row.what([r.method.as_str(), " ", &r.path]);
            row.str_field("wf", "http.path");
            row.str_field("wv", &r.path);
            match r.status_code {
                Some(code) => {
                    row.num_field("st", u64::from(code));
                    row.str_field("sf", "http.status");
                    row.num_field("sv", u64::from(code));
                }
                None => row.str_field("st", r.error.as_deref().unwrap_or("no response")),
            }
            row.timing(r.latency_ms, r.request_size + r.response_size);
        }
        Payload::GrpcCall(c) => {
            row.edge(&c.source, &c.target);
            row.what([c.service.as_str(), "/", &c.method]);
            row.str_field("wf", "grpc.method");
            row.str_field("wv", &c.method);
            match (&c.grpc_status_name, c.grpc_status) {
                (Some(name), Some(code)) => {
                    row.str_field("st", name);
                    row.str_field("sf", "grpc.status");
                    row.num_field("sv", u64::from(code));
                }
                _ => row.str_field("st", c.error.as_deref().unwrap_or("no status")),
            }
            row.timing(c.latency_ms, c.request_size + c.response_size);
        }
        Payload::KafkaRequest(k) => {
            row.edge(&k.source, &k.target);
            let mut topics: Vec<&str> = Vec::new();
            for t in k.topics.iter().flatten() {
                if !topics.contains(&t.topic.as_str()) {
                    topics.push(&t.topic);
                }
            }
            let api = k.api_name.as_deref().unwrap_or("?");
            let what = format!("{api} v{} {}", k.api_version, topics.join(","));
            row.what([what.trim_end()]);
            row.str_field("wf", "kafka.api");
            row.str_field("wv", api);
            match k.error_code {
                Some(0) | None => row.str_field("st", "ok"),
                Some(code) => {
                    row.str_field("st", &format!("error {code}"));
                    row.str_field("sf", "kafka.error_code");
                    row.out.extend_from_slice(b",\"sv\":");
                    row.out
                        .extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
                }
            }
            row.timing(k.latency_ms, k.request_size + k.response_size.unwrap_or(0));
        }
        Payload::Query(q) => {
            row.edge(&q.source, &q.target);
            row.what([q.sql.as_str()]);
            if let Some(command) = &q.command {
                row.str_field("wf", "sql.command");
                row.str_field("wv", command);
            }
            match (&q.error, q.rows) {
                (Some(e), _) => row.str_field("st", &e.code),
                (None, Some(rows)) => row.str_field("st", &format!("{rows} rows")),
                (None, None) => row.str_field("st", q.command.as_deref().unwrap_or("")),
            }
            row.timing(Some(q.latency_ms), q.request_size + q.response_size);
        }
        Payload::RedisCommand(c) => {
            row.edge(&c.source, &c.target);
            let args = c.args.iter().take(4).flat_map(|a| [" ", a.as_str()]);
            row.what(std::iter::once(c.command.as_str()).chain(args));
            row.str_field("wf", "redis.command");
            row.str_field("wv", &c.command);
            match (&c.error, &c.reply) {
                (Some(e), _) => row.str_field("st", e.code.as_deref().unwrap_or("error")),
                (None, Some(reply)) => row.str_field("st", &reply.ty),
                (None, None) => {}
            }
            row.timing(c.latency_ms, c.request_size + c.response_size);
        }
        Payload::Connection(c) => {
            row.edge(&c.source, &c.target);
            row.str_field("what", &format!("conn {} from {}", c.id, c.client_addr));
            if c.bytes_in + c.bytes_out > 0 {
                row.num_field("size", c.bytes_in + c.bytes_out);
            }
        }
        Payload::DecodeError(d) => {
            row.edge(&d.source, &d.target);
            row.what([d.protocol.as_str(), ": ", &d.reason]);
        }
        Payload::Lifecycle(l) => {
            row.service(event);
            row.what([l.reason.as_deref().unwrap_or("")]);
            row.str_field("st", l.state.as_str());
        }
        Payload::Log(l) => {
            row.service(event);
            row.what([l.line.as_str()]);
        }
        Payload::Note(n) => row.what([n.text.as_str()]),
        Payload::Fault(f) => {
            row.edge(&f.source, &f.target);
            row.what([f.fault.as_str(), ": ", &f.detail]);
        }
        _ => row.service(event),
    }
    if call_failed(&event.payload) {
        row.out.extend_from_slice(b",\"err\":true");
    }
    row.out.push(b'}');
}

struct Row<'a> {
    out: &'a mut Vec<u8>,
}

impl Row<'_> {
    fn str_field(&mut self, key: &str, value: &str) {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        write_str(self.out, value);
    }

    fn num_field(&mut self, key: &str, value: u64) {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
        write_u64(self.out, value);
    }

    /// `"edge":"a->b"`.
    fn edge(&mut self, source: &str, target: &str) {
        self.out.extend_from_slice(b",\"edge\":");
        write_str_parts(self.out, [source, "->", target], usize::MAX);
    }

    fn service(&mut self, event: &Event) {
        if let Some(service) = &event.service {
            self.str_field("edge", service);
        }
    }

    /// `"what"`: `parts` joined, at most [`WHAT_MAX`] bytes.
    fn what<'a>(&mut self, parts: impl IntoIterator<Item = &'a str>) {
        self.out.extend_from_slice(b",\"what\":");
        write_str_parts(self.out, parts, WHAT_MAX);
    }

    fn timing(&mut self, latency_ms: Option<f64>, size: u64) {
        self.out.extend_from_slice(b",\"call\":true");
        if let Some(ms) = latency_ms {
            self.out.extend_from_slice(b",\"lat\":");
            write_f64(self.out, ms);
        }
        self.num_field("size", size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixtures;

    fn row(event: &Event) -> serde_json::Value {
        let mut out = Vec::new();
        write_row(event, &mut out);
        serde_json::from_slice(&out).expect("a row is JSON")
    }

    /// One event of each kind the list shows, as the decoders write them.
    fn events() -> Vec<Event> {
        use serde_json::json;
        [
            json!({"type": "request.completed", "request": {"method": "POST", "path": "/orders \"x\"", "status_code": 503, "latency_ms": 2.5, "request_size": 10, "response_size": 20}}),
            json!({"type": "request.completed", "request": {"path": "/slow", "error": "no response"}}),
            json!({"type": "grpc.call.completed", "grpc_call": {"connection": 1, "source": "a", "target": "b", "ingress": "default", "service": "shop.Inventory", "method": "Reserve", "path": "/shop.Inventory/Reserve", "grpc_status": 14, "grpc_status_name": "UNAVAILABLE", "latency_ms": 1.0, "request_size": 5, "response_size": 0, "request_messages": 1, "response_messages": 0, "request_metadata": {}, "response_metadata": {}, "request_body_decoded": null, "response_body_decoded": null, "request_body_truncated": false, "response_body_truncated": false, "health_check": false}}),
            json!({"type": "kafka.request.completed", "kafka_request": {"connection": 1, "source": "a", "target": "b", "ingress": "default", "api_key": 0, "api_name": "Produce", "api_version": 9, "correlation_id": 4, "latency_ms": 0.5, "request_size": 100, "response_size": 20, "error_code": 0, "topics": [{"topic": "orders", "partition": 0, "records": 1, "bytes": 50}, {"topic": "orders", "partition": 1, "records": 1, "bytes": 50}]}}),
            json!({"type": "kafka.request.completed", "kafka_request": {"connection": 1, "source": "a", "target": "b", "ingress": "default", "api_key": 18, "api_name": "ApiVersions", "api_version": 3, "correlation_id": 1, "request_size": 40, "response_size": 21, "error_code": 35}}),
            json!({"type": "postgres.query.completed", "query": {"connection": 1, "source": "a", "target": "db", "ingress": "default", "protocol": "extended", "sql": "UPDATE t SET x = $1", "params": [1], "command": "UPDATE", "rows": 3, "latency_ms": 0.3, "request_size": 40, "response_size": 20}}),
            json!({"type": "redis.command.completed", "command": {"connection": 1, "source": "a", "target": "cache", "ingress": "default", "command": "GET", "args": ["item:1"], "arg_count": 1, "reply": {"type": "null", "value": "null"}, "latency_ms": 0.1, "request_size": 20, "response_size": 5}}),
            json!({"type": "service.failed", "service": "orders", "lifecycle": {"state": "failed", "reason": "exited with 3"}}),
            json!({"type": "service.log", "service": "orders", "log": {"stream": "stdout", "line": "hello"}}),
            json!({"type": "connection.closed", "connection": {"bytes_in": 5, "bytes_out": 7}}),
        ]
        .into_iter()
        .map(fixtures::event)
        .collect()
    }

    #[test]
    fn a_row_has_the_columns_and_the_clauses_of_its_event() {
        let events = events();
        let rows: Vec<_> = events.iter().map(row).collect();
        assert_eq!(rows[0]["what"], "POST /orders \"x\"");
        assert_eq!(rows[0]["st"], 503);
        assert_eq!(rows[0]["err"], true);
        assert_eq!(rows[0]["size"], 30);
        assert_eq!(rows[0]["lat"], 2.5);
        assert_eq!(rows[1]["st"], "no response");
        assert_eq!(rows[2]["what"], "shop.Inventory/Reserve");
        assert_eq!(rows[2]["st"], "UNAVAILABLE");
        assert_eq!(rows[3]["what"], "Produce v9 orders");
        assert_eq!(rows[3]["st"], "ok");
        assert_eq!(rows[3].get("err"), None);
        assert_eq!(rows[4]["st"], "error 35");
        assert_eq!(rows[5]["st"], "3 rows");
        assert_eq!(rows[6]["what"], "GET item:1");
        assert_eq!(rows[6]["st"], "null");
        assert_eq!(rows[7]["edge"], "orders");
        assert_eq!(rows[7]["what"], "exited with 3");
        assert_eq!(rows[7]["st"], "failed");
        assert_eq!(rows[8]["what"], "hello");
        assert_eq!(rows[9]["size"], 12);
        assert_eq!(rows[9].get("call"), None);
        for event in &events {
            let r = row(event);
            assert_eq!(r["seq"], event.seq);
            assert_eq!(r["type"], event.type_name());
            assert_eq!(r["ts"], event.timestamp.timestamp_millis());
            if let Some(field) = r.get("wf") {
                let clause = format!("{} == {}", field.as_str().unwrap(), r["wv"]);
                let query = crate::events::Query::parse(&clause).unwrap();
                assert!(query.matches(event), "{clause} on {event:?}");
            }
            if let Some(field) = r.get("sf") {
                let clause = format!("{} == {}", field.as_str().unwrap(), r["sv"]);
                let query = crate::events::Query::parse(&clause).unwrap();
                assert!(query.matches(event), "{clause} on {event:?}");
            }
            assert_eq!(
                r.get("err").is_some(),
                call_failed(&event.payload),
                "{event:?}"
            );
        }
    }

    #[test]
    fn what_is_cut_at_a_character_boundary() {
        let what = |line: String| {
            let event = fixtures::event(
                serde_json::json!({"type": "service.log", "service": "s", "log": {"stream": "stdout", "line": line}}),
            );
            row(&event)["what"].as_str().unwrap().to_string()
        };
        let long = "é".repeat(400);
        assert_eq!(what(long).len(), 300);
        assert_eq!(what("short".into()), "short");
        let odd = format!("a{}", "é".repeat(400));
        assert_eq!(what(odd).len(), 299);
    }
}
