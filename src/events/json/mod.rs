//! An event's JSON, written by hand for the events traffic makes.
//!
//! Every `request.completed`, `connection.*`, `postgres.query.completed`,
//! `redis.command.completed` and `redis.push` event is serialised on the
//! relay thread that made it (see the log's module docs), so its cost is
//! paid per request on the traffic path. Through serde the envelope's
//! flattened payload goes through a map serializer, the timestamp through
//! `core::fmt`, and every string through serde_json's byte-at-a-time escape
//! loop; together about a microsecond and a half per request event, most of
//! what the event log costs the proxy in requests per second.
//!
//! [`Event::write_json`] writes those events directly: field names as literals,
//! numbers with `itoa` (floats through serde_json itself, to stay exact),
//! the timestamp digit by digit, and strings scanned eight bytes at a time
//! for the few bytes JSON must escape. The output is byte for byte what
//! `serde_json::to_writer` writes for the same event (the tests compare the
//! two, tricky strings included), and an unknown payload (read from a
//! newer tapmesh's file) as its JSON was read; every other payload, and
//! any timestamp outside the common range, goes through serde_json
//! unchanged.

mod db;

use chrono::{DateTime, Datelike, Timelike, Utc};

use super::{BodyEncoding, ConnectionInfo, Event, EventKind, HeaderMap, Payload, RequestInfo};

impl Event {
    /// Appends the event's JSON (no newline): exactly what serde_json
    /// writes for it, faster for the events traffic makes.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if !timestamp_in_fast_range(&self.timestamp) {
            return serde_fallback(out, self);
        }
        match &self.payload {
            Payload::Request(r) => {
                write_envelope(out, self);
                out.extend_from_slice(b"\"request\":");
                write_request(out, r);
            }
            Payload::Connection(c) => {
                write_envelope(out, self);
                out.extend_from_slice(b"\"connection\":");
                write_connection(out, c);
            }
            Payload::Query(q) => {
                write_envelope(out, self);
                out.extend_from_slice(b"\"query\":");
                db::write_query(out, q);
            }
            Payload::RedisCommand(c) => {
                write_envelope(out, self);
                out.extend_from_slice(b"\"command\":");
                db::write_redis_command(out, c);
            }
            Payload::RedisPush(p) => {
                write_envelope(out, self);
                out.extend_from_slice(b"\"push\":");
                db::write_redis_push(out, p);
            }
            Payload::Unknown(u) => {
                write_envelope(out, self);
                write_str(out, u.name());
                out.push(b':');
                out.extend_from_slice(u.json().get().as_bytes());
            }
            _ => return serde_fallback(out, self),
        }
        out.push(b'}');
    }
}

/// Opens the event's object: the envelope's fields, up to the payload's.
fn write_envelope(out: &mut Vec<u8>, event: &Event) {
    out.extend_from_slice(b"{\"seq\":");
    write_u64(out, event.seq);
    out.extend_from_slice(b",\"type\":");
    if event.kind == EventKind::Unknown {
        write_str(out, event.type_name());
    } else {
        // Known type names are plain ASCII: nothing to escape.
        out.push(b'"');
        out.extend_from_slice(event.kind.as_str().as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b",\"timestamp\":");
    write_timestamp(out, &event.timestamp);
    out.extend_from_slice(b",\"environment\":");
    write_str(out, &event.environment);
    if let Some(service) = &event.service {
        out.extend_from_slice(b",\"service\":");
        write_str(out, service);
    }
    out.push(b',');
}

fn serde_fallback(out: &mut Vec<u8>, event: &Event) {
    serde_json::to_writer(out, event).expect("an event always serialises");
}

/// Opens a traffic payload's object with the fields every edge event
/// starts with: its connection (under `id_key`) and the edge's names.
fn write_edge(out: &mut Vec<u8>, id_key: &[u8], id: u64, names: [&str; 3]) {
    out.extend_from_slice(id_key);
    write_u64(out, id);
    for (key, name) in [&b",\"source\":"[..], b",\"target\":", b",\"ingress\":"]
        .into_iter()
        .zip(names)
    {
        out.extend_from_slice(key);
        write_str(out, name);
    }
}

fn write_request(out: &mut Vec<u8>, r: &RequestInfo) {
    write_edge(
        out,
        b"{\"connection\":",
        r.connection,
        [&r.source, &r.target, &r.ingress],
    );
    out.extend_from_slice(b",\"version\":");
    write_str(out, &r.version);
    out.extend_from_slice(b",\"method\":");
    write_str(out, &r.method);
    out.extend_from_slice(b",\"path\":");
    write_str(out, &r.path);
    out.extend_from_slice(b",\"status_code\":");
    match r.status_code {
        Some(status) => write_u64(out, status.into()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"latency_ms\":");
    write_opt_f64(out, r.latency_ms);
    out.extend_from_slice(b",\"request_size\":");
    write_u64(out, r.request_size);
    out.extend_from_slice(b",\"response_size\":");
    write_u64(out, r.response_size);
    out.extend_from_slice(b",\"request_headers\":");
    write_headers(out, &r.request_headers);
    out.extend_from_slice(b",\"response_headers\":");
    write_headers(out, &r.response_headers);
    if !r.request_trailers.is_empty() {
        out.extend_from_slice(b",\"request_trailers\":");
        write_headers(out, &r.request_trailers);
    }
    if !r.response_trailers.is_empty() {
        out.extend_from_slice(b",\"response_trailers\":");
        write_headers(out, &r.response_trailers);
    }
    write_body(
        out,
        [
            b",\"request_body\":",
            b",\"request_body_encoding\":",
            b",\"request_body_truncated\":",
        ],
        &r.request_body,
        r.request_body_encoding,
        r.request_body_truncated,
    );
    write_body(
        out,
        [
            b",\"response_body\":",
            b",\"response_body_encoding\":",
            b",\"response_body_truncated\":",
        ],
        &r.response_body,
        r.response_body_encoding,
        r.response_body_truncated,
    );
    if let Some((first, rest)) = r.warnings.split_first() {
        out.extend_from_slice(b",\"warnings\":[");
        write_str(out, first);
        for warning in rest {
            out.push(b',');
            write_str(out, warning);
        }
        out.push(b']');
    }
    if let Some(fault) = &r.fault {
        out.extend_from_slice(b",\"fault\":");
        write_str(out, fault);
    }
    close_with_error(out, r.error.as_deref());
}

/// A body's three fields: the text, its encoding and whether it was cut;
/// `keys` are their names, each with its leading comma.
fn write_body(
    out: &mut Vec<u8>,
    keys: [&[u8]; 3],
    body: &str,
    encoding: BodyEncoding,
    truncated: bool,
) {
    out.extend_from_slice(keys[0]);
    write_str(out, body);
    out.extend_from_slice(keys[1]);
    out.push(b'"');
    out.extend_from_slice(encoding.as_str().as_bytes());
    out.push(b'"');
    out.extend_from_slice(keys[2]);
    write_bool(out, truncated);
}

fn write_connection(out: &mut Vec<u8>, c: &ConnectionInfo) {
    write_edge(out, b"{\"id\":", c.id, [&c.source, &c.target, &c.ingress]);
    out.extend_from_slice(b",\"client_addr\":");
    write_str(out, &c.client_addr);
    out.extend_from_slice(b",\"bytes_in\":");
    write_u64(out, c.bytes_in);
    out.extend_from_slice(b",\"bytes_out\":");
    write_u64(out, c.bytes_out);
    out.extend_from_slice(b",\"duration_ms\":");
    write_f64(out, c.duration_ms);
    close_with_error(out, c.error.as_deref());
}

/// Ends a traffic payload's object with its `error`, which is left out
/// when there is none.
fn close_with_error(out: &mut Vec<u8>, error: Option<&str>) {
    if let Some(error) = error {
        out.extend_from_slice(b",\"error\":");
        write_str(out, error);
    }
    out.push(b'}');
}

fn write_headers(out: &mut Vec<u8>, headers: &HeaderMap) {
    out.push(b'{');
    for (i, (name, value)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_str(out, value);
    }
    out.push(b'}');
}

pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

fn write_opt_f64(out: &mut Vec<u8>, n: Option<f64>) {
    match n {
        Some(n) => write_f64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

/// Through serde_json, so that float formatting (and `null` for a
/// non-finite value) is exactly its own.
pub(crate) fn write_f64(out: &mut Vec<u8>, n: f64) {
    serde_json::to_writer(out, &n).expect("writing to a Vec cannot fail");
}

/// Whether [`write_timestamp`] writes `t`; it leaves to chrono years
/// outside 0..=9999 and leap seconds.
fn timestamp_in_fast_range(t: &DateTime<Utc>) -> bool {
    (0..=9999).contains(&t.year()) && t.nanosecond() < 1_000_000_000
}

/// chrono's serialisation (RFC 3339, `Z`, the fraction in 0, 3, 6 or 9
/// digits as the value needs), quoted, for a timestamp
/// [`timestamp_in_fast_range`] accepts.
fn write_timestamp(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    let year = t.year();
    let nano = t.nanosecond();
    let mut buf = *b"\"0000-00-00T00:00:00";
    put_digits(&mut buf[1..5], year as u32);
    put_digits(&mut buf[6..8], t.month());
    put_digits(&mut buf[9..11], t.day());
    put_digits(&mut buf[12..14], t.hour());
    put_digits(&mut buf[15..17], t.minute());
    put_digits(&mut buf[18..20], t.second());
    out.extend_from_slice(&buf);
    let (value, digits) = if nano == 0 {
        (0, 0)
    } else if nano % 1_000_000 == 0 {
        (nano / 1_000_000, 3)
    } else if nano % 1_000 == 0 {
        (nano / 1_000, 6)
    } else {
        (nano, 9)
    };
    if digits > 0 {
        let mut frac = *b".000000000";
        put_digits(&mut frac[1..=digits], value);
        out.extend_from_slice(&frac[..=digits]);
    }
    out.extend_from_slice(b"Z\"");
}

/// Writes `n` into `buf` in decimal, zero-padded to its whole length.
fn put_digits(buf: &mut [u8], mut n: u32) {
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// `s` as a JSON string, escaped exactly as serde_json escapes it: `"` and
/// `\` with a backslash, the control characters below 0x20 as `\b \t \n \f
/// \r` or `\u00xx` (lower-case hex), and nothing else.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_escaped(out, s);
    out.push(b'"');
}

/// `parts` joined as one JSON string (as [`write_str`] of their
/// concatenation), cut to at most `max` bytes at a character boundary:
/// no joined string is built.
pub(crate) fn write_str_parts<'a>(
    out: &mut Vec<u8>,
    parts: impl IntoIterator<Item = &'a str>,
    max: usize,
) {
    out.push(b'"');
    let mut room = max;
    for part in parts {
        if part.len() > room {
            let mut end = room;
            while !part.is_char_boundary(end) {
                end -= 1;
            }
            push_escaped(out, &part[..end]);
            break;
        }
        push_escaped(out, part);
        room -= part.len();
    }
    out.push(b'"');
}

fn push_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let clean = clean_prefix(bytes);
    out.extend_from_slice(&bytes[..clean]);
    if clean < bytes.len() {
        escape_from(out, &bytes[clean..]);
    }
}

/// How many leading bytes need no escaping, found eight at a time: the
/// common case (header values, paths, names) is a string with none.
fn clean_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte of `word ^ pattern` is zero where `word` has that byte; the
    // classic test (x - 0x01…) & !x & 0x80… flags a zero byte, and with 0x20
    // in place of 0x01 it flags a byte below 0x20. Exact for "is there any";
    // which one is left to the byte loop.
    let needs_escape = |word: u64| {
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let control = word.wrapping_sub(ONES * 0x20) & !word;
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        (control | quote | backslash) & HIGHS != 0
    };
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let word = u64::from_le_bytes(bytes[i..i + 8].try_into().expect("eight bytes"));
        if needs_escape(word) {
            break;
        }
        i += 8;
    }
    while i < bytes.len() && !must_escape(bytes[i]) {
        i += 1;
    }
    i
}

fn must_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

fn escape_from(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut run = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        if !must_escape(byte) {
            continue;
        }
        out.extend_from_slice(&bytes[run..i]);
        run = i + 1;
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]),
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

#[cfg(test)]
mod tests;
