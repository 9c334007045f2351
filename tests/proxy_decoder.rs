//! The decoder interface as the proxy drives it: a decoder sees exactly the
//! bytes that were forwarded, in order, without the hot path allocating per
//! chunk; a decoder that gives up costs the traffic nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use tapmesh::events::{EventKind, EventLog, Payload};
use tapmesh::protocols::{DecodeFailure, Decoded, Decoder, Direction, FailureKind, Timestamp};
use tapmesh::proxy::{Proxy, ProxyConfig, RelayMode};
use tokio_util::sync::CancellationToken;

/// Counts allocations while `COUNTING` is on, across all threads.
struct CountingAllocator;
static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// What a test decoder saw, per direction.
#[derive(Default)]
struct Seen {
    hashes: [Sha256; 2],
    bytes: [u64; 2],
    chunks: u64,
    fed_after_failure: u64,
    ends: Vec<Direction>,
    finished: bool,
    timestamps_ordered: bool,
}

fn slot(d: Direction) -> usize {
    match d {
        Direction::ClientToTarget => 0,
        Direction::TargetToClient => 1,
    }
}

/// Hashes what it is fed; gives up at the first 0xFF byte if told to.
struct RecordingDecoder {
    seen: Arc<Mutex<Seen>>,
    fail_on_ff: bool,
    failed: bool,
    last: Timestamp,
}

impl Decoder for RecordingDecoder {
    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>) {
        // The lock is the test's bookkeeping, not the proxy's.
        let mut seen = self.seen.lock().unwrap();
        if self.failed {
            seen.fed_after_failure += 1;
            return;
        }
        if at < self.last {
            seen.timestamps_ordered = false;
        }
        self.last = at;
        let i = slot(direction);
        if self.fail_on_ff {
            if let Some(pos) = chunk.iter().position(|&b| b == 0xFF) {
                self.failed = true;
                out.push(Decoded::Failure(DecodeFailure {
                    protocol: "test",
                    direction,
                    offset: seen.bytes[i] + pos as u64,
                    kind: FailureKind::Malformed,
                    detail: "0xFF is not allowed".into(),
                }));
                return;
            }
        }
        seen.hashes[i].update(chunk);
        seen.bytes[i] += chunk.len() as u64;
        seen.chunks += 1;
    }

    fn end_of_stream(&mut self, direction: Direction, _at: Timestamp, _out: &mut Vec<Decoded>) {
        self.seen.lock().unwrap().ends.push(direction);
    }

    fn finish(&mut self, _at: Timestamp, _out: &mut Vec<Decoded>) {
        self.seen.lock().unwrap().finished = true;
    }
}

struct Running {
    addr: SocketAddr,
    log: EventLog,
    seen: Arc<Mutex<Seen>>,
    cancel: CancellationToken,
    runtime: tokio::runtime::Runtime,
}

fn start_proxy(target: SocketAddr, fail_on_ff: bool) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = EventLog::in_memory("decoder-test");
    let seen = Arc::new(Mutex::new(Seen {
        timestamps_ordered: true,
        ..Seen::default()
    }));
    let for_factory = seen.clone();
    let config = ProxyConfig::tcp("client", "server", target)
        .with_mode(RelayMode::Copy)
        .with_decoder(Arc::new(move || {
            Box::new(RecordingDecoder {
                seen: for_factory.clone(),
                fail_on_ff,
                failed: false,
                last: Timestamp(0),
            }) as Box<dyn Decoder>
        }));
    let cancel = CancellationToken::new();
    let proxy = runtime
        .block_on(Proxy::bind(
            "127.0.0.1:0".parse().unwrap(),
            config,
            log.clone(),
        ))
        .unwrap();
    let addr = proxy.local_addr().unwrap();
    runtime.spawn(proxy.run(cancel.clone()));
    Running {
        addr,
        log,
        seen,
        cancel,
        runtime,
    }
}

fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    SmallRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn closed_event(
    log: &EventLog,
    runtime: &tokio::runtime::Runtime,
) -> tapmesh::events::ConnectionInfo {
    let event = runtime
        .block_on(log.wait_for(
            |e| e.kind == EventKind::ConnectionClosed,
            Duration::from_secs(30),
        ))
        .unwrap();
    match &event.payload {
        Payload::Connection(c) => c.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decoder_sees_exactly_the_forwarded_bytes_and_the_hot_path_reuses_its_buffer() {
    const LEN: usize = 64 << 20;
    let up = random(1, LEN);
    let down = random(2, LEN);
    let (up_sha, down_sha) = (sha(&up), sha(&down));

    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let running = start_proxy(server.local_addr().unwrap(), false);
    let server = thread::spawn(move || {
        let (conn, _) = server.accept().unwrap();
        let mut reader = conn.try_clone().unwrap();
        let mut writer = conn;
        let sender = thread::spawn(move || {
            writer.write_all(&down).unwrap();
            writer.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::with_capacity(LEN);
        reader.read_to_end(&mut got).unwrap();
        sender.join().unwrap();
        got
    });

    let conn = TcpStream::connect(running.addr).unwrap();
    let mut reader = conn.try_clone().unwrap();
    let mut writer = conn;
    let mut got = Vec::with_capacity(LEN);
    COUNTING.store(true, Ordering::SeqCst);
    let sender = thread::spawn(move || {
        writer.write_all(&up).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    reader.read_to_end(&mut got).unwrap();
    sender.join().unwrap();
    let server_got = server.join().unwrap();
    let closed = closed_event(&running.log, &running.runtime);
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);

    assert_eq!(sha(&server_got), up_sha, "client → target unchanged");
    assert_eq!(sha(&got), down_sha, "target → client unchanged");
    assert_eq!(
        (closed.bytes_in, closed.bytes_out),
        (LEN as u64, LEN as u64)
    );

    let seen = running.seen.lock().unwrap();
    assert_eq!(
        seen.bytes,
        [LEN as u64, LEN as u64],
        "the decoder was fed every byte"
    );
    let fed: [[u8; 32]; 2] = [
        seen.hashes[0].clone().finalize().into(),
        seen.hashes[1].clone().finalize().into(),
    ];
    assert_eq!(fed, [up_sha, down_sha], "…in order, exactly as forwarded");
    assert_eq!(seen.ends.len(), 2, "both FINs reported to the decoder");
    assert!(seen.finished);
    assert!(seen.timestamps_ordered, "timestamps never go backwards");
    // 128 MiB moved in at least 2048 chunks: a per-chunk allocation anywhere
    // on the path would show as thousands here.
    assert!(seen.chunks >= 2 * (LEN as u64 / (64 * 1024)));
    eprintln!(
        "{allocations} allocations while relaying {} chunks",
        seen.chunks
    );
    assert!(
        allocations < seen.chunks / 8,
        "{allocations} allocations for {} chunks: the relay allocates per chunk",
        seen.chunks
    );
    drop(seen);
    running.cancel.cancel();
}

#[test]
fn a_decoder_that_gives_up_reports_once_and_traffic_flows_on() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let running = start_proxy(server.local_addr().unwrap(), true);
    let echo = thread::spawn(move || {
        let (mut conn, _) = server.accept().unwrap();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n]).unwrap();
        }
    });
    let mut client = TcpStream::connect(running.addr).unwrap();
    let messages: [&[u8]; 3] = [b"fine so far", b"bad \xFF byte", b"still flowing"];
    for m in messages {
        client.write_all(m).unwrap();
        let mut back = vec![0u8; m.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, m, "echoed unchanged through a failed decoder");
    }
    client.shutdown(Shutdown::Write).unwrap();
    assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    echo.join().unwrap();

    let closed = closed_event(&running.log, &running.runtime);
    let total: u64 = messages.iter().map(|m| m.len() as u64).sum();
    assert_eq!((closed.bytes_in, closed.bytes_out), (total, total));

    let errors: Vec<_> = running
        .log
        .since(1)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::DecodeError)
        .collect();
    assert_eq!(errors.len(), 1, "exactly one decode.error");
    let Payload::DecodeError(err) = &errors[0].payload else {
        panic!("{:?}", errors[0]);
    };
    assert_eq!(err.connection, closed.id);
    assert_eq!(err.protocol, "test");
    assert_eq!(err.direction, "client_to_target");
    assert_eq!(err.offset, 11 + 4, "offset within the client's stream");
    assert_eq!(err.reason, "0xFF is not allowed");
    assert_eq!(err.kind.as_deref(), Some("malformed"));
    assert_eq!((&*err.source, &*err.target), ("client", "server"));

    let seen = running.seen.lock().unwrap();
    assert_eq!(
        seen.fed_after_failure, 0,
        "the proxy stops feeding a decoder that gave up"
    );
    assert!(!seen.finished, "nor does it call finish on it");
    drop(seen);
    running.cancel.cancel();
}
