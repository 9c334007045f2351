//! The HTTP/2 decoder alone (sans-IO, no sockets): streams per second on a
//! connection carrying many small requests ten at a time, and bytes per
//! second on large bodies, both fed in the 64 KiB chunks the proxy reads.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::protocols::http2::{Http2Config, Http2Decoder};
use tapmesh::protocols::{Decoded, Decoder, Direction, Timestamp};

const CHUNK: usize = 64 * 1024;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// Feeds the two directions round by round; returns the streams completed.
fn decode(rounds: &[(Bytes, Bytes)]) -> usize {
    let mut decoder = Http2Decoder::new(Http2Config::default());
    let mut out = Vec::new();
    let mut done = 0;
    for (i, (req, resp)) in rounds.iter().enumerate() {
        let at = Timestamp(i as u64);
        decoder.feed(Direction::ClientToTarget, req, at, &mut out);
        decoder.feed(Direction::TargetToClient, resp, at, &mut out);
        done += out.iter().filter(|d| matches!(d, Decoded::Http(_))).count();
        out.clear();
    }
    done
}

/// Splits both directions into CHUNK-sized reads, paired up round by round.
fn rounds(req: Vec<u8>, resp: Vec<u8>) -> Vec<(Bytes, Bytes)> {
    let split = |v: Vec<u8>| -> Vec<Bytes> {
        let b = Bytes::from(v);
        (0..b.len())
            .step_by(CHUNK)
            .map(|i| b.slice(i..(i + CHUNK).min(b.len())))
            .collect()
    };
    let (mut a, mut b) = (split(req), split(resp));
    let n = a.len().max(b.len());
    a.resize(n, Bytes::new());
    b.resize(n, Bytes::new());
    a.into_iter().zip(b).collect()
}

fn small_streams(c: &mut Criterion) {
    const N: u32 = 10_000;
    const DEPTH: u32 = 10;
    let mut client = loona_hpack::Encoder::new();
    let mut server = loona_hpack::Encoder::new();
    let mut all = Vec::new();
    let mut req = PREFACE.to_vec();
    frame(&mut req, 4, 0, 0, &[]);
    let mut resp = Vec::new();
    frame(&mut resp, 4, 0, 0, &[]);
    let body = br#"{"name":"widget","price":3}"#;
    for round in 0..N / DEPTH {
        let (mut r, mut s) = (std::mem::take(&mut req), std::mem::take(&mut resp));
        for i in round * DEPTH..(round + 1) * DEPTH {
            let id = 2 * i + 1;
            let path = format!("/api/items/{i}?fields=name,price");
            let block = client.encode([
                (&b":method"[..], &b"GET"[..]),
                (b":scheme", b"http"),
                (b":authority", b"inventory:8080"),
                (b":path", path.as_bytes()),
                (b"user-agent", b"curl/8.5.0"),
                (b"accept", b"application/json"),
            ]);
            frame(&mut r, HEADERS, END_HEADERS | END_STREAM, id, &block);
            let block = server.encode([
                (&b":status"[..], &b"200"[..]),
                (b"server", b"nginx"),
                (b"content-type", b"application/json"),
                (b"content-length", b"27"),
            ]);
            frame(&mut s, HEADERS, END_HEADERS, id, &block);
            frame(&mut s, DATA, END_STREAM, id, body);
        }
        all.push((Bytes::from(r), Bytes::from(s)));
    }
    let bytes: usize = all.iter().map(|(a, b)| a.len() + b.len()).sum();
    assert_eq!(decode(&all), N as usize);

    let mut group = c.benchmark_group("http2_small_streams");
    group.throughput(Throughput::Elements(u64::from(N)));
    group.bench_function("10k_gets_10_concurrent", |b| {
        b.iter(|| black_box(decode(&all)))
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("10k_gets_10_concurrent_bytes", |b| {
        b.iter(|| black_box(decode(&all)))
    });
    group.finish();
}

fn large_bodies(c: &mut Criterion) {
    const N: u32 = 16;
    const BODY: usize = 1 << 20;
    let mut client = loona_hpack::Encoder::new();
    let mut server = loona_hpack::Encoder::new();
    let body = vec![b'x'; BODY];
    let mut req = PREFACE.to_vec();
    let mut resp = Vec::new();
    for i in 0..N {
        let id = 2 * i + 1;
        let block = client.encode([
            (&b":method"[..], &b"POST"[..]),
            (b":scheme", b"http"),
            (b":authority", b"h"),
            (b":path", b"/upload"),
        ]);
        frame(&mut req, HEADERS, END_HEADERS, id, &block);
        let block = server.encode([(&b":status"[..], &b"200"[..])]);
        frame(&mut resp, HEADERS, END_HEADERS, id, &block);
        // 16 KiB DATA frames, the default SETTINGS_MAX_FRAME_SIZE.
        let parts = body.chunks(16 * 1024).count();
        for (j, part) in body.chunks(16 * 1024).enumerate() {
            let end = if j + 1 == parts { END_STREAM } else { 0 };
            frame(&mut req, DATA, end, id, part);
            frame(&mut resp, DATA, end, id, part);
        }
    }
    let total = (req.len() + resp.len()) as u64;
    let all = rounds(req, resp);
    assert_eq!(decode(&all), N as usize);

    let mut group = c.benchmark_group("http2_large_bodies");
    group.throughput(Throughput::Bytes(total));
    group.bench_function("16x1MiB_each_way", |b| b.iter(|| black_box(decode(&all))));
    group.finish();
}

criterion_group!(benches, small_streams, large_bodies);
criterion_main!(benches);
