//! The Kafka decoder alone (sans-IO, no sockets): frames per second on a
//! produce-heavy stream (Produce v7 requests, each a batch of ten 1 KiB
//! records, and their responses), fed in the 64 KiB chunks the proxy reads.

use std::hint::black_box;

use bytes::{BufMut, Bytes};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::protocols::kafka::{KafkaConfig, KafkaDecoder};
use tapmesh::protocols::{Decoded, Decoder, Direction, Timestamp};

const CHUNK: usize = 64 * 1024;
const N: usize = 2_000;
const RECORDS_PER_BATCH: i32 = 10;
const RECORD: usize = 1024;

fn sized(body: Vec<u8>) -> Vec<u8> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend(body);
    frame
}

/// A v2 record batch header for `count` records, then opaque record bytes.
fn batch(count: i32, payload: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_i64(0);
    b.put_i32((49 + payload) as i32);
    b.put_i32(0);
    b.put_i8(2);
    b.put_u32(0);
    b.put_i16(0);
    b.put_i32(count - 1);
    b.put_i64(0);
    b.put_i64(0);
    b.put_i64(-1);
    b.put_i16(-1);
    b.put_i32(-1);
    b.put_i32(count);
    b.extend(std::iter::repeat_n(b'r', payload));
    b
}

/// Produce v7 (header v1): acks=1, topic "orders", partition i % 3.
fn produce_request(correlation: i32, records: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_i16(0);
    b.put_i16(7);
    b.put_i32(correlation);
    b.put_i16(7);
    b.put_slice(b"rdkafka");
    b.put_i16(-1); // transactional id
    b.put_i16(1); // acks
    b.put_i32(30_000);
    b.put_i32(1);
    b.put_i16(6);
    b.put_slice(b"orders");
    b.put_i32(1);
    b.put_i32(correlation % 3);
    b.put_i32(records.len() as i32);
    b.put_slice(records);
    sized(b)
}

fn produce_response(correlation: i32) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_i32(correlation);
    b.put_i32(1);
    b.put_i16(6);
    b.put_slice(b"orders");
    b.put_i32(1);
    b.put_i32(correlation % 3);
    b.put_i16(0);
    b.put_i64(i64::from(correlation));
    b.put_i64(-1);
    b.put_i64(0);
    b.put_i32(0); // throttle
    sized(b)
}

/// Feeds rounds of pipelined requests, each round's requests in one chunk
/// and then their responses in one chunk (the way a producer with several
/// requests in flight and its broker interleave), and returns the records
/// the Produce exchanges reported.
fn decode(requests: &[Bytes], responses: &[Bytes]) -> u64 {
    let mut decoder = KafkaDecoder::new(KafkaConfig::default());
    let mut out = Vec::new();
    let mut records = 0;
    for (i, (req, resp)) in requests.iter().zip(responses).enumerate() {
        let at = Timestamp(i as u64);
        decoder.feed(Direction::ClientToTarget, req, at, &mut out);
        decoder.feed(Direction::TargetToClient, resp, at, &mut out);
        count(&mut out, &mut records);
    }
    records
}

fn count(out: &mut Vec<Decoded>, records: &mut u64) {
    for d in out.drain(..) {
        match d {
            Decoded::Kafka(x) => {
                *records += x.topics.iter().flatten().map(|t| t.records).sum::<u64>()
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn produce_heavy(c: &mut Criterion) {
    let records = batch(RECORDS_PER_BATCH, RECORDS_PER_BATCH as usize * RECORD);
    // Six requests (about 61 KiB) per round: one proxy-sized chunk.
    const DEPTH: usize = 6;
    let mut requests = Vec::new();
    let mut responses = Vec::new();
    for round in 0..N / DEPTH {
        let mut up = Vec::new();
        let mut down = Vec::new();
        for i in (round * DEPTH..(round + 1) * DEPTH).map(|i| i as i32) {
            up.extend(produce_request(i, &records));
            down.extend(produce_response(i));
        }
        assert!(up.len() <= CHUNK);
        requests.push(Bytes::from(up));
        responses.push(Bytes::from(down));
    }
    let frames = 2 * (N / DEPTH * DEPTH) as u64;
    let bytes: usize = requests.iter().chain(&responses).map(Bytes::len).sum();
    assert_eq!(
        decode(&requests, &responses),
        frames / 2 * RECORDS_PER_BATCH as u64
    );

    let mut group = c.benchmark_group("kafka_produce_heavy");
    group.throughput(Throughput::Elements(frames));
    group.bench_function("frames", |b| {
        b.iter(|| black_box(decode(&requests, &responses)))
    });
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("bytes", |b| {
        b.iter(|| black_box(decode(&requests, &responses)))
    });
    group.finish();
}

criterion_group!(benches, produce_heavy);
criterion_main!(benches);
