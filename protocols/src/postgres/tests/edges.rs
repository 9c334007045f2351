//! Hand-made messages for what no capture shows: encryption requests,
//! malformed streams, the limits, and the rarer messages.

use bytes::Bytes;

use super::super::*;
use super::{lines, names, queries, run, run_with, session, C2T, T2C};
use crate::DecodeFailure;
use crate::FailureKind::{LimitExceeded, Malformed, UnexpectedMessage, Unsupported};

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
    for (bytes, expect, kind) in [
        (b"Q\0\0\0\x03".to_vec(), "length 3", Malformed),
        (
            b"Q\x7f\xff\xff\xff".to_vec(),
            "length 2147483647",
            LimitExceeded,
        ),
        (msg(b'!', b""), "unknown message type '!'", Malformed),
        (msg(b'Z', b"I"), "unknown message type 'Z'", Malformed),
    ] {
        let mut chunks = with(base.clone(), &[(C2T, bytes)]);
        chunks.push((C2T, query_msg("SELECT 1").into()));
        chunks.push((T2C, complete("SELECT 1").into()));
        let out = run(&chunks);
        let f = failure(&out);
        assert!(f.detail.contains(expect), "{}", f.detail);
        assert_eq!((f.direction, f.offset, f.kind), (C2T, offset, kind));
    }
    let out = run(&[(C2T, packet(messages::PROTOCOL_3, &[b'x'; 20_000]).into())]);
    assert!(failure(&out).detail.contains("startup packet"));
    let out = run(&[(C2T, packet(2 << 16, &[0]).into())]);
    assert!(failure(&out).detail.contains("2.0"));
    assert_eq!(failure(&out).kind, Unsupported);
    let config = PostgresConfig {
        max_message_size: 1000,
        ..PostgresConfig::default()
    };
    let out = run_with(
        config,
        &with(base.clone(), &[(C2T, msg(b'Q', &[b'x'; 1001]))]),
    );
    assert!(failure(&out).detail.contains("length 1005"));
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
        assert_eq!((f.direction, f.kind), (T2C, UnexpectedMessage));
        assert!(
            f.detail.contains("awaiting") || f.detail.contains("answering"),
            "{}",
            f.detail
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

fn describe_statement_msg(name: &str) -> Vec<u8> {
    let mut b = vec![b'S'];
    b.extend(cstr(name));
    msg(b'D', &b)
}

fn parameter_description(types: &[u32]) -> Vec<u8> {
    let mut b = (types.len() as i16).to_be_bytes().to_vec();
    for t in types {
        b.extend(t.to_be_bytes());
    }
    msg(b't', &b)
}

/// tokio-postgres (like sqlx and JDBC) declares no types in its `Parse`,
/// asks the server for them with a `Describe`, then binds every value in
/// binary: the `ParameterDescription` is what the values decode by.
#[test]
fn binary_parameters_decode_by_the_types_the_server_described() {
    let sync = msg(b'S', b"");
    let out = run(&with(
        connected(),
        &[
            (
                C2T,
                [
                    parse_msg("s0", "SELECT $1::int8 + 1, $2", &[]),
                    describe_statement_msg("s0"),
                    sync.clone(),
                ]
                .concat(),
            ),
            (
                T2C,
                [
                    msg(b'1', b""),
                    parameter_description(&[20, 25]),
                    msg(b'T', b"\0\0"),
                    ready(b'I'),
                ]
                .concat(),
            ),
            (
                C2T,
                [
                    bind_msg("", "s0", &[Some(&42i64.to_be_bytes()), Some(b"hi")]),
                    execute_msg("", 0),
                    sync.clone(),
                    // The unnamed statement described, then parsed anew
                    // (declaring text) before the description arrives:
                    // the newer statement keeps its own types.
                    parse_msg("", "SELECT $1", &[]),
                    describe_statement_msg(""),
                    parse_msg("", "SELECT $1::text", &[25]),
                    sync.clone(),
                ]
                .concat(),
            ),
            (
                T2C,
                [
                    msg(b'2', b""),
                    msg(b'D', b"\0\x01\0\0\0\x0243"),
                    complete("SELECT 1"),
                    ready(b'I'),
                    msg(b'1', b""),
                    parameter_description(&[23]),
                    msg(b'n', b""),
                    msg(b'1', b""),
                    ready(b'I'),
                ]
                .concat(),
            ),
            (
                C2T,
                [bind_msg("", "", &[Some(b"abc")]), execute_msg("", 0), sync].concat(),
            ),
            (
                T2C,
                [msg(b'2', b""), complete("SELECT 1"), ready(b'I')].concat(),
            ),
        ],
    ));
    assert_eq!(
        lines(&out)[1..],
        [
            "\"SELECT\" \"SELECT $1::int8 + 1, $2\" rows=1 params=[Int(42), Text(\"hi\")] stmt=s0 tx=idle",
            "\"SELECT\" \"SELECT $1::text\" rows=1 params=[Text(\"abc\")] tx=idle",
        ]
    );
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
    assert!(failure(&out).detail.contains("more than 8"));
    assert_eq!(failure(&out).kind, LimitExceeded);
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
