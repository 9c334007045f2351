//! Real captures (redis-server 7.0 with redis-cli, redis-cli --pipe,
//! redis-py with protocol=3, and a raw client for inline commands and
//! RESP3's rarer types; see tests/data/redis/README.md), plus hand-made
//! bytes for what real peers do not send.

use bytes::Bytes;

use super::*;
use crate::DecodeFailure;

/// A capture: every chunk as the relay forwarded it, in order.
fn capture(name: &str) -> Vec<(Direction, Vec<u8>)> {
    let path = format!("{}/tests/data/redis/{name}.bin", env!("CARGO_MANIFEST_DIR"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut chunks = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let direction = match rest[0] {
            b'C' => Direction::ClientToTarget,
            b'S' => Direction::TargetToClient,
            other => panic!("bad record tag {other}"),
        };
        let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
        chunks.push((direction, rest[5..5 + len].to_vec()));
        rest = &rest[5 + len..];
    }
    chunks
}

/// Feeds chunks, each cut into pieces by `cut` (piece lengths), every piece
/// of chunk `i` at time `i` ms; then finishes.
fn decode_with(
    config: RedisConfig,
    chunks: &[(Direction, Vec<u8>)],
    mut cut: impl FnMut(usize) -> usize,
) -> Vec<Decoded> {
    let mut decoder = RedisDecoder::new(config);
    let mut out = Vec::new();
    for (i, (direction, data)) in chunks.iter().enumerate() {
        let at = Timestamp(i as u64 * 1_000_000);
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = cut(rest.len()).clamp(1, rest.len());
            decoder.feed(
                *direction,
                &Bytes::copy_from_slice(&rest[..n]),
                at,
                &mut out,
            );
            rest = &rest[n..];
        }
    }
    decoder.finish(Timestamp(u64::MAX), &mut out);
    check_contract(&out);
    out
}

fn decode(chunks: &[(Direction, Vec<u8>)]) -> Vec<Decoded> {
    decode_with(RedisConfig::default(), chunks, |n| n)
}

/// At most one failure, and only as the last output.
fn check_contract(out: &[Decoded]) {
    let failures = out
        .iter()
        .filter(|d| matches!(d, Decoded::Failure(_)))
        .count();
    assert!(failures <= 1, "{failures} failures");
    if failures == 1 {
        assert!(matches!(out.last(), Some(Decoded::Failure(_))));
    }
}

fn commands(out: &[Decoded]) -> Vec<&RedisCommand> {
    out.iter()
        .filter_map(|d| match d {
            Decoded::Redis(o) => match o.as_ref() {
                RedisOutput::Command(c) => Some(c),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn pushes(out: &[Decoded]) -> Vec<&RedisPush> {
    out.iter()
        .filter_map(|d| match d {
            Decoded::Redis(o) => match o.as_ref() {
                RedisOutput::Push(p) => Some(p),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn failure(out: &[Decoded]) -> Option<&DecodeFailure> {
    out.iter().find_map(|d| match d {
        Decoded::Failure(f) => Some(f),
        _ => None,
    })
}

fn find<'a>(cmds: &[&'a RedisCommand], name: &str, first_arg: &str) -> &'a RedisCommand {
    cmds.iter()
        .find(|c| c.command == name && c.args.first().map_or("", |a| a.text.as_str()) == first_arg)
        .unwrap_or_else(|| panic!("no {name} {first_arg}"))
}

fn reply(c: &RedisCommand) -> (RespType, &str) {
    let r = c
        .reply
        .as_ref()
        .unwrap_or_else(|| panic!("{} has no reply", c.command));
    (r.ty, r.rendered.as_str())
}

fn args(c: &RedisCommand) -> Vec<&str> {
    c.args.iter().map(|a| a.text.as_str()).collect()
}

/// Every command of a capture paired, each with a reply and a latency.
fn all_answered(cmds: &[&RedisCommand]) {
    for c in cmds {
        assert!(c.reply.is_some(), "{} {:?} unanswered", c.command, args(c));
        assert!(c.latency_ms.is_some() && c.request_size > 0 && c.response_size > 0);
    }
}

const CAPTURES: &[&str] = &[
    "cli",
    "cli3",
    "resp3types",
    "inline",
    "pipe",
    "pubsub2",
    "py3",
    "tracking",
    "monitor",
    "clientreply",
    "auth",
];

#[test]
fn redis_cli_resp2() {
    let out = decode(&capture("cli"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    let cmds = commands(&out);
    all_answered(&cmds);
    // redis-cli asks for the command docs first: a big nested reply.
    assert_eq!(cmds[0].command, "COMMAND DOCS");
    assert_eq!(reply(cmds[0]).0, RespType::Array);
    let get = find(&cmds, "GET", "greeting");
    assert_eq!(reply(get), (RespType::Bulk, "\"hello\""));
    assert!(!get.resp3 && !get.inline);
    assert_eq!(reply(find(&cmds, "LRANGE", "list")).1, r#"["c","b","a"]"#);
    let wrong = find(&cmds, "GET", "list");
    let error = wrong.error.as_ref().unwrap();
    assert_eq!(error.code.as_deref(), Some("WRONGTYPE"));
    assert_eq!(
        error.message,
        "Operation against a key holding the wrong kind of value"
    );
    assert_eq!(
        reply(find(&cmds, "INCR", "counter")),
        (RespType::Integer, "1")
    );
    assert_eq!(
        reply(find(&cmds, "GET", "missing")),
        (RespType::Null, "null")
    );
    assert_eq!(
        reply(find(&cmds, "CONFIG GET", "maxmemory")).1,
        r#"["maxmemory","0"]"#
    );
    let unknown = find(&cmds, "NOSUCHCOMMAND", "x");
    assert_eq!(unknown.error.as_ref().unwrap().code.as_deref(), Some("ERR"));
    // redis-cli unescapes "\xff\x00\x01": not UTF-8, so base64.
    let set = find(&cmds, "SET", "bin");
    assert_eq!(set.args[1].encoding, ArgEncoding::Base64);
    assert_eq!(set.args[1].text, "/wAB");
    assert_eq!(reply(find(&cmds, "GET", "bin")).1, r#"{"base64":"/wAB"}"#);
    let xinfo = find(&cmds, "XINFO STREAM", "st");
    assert!(
        reply(xinfo).1.starts_with("[\"length\",1,"),
        "{}",
        reply(xinfo).1
    );
    assert_eq!(find(&cmds, "CLIENT TRACKING", "off").arg_count, 1);
}

#[test]
fn redis_cli_resp3() {
    let out = decode(&capture("cli3"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    let cmds = commands(&out);
    all_answered(&cmds);
    let hello = cmds.iter().find(|c| c.command == "HELLO").unwrap();
    assert_eq!(args(hello), ["3"]);
    assert_eq!(reply(hello).0, RespType::Map);
    assert!(hello.resp3);
    assert_eq!(
        reply(find(&cmds, "HGETALL", "h")),
        (RespType::Map, r#"{"f1":"v1","f2":"v2"}"#)
    );
    assert_eq!(
        reply(find(&cmds, "SMEMBERS", "nothing")),
        (RespType::Set, "[]")
    );
    assert_eq!(reply(find(&cmds, "ZSCORE", "z")), (RespType::Double, "1.5"));
    assert_eq!(
        reply(find(&cmds, "GET", "missing")),
        (RespType::Null, "null")
    );
    let protocol = |what: &str| {
        let c = cmds
            .iter()
            .find(|c| c.command == "DEBUG" && args(c) == ["PROTOCOL", what]);
        reply(c.unwrap_or_else(|| panic!("no DEBUG PROTOCOL {what}")))
    };
    assert_eq!(protocol("true"), (RespType::Boolean, "true"));
    assert_eq!(protocol("false"), (RespType::Boolean, "false"));
    assert_eq!(
        protocol("verbatim"),
        (RespType::Verbatim, r#""This is a verbatim\nstring""#)
    );
    assert_eq!(
        protocol("map"),
        (RespType::Map, r#"{"0":false,"1":true,"2":false}"#)
    );
    assert_eq!(protocol("set").0, RespType::Set);
    assert!(find(&cmds, "GET", "list").error.is_some());
}

#[test]
fn resp3_rare_types_and_hello_2() {
    let out = decode(&capture("resp3types"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    let cmds = commands(&out);
    all_answered(&cmds);
    let debug: Vec<_> = cmds.iter().filter(|c| c.command == "DEBUG").collect();
    assert!(debug.iter().all(|c| c.inline));
    assert_eq!(
        reply(debug[0]),
        (RespType::BigNumber, "1234567999999999999999999999999999999")
    );
    // The attribute is shown with the value it describes; the type is the value's.
    assert_eq!(
        reply(debug[1]),
        (
            RespType::Bulk,
            r#"{"attribute":{"key-popularity":["key:123",90]},"value":"Some real reply following the attribute"}"#
        )
    );
    assert_eq!(reply(debug[3]), (RespType::Boolean, "true"));
    assert_eq!(reply(debug[4]), (RespType::Double, "3.141"));
    assert_eq!(reply(debug[5]), (RespType::Null, "null"));
    // DEBUG PROTOCOL push: a push, then the real reply.
    assert_eq!(
        reply(debug[6]),
        (
            RespType::Bulk,
            "\"Some real reply following the push reply\""
        )
    );
    let push = &pushes(&out)[0];
    assert_eq!(push.kind, "server-cpu-usage");
    assert_eq!(push.payload.as_ref().unwrap().text, "42");
    assert!(push.resp3);
    // After HELLO 2 the same questions are answered in RESP2 types.
    assert!(!debug[7].resp3);
    assert_eq!(reply(debug[7]).0, RespType::Array);
    assert_eq!(reply(debug[8]).0, RespType::Bulk);
}

#[test]
fn inline_commands_typed_by_hand() {
    let out = decode(&capture("inline"));
    let cmds = commands(&out);
    assert_eq!(cmds[0].command, "PING");
    assert!(cmds[0].inline);
    assert_eq!(reply(cmds[0]), (RespType::SimpleString, "\"PONG\""));
    assert_eq!(args(cmds[1]), ["my key", "a \"quoted\" value"]);
    assert_eq!(reply(cmds[2]).1, r#""a \"quoted\" value""#);
    assert_eq!(args(cmds[3]), ["single quoted"]);
    // Three inline commands in one chunk, three replies in one.
    assert_eq!(
        cmds[4..7]
            .iter()
            .map(|c| c.command.as_str())
            .collect::<Vec<_>>(),
        ["PING", "PING", "ECHO"]
    );
    assert_eq!(reply(cmds[6]).1, "\"x\"");
    // Unbalanced quotes: Redis refuses them and so does the decoder.
    let f = failure(&out).unwrap();
    assert!(f.detail.contains("unbalanced"), "{}", f.detail);
    assert_eq!(f.direction, Direction::ClientToTarget);
}

#[test]
fn redis_cli_pipe_pairs_thousands_in_order() {
    let out = decode(&capture("pipe"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    let cmds = commands(&out);
    assert_eq!(cmds.len(), 3001);
    all_answered(&cmds);
    for (i, c) in cmds[..3000].iter().enumerate() {
        assert_eq!(c.command, "SET");
        assert_eq!(args(c), [format!("key:{i}"), format!("value-{i}")]);
        assert_eq!(reply(c), (RespType::SimpleString, "\"OK\""));
    }
    // redis-cli ends with an ECHO of 20 random bytes to know it is done.
    let echo = cmds[3000];
    assert_eq!(echo.command, "ECHO");
    assert_eq!(echo.args[0].encoding, ArgEncoding::Base64);
    assert_eq!(
        reply(echo).1,
        format!("{{\"base64\":\"{}\"}}", echo.args[0].text)
    );
}

#[test]
fn resp2_pubsub_subscribed_mode() {
    let out = decode(&capture("pubsub2"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    let cmds = commands(&out);
    all_answered(&cmds);
    let names: Vec<&str> = cmds.iter().map(|c| c.command.as_str()).collect();
    assert_eq!(
        names,
        [
            "SUBSCRIBE",
            "PSUBSCRIBE",
            "PING",
            "UNSUBSCRIBE",
            "PUNSUBSCRIBE",
            "PING",
            "UNSUBSCRIBE",
            "GET"
        ]
    );
    let sub = cmds[0].reply.as_ref().unwrap();
    assert_eq!(sub.replies, 2);
    assert_eq!(sub.rendered, r#"["subscribe","a",1],["subscribe","b",2]"#);
    // PING in subscribed mode answers an array.
    assert_eq!(reply(cmds[2]).1, r#"["pong",""]"#);
    // UNSUBSCRIBE with no channel: one reply per channel held.
    assert_eq!(cmds[3].reply.as_ref().unwrap().replies, 2);
    assert_eq!(reply(cmds[5]).1, "\"PONG\"");
    assert_eq!(reply(cmds[6]).1, r#"["unsubscribe",null,0]"#);
    assert_eq!(reply(cmds[7]).1, "\"hello\"");
    let p = pushes(&out);
    assert_eq!(p.len(), 3);
    assert_eq!(
        (
            p[0].kind.as_str(),
            p[0].channel.as_ref().unwrap().text.as_str()
        ),
        ("message", "a")
    );
    assert_eq!(p[0].payload.as_ref().unwrap().text, "hello-a");
    assert_eq!(p[1].kind, "pmessage");
    assert_eq!(p[1].pattern.as_ref().unwrap().text, "news*");
    assert_eq!(p[1].channel.as_ref().unwrap().text, "news.1");
    assert_eq!(p[2].payload.as_ref().unwrap().text, "bin\u{1}");
    assert!(!p[0].resp3);
}

#[test]
fn redis_py_resp3_pipeline_transaction_pubsub() {
    let out = decode(&capture("py3"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    let cmds = commands(&out);
    all_answered(&cmds);
    assert_eq!(cmds[0].command, "HELLO");
    assert!(cmds.iter().skip(1).all(|c| c.resp3));
    assert_eq!(
        cmds.iter()
            .filter(|c| c.command == "INCRBY" && args(c) == ["py:n", "1"])
            .count(),
        20
    );
    // The transaction: each queued command with its own result from EXEC.
    let multi = cmds.iter().position(|c| c.command == "MULTI").unwrap();
    let tx = &cmds[multi..multi + 6];
    assert_eq!(
        tx.iter().map(|c| c.command.as_str()).collect::<Vec<_>>(),
        ["MULTI", "SET", "INCRBY", "GET", "SADD", "EXEC"]
    );
    assert!(tx[1..5].iter().all(|c| c.transaction) && !tx[5].transaction);
    assert_eq!(reply(tx[1]), (RespType::SimpleString, "\"OK\""));
    assert_eq!(tx[2].error.as_ref().unwrap().code.as_deref(), Some("ERR"));
    assert_eq!(reply(tx[3]).1, "\"x\"");
    assert_eq!(reply(tx[4]), (RespType::Integer, "1"));
    assert_eq!(tx[1].finished, tx[5].finished);
    assert!(reply(tx[5]).1.starts_with("[\"OK\",{\"error\":"));
    // WATCH fired: EXEC answers null and the queued SET keeps its QUEUED.
    let watched = cmds.iter().rposition(|c| c.command == "EXEC").unwrap();
    assert_eq!(reply(cmds[watched]), (RespType::Null, "null"));
    assert_eq!(reply(cmds[watched - 1]).1, "\"QUEUED\"");
    // RESP3 pub/sub: subscribe confirmations are pushes that answer the
    // command; messages are pushes of their own.
    assert_eq!(
        reply(find(&cmds, "SUBSCRIBE", "chan3")).1,
        r#"["subscribe","chan3",1]"#
    );
    let p = pushes(&out);
    assert_eq!(
        p.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>(),
        ["message", "pmessage"]
    );
    assert!(p.iter().all(|p| p.resp3));
    assert_eq!(p[1].payload.as_ref().unwrap().text, "hi-pat");
}

#[test]
fn client_tracking_invalidations_and_blocking() {
    let out = decode(&capture("tracking"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    let cmds = commands(&out);
    all_answered(&cmds);
    assert_eq!(reply(find(&cmds, "CLIENT TRACKING", "ON")).1, "\"OK\"");
    assert_eq!(reply(find(&cmds, "BLPOP", "q")).1, r#"["q","job1"]"#);
    let p = pushes(&out);
    assert_eq!(p.len(), 2);
    assert_eq!(p[0].kind, "invalidate");
    assert_eq!(p[0].payload.as_ref().unwrap().text, r#"["trk"]"#);
    // FLUSHDB invalidates everything: a null.
    assert_eq!(p[1].payload.as_ref().unwrap().text, "null");
}

#[test]
fn monitor_lines_are_pushes() {
    let out = decode(&capture("monitor"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    assert_eq!(commands(&out).len(), 1);
    let p = pushes(&out);
    assert_eq!(p.len(), 2);
    assert!(p.iter().all(|p| p.kind == "monitor"));
    assert!(p[0]
        .payload
        .as_ref()
        .unwrap()
        .text
        .ends_with(r#""SET" "mon" "1""#));
}

#[test]
fn client_reply_off_and_skip_wait_for_nothing() {
    let out = decode(&capture("clientreply"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    let cmds = commands(&out);
    let shown: Vec<(String, Option<&str>)> = cmds
        .iter()
        .map(|c| {
            (
                format!("{} {}", c.command, args(c).join(" ")),
                c.reply.as_ref().map(|r| r.rendered.as_str()),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("CLIENT REPLY SKIP".to_string(), None),
            ("SET a 1".into(), None),
            ("GET a".into(), Some("\"1\"")),
            ("CLIENT REPLY OFF".into(), None),
            ("SET b 2".into(), None),
            ("GET b".into(), None),
            ("CLIENT REPLY ON".into(), Some("\"OK\"")),
            ("GET b".into(), Some("\"2\"")),
        ]
    );
}

const SECRETS: &[&str] = &[
    "Sup3rSecretA",
    "Sup3rSecretB",
    "Sup3rSecretC",
    "Sup3rSecretD",
    "Sup3rSecretE",
    "WrongSecretW1",
];

fn assert_no_secret(out: &[Decoded], secrets: &[&str]) {
    for d in out {
        let debug = format!("{d:?}");
        for s in secrets {
            assert!(!debug.contains(s), "{s} in {debug}");
        }
    }
}

#[test]
fn real_auth_exchanges_leave_no_secret() {
    let out = decode(&capture("auth"));
    assert!(failure(&out).is_none(), "{:?}", failure(&out));
    assert_no_secret(&out, SECRETS);
    let cmds = commands(&out);
    assert_eq!(cmds.len(), 12);
    assert_eq!(args(cmds[1]), ["alice", "[redacted]"]);
    assert_eq!(
        cmds[2].error.as_ref().unwrap().code.as_deref(),
        Some("WRONGPASS")
    );
    assert_eq!(
        args(cmds[3]),
        ["3", "AUTH", "alice", "[redacted]", "SETNAME", "app"]
    );
    assert_eq!(args(cmds[5]), ["[redacted]"]);
    // CONFIG GET answers the password in clear: the reply is redacted too.
    assert_eq!(reply(cmds[6]).1, r#"{"requirepass":"[redacted]"}"#);
    assert_eq!(args(cmds[9])[5..], ["AUTH2", "bob", "[redacted]"]);
    assert_eq!(args(cmds[10]), ["alice", "[redacted]", "[redacted]"]);
}

/// Each hand-made request with its secret, multibulk and inline.
#[test]
fn every_secret_argument_is_redacted() {
    let secret = "hunter2-XYZZY";
    let commands = [
        format!("AUTH {secret}"),
        format!("AUTH bob {secret}"),
        format!("HELLO 3 AUTH bob {secret}"),
        format!("MIGRATE h 1 k 0 10 AUTH {secret} KEYS a"),
        format!("MIGRATE h 1 k 0 10 AUTH2 bob {secret}"),
        format!("CONFIG SET requirepass {secret}"),
        format!("CONFIG SET maxmemory 1 masterauth {secret}"),
        format!("ACL SETUSER bob on >{secret} ~*"),
        format!("ACL SETUSER bob <{secret}"),
    ];
    for line in &commands {
        let words: Vec<&str> = line.split(' ').collect();
        let mut multibulk = format!("*{}\r\n", words.len());
        for w in &words {
            multibulk.push_str(&format!("${}\r\n{w}\r\n", w.len()));
        }
        for request in [multibulk, format!("{line}\r\n")] {
            for capture_limit in [1 << 16, 40, 0] {
                let config = RedisConfig {
                    capture_limit,
                    ..RedisConfig::default()
                };
                let chunks = [(Direction::ClientToTarget, request.clone().into_bytes())];
                let out = decode_with(config, &chunks, |n| n);
                assert_eq!(commands_of(&out), 1, "{line}");
                assert_no_secret(&out, &[secret, &secret[..8]]);
            }
        }
    }
}

fn commands_of(out: &[Decoded]) -> usize {
    commands(out).len()
}

/// Every capture, fed one byte at a time and in random pieces, gives the
/// same outputs as fed whole.
#[test]
fn captures_split_anywhere_decode_the_same() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move |max: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + (seed % max as u64) as usize
    };
    for name in CAPTURES {
        let chunks = capture(name);
        let whole = format!("{:?}", decode(&chunks));
        let bytewise = format!("{:?}", decode_with(RedisConfig::default(), &chunks, |_| 1));
        assert!(whole == bytewise, "{name}: byte by byte differs");
        for _ in 0..3 {
            let pieces = format!(
                "{:?}",
                decode_with(RedisConfig::default(), &chunks, |n| random(n.min(40)))
            );
            assert!(whole == pieces, "{name}: random pieces differ");
        }
    }
}

mod edges;
