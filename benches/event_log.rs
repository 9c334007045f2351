//! How fast the event log numbers and stores events (`EventLog::append`),
//! in memory only and with the JSONL writer running beside it.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::events::{
    ConnectionInfo, EventDraft, EventKind, EventLog, EventLogConfig, EventSink, Payload,
};

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

criterion_group!(benches, append);
criterion_main!(benches);
