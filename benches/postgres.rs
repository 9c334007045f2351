//! The PostgreSQL decoder alone (sans-IO, no sockets): bytes per second on
//! a pipelined extended-query stream, the way psycopg's pipeline mode or
//! tokio-postgres send it: rounds of 16 executions of a prepared INSERT
//! and a prepared SELECT with binary parameters (Bind + Execute each, one
//! Sync per round), answered by BindComplete, DataRows, CommandComplete
//! and ReadyForQuery, each direction's round in one chunk.

use std::hint::black_box;

use bytes::{BufMut, Bytes};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapmesh::protocols::postgres::{PostgresConfig, PostgresDecoder, PostgresOutput};
use tapmesh::protocols::{Decoded, Decoder, Direction, Timestamp};

const ROUNDS: usize = 500;
const DEPTH: usize = 16;

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.put_u32(body.len() as u32 + 4);
    v.put_slice(body);
    v
}

fn cstr(b: &mut Vec<u8>, s: &str) {
    b.put_slice(s.as_bytes());
    b.put_u8(0);
}

fn parse(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, name);
    cstr(&mut b, sql);
    b.put_i16(types.len() as i16);
    types.iter().for_each(|t| b.put_u32(*t));
    msg(b'P', &b)
}

/// Bind (all parameters binary) + Execute of the unnamed portal.
fn bind_execute(statement: &str, params: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, "");
    cstr(&mut b, statement);
    b.put_i16(1);
    b.put_i16(1);
    b.put_i16(params.len() as i16);
    for p in params {
        b.put_i32(p.len() as i32);
        b.put_slice(p);
    }
    b.put_i16(1);
    b.put_i16(1);
    let mut v = msg(b'B', &b);
    v.extend(msg(b'E', b"\0\0\0\0\0"));
    v
}

fn complete(tag: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, tag);
    msg(b'C', &b)
}

fn data_row(i: usize) -> Vec<u8> {
    let mut b = Vec::new();
    b.put_i16(3);
    b.put_i32(8);
    b.put_i64(i as i64);
    let name = format!("customer-{i:06}");
    b.put_i32(name.len() as i32);
    b.put_slice(name.as_bytes());
    b.put_i32(8);
    b.put_f64(i as f64 * 1.5);
    msg(b'D', &b)
}

/// The connection's messages, as chunks in the order a proxy sees them.
fn stream() -> Vec<(Direction, Bytes)> {
    let startup = b"\0\0\0\x22\0\x03\0\0user\0bench\0database\0shop\0\0".to_vec();
    let mut hello = msg(b'R', &0i32.to_be_bytes());
    hello.extend(msg(b'Z', b"I"));
    let mut prepare = parse(
        "ins",
        "INSERT INTO orders (id, customer, amount, at) VALUES ($1, $2, $3, $4)",
        &[20, 25, 701, 1184],
    );
    prepare.extend(parse(
        "sel",
        "SELECT id, customer, amount FROM orders WHERE customer = $1 LIMIT 10",
        &[25],
    ));
    prepare.extend(msg(b'S', b""));
    let mut prepared = msg(b'1', b"");
    prepared.extend(msg(b'1', b""));
    prepared.extend(msg(b'Z', b"I"));
    let mut chunks = vec![
        (Direction::ClientToTarget, Bytes::from(startup)),
        (Direction::TargetToClient, Bytes::from(hello)),
        (Direction::ClientToTarget, Bytes::from(prepare)),
        (Direction::TargetToClient, Bytes::from(prepared)),
    ];
    for round in 0..ROUNDS {
        let mut up = Vec::new();
        let mut down = Vec::new();
        for i in round * DEPTH..(round + 1) * DEPTH {
            let customer = format!("customer-{:06}", i % 1000);
            if i % 2 == 0 {
                let id = (i as i64).to_be_bytes();
                let amount = (i as f64).to_be_bytes();
                let at = (i as i64 * 1_000_000).to_be_bytes();
                up.extend(bind_execute(
                    "ins",
                    &[&id, customer.as_bytes(), &amount, &at],
                ));
                down.extend(msg(b'2', b""));
                down.extend(complete("INSERT 0 1"));
            } else {
                up.extend(bind_execute("sel", &[customer.as_bytes()]));
                down.extend(msg(b'2', b""));
                for r in 0..10 {
                    down.extend(data_row(i + r));
                }
                down.extend(complete("SELECT 10"));
            }
        }
        up.extend(msg(b'S', b""));
        down.extend(msg(b'Z', b"I"));
        chunks.push((Direction::ClientToTarget, Bytes::from(up)));
        chunks.push((Direction::TargetToClient, Bytes::from(down)));
    }
    chunks
}

/// Decodes the stream; returns the rows the queries reported.
fn decode(chunks: &[(Direction, Bytes)]) -> u64 {
    let mut decoder = PostgresDecoder::new(PostgresConfig::default());
    let mut out = Vec::new();
    let mut rows = 0;
    for (i, (d, c)) in chunks.iter().enumerate() {
        decoder.feed(*d, c, Timestamp(i as u64), &mut out);
        for o in out.drain(..) {
            match o {
                Decoded::Postgres(p) => {
                    if let PostgresOutput::Query(q) = *p {
                        rows += q.rows.unwrap_or(0);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    rows
}

fn pipelined_extended(c: &mut Criterion) {
    let chunks = stream();
    let bytes: usize = chunks.iter().map(|(_, c)| c.len()).sum();
    let queries = (ROUNDS * DEPTH) as u64;
    assert_eq!(decode(&chunks), queries / 2 + queries / 2 * 10);

    let mut group = c.benchmark_group("postgres_pipelined_extended");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("bytes", |b| b.iter(|| black_box(decode(&chunks))));
    group.throughput(Throughput::Elements(queries));
    group.bench_function("queries", |b| b.iter(|| black_box(decode(&chunks))));
    group.finish();
}

criterion_group!(benches, pipelined_extended);
criterion_main!(benches);
