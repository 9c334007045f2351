//! How fast a query decides one event (`Query::matches`): the filter every
//! surface runs per event. The goal is under 1 µs for a three-clause query
//! on an HTTP exchange; the daemon's filtered stream runs one per event.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::events::{Event, EventDraft, EventFilter, EventLog, EventLogConfig, Query};

/// A `request.completed` as the proxy writes it (headers, a JSON body).
fn request() -> Event {
    serde_json::from_str(
        r#"{"seq":42,"type":"request.completed","timestamp":"2026-12-03T10:00:00.000Z","environment":"shop",
        "request":{"connection":7,"source":"front","target":"orders","ingress":"default","version":"HTTP/1.1",
        "method":"POST","path":"/orders","status_code":503,"latency_ms":72.5,"request_size":27,"response_size":9,
        "request_headers":{"accept":"*/*","content-length":"27","content-type":"application/json","host":"127.0.0.1:4000","user-agent":"curl/8.14.1","x-request-id":"r-1"},
        "response_headers":{"content-length":"9","content-type":"text/plain","date":"Thu, 03 Dec 2026 10:00:00 GMT"},
        "request_body":"{\"sku\":\"A-7\",\"quantity\":2}","request_body_encoding":"utf8","request_body_truncated":false,
        "response_body":"try later","response_body_encoding":"utf8","response_body_truncated":false}}"#,
    )
    .expect("a request event")
}

/// A `grpc.call.completed` with a decoded request message.
fn grpc_call() -> Event {
    serde_json::from_str(
        r#"{"seq":43,"type":"grpc.call.completed","timestamp":"2026-12-03T10:00:00.000Z","environment":"shop",
        "grpc_call":{"connection":8,"source":"orders","target":"inventory","ingress":"default","service":"shop.Inventory",
        "method":"Reserve","path":"/shop.Inventory/Reserve","grpc_status":0,"grpc_status_name":"OK","grpc_message":null,
        "http_status":200,"latency_ms":61.0,"request_size":20,"response_size":12,"request_messages":1,"response_messages":1,
        "request_metadata":{"x-request-id":"r-1"},"response_metadata":{},
        "request_body_decoded":[{"sku":"A-7","quantity":2}],"response_body_decoded":[{"reserved":true}],
        "request_body_truncated":false,"response_body_truncated":false,"decoded_with":"reflection","health_check":false}}"#,
    )
    .expect("a gRPC event")
}

fn matches(c: &mut Criterion) {
    let mut group = c.benchmark_group("query_matches");
    group.throughput(Throughput::Elements(1));
    let request = request();
    let grpc = grpc_call();
    let cases = [
        (
            "http_three_clauses",
            r#"http.status >= 500 && http.method == "POST" && latency > duration("50ms")"#,
            &request,
        ),
        (
            "http_header",
            r#"http.request.headers["x-request-id"] == "r-1""#,
            &request,
        ),
        (
            "http_json_body",
            r#"http.request.json.sku == "A-7""#,
            &request,
        ),
        (
            "grpc_body_three_clauses",
            r#"grpc.method == "Reserve" && grpc.request.sku == "A-7" && latency > duration("50ms")"#,
            &grpc,
        ),
        ("edge", r#"edge == "orders->inventory""#, &grpc),
        // The common case on a mixed stream: a protocol's query on another's event.
        (
            "http_query_on_grpc_event",
            r#"http.status >= 500 && http.method == "POST" && latency > duration("50ms")"#,
            &grpc,
        ),
        (
            "payload_by_json_name",
            r#"request.status_code == 503"#,
            &request,
        ),
    ];
    for (name, text, event) in cases {
        let query = Query::parse(text).expect("a valid query");
        group.bench_function(name, |b| {
            b.iter(|| black_box(query.matches(black_box(event))))
        });
    }
    group.finish();
}

/// A live subscription with a query, drained: what a daemon stream with
/// `?q=` does per event before writing the few it keeps. 100,000 events,
/// a third each HTTP, gRPC and connection events, in memory.
fn filtered_stream(c: &mut Criterion) {
    const EVENTS: u64 = 100_000;
    let log = EventLog::new(EventLogConfig::new("bench").memory_events(EVENTS as usize)).unwrap();
    let drafts: Vec<EventDraft> = [request(), grpc_call(), connection()]
        .into_iter()
        .map(|e| EventDraft {
            kind: e.kind,
            timestamp: e.timestamp,
            service: None,
            payload: e.payload,
        })
        .collect();
    for i in 0..EVENTS {
        log.append(drafts[(i % 3) as usize].clone());
    }
    let mut group = c.benchmark_group("query_stream");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    let query = Query::parse(
        r#"grpc.method == "Reserve" && grpc.request.sku == "A-7" && latency > duration("50ms")"#,
    )
    .unwrap();
    group.bench_function("drain_100k_grpc_query", |b| {
        b.iter(|| {
            let mut sub = log
                .subscribe(1, EventFilter::query(query.clone()))
                .with_max_lag(u64::MAX)
                .until(EVENTS + 1);
            let mut kept = 0u64;
            while let Some(e) = sub.try_recv() {
                kept += e.seq & 1;
            }
            black_box(kept)
        })
    });
    group.finish();
}

fn connection() -> Event {
    serde_json::from_str(
        r#"{"seq":44,"type":"connection.closed","timestamp":"2026-12-03T10:00:00.000Z","environment":"shop",
        "connection":{"id":9,"source":"front","target":"orders","ingress":"default","client_addr":"127.0.0.1:5000",
        "bytes_in":100,"bytes_out":200,"duration_ms":3.5}}"#,
    )
    .expect("a connection event")
}

criterion_group!(benches, matches, filtered_stream);
criterion_main!(benches);
