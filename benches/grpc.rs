//! The gRPC layer alone (sans-IO): counting messages in DATA payloads as
//! they pass (the only part on the traffic path), and decoding a captured
//! server stream to JSON with a schema and without one.

use std::hint::black_box;
use std::path::PathBuf;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::protocols::grpc::{
    decode_body, DecodeLimits, GrpcMessageCounter, PayloadDecoder, SchemaRegistry,
};

/// A `shop.inventory.v1.StockLevel` (site, count) encoded by hand.
fn stock_level(i: u32) -> Vec<u8> {
    let site = format!("warehouse-{i}");
    let mut m = vec![0x0a, site.len() as u8];
    m.extend_from_slice(site.as_bytes());
    m.push(0x10);
    let mut v = i;
    while v >= 0x80 {
        m.push((v as u8) | 0x80);
        v >>= 7;
    }
    m.push(v as u8);
    m
}

/// A server stream of `n` framed messages.
fn stream(n: u32) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..n {
        let m = stock_level(i);
        body.push(0);
        body.extend_from_slice(&(m.len() as u32).to_be_bytes());
        body.extend_from_slice(&m);
    }
    body
}

fn counter(c: &mut Criterion) {
    let body = stream(50_000);
    let mut group = c.benchmark_group("grpc_counter");
    group.throughput(Throughput::Bytes(body.len() as u64));
    // HTTP/2's default maximum DATA frame size.
    group.bench_function("16KiB_data_frames", |b| {
        b.iter(|| {
            let mut counter = GrpcMessageCounter::new();
            for frame in body.chunks(16 * 1024) {
                counter.feed(black_box(frame));
            }
            assert_eq!(counter.messages(), 50_000);
        })
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let protos = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("protocols/tests/data/grpc");
    let registry = SchemaRegistry::from_proto_files(&["shop/inventory.proto"], &[protos]).unwrap();
    let schema = registry
        .method("shop.inventory.v1.Inventory", "WatchStock")
        .unwrap();
    // 1000 messages, about 23 KiB: all within the default limits.
    let body = Bytes::from(stream(1_000));
    let limits = DecodeLimits::default();
    let mut group = c.benchmark_group("grpc_decode");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("schema", |b| {
        b.iter(|| {
            let decoded = decode_body(&body, None, PayloadDecoder::Schema(&schema.output), &limits);
            assert_eq!(decoded.messages.len(), 1_000);
        })
    });
    group.bench_function("schemaless", |b| {
        b.iter(|| {
            let decoded = decode_body(&body, None, PayloadDecoder::Schemaless, &limits);
            assert_eq!(decoded.messages.len(), 1_000);
        })
    });
    group.finish();
}

criterion_group!(benches, counter, decode);
criterion_main!(benches);
