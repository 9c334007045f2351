//! The event log under load: a subscriber that never reads cannot hold up
//! the publisher or anyone else, and is told exactly what it missed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tapmesh::events::{
    ConnectionInfo, EventDraft, EventFilter, EventKind, EventLog, EventLogConfig, Payload,
};

const EVENTS: u64 = 1_000_000;
const BURST: u64 = 10_000;
const READERS: usize = 3;
const MEMORY: usize = 100_000;

fn draft(id: u64) -> EventDraft {
    EventDraft::now(
        EventKind::ConnectionOpened,
        Payload::Connection(ConnectionInfo {
            id,
            source: "a".into(),
            target: "b".into(),
            ingress: "default".into(),
            client_addr: "127.0.0.1:1".into(),
            bytes_in: 0,
            bytes_out: 0,
            duration_ms: 0.0,
            error: None,
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_loses_events_for_itself_alone() {
    let log = EventLog::new(EventLogConfig::new("load").memory_events(MEMORY)).unwrap();
    let mut stalled = log.subscribe(1, EventFilter::all()).labeled("stalled");

    // Readers count what they receive and check it arrives in order.
    let received: Arc<Vec<AtomicU64>> = Arc::new((0..READERS).map(|_| AtomicU64::new(0)).collect());
    let mut readers = Vec::new();
    for r in 0..READERS {
        let mut sub = log
            .subscribe(1, EventFilter::types(["connection.opened"]))
            .labeled(format!("reader {r}"));
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            let mut expected_id = 0;
            while expected_id < EVENTS {
                let event = sub.recv().await.expect("log closed early");
                match &event.payload {
                    Payload::Connection(c) => {
                        assert_eq!(c.id, expected_id, "reader {r} got events out of order");
                        assert_eq!(event.seq, expected_id + 1);
                    }
                    other => panic!("reader {r} was dropped or filtered wrongly: {other:?}"),
                }
                expected_id += 1;
                received[r].store(expected_id, Ordering::Release);
            }
            // After all of them, the notice of the stalled subscriber's drop.
            sub
        }));
    }

    // The publisher never waits on the log; between bursts it waits for the
    // active readers (by count) only so that they, not the log, set the pace.
    let publisher_log = log.clone();
    let publisher_received = received.clone();
    let publisher = std::thread::spawn(move || {
        let mut published = 0;
        while published < EVENTS {
            for _ in 0..BURST {
                publisher_log.append(draft(published));
                published += 1;
            }
            while publisher_received
                .iter()
                .any(|r| r.load(Ordering::Acquire) < published)
            {
                std::thread::yield_now();
            }
        }
    });
    tokio::task::spawn_blocking(move || publisher.join().unwrap())
        .await
        .unwrap();

    let mut done = Vec::new();
    for reader in readers {
        done.push(reader.await.unwrap());
    }
    for (r, count) in received.iter().enumerate() {
        assert_eq!(
            count.load(Ordering::Acquire),
            EVENTS,
            "reader {r} missed events"
        );
    }
    assert_eq!(log.last_seq(), EVENTS);
    assert!(
        log.events_in_memory() <= MEMORY,
        "memory holds {} events",
        log.events_in_memory()
    );

    // Only now does the stalled subscriber look: it learns what it missed.
    let notice = stalled.recv().await.unwrap();
    assert_eq!(notice.kind, EventKind::EventsDropped);
    assert_eq!(
        notice.seq,
        EVENTS + 1,
        "the notice is a logged event with the next seq"
    );
    let Payload::Dropped(dropped) = &notice.payload else {
        panic!("{notice:?}");
    };
    assert_eq!(dropped.subscriber, "stalled");
    assert_eq!(dropped.subscriber_id, stalled.id());
    assert_eq!(dropped.count, EVENTS);
    assert_eq!((dropped.first_seq, dropped.last_seq), (1, EVENTS));

    // It then follows live events normally.
    log.append(draft(EVENTS));
    let next = tokio::time::timeout(Duration::from_secs(10), stalled.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.seq, EVENTS + 2);

    // The other subscribers were not dropped; they see the notice as a
    // record of someone else's loss, if their filter keeps it.
    let mut all = log.subscribe(EVENTS + 1, EventFilter::types(["events.*"]));
    assert_eq!(all.recv().await.unwrap().seq, EVENTS + 1);
    drop(done);
}
