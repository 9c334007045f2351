use bytes::Bytes;

use super::*;

const C2T: Direction = Direction::ClientToTarget;
const T2C: Direction = Direction::TargetToClient;

/// A capture made by a relay between a real client and PostgreSQL 15:
/// records of a direction byte (`C` client → server, `S` back), a 4-byte
/// big-endian length and the chunk as it was read.
fn capture(name: &str) -> Vec<(Direction, Bytes)> {
    let path = format!(
        "{}/tests/data/postgres/{name}.bin",
        env!("CARGO_MANIFEST_DIR")
    );
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut chunks = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let direction = match rest[0] {
            b'C' => C2T,
            b'S' => T2C,
            other => panic!("{path}: direction byte {other}"),
        };
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        chunks.push((direction, Bytes::copy_from_slice(&rest[5..5 + len])));
        rest = &rest[5 + len..];
    }
    chunks
}

/// Feeds the chunks (chunk `i` at `i` ms) and finishes.
fn run_with(config: PostgresConfig, chunks: &[(Direction, Bytes)]) -> Vec<Decoded> {
    let mut decoder = PostgresDecoder::new(config);
    let mut out = Vec::new();
    for (i, (d, c)) in chunks.iter().enumerate() {
        decoder.feed(*d, c, Timestamp(1_000_000 * (i as u64 + 1)), &mut out);
    }
    decoder.finish(Timestamp(1_000_000 * (chunks.len() as u64 + 1)), &mut out);
    out
}

fn run(chunks: &[(Direction, Bytes)]) -> Vec<Decoded> {
    run_with(PostgresConfig::default(), chunks)
}

/// One line per output, for asserting a whole capture's story at once.
fn line(d: &Decoded) -> String {
    let o = match d {
        Decoded::Postgres(o) => o,
        Decoded::Failure(f) => {
            return format!("FAILURE {:?} at {}: {}", f.direction, f.offset, f.reason)
        }
        other => panic!("unexpected {other:?}"),
    };
    match &**o {
        PostgresOutput::Session(s) => format!(
            "session user={:?} db={:?} app={:?} auth={:?} ready={} error={:?}",
            s.user.as_deref().unwrap_or(""),
            s.database.as_deref().unwrap_or(""),
            s.application_name.as_deref().unwrap_or(""),
            s.auth,
            s.ready_at.is_some(),
            s.error.as_ref().map(|e| &e.code),
        ),
        PostgresOutput::Query(q) => {
            let mut l = format!("{:?} {:?}", q.command.as_deref().unwrap_or("-"), &*q.sql);
            if let Some(r) = q.rows {
                l += &format!(" rows={r}");
            }
            if !q.params.is_empty() {
                let p: Vec<String> = q.params.iter().map(|p| format!("{:?}", p.value)).collect();
                l += &format!(" params=[{}]", p.join(", "));
            }
            if let Some(s) = &q.statement {
                l += &format!(" stmt={s}");
            }
            if let Some(c) = &q.copy {
                l += &format!(
                    " copy={:?}/{}/{}{}",
                    c.direction,
                    c.messages,
                    c.bytes,
                    if c.failed { "/failed" } else { "" }
                );
            }
            if let Some(e) = &q.error {
                l += &format!(" error={}", e.code);
            }
            if q.notice_count > 0 {
                l += &format!(" notices={}", q.notice_count);
            }
            l + &format!(" tx={}", q.transaction.map_or("-", |t| t.as_str()))
        }
        other => format!("{other:?}"),
    }
}

fn lines(out: &[Decoded]) -> Vec<String> {
    out.iter().map(line).collect()
}

#[test]
fn print_captures() {
    for name in [
        "psql_multi_statement",
        "psql_error_in_transaction",
        "psql_copy",
        "psql_listen_notify",
        "auth_cleartext",
        "auth_md5",
        "auth_scram",
        "pgbench_prepared",
        "psycopg_binary_pipeline",
        "psql_ssl",
        "psql_cancelled_query",
        "cancel_request",
    ] {
        eprintln!("== {name}");
        for l in lines(&run(&capture(name))) {
            eprintln!("{l}");
        }
    }
}
