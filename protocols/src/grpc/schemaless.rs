//! Decoding a protobuf message without its schema, so that a user always
//! sees something of a call nobody described.
//!
//! The wire format says only a field's number and its wire type, so the
//! output is a guess, in this exact shape:
//!
//! - a message is a JSON object keyed by field number as a string
//!   (`{"1": …, "2": …}`; `serde_json` keeps keys sorted as strings, so
//!   `"10"` comes before `"2"`);
//! - a field that occurs more than once (a repeated field) is an array of
//!   its values in wire order; a field that occurs once is its value alone;
//! - varint: a number. A value with its top bit set is shown as the negative
//!   `int64` it almost always is (`-1`, not `18446744073709551615`); a value
//!   beyond ±2^53 (where JSON numbers lose precision) is a decimal string;
//! - fixed32: `{"fixed32": <u32>, "float": <f32>}`; fixed64:
//!   `{"fixed64": <u64>, "double": <f64>}` (the float is left out when not
//!   finite; a u64 beyond 2^53 is a string) — the wire cannot say which;
//! - length-delimited, in this order of preference: a string, if it is UTF-8
//!   text without control characters (tab, CR and LF allowed); a nested
//!   message, if it parses completely as one (every tag valid, no groups,
//!   lengths in bounds, at least one field) and the depth limit allows;
//!   else `{"bytes": "<base64>"}`. Empty is `""`.
//!   Packed repeated numbers are indistinguishable from bytes and show as
//!   such, or as a message when they happen to parse as one;
//! - the top-level payload prefers being a message over being text; one that
//!   is not a message at all comes out as text (any UTF-8, control
//!   characters and all, since something was sent) or `{"bytes": …}` (an
//!   empty payload is `{}`).
//!
//! Work and output are linear in the input per level of nesting, and the
//! nesting followed is bounded by the caller's depth limit.

use base64::Engine;
use serde_json::{Map, Value};

/// The nesting followed by default before length-delimited fields are shown
/// as strings or bytes.
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// The largest field number protobuf allows (2^29 - 1).
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// Integers JSON carries exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Decodes `payload` as a message without a schema, following nested
/// messages at most `max_depth` levels deep (see the module docs for the
/// shape).
pub fn decode_schemaless(payload: &[u8], max_depth: usize) -> Value {
    if payload.is_empty() {
        return Value::Object(Map::new());
    }
    match parse_message(payload) {
        Some(fields) => message_value(&fields, max_depth),
        None => text_or_bytes(payload),
    }
}

/// A field's value as the wire gives it.
#[derive(Debug, Clone, Copy)]
enum Raw<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Delimited(&'a [u8]),
}

/// Every field of `bytes`, if they parse completely as a message with at
/// least one field; `None` at the first thing a message cannot contain.
fn parse_message(bytes: &[u8]) -> Option<Vec<(u32, Raw<'_>)>> {
    let mut fields = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let key = read_varint(&mut rest)?;
        let number = key >> 3;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return None;
        }
        let value = match key & 7 {
            0 => Raw::Varint(read_varint(&mut rest)?),
            1 => Raw::Fixed64(u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?)),
            2 => {
                let length = usize::try_from(read_varint(&mut rest)?).ok()?;
                Raw::Delimited(take(&mut rest, length)?)
            }
            5 => Raw::Fixed32(u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?)),
            // 3 and 4 are the deprecated groups; 6 and 7 do not exist.
            _ => return None,
        };
        fields.push((number as u32, value));
    }
    (!fields.is_empty()).then_some(fields)
}

fn read_varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in rest.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if i == 9 && bits > 1 {
            return None; // overflows 64 bits
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            *rest = &rest[i + 1..];
            return Some(value);
        }
    }
    None
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

fn message_value(fields: &[(u32, Raw<'_>)], depth_left: usize) -> Value {
    let mut map = Map::new();
    for &(number, raw) in fields {
        let value = raw_value(raw, depth_left);
        match map.entry(number.to_string()) {
            serde_json::map::Entry::Vacant(slot) => {
                slot.insert(value);
            }
            // A single value is never an array, so an array here means the
            // field has already repeated.
            serde_json::map::Entry::Occupied(mut slot) => match slot.get_mut() {
                Value::Array(values) => values.push(value),
                single => {
                    let first = single.take();
                    *single = Value::Array(vec![first, value]);
                }
            },
        }
    }
    Value::Object(map)
}

fn raw_value(raw: Raw<'_>, depth_left: usize) -> Value {
    match raw {
        Raw::Varint(v) => varint_value(v),
        Raw::Fixed32(v) => {
            let mut map = Map::new();
            map.insert("fixed32".into(), v.into());
            let float = f32::from_bits(v);
            if float.is_finite() {
                map.insert("float".into(), f64::from(float).into());
            }
            Value::Object(map)
        }
        Raw::Fixed64(v) => {
            let mut map = Map::new();
            map.insert("fixed64".into(), unsigned_value(v));
            let double = f64::from_bits(v);
            if double.is_finite() {
                map.insert("double".into(), double.into());
            }
            Value::Object(map)
        }
        Raw::Delimited(bytes) => delimited_value(bytes, depth_left),
    }
}

fn varint_value(v: u64) -> Value {
    let signed = v as i64;
    if signed < 0 {
        if signed.unsigned_abs() <= MAX_SAFE_INTEGER {
            signed.into()
        } else {
            signed.to_string().into()
        }
    } else {
        unsigned_value(v)
    }
}

fn unsigned_value(v: u64) -> Value {
    if v <= MAX_SAFE_INTEGER {
        v.into()
    } else {
        v.to_string().into()
    }
}

fn delimited_value(bytes: &[u8], depth_left: usize) -> Value {
    if let Ok(text) = std::str::from_utf8(bytes) {
        if text
            .chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        {
            return text.into();
        }
    }
    if depth_left > 0 {
        if let Some(fields) = parse_message(bytes) {
            return message_value(&fields, depth_left - 1);
        }
    }
    bytes_value(bytes)
}

fn text_or_bytes(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.into(),
        Err(_) => bytes_value(bytes),
    }
}

fn bytes_value(bytes: &[u8]) -> Value {
    let mut map = Map::new();
    map.insert(
        "bytes".into(),
        base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into(),
    );
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    fn tag(field: u64, wire: u64, out: &mut Vec<u8>) {
        varint(field << 3 | wire, out);
    }

    fn delimited(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        tag(field, 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    #[test]
    fn every_wire_type_has_its_shape() {
        let mut inner = Vec::new();
        tag(1, 0, &mut inner);
        varint(1, &mut inner);
        delimited(2, b"nested", &mut inner);

        let mut m = Vec::new();
        delimited(1, b"abc", &mut m);
        tag(2, 0, &mut m);
        varint(42, &mut m);
        delimited(3, &inner, &mut m);
        tag(4, 5, &mut m);
        m.extend_from_slice(&1.5f32.to_bits().to_le_bytes());
        tag(5, 1, &mut m);
        m.extend_from_slice(&(-2.25f64).to_bits().to_le_bytes());
        delimited(6, &[0xff, 0x00, 0xfe], &mut m);
        tag(7, 0, &mut m);
        varint(u64::MAX, &mut m); // int64 -1
        tag(8, 0, &mut m);
        varint(1 << 60, &mut m);
        delimited(9, b"", &mut m);

        assert_eq!(
            decode_schemaless(&m, DEFAULT_MAX_DEPTH),
            json!({
                "1": "abc",
                "2": 42,
                "3": {"1": 1, "2": "nested"},
                "4": {"fixed32": 1.5f32.to_bits(), "float": 1.5},
                "5": {"fixed64": (-2.25f64).to_bits().to_string(), "double": -2.25},
                "6": {"bytes": "/wD+"},
                "7": -1,
                "8": (1u64 << 60).to_string(),
                "9": "",
            })
        );
    }

    #[test]
    fn repeated_fields_become_arrays_in_wire_order() {
        let mut m = Vec::new();
        delimited(1, b"a", &mut m);
        tag(2, 0, &mut m);
        varint(7, &mut m);
        delimited(1, b"b", &mut m);
        delimited(1, b"c", &mut m);
        assert_eq!(
            decode_schemaless(&m, DEFAULT_MAX_DEPTH),
            json!({"1": ["a", "b", "c"], "2": 7})
        );
    }

    #[test]
    fn text_is_preferred_over_an_accidental_message() {
        // "hi" also parses as field 13 = varint 105.
        let mut m = Vec::new();
        delimited(1, b"hi", &mut m);
        assert_eq!(decode_schemaless(&m, DEFAULT_MAX_DEPTH), json!({"1": "hi"}));
    }

    #[test]
    fn depth_is_bounded() {
        // 1000 levels of {1: {1: {1: …}}}, innermost a varint.
        let mut m = Vec::new();
        tag(1, 0, &mut m);
        varint(5, &mut m);
        for _ in 0..1000 {
            let mut outer = Vec::new();
            delimited(1, &m, &mut outer);
            m = outer;
        }
        let value = decode_schemaless(&m, 3);
        let mut depth = 0;
        let mut at = &value;
        while let Some(inner) = at.get("1") {
            depth += 1;
            at = inner;
        }
        // The top level plus 3 nested messages, then the rest as bytes.
        assert_eq!(depth, 4);
        assert!(at.get("bytes").is_some(), "{at}");
    }

    #[test]
    fn non_messages_are_shown_as_text_or_bytes() {
        assert_eq!(decode_schemaless(b"", 8), json!({}));
        // Field number 0 is invalid, so this is not a message.
        assert_eq!(decode_schemaless(&[0x00, 0x01], 8), json!("\u{0}\u{1}"));
        assert_eq!(
            decode_schemaless(&[0x07, 0xff], 8),
            json!({"bytes": "B/8="})
        );
        // Nested, control characters make bytes, not text.
        assert_eq!(
            decode_schemaless(&[0x0a, 0x02, 0x00, 0x1b], 8),
            json!({"1": {"bytes": "ABs="}})
        );
        // A truncated length-delimited field.
        assert_eq!(decode_schemaless(&[0x0a, 0x05, b'a'], 8), json!("\n\u{5}a"));
    }

    #[test]
    fn varints_longer_than_64_bits_are_rejected() {
        let mut rest: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(read_varint(&mut rest), None);
        let mut rest: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&mut rest), Some(u64::MAX));
    }
}
