//! `Bind` parameters as values: text format as strings, binary format
//! decoded by the type OIDs the statement's `Parse` declared, for the
//! types clients commonly send binary (psycopg, tokio-postgres, sqlx and
//! JDBC all do for numbers, uuids, bytea and timestamps). Anything else is
//! shown as hex, so nothing is lost, only left undecoded.

use super::messages::{prefix_text, RawParam};
use super::types::{PgParam, PgValue};

pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

/// One parameter as a value; `oid` is its declared type (0 or absent:
/// unknown), `limit` caps the bytes shown.
pub fn decode(raw: &RawParam<'_>, oid: Option<u32>, limit: usize) -> PgParam {
    let Some(bytes) = raw.value else {
        return PgParam {
            value: PgValue::Null,
            truncated: false,
        };
    };
    let whole = bytes.len() == raw.len;
    let shown = &bytes[..bytes.len().min(limit)];
    let truncated = shown.len() < raw.len;
    let text = || PgValue::Text(prefix_text(shown, truncated));
    if !raw.binary {
        return PgParam {
            value: text(),
            truncated,
        };
    }
    let fixed = if whole {
        binary_fixed(bytes, oid)
    } else {
        None
    };
    let value = match (fixed, oid) {
        (Some(v), _) => v,
        (None, Some(oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::JSON)) => text(),
        (None, Some(oid::UNKNOWN | oid::CHAR)) => text(),
        // jsonb's binary form is a version byte (1) and the text.
        (None, Some(oid::JSONB)) if shown.first() == Some(&1) => {
            PgValue::Text(prefix_text(&shown[1..], truncated))
        }
        (None, Some(oid::BYTEA)) => PgValue::Bytea(format!("\\x{}", hex(shown))),
        (None, oid) => PgValue::Binary {
            oid: oid.filter(|&o| o != 0),
            hex: hex(shown),
        },
    };
    PgParam { value, truncated }
}

/// The fixed-size binary types, when the value has their size.
fn binary_fixed(b: &[u8], oid: Option<u32>) -> Option<PgValue> {
    let v = match (oid?, b.len()) {
        (oid::BOOL, 1) => PgValue::Bool(b[0] != 0),
        (oid::INT2, 2) => PgValue::Int(i16::from_be_bytes(b.try_into().ok()?).into()),
        (oid::INT4, 4) => PgValue::Int(i32::from_be_bytes(b.try_into().ok()?).into()),
        (oid::OID, 4) => PgValue::Int(u32::from_be_bytes(b.try_into().ok()?).into()),
        (oid::INT8, 8) => PgValue::Int(i64::from_be_bytes(b.try_into().ok()?)),
        (oid::FLOAT4, 4) => PgValue::Float(f32::from_be_bytes(b.try_into().ok()?).into()),
        (oid::FLOAT8, 8) => PgValue::Float(f64::from_be_bytes(b.try_into().ok()?)),
        (oid::UUID, 16) => PgValue::Uuid(uuid(b)),
        (oid::TIMESTAMP, 8) => timestamp(i64::from_be_bytes(b.try_into().ok()?), ""),
        (oid::TIMESTAMPTZ, 8) => timestamp(i64::from_be_bytes(b.try_into().ok()?), "Z"),
        (oid::DATE, 4) => date(i32::from_be_bytes(b.try_into().ok()?)),
        _ => return None,
    };
    Some(v)
}

pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    s
}

fn uuid(b: &[u8]) -> String {
    let h = hex(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Microseconds since 2000-01-01 as RFC 3339; `zone` is `Z` for
/// timestamptz (sent in UTC) and empty for timestamp (no zone).
fn timestamp(micros: i64, zone: &str) -> PgValue {
    match micros {
        i64::MAX => return PgValue::Timestamp("infinity".into()),
        i64::MIN => return PgValue::Timestamp("-infinity".into()),
        _ => {}
    }
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400) + PG_EPOCH_DAYS;
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (sod / 3600, sod / 60 % 60, sod % 60);
    let mut s = format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}");
    if frac != 0 {
        s.push_str(&format!(".{frac:06}"));
    }
    s.push_str(zone);
    PgValue::Timestamp(s)
}

fn date(days: i32) -> PgValue {
    match days {
        i32::MAX => return PgValue::Timestamp("infinity".into()),
        i32::MIN => return PgValue::Timestamp("-infinity".into()),
        _ => {}
    }
    let (y, m, d) = civil_from_days(i64::from(days) + PG_EPOCH_DAYS);
    PgValue::Timestamp(format!("{y:04}-{m:02}-{d:02}"))
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(oid: u32, b: &[u8]) -> PgValue {
        let raw = RawParam {
            value: Some(b),
            len: b.len(),
            binary: true,
        };
        decode(&raw, Some(oid), 64).value
    }

    #[test]
    fn binary_types_decode() {
        assert_eq!(bin(oid::INT4, &(-42i32).to_be_bytes()), PgValue::Int(-42));
        assert_eq!(bin(oid::BOOL, &[1]), PgValue::Bool(true));
        assert_eq!(bin(oid::FLOAT8, &2.5f64.to_be_bytes()), PgValue::Float(2.5));
        assert_eq!(
            bin(oid::TIMESTAMPTZ, &0i64.to_be_bytes()),
            PgValue::Timestamp("2000-01-01T00:00:00Z".into())
        );
        assert_eq!(
            bin(oid::TIMESTAMP, &(-1i64).to_be_bytes()),
            PgValue::Timestamp("1999-12-31T23:59:59.999999".into())
        );
        assert_eq!(
            bin(oid::DATE, &60i32.to_be_bytes()),
            PgValue::Timestamp("2000-03-01".into())
        );
        assert_eq!(
            bin(oid::BYTEA, &[0, 0xff]),
            PgValue::Bytea("\\x00ff".into())
        );
        assert_eq!(
            bin(1700, &[1, 2]),
            PgValue::Binary {
                oid: Some(1700),
                hex: "0102".into()
            }
        );
        // A size that does not fit the type is shown, not guessed.
        assert_eq!(
            bin(oid::INT4, &[1, 2]),
            PgValue::Binary {
                oid: Some(23),
                hex: "0102".into()
            }
        );
    }

    #[test]
    fn values_are_capped() {
        let long = vec![b'a'; 100];
        let raw = RawParam {
            value: Some(&long),
            len: 100,
            binary: false,
        };
        let p = decode(&raw, None, 10);
        assert_eq!(p.value, PgValue::Text("a".repeat(10)));
        assert!(p.truncated);
    }
}
