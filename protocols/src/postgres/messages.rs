//! Message bodies, read from the prefix the framing kept.
//!
//! Every reader is total: a body cut at the capture limit yields what it
//! holds (with a `truncated` flag where that matters), and a malformed one
//! yields `None` or empty fields rather than a failure, since the framing
//! already proved the stream is in step.

use super::types::{PgError, TransactionStatus};

/// Startup packet codes (the 4 bytes after the length). Version 3.0 is
/// recognised by its major number alone, so only tests spell it out.
#[cfg(test)]
pub const PROTOCOL_3: u32 = 3 << 16;
pub const CANCEL_REQUEST: u32 = 80_877_102;
pub const SSL_REQUEST: u32 = 80_877_103;
pub const GSSENC_REQUEST: u32 = 80_877_104;

/// Strings a message carries that are not statement text (names, error
/// fields, parameters) are cut here.
pub const MAX_FIELD: usize = 4096;

pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub fn i16(&mut self) -> Option<i16> {
        let b = self.bytes(2)?;
        Some(i16::from_be_bytes([b[0], b[1]]))
    }

    pub fn i32(&mut self) -> Option<i32> {
        let b = self.bytes(4)?;
        Some(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let b = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(b)
    }

    /// A NUL-terminated string, without its NUL.
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest();
        let nul = rest.iter().position(|&b| b == 0)?;
        self.pos += nul + 1;
        Some(&rest[..nul])
    }

    /// A NUL-terminated string, or all that is left when the body was cut
    /// before its NUL (`true`: cut).
    pub fn cstr_or_rest(&mut self) -> (&'a [u8], bool) {
        match self.cstr() {
            Some(s) => (s, false),
            None => {
                let rest = self.rest();
                self.pos = self.buf.len();
                (rest, true)
            }
        }
    }
}

/// Lossy UTF-8, cut at `max` bytes (`true`: cut).
pub fn text(bytes: &[u8], max: usize) -> (String, bool) {
    let cut = bytes.len() > max;
    (prefix_text(&bytes[..bytes.len().min(max)], cut), cut)
}

/// Lossy UTF-8 of `bytes`; when they are a cut prefix, a character split by
/// the cut is dropped rather than shown as U+FFFD.
pub fn prefix_text(bytes: &[u8], cut: bool) -> String {
    let mut b = bytes;
    if cut {
        if let Err(e) = std::str::from_utf8(b) {
            if e.error_len().is_none() {
                b = &b[..e.valid_up_to()];
            }
        }
    }
    String::from_utf8_lossy(b).into_owned()
}

pub fn field(bytes: &[u8]) -> String {
    text(bytes, MAX_FIELD).0
}

/// A startup packet: its code and, for a `StartupMessage`, its parameters.
pub struct Startup {
    pub code: u32,
    pub params: Vec<(String, String)>,
    /// `CancelRequest`: the process id (the key after it is a secret).
    pub cancel_pid: Option<i32>,
}

/// Startup parameters kept at most.
const MAX_STARTUP_PARAMS: usize = 32;

pub fn startup(body: &[u8]) -> Option<Startup> {
    let mut c = Cursor::new(body);
    let code = c.i32()? as u32;
    let mut out = Startup {
        code,
        params: Vec::new(),
        cancel_pid: None,
    };
    if code == CANCEL_REQUEST {
        out.cancel_pid = c.i32();
    } else if code >> 16 == 3 {
        while let Some(name) = c.cstr() {
            if name.is_empty() || out.params.len() >= MAX_STARTUP_PARAMS {
                break;
            }
            let value = c.cstr().unwrap_or_default();
            out.params.push((field(name), field(value)));
        }
    }
    Some(out)
}

/// `Parse`: statement name, text, declared parameter type OIDs.
pub struct ParseMsg<'a> {
    pub name: &'a [u8],
    pub sql: &'a [u8],
    pub sql_cut: bool,
    pub param_types: Vec<u32>,
}

pub fn parse(body: &[u8]) -> ParseMsg<'_> {
    let mut c = Cursor::new(body);
    let name = c.cstr().unwrap_or_default();
    let (sql, sql_cut) = c.cstr_or_rest();
    let mut param_types = Vec::new();
    if let Some(n) = c.i16() {
        for _ in 0..n.max(0) {
            match c.i32() {
                Some(oid) => param_types.push(oid as u32),
                None => break,
            }
        }
    }
    ParseMsg {
        name,
        sql,
        sql_cut,
        param_types,
    }
}

/// A `ParameterDescription`'s type OIDs, as many as the kept body holds.
pub fn parameter_types(body: &[u8]) -> Vec<u32> {
    let mut c = Cursor::new(body);
    // The count is an Int16 on the wire but up to 65535 parameters exist.
    let n = c.i16().map_or(0, |n| n as u16);
    (0..n)
        .map_while(|_| c.i32().map(|oid| oid as u32))
        .collect()
}

/// One parameter of a `Bind`, as it was on the wire.
pub struct RawParam<'a> {
    /// `None` for SQL NULL.
    pub value: Option<&'a [u8]>,
    /// Its full length, of which `value` may hold only a prefix.
    pub len: usize,
    pub binary: bool,
}

/// `Bind`: portal, statement, parameters.
pub struct BindMsg<'a> {
    pub portal: &'a [u8],
    pub statement: &'a [u8],
    pub params: Vec<RawParam<'a>>,
    /// The body was cut before the last parameter's end.
    pub cut: bool,
}

pub fn bind(body: &[u8]) -> BindMsg<'_> {
    let mut c = Cursor::new(body);
    let mut m = BindMsg {
        portal: c.cstr().unwrap_or_default(),
        statement: c.cstr().unwrap_or_default(),
        params: Vec::new(),
        cut: false,
    };
    let mut formats = Vec::new();
    for _ in 0..c.i16().unwrap_or(0).max(0) {
        formats.push(c.i16().unwrap_or(0) == 1);
    }
    let Some(count) = c.i16() else {
        m.cut = true;
        return m;
    };
    for i in 0..count.max(0) as usize {
        // One format code applies to all; none means all text.
        let binary = match formats.len() {
            0 => false,
            1 => formats[0],
            _ => formats.get(i).copied().unwrap_or(false),
        };
        let Some(len) = c.i32() else {
            m.cut = true;
            break;
        };
        if len < 0 {
            m.params.push(RawParam {
                value: None,
                len: 0,
                binary,
            });
            continue;
        }
        let len = len as usize;
        let rest = c.rest();
        let value = c.bytes(len).unwrap_or(rest);
        if value.len() < len {
            c.bytes(value.len());
            m.cut = true;
        }
        m.params.push(RawParam {
            value: Some(value),
            len,
            binary,
        });
        if m.cut {
            break;
        }
    }
    m
}

/// `Describe`/`Close`: `S`tatement or `P`ortal, and its name.
pub fn target(body: &[u8]) -> (u8, &[u8]) {
    let mut c = Cursor::new(body);
    let kind = c.u8().unwrap_or(0);
    (kind, c.cstr().unwrap_or_default())
}

/// `Execute`: the portal's name.
pub fn execute(body: &[u8]) -> &[u8] {
    Cursor::new(body).cstr().unwrap_or_default()
}

/// `ErrorResponse`/`NoticeResponse` fields.
pub fn error(body: &[u8]) -> PgError {
    let mut c = Cursor::new(body);
    let mut e = PgError::default();
    let mut localized = None;
    while let Some(code) = c.u8() {
        if code == 0 {
            break;
        }
        let (value, _) = c.cstr_or_rest();
        let value = field(value);
        match code {
            // V is the non-localised severity (9.6+); S may be translated.
            b'V' => e.severity = value,
            b'S' => localized = Some(value),
            b'C' => e.code = value,
            b'M' => e.message = value,
            b'D' => e.detail = Some(value),
            b'H' => e.hint = Some(value),
            _ => {}
        }
    }
    if e.severity.is_empty() {
        e.severity = localized.unwrap_or_default();
    }
    e
}

/// A `CommandComplete` tag: the tag, its command (the words before any
/// counts) and its row count where the command has one.
pub fn command_tag(body: &[u8]) -> (String, String, Option<u64>) {
    let tag = field(Cursor::new(body).cstr_or_rest().0);
    let words: Vec<&str> = tag.split(' ').collect();
    let counted = words.iter().rposition(|w| w.parse::<u64>().is_err());
    let command = match counted {
        Some(i) => words[..=i].join(" "),
        None => String::new(),
    };
    let rows = match command.as_str() {
        // INSERT oid rows; the rest: COMMAND rows.
        "INSERT" | "SELECT" | "UPDATE" | "DELETE" | "MERGE" | "FETCH" | "MOVE" | "COPY" => {
            words.last().and_then(|w| w.parse().ok())
        }
        _ => None,
    };
    (tag, command, rows)
}

pub fn ready_status(body: &[u8]) -> Option<TransactionStatus> {
    body.first().copied().and_then(TransactionStatus::from_byte)
}

/// `NotificationResponse`: pid, channel, payload (cut at `max`).
pub fn notification(body: &[u8], max: usize) -> (i32, String, String, bool) {
    let mut c = Cursor::new(body);
    let pid = c.i32().unwrap_or(0);
    let channel = field(c.cstr_or_rest().0);
    let (payload, cut) = c.cstr_or_rest();
    let (payload, longer) = text(payload, max);
    (pid, channel, payload, cut || longer)
}

/// `ParameterStatus`: name and value.
pub fn parameter(body: &[u8]) -> (String, String) {
    let mut c = Cursor::new(body);
    let name = field(c.cstr_or_rest().0);
    let value = field(c.cstr_or_rest().0);
    (name, value)
}

/// `AuthenticationSASL`: the mechanisms offered (never any later SASL data).
pub fn sasl_mechanisms(body: &[u8]) -> Vec<String> {
    let mut c = Cursor::new(body.get(4..).unwrap_or_default());
    let mut out = Vec::new();
    while let Some(m) = c.cstr() {
        if m.is_empty() || out.len() >= 8 {
            break;
        }
        out.push(field(m));
    }
    out
}
