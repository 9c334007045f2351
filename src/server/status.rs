//! What `GET /environments/{id}` says: the environment's state, each
//! service's, and the endpoints, kept up to date from lifecycle events.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use crate::environment::ServiceStatus;
use crate::events::{Event, EventKind, Payload};

/// The lifecycle events the status follows.
pub(crate) const LIFECYCLE_TYPES: [&str; 10] = [
    "service.starting",
    "service.prestart",
    "service.ready",
    "service.init",
    "service.completed",
    "service.failed",
    "service.restarting",
    "service.stopped",
    "environment.up",
    "environment.down",
];

/// Where an environment is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Building and starting services.
    #[default]
    Starting,
    /// Every required service is ready.
    Up,
    /// Shutting down.
    Stopping,
    /// Stopped on request.
    Down,
    /// A required service failed (while starting or later); stopped.
    Failed,
    /// Its time to live ran out; stopped.
    Expired,
}

impl RunState {
    /// Starting or up: its processes are (or are about to be) running.
    pub fn is_running(self) -> bool {
        matches!(self, Self::Starting | Self::Up | Self::Stopping)
    }
}

/// An environment's status as the API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct EnvironmentStatus {
    pub state: RunState,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub services: BTreeMap<String, ServiceStatus>,
    /// `environment.up`'s endpoints: per service and ingress, `address` and
    /// `observed` (its `~test` proxy).
    pub endpoints: Option<Value>,
    /// Why it failed: `service`, `message`, `log_tail`.
    pub error: Option<Value>,
    /// Its `summary.json`, once down.
    pub summary: Option<Value>,
    /// Stops it, while the daemon runs it.
    #[serde(skip)]
    pub(crate) stop: Option<tokio_util::sync::CancellationToken>,
    /// Restarts, stops and starts its services, while it is up.
    #[serde(skip)]
    pub(crate) control: Option<super::control::ControlSender>,
    /// Its edges' faults, while it is up.
    #[serde(skip)]
    pub(crate) faults: Option<BTreeMap<String, std::sync::Arc<crate::proxy::fault::EdgeFaults>>>,
}

impl Default for EnvironmentStatus {
    fn default() -> Self {
        Self {
            state: RunState::default(),
            created_at: Utc::now(),
            expires_at: None,
            services: BTreeMap::new(),
            endpoints: None,
            error: None,
            summary: None,
            stop: None,
            control: None,
            faults: None,
        }
    }
}

impl EnvironmentStatus {
    pub(crate) fn apply(&mut self, event: &Event) {
        let Payload::Lifecycle(info) = &event.payload else {
            return;
        };
        match (event.kind, event.service.as_deref()) {
            (EventKind::EnvironmentUp, _) => {
                self.endpoints = info.endpoints.clone();
                if self.state == RunState::Starting {
                    self.state = RunState::Up;
                }
            }
            (EventKind::EnvironmentDown, _) => {
                if matches!(self.state, RunState::Starting | RunState::Up) {
                    self.state = RunState::Down;
                }
            }
            (kind, Some(service)) => self
                .services
                .entry(service.to_string())
                .or_default()
                .apply(kind, info),
            _ => {}
        }
    }
}
