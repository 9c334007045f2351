//! Reading events back: one line per event for people, per-edge
//! summaries, and HAR export. Selecting them is [`crate::events::EventFilter`].
//!
//! Everything here works on typed [`Event`]s. Files written by a newer
//! tapmesh still read: an event type or payload this version does not
//! know is kept as [`crate::events::Payload::Unknown`], passes through
//! filters that do not exclude it and prints with a generic line.

mod explain;
mod har;
pub mod line;
mod summary;

pub use explain::{explain, Explanation};
pub use har::to_har;
pub use line::one_line;
pub(crate) use summary::call_failed;
pub use summary::{summarize, EdgeStats, EdgeSummary};

use crate::events::Event;

/// Parses JSON Lines text into events, skipping an incomplete last line
/// (a writer may be midway through it). A malformed complete line is an
/// error naming its line number.
pub fn parse_jsonl(text: &str) -> Result<Vec<Event>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_skips_a_partial_last_line_and_names_a_bad_one() {
        let good =
            r#"{"seq":1,"type":"x.y","timestamp":"2026-11-23T10:00:02Z","environment":"e","x":{}}"#;
        let events = parse_jsonl(&format!("{good}\n\n{good}\n{{\"seq\":")).unwrap();
        assert_eq!(events.len(), 2);
        let bad = r#"{"seq":2,"type":"request.completed","timestamp":"2026-11-23T10:00:02Z","environment":"e","request":{}}"#;
        let error = parse_jsonl(&format!("{good}\n{bad}\n")).unwrap_err();
        assert!(error.starts_with("line 2: not an event: "), "{error}");
    }
}
