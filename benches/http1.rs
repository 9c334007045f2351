//! The HTTP/1 decoder alone (sans-IO, no sockets): exchanges per second on
//! a keep-alive stream of small requests, and bytes per second on large
//! bodies, both fed in the 64 KiB chunks the proxy reads.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::protocols::http1::{Http1Config, Http1Decoder};
use tapmesh::protocols::{Decoded, Decoder, Direction, Timestamp};

const CHUNK: usize = 64 * 1024;

/// Feeds a request stream and a response stream, alternating chunk by
/// chunk, and returns how many exchanges completed.
fn decode(requests: &[Bytes], responses: &[Bytes]) -> usize {
    let mut decoder = Http1Decoder::new(Http1Config::default());
    let mut out = Vec::new();
    let mut done = 0;
    for (i, (req, resp)) in requests.iter().zip(responses).enumerate() {
        let at = Timestamp(i as u64);
        decoder.feed(Direction::ClientToTarget, req, at, &mut out);
        decoder.feed(Direction::TargetToClient, resp, at, &mut out);
        done += out.iter().filter(|d| matches!(d, Decoded::Http(_))).count();
        out.clear();
    }
    done
}

fn chunks(stream: &[u8]) -> Vec<Bytes> {
    let stream = Bytes::copy_from_slice(stream);
    (0..stream.len())
        .step_by(CHUNK)
        .map(|i| stream.slice(i..(i + CHUNK).min(stream.len())))
        .collect()
}

fn small_requests(c: &mut Criterion) {
    const N: usize = 10_000;
    const DEPTH: usize = 10;
    // Rounds of DEPTH pipelined requests in one chunk, then their responses
    // in one chunk: the way a keep-alive client and server interleave.
    let mut requests = Vec::new();
    let mut responses = Vec::new();
    for round in 0..N / DEPTH {
        let mut req = Vec::new();
        let mut resp = Vec::new();
        for i in round * DEPTH..(round + 1) * DEPTH {
            req.extend_from_slice(
                format!(
                    "GET /api/items/{i}?fields=name,price HTTP/1.1\r\nHost: inventory:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: application/json\r\n\r\n"
                )
                .as_bytes(),
            );
            resp.extend_from_slice(
                b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\nContent-Length: 27\r\nConnection: keep-alive\r\n\r\n{\"name\":\"widget\",\"price\":3}",
            );
        }
        requests.push(Bytes::from(req));
        responses.push(Bytes::from(resp));
    }
    let bytes: usize = requests.iter().chain(&responses).map(Bytes::len).sum();
    assert_eq!(decode(&requests, &responses), N);

    let mut group = c.benchmark_group("http1_small_exchanges");
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("10k_keepalive_gets", |b| {
        b.iter(|| black_box(decode(&requests, &responses)))
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("10k_keepalive_gets_bytes", |b| {
        b.iter(|| black_box(decode(&requests, &responses)))
    });
    group.finish();
}

fn large_bodies(c: &mut Criterion) {
    const N: usize = 16;
    const BODY: usize = 1 << 20;
    let body = vec![b'x'; BODY];
    let mut req = Vec::new();
    let mut resp = Vec::new();
    for _ in 0..N {
        req.extend_from_slice(
            format!("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: {BODY}\r\n\r\n")
                .as_bytes(),
        );
        req.extend_from_slice(&body);
        // The response body is chunked, as a streaming server would send it.
        resp.extend_from_slice(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for part in body.chunks(8192) {
            resp.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            resp.extend_from_slice(part);
            resp.extend_from_slice(b"\r\n");
        }
        resp.extend_from_slice(b"0\r\n\r\n");
    }
    let total = (req.len() + resp.len()) as u64;
    let mut requests = chunks(&req);
    let mut responses = chunks(&resp);
    let n = requests.len().max(responses.len());
    requests.resize(n, Bytes::new());
    responses.resize(n, Bytes::new());
    assert_eq!(decode(&requests, &responses), N);

    let mut group = c.benchmark_group("http1_large_bodies");
    group.throughput(Throughput::Bytes(total));
    group.bench_function("16x1MiB_each_way", |b| {
        b.iter(|| black_box(decode(&requests, &responses)))
    });
    group.finish();
}

criterion_group!(benches, small_requests, large_bodies);
criterion_main!(benches);
