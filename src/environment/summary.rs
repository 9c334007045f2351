//! What is kept of an environment once it is down: `summary.json` beside
//! its `events.jsonl`, computed from the events alone so it can be written
//! however the environment ended (stopped, failed, expired, dropped).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ServiceStatus;
use crate::events::{Event, EventFilter, EventLog, Payload};
use crate::inspect::{EdgeStats, EdgeSummary};

/// How an environment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Shut down on request (`down()`, DELETE, Ctrl-C).
    Stopped,
    /// A required service failed, while starting or later.
    Failed,
    /// Its time to live ran out (the daemon's `ttl`).
    Expired,
    /// Dropped without `down()`: its processes were killed.
    Dropped,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: String,
    pub environment: String,
    pub dir: PathBuf,
    pub started_at: DateTime<Utc>,
    pub stopped_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub services: BTreeMap<String, ServiceStatus>,
    /// How many events the environment logged.
    pub events: u64,
    pub events_by_type: BTreeMap<String, u64>,
    /// Per-edge calls, errors, latency percentiles and bytes.
    pub edges: Vec<EdgeSummary>,
}

/// Who the summary is about, and how it ended.
pub struct SummaryContext<'a> {
    pub id: &'a str,
    pub dir: &'a Path,
    pub started_at: DateTime<Utc>,
    pub outcome: Outcome,
    pub reason: Option<String>,
}

impl Summary {
    /// Summarises `events` (the whole log, in seq order).
    pub fn from_events(cx: SummaryContext<'_>, environment: &str, events: &[Arc<Event>]) -> Self {
        let mut fold = Fold::default();
        for event in events {
            fold.add(event);
        }
        Self::from_fold(cx, environment, &fold)
    }

    fn from_fold(cx: SummaryContext<'_>, environment: &str, fold: &Fold) -> Self {
        let stopped_at = Utc::now();
        let mut services = fold.services.clone();
        // Kept of an environment that is down: no process of it runs.
        for service in services.values_mut() {
            service.pid = None;
        }
        Self {
            id: cx.id.to_string(),
            environment: environment.to_string(),
            dir: cx.dir.to_path_buf(),
            started_at: cx.started_at,
            stopped_at,
            duration_ms: (stopped_at - cx.started_at)
                .to_std()
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            outcome: cx.outcome,
            reason: cx.reason,
            services,
            events: fold.last_seq,
            events_by_type: fold.events_by_type.clone(),
            edges: fold.edges.summaries(),
        }
    }

    /// Writes it as `summary.json` in its directory.
    pub fn write(&self) -> std::io::Result<PathBuf> {
        let path = self.dir.join("summary.json");
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

/// The summary's figures so far, folded one event at a time.
#[derive(Default)]
struct Fold {
    services: BTreeMap<String, ServiceStatus>,
    events_by_type: BTreeMap<String, u64>,
    edges: EdgeStats,
    /// The newest event folded in.
    last_seq: u64,
}

impl Fold {
    fn add(&mut self, event: &Event) {
        self.last_seq = event.seq;
        let kind = event.type_name();
        match self.events_by_type.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.events_by_type.insert(kind.to_string(), 1);
            }
        }
        if let (Payload::Lifecycle(info), Some(service)) =
            (&event.payload, event.service.as_deref())
        {
            self.services
                .entry(service.to_string())
                .or_default()
                .apply(event.kind, info);
        }
        self.edges.add(event);
    }
}

/// How long the summary's task waits between batches of events.
const FOLD_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// A summary kept up to date as events are appended, by a task that
/// follows the log, so writing it when the environment goes down costs
/// only the few events the task has not reached yet, not the history.
/// Memory is bounded per edge (see [`EdgeStats`]), not per event.
#[derive(Clone)]
pub(crate) struct LiveSummary {
    fold: Arc<Mutex<Fold>>,
}

impl LiveSummary {
    /// Starts following `log` from its first event (on the current tokio
    /// runtime; without one, everything is folded when it is written).
    pub(crate) fn follow(log: &EventLog) -> Self {
        let live = Self {
            fold: Arc::default(),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let mut events = log
                .subscribe(1, EventFilter::all())
                .with_max_lag(u64::MAX)
                .unthrottled();
            let fold = Arc::downgrade(&live.fold);
            runtime.spawn(async move {
                while let Some(first) = events.recv().await {
                    let Some(fold) = fold.upgrade() else { return };
                    {
                        let mut fold = fold.lock().unwrap_or_else(PoisonError::into_inner);
                        let ready = std::iter::from_fn(|| events.try_recv_in_memory());
                        for event in std::iter::once(first).chain(ready) {
                            // `summary` may have folded it already.
                            if event.seq > fold.last_seq {
                                fold.add(&event);
                            }
                        }
                    }
                    drop(fold);
                    // Parked on the log only when caught up, and then for
                    // one wake-up at most per pause: not one per event
                    // from the relay threads that append them.
                    tokio::time::sleep(FOLD_PAUSE).await;
                }
            });
        }
        live
    }

    /// The summary of everything `log` holds now: what the task has folded
    /// plus, folded here, what it has not reached yet.
    pub(crate) fn summary(&self, log: &EventLog, cx: SummaryContext<'_>) -> Summary {
        let mut fold = self.fold.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rest = log
            .subscribe(fold.last_seq + 1, EventFilter::all())
            .until(log.last_seq() + 1)
            .with_max_lag(u64::MAX);
        while let Some(event) = rest.try_recv() {
            fold.add(&event);
        }
        Summary::from_fold(cx, log.environment(), &fold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ConnectionInfo, EventDraft, EventKind, LifecycleInfo, RequestInfo};

    fn request(status: u16, latency_ms: f64) -> EventDraft {
        let request = RequestInfo {
            source: "a".into(),
            target: "b".into(),
            status_code: Some(status),
            latency_ms: Some(latency_ms),
            request_size: 3,
            response_size: 5,
            ..serde_json::from_value(serde_json::json!({
                "connection": 1, "source": "a", "target": "b", "ingress": "default",
                "version": "HTTP/1.1", "method": "GET", "path": "/", "status_code": null,
                "latency_ms": null, "request_size": 0, "response_size": 0,
                "request_headers": {}, "response_headers": {},
                "request_body": "", "request_body_encoding": "utf8", "request_body_truncated": false,
                "response_body": "", "response_body_encoding": "utf8", "response_body_truncated": false
            }))
            .unwrap()
        };
        EventDraft::now(EventKind::RequestCompleted, Payload::Request(request))
    }

    #[tokio::test]
    async fn the_live_summary_matches_one_made_from_every_event() {
        let log = EventLog::in_memory("t");
        let live = LiveSummary::follow(&log);
        let mut starting = EventDraft::now(
            EventKind::ServiceStarting,
            Payload::Lifecycle(LifecycleInfo {
                state: crate::events::ServiceState::Starting.into(),
                ..Default::default()
            }),
        );
        starting.service = Some("b".into());
        log.append(starting);
        log.append(EventDraft::now(
            EventKind::ConnectionOpened,
            Payload::Connection(ConnectionInfo {
                id: 1,
                source: "a".into(),
                target: "b".into(),
                ingress: "default".into(),
                client_addr: "127.0.0.1:1".into(),
                bytes_in: 0,
                bytes_out: 0,
                duration_ms: 0.0,
                error: None,
            }),
        ));
        for i in 0..3_000u32 {
            log.append(request(
                if i % 100 == 0 { 503 } else { 200 },
                f64::from(i % 97),
            ));
            if i == 1_500 {
                // Half of it folded by the task, the rest when asked.
                tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            }
        }
        let dir = std::path::Path::new("/nonexistent");
        let cx = || SummaryContext {
            id: "t-1",
            dir,
            started_at: Utc::now(),
            outcome: Outcome::Stopped,
            reason: None,
        };
        let folded = live.summary(&log, cx());
        let whole = Summary::from_events(cx(), "t", &log.since(1).unwrap());
        assert_eq!(folded.events, 3_002);
        assert_eq!(folded.events, whole.events);
        assert_eq!(folded.events_by_type, whole.events_by_type);
        assert_eq!(folded.events_by_type["request.completed"], 3_000);
        assert_eq!(folded.edges, whole.edges);
        let edge = &folded.edges[0];
        assert_eq!((edge.calls, edge.errors, edge.connections), (3_000, 30, 1));
        assert_eq!((edge.bytes_in, edge.bytes_out), (9_000, 15_000));
        assert_eq!(edge.p50_ms, Some(48.0));
        assert_eq!(folded.services["b"].state, whole.services["b"].state);
    }
}
