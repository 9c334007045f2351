//! Assertions over an environment's events that explain themselves: a test
//! that fails says what the system did (see `crate::inspect::explain`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{Environment, Error};
use crate::events::{Event, EventDraft, EventKind, NoteInfo, Payload, Query, WaitError};
use crate::inspect::{explain, Explanation};

impl Environment {
    /// The first event, already logged or yet to come, that `query`
    /// (the query language, as in `tapmesh events -q`) holds for; an
    /// [`Error::Expectation`] with the explanation if none does within
    /// `timeout`.
    pub async fn wait_for_q(&self, query: &str, timeout: Duration) -> Result<Arc<Event>, Error> {
        let query = Query::parse(query)?;
        match self.log.wait_for(|e| query.matches(e), timeout).await {
            Ok(event) => Ok(event),
            Err(WaitError::Timeout(waited)) => Err(self.failed_expectation(
                format!("no event matched `{}` within {waited:?}", query.text()),
                &query,
            )),
            Err(WaitError::Closed) => Err(Error::Closed(self.name.clone())),
        }
    }

    /// The events so far that `query` holds for, in seq order.
    pub fn events_matching(&self, query: &str) -> Result<Vec<Arc<Event>>, Error> {
        let query = Query::parse(query)?;
        Ok(self
            .events()
            .into_iter()
            .filter(|e| query.matches(e))
            .collect())
    }

    /// An expectation over the events so far: `env.expect("…").count(1)`.
    pub fn expect(&self, query: &str) -> Expectation<'_> {
        Expectation {
            env: self,
            query: Query::parse(query),
        }
    }

    /// Adds a `test.note` event, so that the timeline shows the test's own
    /// steps (`env.note("placing an order")`); returns its seq.
    pub fn note(&self, text: &str) -> u64 {
        let payload = Payload::Note(NoteInfo {
            text: text.to_string(),
        });
        self.log
            .append(EventDraft::now(EventKind::TestNote, payload))
    }

    /// The explanation of the events so far against `query` (or, without
    /// one, of what went wrong), as failed expectations print it.
    pub fn explain(&self, query: Option<&Query>) -> Explanation {
        explain(&self.events(), query, &self.dir.join("events.jsonl"))
    }

    fn failed_expectation(&self, what: String, query: &Query) -> Error {
        self.explained.store(true, Ordering::Relaxed);
        let explanation = self.explain(Some(query));
        Error::Expectation(format!("{what} in {}\n{}", self.name, explanation.text))
    }

    /// Dropped during a panic: prints what went wrong, once (not when a
    /// failed expectation already said it).
    pub(super) fn explain_panic(&self) {
        if std::thread::panicking() && !self.explained.swap(true, Ordering::Relaxed) {
            let explanation = self.explain(None);
            eprintln!(
                "tapmesh: the test panicked with environment {} up ({}):\n{}",
                self.name,
                self.dir.display(),
                explanation.text
            );
        }
    }
}

/// How many events a query may match: from [`Environment::expect`].
pub struct Expectation<'a> {
    env: &'a Environment,
    query: Result<Query, crate::events::QueryError>,
}

impl Expectation<'_> {
    /// Exactly `n` events so far match; returns them.
    pub fn count(self, n: usize) -> Result<Vec<Arc<Event>>, Error> {
        self.check(|found| found == n, &format!("exactly {n}"))
    }

    /// No event so far matches.
    pub fn none(self) -> Result<(), Error> {
        self.check(|found| found == 0, "no").map(|_| ())
    }

    /// At least `n` events so far match; returns them.
    pub fn at_least(self, n: usize) -> Result<Vec<Arc<Event>>, Error> {
        self.check(|found| found >= n, &format!("at least {n}"))
    }

    fn check(self, holds: impl Fn(usize) -> bool, wanted: &str) -> Result<Vec<Arc<Event>>, Error> {
        let query = self.query?;
        let matching: Vec<Arc<Event>> = self
            .env
            .events()
            .into_iter()
            .filter(|e| query.matches(e))
            .collect();
        if holds(matching.len()) {
            return Ok(matching);
        }
        let s = if wanted == "exactly 1" { "" } else { "s" };
        let what = format!(
            "expected {wanted} event{s} matching `{}`, found {}",
            query.text(),
            matching.len()
        );
        Err(self.env.failed_expectation(what, &query))
    }
}
