//! A service's state as its lifecycle events tell it: what the daemon's
//! `GET /environments/{id}` shows while it runs and `summary.json` keeps.

use serde::{Deserialize, Serialize};

use crate::events::{EventKind, LifecycleInfo, ServiceState};

/// One service's state, from its last lifecycle event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub state: ServiceState,
    /// Its process (and process group) while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl ServiceStatus {
    /// Folds in one of the service's lifecycle events.
    pub(crate) fn apply(&mut self, kind: EventKind, info: &LifecycleInfo) {
        if let Some(state) = info.state.service() {
            self.state = state;
        }
        self.reason = info.reason.clone();
        if kind == EventKind::ServiceRestarting {
            self.restarts += 1;
        }
        if info.exit_code.is_some() {
            self.exit_code = info.exit_code;
        }
        match kind {
            EventKind::ServiceStarting | EventKind::ServiceReady => {
                if info.pid.is_some() {
                    self.pid = info.pid;
                }
            }
            // A hook's pid is its own, not the service's process.
            EventKind::ServicePrestart | EventKind::ServiceInit => {}
            _ => self.pid = None,
        }
    }
}
