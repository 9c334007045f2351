//! Throughput of the relay loop: 64 MiB through an in-process proxy on
//! loopback, spliced (tcp edges) and copied (decoded edges, here with a
//! decoder that only counts), against a direct connection in the same run.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::events::EventLog;
use tapmesh::protocols::{Decoded, Decoder, Direction, Timestamp};
use tapmesh::proxy::{Proxy, ProxyConfig, RelayMode};
use tokio_util::sync::CancellationToken;

const PAYLOAD: usize = 64 << 20;

/// Reads each connection to EOF and reports how much it got.
fn sink_server() -> (SocketAddr, std::sync::mpsc::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        for conn in listener.incoming() {
            let mut conn = conn.unwrap();
            let mut total = 0;
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
            if tx.send(total).is_err() {
                return;
            }
        }
    });
    (addr, rx)
}

struct CountingDecoder(u64);

impl Decoder for CountingDecoder {
    fn feed(&mut self, _: Direction, chunk: &Bytes, _: Timestamp, _: &mut Vec<Decoded>) {
        self.0 += chunk.len() as u64;
    }
}

fn send_through(addr: SocketAddr, data: &[u8], done: &std::sync::mpsc::Receiver<usize>) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(data).unwrap();
    drop(conn);
    assert_eq!(done.recv().unwrap(), data.len());
}

fn relay(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let data = vec![0x5Au8; PAYLOAD];
    let (target, done) = sink_server();
    let cancel = CancellationToken::new();
    let start = |config: ProxyConfig| {
        let proxy = runtime
            .block_on(Proxy::bind(
                "127.0.0.1:0".parse().unwrap(),
                config,
                EventLog::in_memory("bench"),
            ))
            .unwrap();
        let addr = proxy.local_addr().unwrap();
        runtime.spawn(proxy.run(cancel.clone()));
        addr
    };
    let spliced = start(ProxyConfig::tcp("bench", "sink", target));
    let copied = start(
        ProxyConfig::tcp("bench", "sink", target)
            .with_mode(RelayMode::Copy)
            .with_decoder(Arc::new(|| {
                Box::new(CountingDecoder(0)) as Box<dyn Decoder>
            })),
    );

    let mut group = c.benchmark_group("relay_64MiB");
    group.throughput(Throughput::Bytes(PAYLOAD as u64));
    group.sample_size(20);
    group.bench_function("direct", |b| b.iter(|| send_through(target, &data, &done)));
    group.bench_function("splice", |b| b.iter(|| send_through(spliced, &data, &done)));
    group.bench_function("copy_with_decoder", |b| {
        b.iter(|| send_through(copied, &data, &done))
    });
    group.finish();
    cancel.cancel();
}

criterion_group!(benches, relay);
criterion_main!(benches);
