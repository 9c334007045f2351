use bytes::Bytes;

use super::*;

mod edges;

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
            return format!("FAILURE {:?} at {}: {}", f.direction, f.offset, f.detail)
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

fn names(out: &[Decoded]) -> Vec<&str> {
    out.iter()
        .filter_map(|d| match d {
            Decoded::Postgres(o) => match &**o {
                PostgresOutput::Query(q) => Some(&*q.sql),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn queries(out: &[Decoded]) -> Vec<&PostgresQuery> {
    out.iter()
        .filter_map(|d| match d {
            Decoded::Postgres(o) => match &**o {
                PostgresOutput::Query(q) => Some(q),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn session(out: &[Decoded]) -> &PostgresSession {
    match &out[0] {
        Decoded::Postgres(o) => match &**o {
            PostgresOutput::Session(s) => s,
            other => panic!("first output {other:?}"),
        },
        other => panic!("first output {other:?}"),
    }
}

#[test]
fn psql_several_statements_in_one_query() {
    let out = run(&capture("psql_multi_statement"));
    assert_eq!(
        lines(&out),
        [
            "session user=\"postgres\" db=\"postgres\" app=\"psql\" auth=Some(Trust) ready=true error=None",
            "\"CREATE TABLE\" \"create table t(id int primary key, name text, amount numeric)\" tx=idle",
            "\"BEGIN\" \"BEGIN\" tx=idle",
            "\"INSERT\" \"INSERT INTO t VALUES (1,'a;b',1.5),(2,$$x;y$$,2)\" rows=2 tx=idle",
            "\"UPDATE\" \"UPDATE t SET name = 'c' WHERE id = 1\" rows=1 tx=idle",
            "\"SELECT\" \"-- a ; comment\\nSELECT * FROM t ORDER BY id\" rows=2 tx=idle",
            "\"COMMIT\" \"COMMIT\" tx=idle",
        ]
    );
    let s = session(&out);
    assert!(s.ssl_refused, "psql asked for TLS first and was told N");
    assert_eq!(s.protocol_version, (3, 0));
    assert!(s.backend_pid.is_some());
    assert!(s
        .server_parameters
        .iter()
        .any(|(k, _)| k == "server_version"));
    let q = queries(&out);
    // The Query message is counted once, on its first statement.
    assert!(q[0].request_size > 0 && q[1].request_size == 0);
    assert!(q
        .iter()
        .all(|q| q.response_size > 0 && q.protocol == QueryProtocol::Simple));
}

#[test]
fn psql_error_inside_a_transaction() {
    let out = run(&capture("psql_error_in_transaction"));
    assert_eq!(
        lines(&out)[1..],
        [
            "\"BEGIN\" \"BEGIN\" tx=in_transaction",
            "\"INSERT\" \"INSERT INTO t VALUES (3, 'z', 3)\" rows=1 tx=in_transaction",
            "\"-\" \"SELECT 1/0\" error=22012 tx=failed",
            "\"-\" \"SELECT 1\" error=25P02 tx=failed",
            "\"ROLLBACK\" \"ROLLBACK\" tx=idle",
        ]
    );
    let e = queries(&out)[2].error.clone().unwrap();
    assert_eq!((&*e.severity, &*e.message), ("ERROR", "division by zero"));
}

#[test]
fn psql_copy_in_and_out_counted() {
    let out = run(&capture("psql_copy"));
    assert_eq!(
        lines(&out)[1..],
        [
            "\"COPY\" \"COPY t FROM STDIN\" rows=2 copy=In/1/17 tx=idle",
            "\"COPY\" \"COPY t TO STDOUT\" rows=4 copy=Out/4/30 tx=idle",
            "\"-\" \"COPY t FROM STDIN\" copy=In/1/7 error=22P02 tx=idle",
        ]
    );
}

#[test]
fn listen_notify_reports_notifications() {
    let out = run(&capture("psql_listen_notify"));
    let notes: Vec<&PgNotification> = out
        .iter()
        .filter_map(|d| match d {
            Decoded::Postgres(o) => match &**o {
                PostgresOutput::Notification(n) => Some(n),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 2);
    assert_eq!(
        (&*notes[0].channel, &*notes[0].payload),
        ("chan", "hello payload")
    );
    assert_eq!(&*notes[1].payload, "second");
    assert!(notes[0].pid > 0 && !notes[0].payload_truncated);
    assert_eq!(
        names(&out),
        [
            "LISTEN chan",
            "NOTIFY chan, 'hello payload'",
            "SELECT pg_notify('chan','second')"
        ]
    );
}

#[test]
fn pgbench_prepared_statements_recovered_by_name() {
    let out = run(&capture("pgbench_prepared"));
    let q = queries(&out);
    assert_eq!(q.len(), 21, "three transactions of seven statements");
    let update = q[1];
    assert_eq!(update.protocol, QueryProtocol::Extended);
    assert_eq!(update.statement.as_deref(), Some("P_1"));
    assert_eq!(
        &*update.sql,
        "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"
    );
    assert_eq!(update.rows, Some(1));
    assert!(matches!(&update.params[1].value, PgValue::Text(t) if t.parse::<u32>().is_ok()));
    // Later transactions execute statements parsed in the first.
    assert_eq!(q[8].sql, q[1].sql);
    assert_eq!(q[6].command.as_deref(), Some("COMMIT"));
    assert_eq!(q[6].transaction, Some(TransactionStatus::Idle));
    assert_eq!(q[5].transaction, Some(TransactionStatus::InTransaction));
}

#[test]
fn psycopg_binary_parameters_and_pipeline() {
    let out = run(&capture("psycopg_binary_pipeline"));
    let l = lines(&out);
    assert_eq!(
        l[2],
        "\"INSERT\" \"INSERT INTO kinds VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)\" rows=1 params=[Bool(true), Int(7), Int(-42), Int(9000000000), Float(1.5), Float(-2.25), Text(\"héllo\"), Uuid(\"12345678-1234-5678-1234-567812345678\"), Bytea(\"\\\\x0001feff\"), Timestamp(\"2024-01-02T03:04:05.678901\"), Timestamp(\"2024-01-02T03:04:05Z\")] stmt=_pg3_0 tx=idle"
    );
    assert!(l[3].contains("params=[Null, Null"));
    // Three executions of one statement parsed once, pipelined before a Sync.
    assert_eq!(
        l[5..9],
        [
            "\"SELECT\" \"SELECT $1::int8 + 1, $2::text\" rows=1 params=[Int(0), Text(\"p0\")] stmt=_pg3_2 tx=idle",
            "\"SELECT\" \"SELECT $1::int8 + 1, $2::text\" rows=1 params=[Int(1), Text(\"p1\")] stmt=_pg3_2 tx=idle",
            "\"SELECT\" \"SELECT $1::int8 + 1, $2::text\" rows=1 params=[Int(2), Text(\"p2\")] stmt=_pg3_2 tx=idle",
            "\"INSERT\" \"INSERT INTO kinds (i) VALUES ($1)\" rows=1 params=[Int(5)] tx=idle",
        ]
    );
    // An error in a pipeline: the statement after it is skipped by the
    // server up to Sync, so it is not reported.
    assert_eq!(
        l[9..],
        [
            "\"BEGIN\" \"BEGIN\" tx=in_transaction",
            "\"SELECT\" \"SELECT 1\" rows=1 tx=failed",
            "\"-\" \"SELECT 1/$1\" params=[Int(0)] error=22012 tx=failed",
            "\"ROLLBACK\" \"ROLLBACK\" tx=idle",
            "\"DEALLOCATE ALL\" \"DEALLOCATE ALL\" tx=idle",
        ]
    );
}

#[test]
fn tls_ends_decoding_with_one_typed_outcome() {
    let out = run(&capture("psql_ssl"));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(
        &out[0],
        Decoded::Postgres(o) if matches!(**o, PostgresOutput::Encrypted { kind: EncryptionKind::Tls, .. })
    ));
}

#[test]
fn cancel_request_and_the_cancelled_query() {
    let out = run(&capture("cancel_request"));
    assert!(matches!(&lines(&out)[..], [l] if l.starts_with("CancelRequest { pid: 5910")));
    let out = run(&capture("psql_cancelled_query"));
    assert_eq!(
        lines(&out)[1],
        "\"-\" \"select pg_sleep(5)\" error=57014 tx=idle"
    );
}

#[test]
fn auth_methods_recorded() {
    let auth = |name| session(&run(&capture(name))).auth.clone();
    assert_eq!(auth("auth_cleartext"), Some(AuthMethod::Cleartext));
    assert_eq!(auth("auth_md5"), Some(AuthMethod::Md5));
    assert_eq!(
        auth("auth_scram"),
        Some(AuthMethod::Sasl {
            mechanisms: vec!["SCRAM-SHA-256".into()]
        })
    );
}

/// The typed messages of one direction of a capture (the client's
/// startup packet skipped): `(tag, body)`.
fn typed_messages(chunks: &[(Direction, Bytes)], direction: Direction) -> Vec<(u8, Vec<u8>)> {
    let stream: Vec<u8> = chunks
        .iter()
        .filter(|(d, _)| *d == direction)
        .flat_map(|(_, c)| c.to_vec())
        .collect();
    let mut rest = &stream[..];
    if direction == C2T {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[len..];
    }
    let mut out = Vec::new();
    while rest.len() >= 5 {
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        out.push((rest[0], rest[5..1 + len].to_vec()));
        rest = &rest[1 + len..];
    }
    out
}

#[test]
fn no_secret_of_any_auth_exchange_reaches_an_output() {
    for (name, password, exchanged) in [
        ("auth_cleartext", "clear-Secret-1", 1),
        // The client's hash, the server's salt.
        ("auth_md5", "md5-Secret-2", 2),
        // Client first and final; server challenge and signature.
        ("auth_scram", "scram-Secret-3", 4),
    ] {
        let chunks = capture(name);
        let mut secrets = vec![password.to_string(), params::hex(password.as_bytes())];
        // Every password/SASL message of the client, whole and field by
        // field (MD5 hash; SCRAM nonce, proof); the server's salts, SASL
        // challenges and signatures.
        let client = typed_messages(&chunks, C2T);
        let server = typed_messages(&chunks, T2C);
        let sent = client
            .iter()
            .filter(|(t, _)| *t == b'p')
            .map(|(_, b)| b.clone());
        let challenges = server
            .iter()
            .filter(|(t, b)| *t == b'R' && matches!(b[3], 5 | 11 | 12))
            .map(|(_, b)| b[4..].to_vec());
        let mut n = 0;
        for body in sent.chain(challenges) {
            n += 1;
            let text = String::from_utf8_lossy(&body)
                .trim_end_matches('\0')
                .to_string();
            for part in text.split([',', '\0']) {
                // SCRAM's attributes (`r=` nonce, `s=` salt, `p=` proof,
                // `v=` signature); a password or MD5 hash whole. The
                // mechanism's name is no secret (the server offers it).
                let value = part.split_once('=').map_or(part, |(_, v)| v);
                if value.len() >= 8 && !value.starts_with("SCRAM-") {
                    secrets.push(value.to_string());
                }
            }
            if body.len() >= 4 {
                secrets.push(params::hex(&body));
                secrets.push(format!("{:?}", &body[..]));
            }
        }
        assert_eq!(n, exchanged, "{name}: the exchange is in the capture");
        let out = run(&chunks);
        assert!(out.len() >= 2, "{name}: {out:?}");
        for d in &out {
            let shown = format!("{d:?} {d:#?}");
            for secret in &secrets {
                assert!(
                    !shown.contains(secret.as_str()),
                    "{name}: {secret:?} in {shown}"
                );
            }
        }
    }
}

/// Feeds with every piece of chunk `i` at time `i`, so outputs compare equal.
fn run_pieces(pieces: &[(usize, Direction, Bytes)]) -> Vec<Decoded> {
    let mut decoder = PostgresDecoder::new(PostgresConfig::default());
    let mut out = Vec::new();
    let mut last = 0;
    for (i, d, c) in pieces {
        decoder.feed(*d, c, Timestamp(1_000_000 * (*i as u64 + 1)), &mut out);
        last = *i;
    }
    decoder.finish(Timestamp(1_000_000 * (last as u64 + 2)), &mut out);
    out
}

const CAPTURES: [&str; 12] = [
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
];

#[test]
fn every_chunk_boundary_gives_the_same_outputs() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for name in CAPTURES {
        let chunks = capture(name);
        let whole: Vec<_> = chunks
            .iter()
            .enumerate()
            .map(|(i, (d, c))| (i, *d, c.clone()))
            .collect();
        let expected = run_pieces(&whole);
        assert!(
            !expected.iter().any(|d| matches!(d, Decoded::Failure(_))),
            "{name}: {expected:?}"
        );
        let bytes: Vec<_> = whole
            .iter()
            .flat_map(|(i, d, c)| (0..c.len()).map(move |j| (*i, *d, c.slice(j..j + 1))))
            .collect();
        assert_eq!(run_pieces(&bytes), expected, "{name} byte by byte");
        for round in 0..20 {
            let mut pieces = Vec::new();
            for (i, d, c) in &whole {
                let mut at = 0;
                while at < c.len() {
                    let n = 1 + random(c.len() - at);
                    pieces.push((*i, *d, c.slice(at..at + n)));
                    at += n;
                }
            }
            assert_eq!(run_pieces(&pieces), expected, "{name} random split {round}");
        }
    }
}
