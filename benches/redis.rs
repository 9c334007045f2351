//! The Redis decoder alone (sans-IO, no sockets), in bytes per second:
//! - `pipe_capture`: the real capture of `redis-cli --pipe` sending 3000
//!   SETs (protocols/tests/data/redis/pipe.bin), chunks as the relay
//!   forwarded them;
//! - `pipelined_1k_values`: 100 rounds of 50 pipelined `SET key <1 KiB>`
//!   and `GET key` in 64 KiB proxy-sized chunks, then their replies.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::protocols::redis::{RedisConfig, RedisDecoder, RedisOutput};
use tapmesh::protocols::{Decoded, Decoder, Direction, Timestamp};

const CHUNK: usize = 64 * 1024;

/// The capture's chunks: records of [tag][u32 BE length][bytes].
fn capture(name: &str) -> Vec<(Direction, Bytes)> {
    let path = format!(
        "{}/protocols/tests/data/redis/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut chunks = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let direction = if rest[0] == b'C' {
            Direction::ClientToTarget
        } else {
            Direction::TargetToClient
        };
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        chunks.push((direction, Bytes::copy_from_slice(&rest[5..5 + len])));
        rest = &rest[5 + len..];
    }
    chunks
}

/// Decodes the chunks; returns the commands reported.
fn decode(chunks: &[(Direction, Bytes)]) -> u64 {
    let mut decoder = RedisDecoder::new(RedisConfig::default());
    let mut out = Vec::new();
    let mut commands = 0;
    for (i, (direction, chunk)) in chunks.iter().enumerate() {
        decoder.feed(*direction, chunk, Timestamp(i as u64), &mut out);
        count(&mut out, &mut commands);
    }
    decoder.finish(Timestamp(u64::MAX), &mut out);
    count(&mut out, &mut commands);
    commands
}

fn count(out: &mut Vec<Decoded>, commands: &mut u64) {
    for d in out.drain(..) {
        match d {
            Decoded::Redis(o) if matches!(*o, RedisOutput::Command(_)) => *commands += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Rounds of pipelined SETs of 1 KiB values and GETs, with their replies.
fn pipelined_1k_values() -> (Vec<(Direction, Bytes)>, u64) {
    let value = "v".repeat(1024);
    let mut chunks = Vec::new();
    let mut commands = 0;
    for round in 0..100 {
        let mut up = Vec::new();
        let mut down = Vec::new();
        for i in 0..25 {
            let key = format!("key:{round}:{i}");
            up.extend(
                format!(
                    "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$1024\r\n{value}\r\n",
                    key.len()
                )
                .bytes(),
            );
            up.extend(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).bytes());
            down.extend(b"+OK\r\n");
            down.extend(format!("$1024\r\n{value}\r\n").bytes());
            commands += 2;
        }
        for piece in up.chunks(CHUNK) {
            chunks.push((Direction::ClientToTarget, Bytes::copy_from_slice(piece)));
        }
        for piece in down.chunks(CHUNK) {
            chunks.push((Direction::TargetToClient, Bytes::copy_from_slice(piece)));
        }
    }
    (chunks, commands)
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("redis");
    let pipe = capture("pipe");
    let (values, commands) = pipelined_1k_values();
    for (name, chunks, commands) in [
        ("pipe_capture", &pipe, 3001),
        ("pipelined_1k_values", &values, commands),
    ] {
        assert_eq!(decode(chunks), commands);
        let bytes: usize = chunks.iter().map(|(_, c)| c.len()).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("{name}_bytes"), |b| {
            b.iter(|| black_box(decode(chunks)))
        });
        group.throughput(Throughput::Elements(commands));
        group.bench_function(format!("{name}_commands"), |b| {
            b.iter(|| black_box(decode(chunks)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
