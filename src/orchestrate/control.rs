//! One service changed while the rest runs: restarted, stopped or started
//! on request, and restarted when its liveness probe keeps failing.
//!
//! A request reaches the service's runner through its own channel, so it
//! is handled where the process is owned: between a probe and an exit,
//! never racing the runner's own restarts. The service keeps its ports and
//! the proxies in front of it, so its callers reconnect to the same
//! address; nothing that depends on it is touched.

use std::time::Duration;

use tokio::sync::mpsc;

use super::plan::Redeploy;
use super::readiness::probe_once;
use super::runner::{info, waited, Runner, Running};
use super::stop;
use crate::events::{EventKind, LifecycleInfo, ServiceState};
use crate::spec::ReadyProbe;

/// What a caller asks of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop its process and start it again (its `init` hook does not run
    /// again: that is once per environment).
    Restart,
    /// Stop its process; it stays stopped until started.
    Stop,
    /// Start it if it is not running (stopped, failed or completed: a job
    /// runs again).
    Start,
}

impl Control {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Stop => "stop",
            Self::Start => "start",
        }
    }
}

/// What reaches a runner: a caller's request, or new commands to run
/// (a redeploy: restart with them).
pub(super) enum Request {
    Control(Control),
    Redeploy(Box<Redeploy>),
}

pub(super) type Requests = mpsc::UnboundedReceiver<Request>;

/// How a running, ready service's watch ended.
pub(super) enum Exit {
    /// It exited on its own.
    Exited(std::process::ExitStatus),
    /// The environment is stopping.
    Halted,
    /// A caller asked to stop or restart it.
    Asked(Control),
    /// Its liveness probe failed too often in a row; why, the last time.
    Unhealthy(String),
}

/// What liveness probing needs, when it is on for a service.
pub(super) struct Liveness {
    pub probe: ReadyProbe,
    pub addr: std::net::SocketAddr,
    pub interval: Duration,
    pub failures: u32,
}

impl Runner {
    /// Probing applies to a service that is not a job, whose probe asks
    /// the service itself (a log line says nothing about later health).
    fn liveness(&self) -> Option<Liveness> {
        let spec = self.service.liveness;
        let probe = self.probe.as_ref()?;
        if !spec.enabled || self.service.job || matches!(probe.probe, ReadyProbe::Log { .. }) {
            return None;
        }
        Some(Liveness {
            probe: probe.probe.clone(),
            addr: probe.addr,
            interval: spec.interval,
            failures: spec.failures,
        })
    }

    /// Watches a ready service until it exits, the environment stops, a
    /// caller asks, or it fails its liveness probe too often in a row.
    pub(super) async fn until_exit(&mut self, running: &mut Running) -> Exit {
        let liveness = self.liveness();
        let mut failures = 0;
        loop {
            let check = async {
                match &liveness {
                    Some(l) => {
                        tokio::time::sleep(l.interval).await;
                        probe_once(&l.probe, l.addr).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.stop.cancelled() => return Exit::Halted,
                status = running.child.wait() => return Exit::Exited(waited(status)),
                Some(request) = self.control.recv() => match self.take(request) {
                    // Already running.
                    Control::Start => {}
                    other => return Exit::Asked(other),
                },
                outcome = check => match (outcome, &liveness) {
                    (Ok(()), _) => failures = 0,
                    (Err(reason), Some(l)) => {
                        failures += 1;
                        self.check_failed(running, &reason, failures, l.failures);
                        if failures >= l.failures {
                            return Exit::Unhealthy(format!(
                                "failed its liveness probe {failures} times in a row ({reason})"
                            ));
                        }
                    }
                    (Err(_), None) => unreachable!("no probe, no outcome"),
                },
            }
        }
    }

    fn check_failed(&self, running: &Running, reason: &str, failures: u32, threshold: u32) {
        self.emit(
            EventKind::HealthCheckFailed,
            LifecycleInfo {
                pid: Some(running.pid as u32),
                reason: Some(format!("{} liveness probe: {reason}", self.name)),
                failures: Some(failures),
                failure_threshold: Some(threshold),
                ..info(ServiceState::Ready)
            },
        );
    }

    /// What a request asks of the process; a redeploy's new commands are
    /// taken now, and it asks for a restart.
    pub(super) fn take(&mut self, request: Request) -> Control {
        match request {
            Request::Control(asked) => asked,
            Request::Redeploy(redeploy) => {
                let Redeploy {
                    service,
                    launch,
                    prestart,
                    init,
                    probe,
                    why,
                } = *redeploy;
                self.service = service;
                self.launch = launch;
                self.prestart = prestart;
                self.init = init;
                self.probe = probe;
                self.redeploying = Some(why);
                Control::Restart
            }
        }
    }

    /// Stops its process because a caller asked: `service.stopped`, or
    /// `service.restarting` before it is started again.
    pub(super) async fn end_on_request(&mut self, mut running: Running, asked: Control) {
        let status =
            stop::stop_child(&mut running.child, running.pid, self.service.stop_grace).await;
        self.shared.custody.release(&self.name, running.pid);
        running.readers.finish(Duration::from_secs(1)).await;
        let (exit_code, signal) = status.as_ref().map(stop::exit_fields).unwrap_or_default();
        let how = status
            .as_ref()
            .map(|s| format!(" ({})", stop::describe_exit(s)))
            .unwrap_or_default();
        let redeploying = self.redeploying.take();
        let (kind, state, said) = match (asked, &redeploying) {
            (Control::Restart, Some(why)) => (
                EventKind::ServiceRestarting,
                ServiceState::Restarting,
                format!("redeploying ({why})"),
            ),
            (Control::Restart, None) => (
                EventKind::ServiceRestarting,
                ServiceState::Restarting,
                "restarting on request".to_string(),
            ),
            _ => (
                EventKind::ServiceStopped,
                ServiceState::Stopped,
                "stopped on request".to_string(),
            ),
        };
        self.emit(
            kind,
            LifecycleInfo {
                pid: Some(running.pid as u32),
                reason: Some(format!("{} {said}{how}", self.name)),
                exit_code,
                signal,
                ..info(state)
            },
        );
        self.set(state);
    }

    /// After its run ended (stopped on request, failed, completed): waits
    /// for a request to start it again. `false` once the environment stops.
    pub(super) async fn parked(&mut self) -> bool {
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return false,
                request = self.control.recv() => match request.map(|r| self.take(r)) {
                    Some(Control::Start | Control::Restart) => return true,
                    // Already stopped.
                    Some(Control::Stop) => {}
                    None => {
                        self.stop.cancelled().await;
                        return false;
                    }
                },
            }
        }
    }
}
