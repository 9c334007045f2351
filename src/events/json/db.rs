//! The database edges' payloads by hand: `query` (PostgreSQL) and
//! `command` and `push` (Redis). A pipelined Redis client makes one event
//! per command, tens of thousands a second on one connection, so through
//! serde their JSON was most of what observing a Redis edge cost (a
//! profile of `redis-benchmark -P 16` through the proxy put serde_json's
//! string escaping alone at 8.5% of the proxy's time). Field order and
//! omissions follow the payloads' serde attributes exactly; the tests
//! compare both ways.

use super::{write_edge, write_f64, write_opt_f64, write_str, write_u64};
use crate::events::{
    CopyInfo, QueryInfo, RedisCommandInfo, RedisPushInfo, RedisReplyInfo, SqlError,
};

pub(super) fn write_query(out: &mut Vec<u8>, q: &QueryInfo) {
    write_edge(
        out,
        b"{\"connection\":",
        q.connection,
        [&q.source, &q.target, &q.ingress],
    );
    out.extend_from_slice(b",\"database\":");
    write_opt_str(out, q.database.as_deref());
    out.extend_from_slice(b",\"user\":");
    write_opt_str(out, q.user.as_deref());
    out.extend_from_slice(b",\"protocol\":");
    write_str(out, &q.protocol);
    out.extend_from_slice(b",\"sql\":");
    write_str(out, &q.sql);
    write_flag(out, b",\"sql_truncated\":true", q.sql_truncated);
    if !q.params.is_empty() {
        // Parameters are JSON values already (numbers, strings, nulls):
        // serde_json writes them as it would inside the payload.
        out.extend_from_slice(b",\"params\":");
        serde_json::to_writer(&mut *out, &q.params).expect("writing to a Vec cannot fail");
    }
    write_flag(out, b",\"params_truncated\":true", q.params_truncated);
    out.extend_from_slice(b",\"statement\":");
    write_opt_str(out, q.statement.as_deref());
    out.extend_from_slice(b",\"command\":");
    write_opt_str(out, q.command.as_deref());
    out.extend_from_slice(b",\"rows\":");
    match q.rows {
        Some(rows) => write_u64(out, rows),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":");
    match &q.error {
        Some(e) => write_sql_error(out, e),
        None => out.extend_from_slice(b"null"),
    }
    if q.notices != 0 {
        out.extend_from_slice(b",\"notices\":");
        write_u64(out, q.notices.into());
    }
    if let Some(copy) = &q.copy {
        out.extend_from_slice(b",\"copy\":");
        write_copy(out, copy);
    }
    out.extend_from_slice(b",\"transaction\":");
    write_opt_str(out, q.transaction.as_deref());
    out.extend_from_slice(b",\"latency_ms\":");
    write_f64(out, q.latency_ms);
    write_sizes(out, q.request_size, q.response_size);
    out.push(b'}');
}

fn write_sql_error(out: &mut Vec<u8>, e: &SqlError) {
    out.extend_from_slice(b"{\"severity\":");
    write_str(out, &e.severity);
    out.extend_from_slice(b",\"code\":");
    write_str(out, &e.code);
    out.extend_from_slice(b",\"message\":");
    write_str(out, &e.message);
    if let Some(detail) = &e.detail {
        out.extend_from_slice(b",\"detail\":");
        write_str(out, detail);
    }
    if let Some(hint) = &e.hint {
        out.extend_from_slice(b",\"hint\":");
        write_str(out, hint);
    }
    out.push(b'}');
}

fn write_copy(out: &mut Vec<u8>, c: &CopyInfo) {
    out.extend_from_slice(b"{\"direction\":");
    write_str(out, &c.direction);
    out.extend_from_slice(b",\"messages\":");
    write_u64(out, c.messages);
    out.extend_from_slice(b",\"bytes\":");
    write_u64(out, c.bytes);
    write_flag(out, b",\"failed\":true", c.failed);
    out.push(b'}');
}

pub(super) fn write_redis_command(out: &mut Vec<u8>, c: &RedisCommandInfo) {
    write_edge(
        out,
        b"{\"connection\":",
        c.connection,
        [&c.source, &c.target, &c.ingress],
    );
    out.extend_from_slice(b",\"command\":");
    write_str(out, &c.command);
    if let Some((first, rest)) = c.args.split_first() {
        out.extend_from_slice(b",\"args\":[");
        write_str(out, first);
        for arg in rest {
            out.push(b',');
            write_str(out, arg);
        }
        out.push(b']');
    }
    if let Some((first, rest)) = c.binary_args.split_first() {
        out.extend_from_slice(b",\"binary_args\":[");
        write_u64(out, (*first).into());
        for i in rest {
            out.push(b',');
            write_u64(out, (*i).into());
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"arg_count\":");
    write_u64(out, c.arg_count);
    write_flag(out, b",\"args_truncated\":true", c.args_truncated);
    write_flag(out, b",\"inline\":true", c.inline);
    write_flag(out, b",\"transaction\":true", c.transaction);
    out.extend_from_slice(b",\"reply\":");
    match &c.reply {
        Some(reply) => write_reply(out, reply),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"error\":");
    match &c.error {
        Some(e) => {
            out.extend_from_slice(b"{\"code\":");
            write_opt_str(out, e.code.as_deref());
            out.extend_from_slice(b",\"message\":");
            write_str(out, &e.message);
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
    write_flag(out, b",\"resp3\":true", c.resp3);
    out.extend_from_slice(b",\"latency_ms\":");
    write_opt_f64(out, c.latency_ms);
    write_sizes(out, c.request_size, c.response_size);
    out.push(b'}');
}

fn write_reply(out: &mut Vec<u8>, r: &RedisReplyInfo) {
    out.extend_from_slice(b"{\"type\":");
    write_str(out, &r.ty);
    out.extend_from_slice(b",\"value\":");
    write_str(out, &r.value);
    write_flag(out, b",\"truncated\":true", r.truncated);
    if r.replies != 1 {
        out.extend_from_slice(b",\"replies\":");
        write_u64(out, r.replies.into());
    }
    out.push(b'}');
}

pub(super) fn write_redis_push(out: &mut Vec<u8>, p: &RedisPushInfo) {
    write_edge(
        out,
        b"{\"connection\":",
        p.connection,
        [&p.source, &p.target, &p.ingress],
    );
    out.extend_from_slice(b",\"kind\":");
    write_str(out, &p.kind);
    for (key, value) in [
        (&b",\"channel\":"[..], &p.channel),
        (b",\"pattern\":", &p.pattern),
        (b",\"payload\":", &p.payload),
    ] {
        if let Some(value) = value {
            out.extend_from_slice(key);
            write_str(out, value);
        }
    }
    if !p.payload_encoding.is_empty() && p.payload_encoding != "utf8" {
        out.extend_from_slice(b",\"payload_encoding\":");
        write_str(out, &p.payload_encoding);
    }
    write_flag(out, b",\"payload_truncated\":true", p.payload_truncated);
    write_flag(out, b",\"resp3\":true", p.resp3);
    out.extend_from_slice(b",\"size\":");
    write_u64(out, p.size);
    out.push(b'}');
}

/// A `bool` field serde leaves out when false: `field` is its whole
/// `,"name":true`.
fn write_flag(out: &mut Vec<u8>, field: &[u8], set: bool) {
    if set {
        out.extend_from_slice(field);
    }
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_sizes(out: &mut Vec<u8>, request: u64, response: u64) {
    out.extend_from_slice(b",\"request_size\":");
    write_u64(out, request);
    out.extend_from_slice(b",\"response_size\":");
    write_u64(out, response);
}
