//! How fast the event log numbers and stores events (`EventLog::append`),
//! in memory only and with the JSONL writer running beside it, and how fast
//! an event becomes its JSON line (hand-written vs serde_json).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::events::{
    BodyEncoding, ConnectionInfo, Event, EventDraft, EventKind, EventLog, EventLogConfig,
    EventSink, HeaderMap, Payload, RequestInfo,
};
use tapmesh_protocols::http::HeaderBlock;

fn template() -> EventDraft {
    EventDraft::now(
        EventKind::ConnectionClosed,
        Payload::Connection(ConnectionInfo {
            id: 1,
            source: "orders".into(),
            target: "inventory".into(),
            ingress: "default".into(),
            client_addr: "127.0.0.1:40000".into(),
            bytes_in: 1234,
            bytes_out: 5678,
            duration_ms: 1.5,
            error: None,
        }),
    )
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_log_append");
    group.throughput(Throughput::Elements(1));

    // Steady state: the ring is full, so every append also evicts one.
    let log = EventLog::new(EventLogConfig::new("bench").memory_events(100_000)).unwrap();
    let draft = template();
    group.bench_function("in_memory", |b| {
        b.iter(|| black_box(log.append(draft.clone())))
    });

    // The writer thread serialises to disk concurrently (on the other core).
    let dir = tempfile::tempdir().unwrap();
    let log = EventLog::new(
        EventLogConfig::new("bench")
            .memory_events(100_000)
            .sink(EventSink::File(dir.path().join("events.jsonl"))),
    )
    .unwrap();
    group.bench_function("with_jsonl_file", |b| {
        b.iter(|| black_box(log.append(draft.clone())));
    });
    group.finish();
}

fn headers(fields: &[(&str, &str)]) -> HeaderMap {
    let mut block = HeaderBlock::new();
    for (name, value) in fields {
        block.push_str(name, value);
    }
    HeaderMap::from_block(block)
}

/// The event a GET of nginx's 5-byte file makes (as in `compare.sh http`).
fn request_event() -> Event {
    Event {
        seq: 123_456,
        kind: EventKind::RequestCompleted,
        timestamp: chrono::Utc::now(),
        environment: "proxy".into(),
        service: None,
        payload: Payload::Request(RequestInfo {
            connection: 3,
            source: "client".into(),
            target: "127.0.0.1:18080".into(),
            ingress: "default".into(),
            version: "HTTP/1.1".into(),
            method: "GET".into(),
            path: "/small.txt".into(),
            status_code: Some(200),
            latency_ms: Some(0.175),
            request_size: 0,
            response_size: 5,
            request_headers: headers(&[("Host", "127.0.0.1:18083")]),
            response_headers: headers(&[
                ("Server", "nginx/1.22.1"),
                ("Date", "Mon, 23 Nov 2026 18:37:40 GMT"),
                ("Content-Type", "text/plain"),
                ("Content-Length", "5"),
                ("Last-Modified", "Mon, 23 Nov 2026 11:27:06 GMT"),
                ("Connection", "keep-alive"),
                ("ETag", "\"6b04230a-5\""),
                ("Accept-Ranges", "bytes"),
            ]),
            request_trailers: HeaderMap::new(),
            response_trailers: HeaderMap::new(),
            request_body: String::new(),
            request_body_encoding: BodyEncoding::Utf8,
            request_body_truncated: false,
            response_body: "hello".into(),
            response_body_encoding: BodyEncoding::Utf8,
            response_body_truncated: false,
            warnings: Vec::new(),
            error: None,
            fault: None,
        }),
    }
}

fn json(c: &mut Criterion) {
    let event = request_event();
    let mut line = Vec::with_capacity(2048);
    event.write_json(&mut line);
    let mut group = c.benchmark_group("event_json_request_completed");
    group.throughput(Throughput::Bytes(line.len() as u64));
    group.bench_function("write_json", |b| {
        b.iter(|| {
            line.clear();
            black_box(&event).write_json(&mut line);
            black_box(line.len())
        })
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| {
            line.clear();
            serde_json::to_writer(&mut line, black_box(&event)).unwrap();
            black_box(line.len())
        })
    });
    group.finish();
}

criterion_group!(benches, append, json);
criterion_main!(benches);
