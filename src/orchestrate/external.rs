//! An external service (`type: external`): something tapmesh does not
//! start, at a given address. It is probed like any other service and its
//! edges are observed; at shutdown it is left running.

use std::time::Instant;

use tokio::sync::watch;

use super::readiness::probe_until_ready;
use super::runner::{info, Failure, Halt, Runner};
use crate::events::{EventKind, LifecycleInfo, ServiceState};

impl Runner {
    /// An external service: probed like any other, never started or
    /// stopped by tapmesh.
    pub(super) async fn run_external(&mut self) -> Result<(), Halt> {
        let addr = self.probe.as_ref().map(|p| p.addr);
        let at = addr.map_or_else(String::new, |a| format!(" at {a}"));
        self.progress.send_modify(|p| p.spawned = true);
        self.set(ServiceState::Starting);
        self.emit(
            EventKind::ServiceStarting,
            LifecycleInfo {
                reason: Some(format!("external{at}: not started by tapmesh")),
                ..info(ServiceState::Starting)
            },
        );
        let started = Instant::now();
        let (_never, mut unmatched) = watch::channel(false);
        let ready = tokio::select! {
            _ = self.stop.cancelled() => None,
            ready = probe_until_ready(self.probe.as_ref(), &mut unmatched) => Some(ready),
        };
        match ready {
            Some(Err(reason)) => {
                return Err(
                    Failure::because(format!("{} (external{at}) {reason}", self.name)).into(),
                )
            }
            Some(Ok(())) => {
                self.set(ServiceState::Ready);
                self.emit(
                    EventKind::ServiceReady,
                    LifecycleInfo {
                        reason: Some(format!(
                            "external{at} ready after {} ms",
                            started.elapsed().as_millis()
                        )),
                        ..info(ServiceState::Ready)
                    },
                );
                self.stop.cancelled().await;
            }
            None => {}
        }
        self.set(ServiceState::Stopped);
        self.emit(
            EventKind::ServiceStopped,
            LifecycleInfo {
                reason: Some(format!(
                    "external{at}: left running, as tapmesh did not start it"
                )),
                ..info(ServiceState::Stopped)
            },
        );
        Err(Halt::Stopped)
    }
}
