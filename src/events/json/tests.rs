//! Each hand-written writer against serde_json, byte for byte.
use std::sync::Arc;

use chrono::TimeZone;
use tapmesh_protocols::http::HeaderBlock;

use super::*;
use crate::events::{
    BodyEncoding, CopyInfo, EventKind, LifecycleInfo, QueryInfo, RedisCommandInfo, RedisErrorInfo,
    RedisPushInfo, RedisReplyInfo, SqlError,
};

/// Strings that exercise every escape, multi-byte UTF-8, and the
/// eight-byte scan's edges (a special byte before, at and after each
/// word boundary).
fn tricky_strings() -> Vec<String> {
    let mut out = vec![
        String::new(),
        "plain".into(),
        "/a/b?c=d&e=f%20g".into(),
        "Zoë \"quoted\" \\ back\tslash\r\n\u{8}\u{c}\u{1}\u{1f}\u{7f}".into(),
        "😀 emoji and ünïcödé, \u{2028} line separator".into(),
        (0u8..0x80).map(char::from).collect(),
    ];
    for special in [
        '"', '\\', '\n', '\0', '\u{1f}', ' ', '!', '#', '\u{7f}', 'é',
    ] {
        for at in 0..20 {
            let mut s: String = "abcdefghijklmnopqrst".chars().take(at).collect();
            s.push(special);
            s.push_str("0123456789");
            out.push(s);
        }
    }
    out
}

fn headers(fields: &[(&str, &str)]) -> HeaderMap {
    let mut block = HeaderBlock::new();
    for (name, value) in fields {
        block.push_str(name, value);
    }
    HeaderMap::from_block(block)
}

fn request(s: &str) -> RequestInfo {
    RequestInfo {
        connection: 42,
        source: s.into(),
        target: "inventory".into(),
        ingress: "default".into(),
        version: "HTTP/1.1".into(),
        method: "GET".into(),
        path: s.into(),
        status_code: Some(200),
        latency_ms: Some(2.799),
        request_size: 0,
        response_size: 5,
        request_headers: headers(&[("Host", "x"), ("X-Odd", s), ("x-odd", "again")]),
        response_headers: headers(&[(s, s), ("content-length", "5")]),
        request_trailers: HeaderMap::new(),
        response_trailers: HeaderMap::new(),
        request_body: String::new(),
        request_body_encoding: BodyEncoding::Utf8,
        request_body_truncated: false,
        response_body: s.into(),
        response_body_encoding: BodyEncoding::Utf8,
        response_body_truncated: false,
        warnings: Vec::new(),
        error: None,
        fault: None,
    }
}

fn event(seq: u64, kind: EventKind, timestamp: DateTime<Utc>, payload: Payload) -> Event {
    Event {
        seq,
        kind,
        timestamp,
        environment: "env".into(),
        service: None,
        payload,
    }
}

fn assert_same_as_serde(event: &Event) {
    let mut ours = Vec::new();
    event.write_json(&mut ours);
    let serde = serde_json::to_vec(event).unwrap();
    assert_eq!(
        String::from_utf8(ours).unwrap(),
        String::from_utf8(serde).unwrap(),
        "for {event:?}"
    );
}

#[test]
fn request_events_match_serde_json_for_tricky_strings() {
    let at = Utc.with_ymd_and_hms(2026, 11, 23, 17, 59, 58).unwrap()
        + chrono::Duration::nanoseconds(491_956_446);
    for s in tricky_strings() {
        assert_same_as_serde(&event(
            7,
            EventKind::RequestCompleted,
            at,
            Payload::Request(request(&s)),
        ));
    }
}

#[test]
fn optional_fields_both_ways_match_serde_json() {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    let mut r = request("x");
    r.status_code = None;
    r.latency_ms = None;
    r.request_trailers = headers(&[("grpc-status", "0")]);
    r.response_trailers = headers(&[("x-checksum", "abc"), ("X-More", "1")]);
    r.request_body = "AAEC".into();
    r.request_body_encoding = BodyEncoding::Base64;
    r.request_body_truncated = true;
    r.response_body_truncated = true;
    r.warnings = vec!["request: a\"b".into(), "response: \u{1}".into()];
    r.error = Some("the target closed before responding \"early\"".into());
    r.fault = Some("abort \"503\"".into());
    let mut e = event(
        u64::MAX,
        EventKind::RequestCompleted,
        at,
        Payload::Request(r),
    );
    e.service = Some("front\n".into());
    assert_same_as_serde(&e);

    for error in [None, Some("the client reset the connection".to_string())] {
        for duration_ms in [0.0, 4001.494, 0.1, 1e-7, 1e21, 123_456_789.0, f64::NAN] {
            let c = ConnectionInfo {
                id: 73,
                source: "client".into(),
                target: "127.0.0.1:18080".into(),
                ingress: "default".into(),
                client_addr: "127.0.0.1:51630".into(),
                bytes_in: 821_750,
                bytes_out: 0,
                duration_ms,
                error: error.clone(),
            };
            assert_same_as_serde(&event(
                1,
                EventKind::ConnectionClosed,
                at,
                Payload::Connection(c),
            ));
        }
    }
}

#[test]
fn timestamps_match_chrono_in_every_precision_and_out_of_range() {
    let base = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
    let mut times: Vec<DateTime<Utc>> = [
        0i64,
        1,
        999,
        1_000,
        120_000,
        1_000_000,
        7_000_000,
        999_000_000,
        999_999_999,
        123_456_789,
    ]
    .iter()
    .map(|&n| base + chrono::Duration::nanoseconds(n))
    .collect();
    times.push(Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap());
    times.push(Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap());
    times.push(Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap());
    times.push(Utc.with_ymd_and_hms(-1, 6, 1, 0, 0, 0).unwrap());
    // A leap second: chrono keeps it as nanoseconds past 1e9.
    let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
        .unwrap()
        .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
        .unwrap()
        .and_utc();
    times.push(leap);
    for t in times {
        assert_same_as_serde(&event(
            3,
            EventKind::ConnectionOpened,
            t,
            Payload::Connection(ConnectionInfo {
                id: 1,
                source: "a".into(),
                target: "b".into(),
                ingress: "c".into(),
                client_addr: "d".into(),
                bytes_in: 0,
                bytes_out: 0,
                duration_ms: 0.0,
                error: None,
            }),
        ));
    }
}

#[test]
fn random_strings_match_serde_json() {
    // A fixed xorshift sequence: reproducible, and wide enough to put
    // every escapable byte at every offset many times over.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: Vec<char> = (0u32..0x80)
        .filter_map(char::from_u32)
        .chain(['é', '€', '😀', '\u{2028}'])
        .collect();
    let at = Utc::now();
    for _ in 0..2_000 {
        let len = (next() % 40) as usize;
        let s: String = (0..len)
            .map(|_| {
                // Mostly printable ASCII, as real headers are.
                if next() % 4 == 0 {
                    alphabet[(next() % alphabet.len() as u64) as usize]
                } else {
                    char::from(b' ' + (next() % 95) as u8)
                }
            })
            .collect();
        assert_same_as_serde(&event(
            next() >> 1,
            EventKind::RequestCompleted,
            at,
            Payload::Request(request(&s)),
        ));
    }
}

#[test]
fn other_payloads_go_through_serde_json() {
    let e = event(
        9,
        EventKind::ServiceReady,
        Utc::now(),
        Payload::Lifecycle(LifecycleInfo {
            state: crate::events::ServiceState::Ready.into(),
            ..Default::default()
        }),
    );
    assert_same_as_serde(&e);
    let _: Arc<str> = e.environment.clone();
}

fn query(s: &str) -> QueryInfo {
    QueryInfo {
        connection: 3,
        source: "orders".into(),
        target: s.into(),
        ingress: "default".into(),
        database: Some(s.into()),
        user: None,
        protocol: "extended".into(),
        sql: s.into(),
        sql_truncated: false,
        params: Vec::new(),
        params_truncated: false,
        statement: None,
        command: Some("SELECT".into()),
        rows: Some(1),
        error: None,
        notices: 0,
        copy: None,
        transaction: Some("idle".into()),
        latency_ms: 0.412,
        request_size: 64,
        response_size: 120,
    }
}

fn redis_command(s: &str) -> RedisCommandInfo {
    RedisCommandInfo {
        connection: 9,
        source: "orders".into(),
        target: "cache".into(),
        ingress: s.into(),
        command: "SET".into(),
        args: vec![s.into(), "v".into()],
        binary_args: Vec::new(),
        arg_count: 2,
        args_truncated: false,
        inline: false,
        transaction: false,
        reply: Some(RedisReplyInfo {
            ty: "simple_string".into(),
            value: format!("{s:?}"),
            truncated: false,
            replies: 1,
        }),
        error: None,
        resp3: false,
        latency_ms: Some(0.08),
        request_size: 31,
        response_size: 5,
    }
}

fn redis_push(s: &str) -> RedisPushInfo {
    RedisPushInfo {
        connection: 2,
        source: "client".into(),
        target: "cache".into(),
        ingress: "default".into(),
        kind: "message".into(),
        channel: Some(s.into()),
        pattern: None,
        payload: Some(s.into()),
        payload_encoding: String::new(),
        payload_truncated: false,
        resp3: false,
        size: 40,
    }
}

#[test]
fn database_payloads_match_serde_json_for_tricky_strings() {
    let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
    for s in tricky_strings() {
        let payloads = [
            (EventKind::PostgresQueryCompleted, Payload::Query(query(&s))),
            (
                EventKind::RedisCommandCompleted,
                Payload::RedisCommand(redis_command(&s)),
            ),
            (EventKind::RedisPush, Payload::RedisPush(redis_push(&s))),
        ];
        for (kind, payload) in payloads {
            assert_same_as_serde(&event(11, kind, at, payload));
        }
    }
}

#[test]
fn database_payloads_optional_fields_both_ways_match_serde_json() {
    let at = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
    let mut q = query("INSERT INTO t VALUES ($1, $2, $3)");
    q.user = Some("shop".into());
    q.sql_truncated = true;
    q.params = vec![
        serde_json::Value::Null,
        serde_json::json!(42),
        serde_json::json!(-1.5e300),
        serde_json::json!("x\"y\n"),
        serde_json::json!(true),
        serde_json::json!(u64::MAX),
    ];
    q.params_truncated = true;
    q.statement = Some("s1".into());
    q.command = None;
    q.rows = None;
    q.notices = 2;
    q.transaction = None;
    q.latency_ms = f64::NAN;
    for (detail, hint) in [(None, None), (Some("Key (id)=(1) exists."), Some("h\t"))] {
        q.error = Some(SqlError {
            severity: "ERROR".into(),
            code: "23505".into(),
            message: "duplicate key value violates unique constraint \"t_pkey\"".into(),
            detail: detail.map(Into::into),
            hint: hint.map(Into::into),
        });
        for failed in [false, true] {
            q.copy = Some(CopyInfo {
                direction: "in".into(),
                messages: 1000,
                bytes: 38_890,
                failed,
            });
            assert_same_as_serde(&event(
                1,
                EventKind::PostgresQueryCompleted,
                at,
                Payload::Query(q.clone()),
            ));
        }
    }

    let mut c = redis_command("k");
    c.args = Vec::new();
    c.reply = None;
    c.latency_ms = None;
    assert_same_as_serde(&event(
        2,
        EventKind::RedisCommandCompleted,
        at,
        Payload::RedisCommand(c.clone()),
    ));
    c.args = vec!["AAEC/w==".into(), "[redacted]".into()];
    c.binary_args = vec![0, 7, u32::MAX];
    c.args_truncated = true;
    c.inline = true;
    c.transaction = true;
    c.resp3 = true;
    c.reply = Some(RedisReplyInfo {
        ty: "array".into(),
        value: "[\"a\",1,null]".into(),
        truncated: true,
        replies: 3,
    });
    c.error = Some(RedisErrorInfo {
        code: None,
        message: "bad".into(),
    });
    assert_same_as_serde(&event(
        3,
        EventKind::RedisCommandCompleted,
        at,
        Payload::RedisCommand(c.clone()),
    ));
    c.error = Some(RedisErrorInfo {
        code: Some("WRONGTYPE".into()),
        message: "WRONGTYPE Operation against a key".into(),
    });
    assert_same_as_serde(&event(
        4,
        EventKind::RedisCommandCompleted,
        at,
        Payload::RedisCommand(c),
    ));

    let mut p = redis_push("news");
    for encoding in ["", "utf8", "base64"] {
        p.payload_encoding = encoding.into();
        assert_same_as_serde(&event(
            5,
            EventKind::RedisPush,
            at,
            Payload::RedisPush(p.clone()),
        ));
    }
    p.channel = None;
    p.pattern = Some("n*".into());
    p.payload = None;
    p.payload_truncated = true;
    p.resp3 = true;
    assert_same_as_serde(&event(6, EventKind::RedisPush, at, Payload::RedisPush(p)));
}
