//! What a service waits for before it starts: each dependency reaching its
//! condition (`started`, `ready`, `completed`), as others see it through
//! its [`Progress`].

use tokio::sync::watch;

use super::runner::{Failure, Halt, Runner};
use crate::events::ServiceState;
use crate::spec::Condition;

/// What others see of a service: its state, and whether its process (or,
/// for an external one, its probing) has started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Progress {
    pub state: ServiceState,
    pub spawned: bool,
}

impl Progress {
    /// `condition` holds (`Some(true)`), may yet (`None`), or never will.
    pub fn meets(self, condition: Condition) -> Option<bool> {
        let met = match condition {
            Condition::Started => self.spawned,
            Condition::Ready => matches!(self.state, ServiceState::Ready | ServiceState::Completed),
            Condition::Completed => self.state == ServiceState::Completed,
        };
        if met {
            Some(true)
        } else if self.state.is_final() {
            Some(false)
        } else {
            None
        }
    }
}

pub(super) struct Dependency {
    pub name: String,
    pub condition: Condition,
    /// Through an egress (it calls it), not only `depends_on`.
    pub calls: bool,
    pub progress: watch::Receiver<Progress>,
}

impl Runner {
    /// Waits until each dependency meets its condition; one that never
    /// will fails this service.
    pub(super) async fn wait_for_dependencies(&mut self) -> Result<(), Halt> {
        let name = self.name.clone();
        for dependency in &mut self.depends_on {
            loop {
                let now = *dependency.progress.borrow_and_update();
                match now.meets(dependency.condition) {
                    Some(true) => break,
                    Some(false) => {
                        let how = if dependency.calls {
                            "which it calls"
                        } else {
                            "which it depends on"
                        };
                        let wanted = match dependency.condition {
                            Condition::Ready => String::new(),
                            other => format!(" (it waits for {})", other.as_str()),
                        };
                        return Err(Failure::because(format!(
                            "{name} was not started: {}, {how}, {}{wanted}",
                            dependency.name, now.state
                        ))
                        .into());
                    }
                    None => {}
                }
                tokio::select! {
                    _ = self.stop.cancelled() => {
                        self.progress.send_modify(|p| p.state = ServiceState::Stopped);
                        return Err(Halt::Stopped);
                    }
                    changed = dependency.progress.changed() => if changed.is_err() {
                        return Err(Halt::Stopped);
                    },
                }
            }
        }
        Ok(())
    }
}
