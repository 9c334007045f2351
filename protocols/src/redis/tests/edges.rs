//! Hand-made bytes for what real peers do not send (or not on demand):
//! huge values, transactions that abort, deep pipelines past the limits,
//! garbage of every kind.

use bytes::Bytes;

use super::*;
use crate::FailureKind;

/// Hand-made traffic: (client bytes, server bytes) exchanges in order.
fn exchange(config: RedisConfig, parts: &[(&[u8], &[u8])]) -> Vec<Decoded> {
    let mut chunks = Vec::new();
    for (request, response) in parts {
        if !request.is_empty() {
            chunks.push((Direction::ClientToTarget, request.to_vec()));
        }
        if !response.is_empty() {
            chunks.push((Direction::TargetToClient, response.to_vec()));
        }
    }
    decode_with(config, &chunks, |n| n)
}

#[test]
fn a_100_mb_value_streams_through_without_being_kept() {
    let mut decoder = RedisDecoder::new(RedisConfig::default());
    let mut out = Vec::new();
    let size = 100 * 1024 * 1024;
    let head = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${size}\r\n");
    decoder.feed(
        Direction::ClientToTarget,
        &Bytes::from(head),
        Timestamp(0),
        &mut out,
    );
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    for _ in 0..size / chunk.len() {
        decoder.feed(Direction::ClientToTarget, &chunk, Timestamp(1), &mut out);
    }
    decoder.feed(
        Direction::ClientToTarget,
        &Bytes::from_static(b"\r\n"),
        Timestamp(1),
        &mut out,
    );
    decoder.feed(
        Direction::TargetToClient,
        &Bytes::from_static(b"+OK\r\n"),
        Timestamp(2),
        &mut out,
    );
    let cmds = commands(&out);
    assert_eq!(cmds.len(), 1);
    let value = &cmds[0].args[1];
    assert_eq!(value.size, size as u64);
    assert!(value.truncated && cmds[0].truncated);
    assert!(value.text.len() < 64 * 1024);
    assert_eq!(cmds[0].request_size, size as u64 + 36);
    // A reply as big: counted, its rendering capped.
    let mut out = Vec::new();
    decoder.feed(
        Direction::ClientToTarget,
        &Bytes::from_static(b"GET big\r\n"),
        Timestamp(3),
        &mut out,
    );
    decoder.feed(
        Direction::TargetToClient,
        &Bytes::from(format!("${size}\r\n")),
        Timestamp(3),
        &mut out,
    );
    for _ in 0..size / chunk.len() {
        decoder.feed(Direction::TargetToClient, &chunk, Timestamp(3), &mut out);
    }
    decoder.feed(
        Direction::TargetToClient,
        &Bytes::from_static(b"\r\n"),
        Timestamp(4),
        &mut out,
    );
    let cmds = commands(&out);
    let r = cmds[0].reply.as_ref().unwrap();
    assert!(r.truncated && r.rendered.len() <= 64 * 1024 + 8);
    assert_eq!(cmds[0].response_size, size as u64 + 14);
}

#[test]
fn multi_discard_and_execabort() {
    let out = exchange(
        RedisConfig::default(),
        &[
            (b"MULTI\r\nSET a 1\r\nDISCARD\r\n", b"+OK\r\n+QUEUED\r\n+OK\r\n"),
            (b"MULTI\r\nNOPE\r\nEXEC\r\n", b"+OK\r\n-ERR unknown command 'NOPE'\r\n-EXECABORT Transaction discarded because of previous errors.\r\n"),
        ],
    );
    let cmds = commands(&out);
    let names: Vec<&str> = cmds.iter().map(|c| c.command.as_str()).collect();
    assert_eq!(names, ["MULTI", "SET", "DISCARD", "MULTI", "NOPE", "EXEC"]);
    assert_eq!(reply(cmds[1]).1, "\"QUEUED\"");
    assert!(cmds[1].transaction && cmds[4].transaction);
    assert_eq!(
        cmds[5].error.as_ref().unwrap().code.as_deref(),
        Some("EXECABORT")
    );
}

#[test]
fn resp3_subscribe_of_several_channels_and_unsubscribe_all() {
    let out = exchange(
        RedisConfig::default(),
        &[
            (b"HELLO 3\r\n", b"%1\r\n+proto\r\n:3\r\n"),
            (
                b"SUBSCRIBE a b\r\n",
                b">3\r\n+subscribe\r\n+a\r\n:1\r\n>3\r\n+subscribe\r\n+b\r\n:2\r\n",
            ),
            (b"GET k\r\n", b">3\r\n+message\r\n+a\r\n+hi\r\n$1\r\nv\r\n"),
            (
                b"UNSUBSCRIBE\r\n",
                b">3\r\n+unsubscribe\r\n+a\r\n:1\r\n>3\r\n+unsubscribe\r\n+b\r\n:0\r\n",
            ),
            (b"PING\r\n", b"+PONG\r\n"),
        ],
    );
    let cmds = commands(&out);
    assert_eq!(
        cmds.iter().map(|c| c.command.as_str()).collect::<Vec<_>>(),
        ["HELLO", "SUBSCRIBE", "GET", "UNSUBSCRIBE", "PING"]
    );
    assert_eq!(cmds[1].reply.as_ref().unwrap().replies, 2);
    assert_eq!(cmds[1].reply.as_ref().unwrap().ty, RespType::Push);
    // In RESP3 any command may run while subscribed.
    assert_eq!(reply(cmds[2]).1, "\"v\"");
    assert_eq!(cmds[3].reply.as_ref().unwrap().replies, 2);
    assert_eq!(pushes(&out).len(), 1);
}

#[test]
fn pipeline_past_max_pending_is_counted_not_kept() {
    let config = RedisConfig {
        max_pending: 10,
        ..RedisConfig::default()
    };
    let requests = b"INCR n\r\n".repeat(25);
    let replies = b":1\r\n".repeat(25);
    let out = exchange(config, &[(&requests, &replies)]);
    assert_eq!(commands(&out).len(), 10);
    let skipped: Vec<_> = out
        .iter()
        .filter_map(|d| match d {
            Decoded::Redis(o) => match o.as_ref() {
                RedisOutput::Skipped(s) => Some(s.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert_eq!(
        skipped,
        [SkippedCommands {
            commands: 15,
            request_size: 120,
            response_size: 60
        }]
    );
    assert!(failure(&out).is_none());
}

#[test]
fn pending_bytes_budget_shrinks_what_deep_pipelines_keep() {
    let config = RedisConfig {
        max_pending_bytes: 1000,
        ..RedisConfig::default()
    };
    let value = "v".repeat(600);
    let requests = format!("SET k {value}\r\n").repeat(3);
    let out = exchange(config, &[(requests.as_bytes(), b"+OK\r\n+OK\r\n+OK\r\n")]);
    let cmds = commands(&out);
    assert!(!cmds[0].truncated);
    assert!(cmds[1].truncated && cmds[1].args[1].text.len() < 600);
    assert!(cmds[2].args.iter().map(|a| a.text.len()).sum::<usize>() <= 64);
}

#[test]
fn commands_cut_off_by_the_close_are_reported_without_reply() {
    let out = exchange(RedisConfig::default(), &[(b"BLPOP q 0\r\n", b"")]);
    let cmds = commands(&out);
    assert_eq!(cmds.len(), 1);
    assert!(cmds[0].reply.is_none() && cmds[0].latency_ms.is_none());
}

fn fails(config: RedisConfig, parts: &[(&[u8], &[u8])]) -> DecodeFailure {
    let out = exchange(config, parts);
    failure(&out)
        .cloned()
        .unwrap_or_else(|| panic!("no failure: {out:?}"))
}

#[test]
fn garbage_fails_once_with_offset_and_reason() {
    let f = fails(RedisConfig::default(), &[(b"\x00\x01\x02", b"")]);
    assert_eq!((f.offset, f.direction), (0, Direction::ClientToTarget));
    let f = fails(
        RedisConfig::default(),
        &[(b"PING\r\n", b"+PONG\r\n?what\r\n")],
    );
    assert_eq!((f.offset, f.direction), (7, Direction::TargetToClient));
    assert!(f.detail.contains("no RESP type"), "{}", f.detail);
    assert_eq!(f.kind, FailureKind::Malformed);
    let f = fails(RedisConfig::default(), &[(b"GET k\r\n", b"$-5\r\n")]);
    assert!(f.detail.contains("-5"), "{}", f.detail);
    let f = fails(
        RedisConfig::default(),
        &[(b"*1\r\n$99999999999999999999\r\n", b"")],
    );
    assert!(f.detail.contains("length"), "{}", f.detail);
    let f = fails(RedisConfig::default(), &[(b"*1\r\n:1\r\n", b"")]);
    assert!(f.detail.contains("bulk string"), "{}", f.detail);
    let f = fails(RedisConfig::default(), &[(b"GET k\r\n", b"$3\r\nabcXY")]);
    assert!(f.detail.contains("CRLF"), "{}", f.detail);
    let f = fails(RedisConfig::default(), &[(b"", b"+OK\r\n")]);
    assert!(
        f.detail.contains("no command pending: \"OK\""),
        "{}",
        f.detail
    );
    assert_eq!(f.kind, FailureKind::UnexpectedMessage);
    let f = fails(
        RedisConfig::default(),
        &[(b"GET k\r\n", b"$?\r\n;3\r\nabc\r\n;0\r\n")],
    );
    assert!(f.detail.contains("streamed"), "{}", f.detail);
    assert_eq!(f.kind, FailureKind::Unsupported);
    let f = fails(RedisConfig::default(), &[(b"GET k\r\n", b":12x\r\n")]);
    assert!(f.detail.contains("malformed"), "{}", f.detail);
    let header = format!(":{}\r\n", "1".repeat(100));
    let f = fails(RedisConfig::default(), &[(b"GET k\r\n", header.as_bytes())]);
    assert!(f.detail.contains("longer than"), "{}", f.detail);
}

#[test]
fn limits_on_depth_count_and_bulk_length() {
    let deep = "*1\r\n".repeat(65) + ":1\r\n";
    let f = fails(RedisConfig::default(), &[(b"GET k\r\n", deep.as_bytes())]);
    assert!(f.detail.contains("deeper than 64"), "{}", f.detail);
    assert_eq!(f.kind, FailureKind::LimitExceeded);
    let ok = "*1\r\n".repeat(64) + ":1\r\n";
    assert!(failure(&exchange(
        RedisConfig::default(),
        &[(b"GET k\r\n", ok.as_bytes())]
    ))
    .is_none());
    let config = RedisConfig {
        max_aggregate_len: 100,
        max_bulk_len: 1000,
        ..RedisConfig::default()
    };
    let f = fails(config.clone(), &[(b"KEYS *\r\n", b"*101\r\n")]);
    assert!(f.detail.contains("101 entries"), "{}", f.detail);
    let f = fails(config, &[(b"GET k\r\n", b"$1001\r\n")]);
    assert!(f.detail.contains("1001"), "{}", f.detail);
    let long = "A".repeat(resp::MAX_INLINE + 1);
    let f = fails(RedisConfig::default(), &[(long.as_bytes(), b"")]);
    assert!(f.detail.contains("inline"), "{}", f.detail);
    assert_eq!(f.kind, FailureKind::LimitExceeded);
}

#[test]
fn nothing_after_a_failure() {
    let mut decoder = RedisDecoder::new(RedisConfig::default());
    let mut out = Vec::new();
    decoder.feed(
        Direction::ClientToTarget,
        &Bytes::from_static(b"GET a\r\nGET b\r\n"),
        Timestamp(0),
        &mut out,
    );
    decoder.feed(
        Direction::TargetToClient,
        &Bytes::from_static(b"$1\r\n1\r\n!!"),
        Timestamp(1),
        &mut out,
    );
    decoder.feed(
        Direction::TargetToClient,
        &Bytes::from_static(b"$1\r\n2\r\n"),
        Timestamp(2),
        &mut out,
    );
    decoder.feed(
        Direction::ClientToTarget,
        &Bytes::from_static(b"PING\r\n"),
        Timestamp(3),
        &mut out,
    );
    decoder.finish(Timestamp(4), &mut out);
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(matches!(out[1], Decoded::Failure(_)));
}

#[test]
fn many_values_in_one_reply_are_counted_past_the_cap() {
    let config = RedisConfig {
        max_values: 10,
        render_limit: 200,
        ..RedisConfig::default()
    };
    let mut reply = String::from("*1000\r\n");
    for i in 0..1000 {
        reply.push_str(&format!(":{i}\r\n"));
    }
    let out = exchange(config, &[(b"LRANGE l 0 -1\r\n", reply.as_bytes())]);
    let r = commands(&out)[0].reply.clone().unwrap();
    assert!(r.truncated);
    assert!(r.rendered.ends_with("\"…(991 more)\"]"), "{}", r.rendered);
}

#[test]
fn resp2_invalidations_by_redirect_and_shard_channels() {
    let out = exchange(
        RedisConfig::default(),
        &[
            (
                b"SUBSCRIBE __redis__:invalidate\r\n",
                b"*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
            ),
            (
                b"",
                b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$3\r\nkey\r\n",
            ),
            (
                b"SSUBSCRIBE s1\r\n",
                b"*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n*3\r\n$8\r\nsmessage\r\n$2\r\ns1\r\n$2\r\nhi\r\n",
            ),
            // The slot moved away: the server unsubscribes unasked.
            (b"", b"*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:0\r\n"),
            (b"PING\r\n", b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
        ],
    );
    assert!(failure(&out).is_none(), "{out:?}");
    let p = pushes(&out);
    let kinds: Vec<&str> = p.iter().map(|p| p.kind.as_str()).collect();
    assert_eq!(kinds, ["invalidate", "smessage", "sunsubscribe"]);
    assert_eq!(p[0].payload.as_ref().unwrap().text, r#"["key"]"#);
    assert_eq!(p[1].payload.as_ref().unwrap().text, "hi");
    assert_eq!(commands(&out).len(), 3);
}
