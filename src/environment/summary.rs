//! What is kept of an environment once it is down: `summary.json` beside
//! its `events.jsonl`, computed from the events alone so it can be written
//! however the environment ended (stopped, failed, expired, dropped).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ServiceStatus;
use crate::events::{Event, Payload};
use crate::inspect::{self, EdgeSummary};

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
        let stopped_at = Utc::now();
        let mut services: BTreeMap<String, ServiceStatus> = BTreeMap::new();
        let mut events_by_type: BTreeMap<String, u64> = BTreeMap::new();
        let mut traffic = Vec::new();
        for event in events {
            *events_by_type
                .entry(event.kind.as_str().to_string())
                .or_default() += 1;
            match (&event.payload, event.service.as_deref()) {
                (Payload::Lifecycle(info), Some(service)) => services
                    .entry(service.to_string())
                    .or_default()
                    .apply(event.kind, info),
                (
                    Payload::Connection(_)
                    | Payload::Request(_)
                    | Payload::GrpcCall(_)
                    | Payload::KafkaRequest(_),
                    _,
                ) => {
                    if let Ok(value) = serde_json::to_value(&**event) {
                        traffic.push(value);
                    }
                }
                _ => {}
            }
        }
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
            events: events.last().map_or(0, |e| e.seq),
            events_by_type,
            edges: inspect::summarize(&traffic),
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
