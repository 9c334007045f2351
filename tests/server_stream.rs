//! The daemon's event streams (SSE and NDJSON) over a real HTTP connection:
//! resume with `Last-Event-ID`, and many events per second to several
//! readers while one stalls.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tapmesh::events::{ConnectionInfo, EventDraft, EventKind, EventLog, EventLogConfig, Payload};
use tapmesh::server::{self, HostedEnvironment, Registry, STREAM_MAX_LAG};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn draft(i: u64) -> EventDraft {
    EventDraft::now(
        EventKind::ConnectionOpened,
        Payload::Connection(ConnectionInfo {
            id: i,
            source: "load".into(),
            target: "sink".into(),
            ingress: "default".into(),
            client_addr: "127.0.0.1:1".into(),
            bytes_in: 0,
            bytes_out: 0,
            duration_ms: 0.0,
            error: None,
        }),
    )
}

async fn start(log: &EventLog) -> std::net::SocketAddr {
    let registry = Registry::new();
    registry.insert(HostedEnvironment::observed(
        "env-1",
        "stream-test",
        log.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server::serve(
        listener,
        server::router(registry),
        std::future::pending(),
    ));
    addr
}

/// One SSE event as read off the wire.
#[derive(Debug)]
struct SseEvent {
    id: u64,
    kind: String,
    data: serde_json::Value,
}

struct SseClient {
    lines: tokio::io::Lines<BufReader<TcpStream>>,
    /// Parse every event's data, not only `events.dropped` notices.
    parse_all: bool,
}

impl SseClient {
    async fn connect(addr: std::net::SocketAddr, last_event_id: Option<u64>) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let resume = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET /environments/env-1/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(stream).lines();
        // Status line and headers.
        let status = lines.next_line().await.unwrap().unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        while !lines.next_line().await.unwrap().unwrap().is_empty() {}
        Self {
            lines,
            parse_all: false,
        }
    }

    /// The next event; chunked framing lines and keep-alive comments skipped.
    async fn next(&mut self) -> SseEvent {
        let (mut id, mut kind, mut data) = (None, None, None);
        loop {
            let line = self.lines.next_line().await.unwrap().expect("stream open");
            if let Some(v) = line.strip_prefix("id: ") {
                id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("event: ") {
                kind = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("data: ") {
                // Parsed only where a test looks inside: readers must keep
                // up with 50,000 events per second in a debug build.
                data = Some(
                    if kind.as_deref() == Some("events.dropped") || self.parse_all {
                        serde_json::from_str(v).unwrap()
                    } else {
                        serde_json::Value::Null
                    },
                );
            } else if line.is_empty() {
                if let (Some(id), Some(kind), Some(data)) = (id, kind.take(), data.take()) {
                    return SseEvent { id, kind, data };
                }
            }
        }
    }
}

#[tokio::test]
async fn resume_with_last_event_id_loses_and_repeats_nothing() {
    let log = EventLog::in_memory("stream-test");
    let addr = start(&log).await;
    for i in 0..300 {
        log.append(draft(i));
    }
    let mut first = SseClient::connect(addr, None).await;
    first.parse_all = true;
    let mut seen = Vec::new();
    for _ in 0..120 {
        let e = first.next().await;
        assert_eq!(e.kind, "connection.opened");
        assert_eq!(e.data["seq"], e.id);
        seen.push(e.id);
    }
    drop(first); // disconnect mid-stream
    for i in 300..500 {
        log.append(draft(i));
    }
    let mut resumed = SseClient::connect(addr, Some(*seen.last().unwrap())).await;
    while seen.len() < 500 {
        seen.push(resumed.next().await.id);
    }
    assert_eq!(seen, (1..=500).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_readers_keep_up_with_50k_events_per_second_and_a_stalled_one_is_told_what_it_missed()
{
    const RATE: u64 = 50_000;
    const TOTAL: u64 = 150_000;
    let log = EventLog::new(EventLogConfig::new("stream-test").memory_events(200_000)).unwrap();
    let addr = start(&log).await;

    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut client = SseClient::connect(addr, None).await;
        readers.push(tokio::spawn(async move {
            let mut next = 1;
            while next <= TOTAL {
                let e = client.next().await;
                if e.kind == "events.dropped" {
                    // Another subscriber's notice: an event like any other.
                    continue;
                }
                assert_eq!(e.id, next, "a reader lost or repeated an event");
                next += 1;
            }
            next - 1
        }));
    }
    let mut stalled = SseClient::connect(addr, None).await;

    // Publish at 50,000 events per second, 3 s, paced in 1 ms steps.
    let publisher = {
        let log = log.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut published = 0;
            while published < TOTAL {
                let due = (start.elapsed().as_micros() as u64 * RATE / 1_000_000).min(TOTAL);
                while published < due {
                    published += 1;
                    log.append(draft(published));
                }
                std::thread::sleep(Duration::from_millis(1));
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "publishing stalled"
                );
            }
            start.elapsed()
        })
    };
    let first = stalled.next().await;
    assert_eq!(first.id, 1);
    let took = tokio::task::spawn_blocking(move || publisher.join().unwrap())
        .await
        .unwrap();
    assert!(
        took < Duration::from_secs(10),
        "publishing {TOTAL} events took {took:?}: it must not wait for readers"
    );
    for reader in readers {
        let got = tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("a reader did not finish")
            .unwrap();
        assert_eq!(got, TOTAL);
    }

    // The stalled reader reads again: what it gets, plus what its notice
    // says it skipped, is every event, each once.
    let mut delivered = BTreeSet::from([first.id]);
    let notice = loop {
        let e = tokio::time::timeout(Duration::from_secs(60), stalled.next())
            .await
            .expect("the stalled reader got nothing more");
        if e.kind == "events.dropped"
            && e.data["dropped"]["subscriber"]
                .as_str()
                .is_some_and(|s| s.starts_with("http 127.0.0.1:"))
        {
            break e;
        }
        assert!(delivered.insert(e.id), "event {} delivered twice", e.id);
    };
    let dropped = &notice.data["dropped"];
    let (first_seq, last_seq, count) = (
        dropped["first_seq"].as_u64().unwrap(),
        dropped["last_seq"].as_u64().unwrap(),
        dropped["count"].as_u64().unwrap(),
    );
    assert_eq!(count, last_seq - first_seq + 1);
    assert!(
        count > STREAM_MAX_LAG,
        "it skipped only past its lag: {count}"
    );
    // Delivered, in order, everything before the skip; skipped the rest of
    // what was published; the notice itself comes after both.
    assert_eq!(
        delivered,
        (1..first_seq).collect::<BTreeSet<u64>>(),
        "delivery stopped right where the skip starts"
    );
    assert_eq!(last_seq, TOTAL, "the skip runs to the newest event");
    assert!(notice.id > last_seq);
}
