//! Why an expectation about the events did not hold, for a person reading a
//! failed test: the events that matched, the nearest ones that did not (and
//! what they had instead), everything that went wrong in the environment,
//! and the commands that show more. The Rust API, the daemon's `/explain`
//! and so the Python package all print this one text.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

use crate::events::{Event, Payload, Query};

/// At most this many events in each part of the text.
const SHOWN: usize = 5;

/// An explanation: how many events matched, and the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub matching: usize,
    pub text: String,
}

/// Explains `events` against `query` (or, without one, just what went
/// wrong); `events_file` names the file the commands read.
pub fn explain(events: &[Arc<Event>], query: Option<&Query>, events_file: &Path) -> Explanation {
    let mut text = String::new();
    let file = shell_word(&events_file.display().to_string());
    let mut matching = 0;
    let mut nearest_seq = None;
    if let Some(query) = query {
        let matched: Vec<&Arc<Event>> = events.iter().filter(|e| query.matches(e)).collect();
        matching = matched.len();
        let _ = writeln!(
            text,
            "{} of {} events match `{}`",
            matched.len(),
            events.len(),
            query.text()
        );
        for e in tail(&matched) {
            let _ = writeln!(text, "  {}", super::one_line(e));
        }
        nearest_seq = nearest(events, query, &mut text);
    } else {
        latest(events, &mut text);
    }
    let errors = problems(events, &mut text);
    let _ = writeln!(text, "to see more:");
    if let Some(query) = query {
        let q = shell_word(query.text());
        let _ = writeln!(text, "  tapmesh events {file} -q {q}");
    }
    let detail = nearest_seq.or(errors);
    if let Some(seq) = detail {
        let _ = writeln!(text, "  tapmesh traffic {file} --detail {seq}");
    }
    let _ = writeln!(text, "  tapmesh traffic {file}");
    Explanation { matching, text }
}

fn tail<'a>(events: &[&'a Arc<Event>]) -> Vec<&'a Arc<Event>> {
    events[events.len().saturating_sub(SHOWN)..].to_vec()
}

/// The events that met the most of the query's conditions without meeting
/// all: on the same edge where the query names one (conditions on
/// `edge`, `source`, `target` must hold), with the conditions they missed
/// and the values they had. Returns the nearest one's seq.
fn nearest(events: &[Arc<Event>], query: &Query, text: &mut String) -> Option<u64> {
    let clauses = query.clauses();
    let edge_clauses: Vec<&Query> = clauses
        .iter()
        .filter(|c| {
            c.fields()
                .iter()
                .any(|f| matches!(f.as_str(), "edge" | "source" | "target"))
        })
        .collect();
    let candidates: Vec<&Arc<Event>> = events
        .iter()
        .filter(|e| e.source().is_some() && !query.matches(e))
        .filter(|e| edge_clauses.iter().all(|c| c.matches(e)))
        .collect();
    // A condition few events meet says more about which call was meant
    // (`path == "/orders"` more than `status == 200`): each held one
    // counts for the inverse of how many candidates hold it.
    let held_by: Vec<Vec<bool>> = candidates
        .iter()
        .map(|e| clauses.iter().map(|c| c.matches(e)).collect())
        .collect();
    let holders: Vec<usize> = (0..clauses.len())
        .map(|i| held_by.iter().filter(|h| h[i]).count())
        .collect();
    let mut scored: Vec<(usize, f64, &Arc<Event>)> = candidates
        .iter()
        .zip(&held_by)
        .map(|(e, held)| {
            let rarity = (0..clauses.len())
                .filter(|&i| held[i])
                .map(|i| 1.0 / holders[i] as f64)
                .sum();
            (held.iter().filter(|h| **h).count(), rarity, *e)
        })
        .filter(|(held, _, _)| *held > 0 || clauses.len() == 1)
        .collect();
    // Most conditions held first, then the rarest, then the newest.
    scored.sort_by(|a, b| {
        (b.0.cmp(&a.0))
            .then(b.1.total_cmp(&a.1))
            .then(b.2.seq.cmp(&a.2.seq))
    });
    scored.truncate(SHOWN);
    if scored.is_empty() {
        let _ = writeln!(text, "no other event came close");
        return None;
    }
    let where_ = if edge_clauses.is_empty() {
        ""
    } else {
        " on that edge"
    };
    let _ = writeln!(text, "nearest events that do not match{where_}:");
    for (held, _, e) in &scored {
        let _ = writeln!(text, "  {}", super::one_line(e));
        let _ = writeln!(
            text,
            "      {held} of {} conditions held; missed:",
            clauses.len()
        );
        for clause in clauses.iter().filter(|c| !c.matches(e)) {
            let had: Vec<String> = clause
                .fields()
                .iter()
                .map(|f| match Query::show_field(f, e) {
                    Some(v) => format!("{f} = {v}"),
                    None => format!("no {f}"),
                })
                .collect();
            let _ = writeln!(text, "        {}   ({})", clause.text(), had.join(", "));
        }
    }
    scored.first().map(|(_, _, e)| e.seq)
}

/// The newest traffic and notes, for an explanation without a query: what
/// the system was doing when the test gave up.
fn latest(events: &[Arc<Event>], text: &mut String) {
    let recent: Vec<&Arc<Event>> = events
        .iter()
        .filter(|e| e.source().is_some() || matches!(e.payload, Payload::Note(_)))
        .filter(|e| !matches!(e.payload, Payload::Connection(_)))
        .collect();
    let _ = writeln!(text, "the latest calls ({} in all):", recent.len());
    for e in tail(&recent) {
        let _ = writeln!(text, "  {}", super::one_line(e));
    }
}

/// Everything that went wrong: HTTP 5xx and exchanges without a response,
/// gRPC calls not OK, Kafka error codes, SQL and Redis errors, decode
/// errors, failed services with their log tails. Returns the newest one's
/// seq.
fn problems(events: &[Arc<Event>], text: &mut String) -> Option<u64> {
    let wrong: Vec<&Arc<Event>> = events.iter().filter(|e| went_wrong(e)).collect();
    if wrong.is_empty() {
        let _ = writeln!(
            text,
            "nothing went wrong in the environment (no errors in {} events)",
            events.len()
        );
        return None;
    }
    let _ = writeln!(
        text,
        "what went wrong in the environment ({}):",
        wrong.len()
    );
    for e in tail(&wrong) {
        let _ = writeln!(text, "  {}", super::one_line(e));
        if let Payload::Lifecycle(l) = &e.payload {
            for line in &l.log_tail {
                let _ = writeln!(text, "      | {line}");
            }
        }
    }
    wrong.last().map(|e| e.seq)
}

/// A failed call as the summary counts it (but readiness probes' health
/// checks, and with a Kafka partition's error code too), or an event that
/// is itself a failure.
fn went_wrong(event: &Event) -> bool {
    match &event.payload {
        Payload::GrpcCall(g) if g.health_check => false,
        Payload::KafkaRequest(k) => {
            super::summary::call_failed(&event.payload)
                || k.topics
                    .iter()
                    .flatten()
                    .any(|t| t.error_code.is_some_and(|c| c != 0))
        }
        Payload::DecodeError(_) => true,
        Payload::Lifecycle(_) => {
            matches!(event.type_name(), "service.failed" | "health.check_failed")
        }
        payload => super::summary::call_failed(payload),
    }
}

/// `text` quoted for a POSIX shell where it needs to be.
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
