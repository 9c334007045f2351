//! Many idle connections through one proxy: all stay open, and the proxy's
//! memory per idle connection stays small.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::ProxyProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const WANTED: usize = 10_000;
/// Goal for the proxy's resident memory with every connection idle.
const RSS_GOAL_KIB: u64 = 64 * 1024;

fn open_file_limit() -> u64 {
    tapmesh::sys::raise_open_file_limit().expect("reading the open file limit")
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_stay_open_in_little_memory() {
    // This process holds both ends (client and target side) of every
    // connection, and so does the proxy: two descriptors each, plus a few.
    // Where the hard limit cannot fit 10,000 (some sandboxes cap it at
    // 20,000), use as many as fit and say so.
    let limit = open_file_limit();
    let n = WANTED.min(((limit.saturating_sub(200)) / 2) as usize);
    if n < WANTED {
        eprintln!("open file limit {limit}: testing {n} connections instead of {WANTED}");
    }
    assert!(
        n >= 1_000,
        "an open file limit of {limit} is too low for this test"
    );

    // A deep accept queue: with a shallow one the kernel, overflowing,
    // completes handshakes with SYN cookies that it then drops.
    let server = {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        socket.listen(4096).unwrap()
    };
    let target = server.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let accepted_count = accepted.clone();
    // An echo server: one task per connection, idle until a byte arrives.
    tokio::spawn(async move {
        loop {
            let mut conn = match server.accept().await {
                Ok((conn, _)) => conn,
                Err(e) => {
                    eprintln!("test server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            accepted_count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = [0u8; 16];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });

    let proxy = ProxyProcess::start(target, &[]);
    let pid = proxy.pid();
    let baseline_kib = proc_status_kib(pid, "VmRSS:");

    // Connect in batches, each fully accepted by the target before the next,
    // so neither accept queue (the proxy's or the target's) overflows.
    let gate = Arc::new(Semaphore::new(256));
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let batch = (n - clients.len()).min(500);
        let mut connecting = Vec::with_capacity(batch);
        for _ in 0..batch {
            let gate = gate.clone();
            let addr = proxy.addr;
            connecting.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                TcpStream::connect(addr).await
            }));
        }
        for c in connecting {
            clients.push(c.await.unwrap().expect("connecting through the proxy"));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while accepted.load(Ordering::Relaxed) < clients.len() {
            assert!(
                Instant::now() < deadline,
                "only {} of {} connections reached the target",
                accepted.load(Ordering::Relaxed),
                clients.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_kib = proc_status_kib(pid, "VmRSS:");
    let per_connection = (rss_kib.saturating_sub(baseline_kib)) as f64 * 1024.0 / n as f64;
    eprintln!(
        "proxy RSS with {n} idle connections: {:.1} MiB (baseline {:.1} MiB, {:.0} bytes per connection)",
        rss_kib as f64 / 1024.0,
        baseline_kib as f64 / 1024.0,
        per_connection
    );

    // All still open: a byte goes through each and comes back.
    let mut checks = Vec::with_capacity(n);
    for (i, mut client) in clients.into_iter().enumerate() {
        let gate = gate.clone();
        checks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let byte = [(i % 251) as u8];
            client.write_all(&byte).await?;
            let mut back = [0u8; 1];
            client.read_exact(&mut back).await?;
            assert_eq!(back, byte);
            Ok::<_, std::io::Error>(client)
        }));
    }
    let mut clients = Vec::with_capacity(n);
    for c in checks {
        clients.push(c.await.unwrap().expect("an idle connection went dead"));
    }
    drop(clients);

    let opened = proxy
        .events()
        .iter()
        .filter(|e| e["type"] == "connection.opened")
        .count();
    assert_eq!(opened, n, "one connection.opened per connection");
    assert!(
        rss_kib <= RSS_GOAL_KIB,
        "the proxy uses {rss_kib} KiB for {n} idle connections; the goal is {RSS_GOAL_KIB} KiB"
    );
    let events = proxy.stop();
    let closed = events
        .iter()
        .filter(|e| e["type"] == "connection.closed")
        .count();
    assert_eq!(closed, n, "every connection closed and reported");
}
