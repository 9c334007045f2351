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

// Hand-made messages for what no capture shows.

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn packet(code: u32, rest: &[u8]) -> Vec<u8> {
    let mut v = ((rest.len() + 8) as u32).to_be_bytes().to_vec();
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(rest);
    v
}

fn startup_message() -> Vec<u8> {
    let mut params = cstr("user");
    params.extend(cstr("alice"));
    params.extend(cstr("database"));
    params.extend(cstr("shop"));
    params.push(0);
    packet(messages::PROTOCOL_3, &params)
}

fn ready(status: u8) -> Vec<u8> {
    msg(b'Z', &[status])
}

/// A connection up to its first ReadyForQuery.
fn connected() -> Vec<(Direction, Bytes)> {
    let mut server = msg(b'R', &0i32.to_be_bytes());
    server.extend(ready(b'I'));
    vec![(C2T, startup_message().into()), (T2C, server.into())]
}

fn with(
    mut chunks: Vec<(Direction, Bytes)>,
    more: &[(Direction, Vec<u8>)],
) -> Vec<(Direction, Bytes)> {
    chunks.extend(more.iter().map(|(d, b)| (*d, Bytes::from(b.clone()))));
    chunks
}

fn failure(out: &[Decoded]) -> &DecodeFailure {
    let failures: Vec<&DecodeFailure> = out
        .iter()
        .filter_map(|d| match d {
            Decoded::Failure(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(failures.len(), 1, "{out:?}");
    assert!(matches!(out.last(), Some(Decoded::Failure(_))), "{out:?}");
    failures[0]
}

fn query_msg(sql: &str) -> Vec<u8> {
    msg(b'Q', &cstr(sql))
}

fn complete(tag: &str) -> Vec<u8> {
    msg(b'C', &cstr(tag))
}

#[test]
fn gss_encryption_request() {
    let request = packet(messages::GSSENC_REQUEST, &[]);
    let out = run(&[
        (C2T, request.clone().into()),
        (T2C, Bytes::from_static(b"G")),
        (C2T, Bytes::from_static(b"\x60\x82garbage")),
    ]);
    assert!(
        matches!(&out[..], [Decoded::Postgres(o)] if matches!(**o, PostgresOutput::Encrypted { kind: EncryptionKind::Gss, .. })),
        "{out:?}"
    );
    // Refused: the client goes on in plain text.
    let mut chunks = vec![(C2T, Bytes::from(request)), (T2C, Bytes::from_static(b"N"))];
    chunks.extend(connected());
    let out = run(&with(
        chunks,
        &[
            (C2T, query_msg("SELECT 1")),
            (T2C, [complete("SELECT 1"), ready(b'I')].concat()),
        ],
    ));
    assert_eq!(session(&out).user.as_deref(), Some("alice"));
    assert_eq!(names(&out), ["SELECT 1"]);
}

#[test]
fn direct_tls_is_encrypted_not_garbage() {
    let out = run(&[(
        C2T,
        Bytes::from_static(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    )]);
    assert!(
        matches!(&out[..], [Decoded::Postgres(o)] if matches!(**o, PostgresOutput::Encrypted { kind: EncryptionKind::Tls, .. })),
        "{out:?}"
    );
}

#[test]
fn bad_lengths_and_types_fail_once_then_nothing() {
    let base = connected();
    let offset = startup_message().len() as u64;
    for (bytes, expect) in [
        (b"Q\0\0\0\x03".to_vec(), "length 3"),
        (b"Q\x7f\xff\xff\xff".to_vec(), "length 2147483647"),
        (msg(b'!', b""), "unknown message type '!'"),
        (msg(b'Z', b"I"), "unknown message type 'Z'"),
    ] {
        let mut chunks = with(base.clone(), &[(C2T, bytes)]);
        chunks.push((C2T, query_msg("SELECT 1").into()));
        chunks.push((T2C, complete("SELECT 1").into()));
        let out = run(&chunks);
        let f = failure(&out);
        assert!(f.reason.contains(expect), "{}", f.reason);
        assert_eq!((f.direction, f.offset), (C2T, offset));
    }
    let out = run(&[(C2T, packet(messages::PROTOCOL_3, &[b'x'; 20_000]).into())]);
    assert!(failure(&out).reason.contains("startup packet"));
    let out = run(&[(C2T, packet(2 << 16, &[0]).into())]);
    assert!(failure(&out).reason.contains("2.0"));
    let config = PostgresConfig {
        max_message_size: 1000,
        ..PostgresConfig::default()
    };
    let out = run_with(
        config,
        &with(base.clone(), &[(C2T, msg(b'Q', &[b'x'; 1001]))]),
    );
    assert!(failure(&out).reason.contains("length 1005"));
}

#[test]
fn answers_with_nothing_pending_fail() {
    for answer in [
        complete("SELECT 1"),
        msg(b'D', &[0, 0]),
        ready(b'I'),
        msg(b'1', b""),
        msg(b's', b""),
        msg(b'd', b"x"),
    ] {
        let out = run(&with(connected(), &[(T2C, answer.clone())]));
        let f = failure(&out);
        assert_eq!(f.direction, T2C);
        assert!(
            f.reason.contains("awaiting") || f.reason.contains("answering"),
            "{}",
            f.reason
        );
    }
}

#[test]
fn large_rows_and_copy_data_are_counted_not_buffered() {
    let config = PostgresConfig {
        capture_limit: 2048,
        ..PostgresConfig::default()
    };
    let mut decoder = PostgresDecoder::new(config);
    let mut out = Vec::new();
    for (d, c) in with(connected(), &[(C2T, query_msg("SELECT big"))]) {
        decoder.feed(d, &c, Timestamp(0), &mut out);
    }
    let mut row = msg(b'D', &vec![7u8; 10 << 20]);
    row.extend(complete("SELECT 1"));
    row.extend(ready(b'I'));
    for piece in row.chunks(64 * 1024) {
        decoder.feed(
            T2C,
            &Bytes::copy_from_slice(piece),
            Timestamp(5_000_000),
            &mut out,
        );
        assert!(decoder.server.held_capacity() <= 2048);
    }
    let q = queries(&out);
    assert_eq!(q.len(), 1, "{out:?}");
    assert_eq!(q[0].rows, Some(1));
    assert_eq!(q[0].response_size, row.len() as u64 - 6);
    assert_eq!(q[0].latency_ms, 5.0);
}

#[test]
fn long_sql_is_cut_at_the_capture_limit() {
    let config = PostgresConfig {
        capture_limit: 100,
        ..PostgresConfig::default()
    };
    let sql = format!("SELECT '{}'", "é".repeat(1000));
    let out = run_with(
        config,
        &with(
            connected(),
            &[
                (C2T, query_msg(&sql)),
                (T2C, [complete("SELECT 1"), ready(b'I')].concat()),
            ],
        ),
    );
    let q = queries(&out)[0];
    assert!(q.sql_truncated);
    // The floor of what is kept, cut on a character boundary.
    assert!(q.sql.len() <= 1024 && q.sql.len() > 1000 && sql.starts_with(&*q.sql));
    assert_eq!(q.request_size, sql.len() as u64 + 6);
}

fn parse_msg(name: &str, sql: &str, types: &[u32]) -> Vec<u8> {
    let mut b = cstr(name);
    b.extend(cstr(sql));
    b.extend((types.len() as i16).to_be_bytes());
    for t in types {
        b.extend(t.to_be_bytes());
    }
    msg(b'P', &b)
}

fn bind_msg(portal: &str, statement: &str, binary_params: &[Option<&[u8]>]) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(cstr(statement));
    b.extend(1i16.to_be_bytes());
    b.extend(1i16.to_be_bytes());
    b.extend((binary_params.len() as i16).to_be_bytes());
    for p in binary_params {
        match p {
            Some(v) => {
                b.extend((v.len() as i32).to_be_bytes());
                b.extend_from_slice(v);
            }
            None => b.extend((-1i32).to_be_bytes()),
        }
    }
    b.extend(0i16.to_be_bytes());
    msg(b'B', &b)
}

fn execute_msg(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = cstr(portal);
    b.extend(max_rows.to_be_bytes());
    msg(b'E', &b)
}

fn error_msg(code: &str, message: &str) -> Vec<u8> {
    let mut b = vec![b'S'];
    b.extend(cstr("ERROR"));
    b.push(b'C');
    b.extend(cstr(code));
    b.push(b'M');
    b.extend(cstr(message));
    b.push(b'D');
    b.extend(cstr("some detail"));
    b.push(b'H');
    b.extend(cstr("a hint"));
    b.push(0);
    msg(b'E', &b)
}

#[test]
fn error_before_sync_is_sent_skips_what_follows() {
    let sync = msg(b'S', b"");
    let flush = msg(b'H', b"");
    let out = run(&with(
        connected(),
        &[
            (
                C2T,
                [
                    parse_msg("s1", "SELECT $1", &[23]),
                    bind_msg("", "s1", &[Some(&[0, 0, 0, 9])]),
                    flush.clone(),
                ]
                .concat(),
            ),
            (
                T2C,
                [msg(b'1', b""), error_msg("42P01", "no such table")].concat(),
            ),
            // The server skips these up to Sync; only the Sync is answered.
            (
                C2T,
                [
                    execute_msg("", 0),
                    parse_msg("", "SELECT 2", &[]),
                    sync.clone(),
                ]
                .concat(),
            ),
            (T2C, ready(b'I')),
            (
                C2T,
                [bind_msg("p", "s1", &[None]), execute_msg("p", 1), sync].concat(),
            ),
            (
                T2C,
                [
                    msg(b'2', b""),
                    msg(b'D', b"\0\x01\xff\xff\xff\xff"),
                    msg(b's', b""),
                    ready(b'T'),
                ]
                .concat(),
            ),
        ],
    ));
    assert_eq!(
        lines(&out)[1..],
        [
            "\"-\" \"SELECT $1\" params=[Int(9)] stmt=s1 error=42P01 tx=idle",
            "\"-\" \"SELECT $1\" rows=1 params=[Null] stmt=s1 tx=in_transaction",
        ]
    );
    let q = queries(&out);
    let e = q[0].error.as_ref().unwrap();
    assert_eq!(
        (e.detail.as_deref(), e.hint.as_deref()),
        (Some("some detail"), Some("a hint"))
    );
    assert!(q[1].suspended);
    assert_eq!(q[1].portal.as_deref(), Some("p"));
}

#[test]
fn statements_are_bounded_least_recently_used_first() {
    let config = PostgresConfig {
        max_statements: 2,
        ..PostgresConfig::default()
    };
    let mut decoder = PostgresDecoder::new(config);
    let mut out = Vec::new();
    for (d, c) in connected() {
        decoder.feed(d, &c, Timestamp(0), &mut out);
    }
    let parses = [
        parse_msg("a", "SELECT 'a'", &[]),
        parse_msg("b", "SELECT 'b'", &[]),
        parse_msg("c", "SELECT 'c'", &[]),
    ]
    .concat();
    let then = [
        bind_msg("", "a", &[]),
        execute_msg("", 0),
        bind_msg("", "c", &[]),
        execute_msg("", 0),
        msg(b'S', b""),
    ]
    .concat();
    decoder.feed(
        C2T,
        &Bytes::from([parses, then].concat()),
        Timestamp(1),
        &mut out,
    );
    assert_eq!(decoder.statements(), 2);
    let answers = [
        msg(b'1', b""),
        msg(b'1', b""),
        msg(b'1', b""),
        msg(b'2', b""),
        complete("SELECT 0"),
        msg(b'2', b""),
        complete("SELECT 0"),
        ready(b'I'),
    ]
    .concat();
    decoder.feed(T2C, &Bytes::from(answers), Timestamp(2), &mut out);
    assert_eq!(names(&out), ["", "SELECT 'c'"], "statement a was forgotten");
    assert_eq!(queries(&out)[0].statement.as_deref(), Some("a"));
}

#[test]
fn pending_requests_are_bounded() {
    let config = PostgresConfig {
        max_pending: 8,
        ..PostgresConfig::default()
    };
    let syncs: Vec<u8> = (0..9).flat_map(|_| msg(b'S', b"")).collect();
    let out = run_with(config, &with(connected(), &[(C2T, syncs)]));
    assert!(failure(&out).reason.contains("more than 8"));
}

#[test]
fn split_that_disagrees_with_the_answers_falls_back_to_the_whole_text() {
    let sql = "SELECT 1; SELECT 2";
    let out = run(&with(
        connected(),
        &[
            (C2T, query_msg(sql)),
            (T2C, [complete("SELECT 1"), ready(b'I')].concat()),
        ],
    ));
    assert_eq!(names(&out), [sql]);
}

#[test]
fn empty_query_notices_function_calls_and_parameter_changes() {
    let mut notice = vec![b'S'];
    notice.extend(cstr("NOTICE"));
    notice.extend(b"C00000\0Mhello\0\0");
    let mut call = 1234i32.to_be_bytes().to_vec();
    call.extend([0, 0, 0, 0, 0, 0]);
    let mut param = cstr("application_name");
    param.extend(cstr("renamed"));
    let out = run(&with(
        connected(),
        &[
            (C2T, query_msg(" -- nothing ")),
            (T2C, [msg(b'I', b""), ready(b'I')].concat()),
            (C2T, query_msg("DROP TABLE IF EXISTS x")),
            (
                T2C,
                [
                    msg(b'N', &notice),
                    complete("DROP TABLE"),
                    msg(b'S', &param),
                    ready(b'I'),
                ]
                .concat(),
            ),
            (C2T, msg(b'F', &call)),
            (T2C, [msg(b'V', b"\0\0\0\x01\x01"), ready(b'I')].concat()),
        ],
    ));
    let q = queries(&out);
    assert!(q[0].empty && q[0].command.is_none());
    assert_eq!((q[1].notice_count, &*q[1].notices[0].message), (1, "hello"));
    assert_eq!(q[1].command.as_deref(), Some("DROP TABLE"));
    assert_eq!(q[2].protocol, QueryProtocol::FunctionCall { oid: 1234 });
    assert!(out.iter().any(|d| matches!(d, Decoded::Postgres(o) if matches!(&**o, PostgresOutput::ParameterChanged { value, .. } if value == "renamed"))));
}

#[test]
fn refused_startup_is_reported_with_its_error() {
    let out = run(&[
        (C2T, startup_message().into()),
        (T2C, [msg(b'R', &3i32.to_be_bytes())].concat().into()),
        (C2T, msg(b'p', &cstr("hunter2")).into()),
        (
            T2C,
            [error_msg("28P01", "password authentication failed")]
                .concat()
                .into(),
        ),
    ]);
    assert_eq!(out.len(), 1);
    let s = session(&out);
    assert_eq!(s.error.as_ref().map(|e| &*e.code), Some("28P01"));
    assert_eq!(s.auth, Some(AuthMethod::Cleartext));
    assert!(s.ready_at.is_none());
    assert!(!format!("{out:?}").contains("hunter2"));
}

#[test]
fn answered_queries_without_ready_are_reported_at_finish() {
    let out = run(&with(
        connected(),
        &[(C2T, query_msg("SELECT 1")), (T2C, complete("SELECT 1"))],
    ));
    let q = queries(&out);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].transaction, None);
}
