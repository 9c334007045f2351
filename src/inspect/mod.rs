//! Reading events back: selecting them, one line per event for people,
//! per-edge summaries, and HAR export.
//!
//! Everything here works on events as JSON values, the stable wire form, so
//! it reads files written by any version of tapmesh, event types it does not
//! know included (they pass through filters that do not exclude them and
//! print with a generic line).

mod har;
pub mod line;
mod query;
mod summary;

pub use har::to_har;
pub use line::one_line;
pub use query::{Query, StatusClass};
pub use summary::{summarize, Call, EdgeStats, EdgeSummary};

use serde_json::Value;

/// The payload object of an event (the one field beside the envelope).
pub fn payload(event: &Value) -> Option<&Value> {
    const ENVELOPE: [&str; 5] = ["seq", "type", "timestamp", "environment", "service"];
    event
        .as_object()?
        .iter()
        .find(|(k, v)| !ENVELOPE.contains(&k.as_str()) && v.is_object())
        .map(|(_, v)| v)
}

/// `source->target` of a traffic event.
pub fn edge(event: &Value) -> Option<(String, String)> {
    let p = payload(event)?;
    Some((
        p.get("source")?.as_str()?.to_string(),
        p.get("target")?.as_str()?.to_string(),
    ))
}

/// Parses JSON Lines text into events, skipping an incomplete last line
/// (a writer may be midway through it). A malformed complete line is an
/// error naming its line number.
pub fn parse_jsonl(text: &str) -> Result<Vec<Value>, String> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("line {}: not an event: {e}", i + 1))
        })
        .collect()
}
