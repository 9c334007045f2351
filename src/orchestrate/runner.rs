//! One service's life, as a state machine with a method per phase: wait
//! for what it depends on, prestart hook, spawn, await ready, init hook,
//! run, handle its exit (restart, complete, or fail). Every failure goes
//! through [`Runner::fail`]; every stop request ends in `Halt::Stopped`.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::control::{Control, Exit, Request, Requests};
use super::custody::Custody;
use super::dependencies::{Dependency, Progress};
use super::process::{self, Launchable, LogTail, OutputReaders};
use super::readiness::probe_until_ready;
use super::{stop, EnvironmentError};
use crate::events::{
    EventDraft, EventKind, EventLog, LifecycleInfo, LifecycleState, Payload, ServiceState,
};
use crate::spec::{Hook, ReadyProbe, Service};

/// What every runner of an environment shares.
#[derive(Clone)]
pub(super) struct Shared {
    pub log: EventLog,
    pub custody: Custody,
    pub failure: watch::Sender<Option<EnvironmentError>>,
    /// When any service last changed state (for stall reports).
    pub last_change: Arc<Mutex<Instant>>,
}

pub(super) struct Probe {
    pub probe: ReadyProbe,
    pub addr: SocketAddr,
    pub interval: Duration,
    pub timeout: Duration,
}

/// A hook with its command line, ready to run.
pub(super) struct PreparedHook {
    pub hook: Hook,
    pub launch: Launchable,
}

/// Everything one service's runner needs.
pub(super) struct Runner {
    pub name: Arc<str>,
    pub service: Service,
    /// None for an external service.
    pub launch: Option<Launchable>,
    pub prestart: Option<PreparedHook>,
    pub init: Option<PreparedHook>,
    pub probe: Option<Probe>,
    pub depends_on: Vec<Dependency>,
    /// Its ports, held until it is spawned.
    pub reserved: Vec<TcpListener>,
    pub log_file: PathBuf,
    pub shared: Shared,
    pub progress: watch::Sender<Progress>,
    pub stop: CancellationToken,
    /// Restart, stop, start and redeploy requests.
    pub control: Requests,
    /// Why it is being redeployed, until its restart says so.
    pub redeploying: Option<String>,
}

/// Why a phase did not lead to the next.
pub(super) enum Halt {
    /// Asked to stop; what there was to say has been said.
    Stopped,
    Failed(Failure),
    /// A caller asked to stop or restart it while it was starting.
    Asked(Control),
}

/// A service's end, as `service.failed` tells it.
#[derive(Default)]
pub(super) struct Failure {
    pub reason: String,
    pub log_tail: Vec<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub restarts: Option<u32>,
    pub pid: Option<u32>,
}

impl Failure {
    pub fn because(reason: String) -> Self {
        Self {
            reason,
            ..Self::default()
        }
    }
}

impl From<Failure> for Halt {
    fn from(f: Failure) -> Self {
        Halt::Failed(f)
    }
}

/// A spawned service process.
pub(super) struct Running {
    pub child: Child,
    pub pid: i32,
    pub readers: OutputReaders,
    pub tail: LogTail,
    pub matched: watch::Receiver<bool>,
    pub started: Instant,
}

pub(super) fn info(state: impl Into<LifecycleState>) -> LifecycleInfo {
    LifecycleInfo {
        state: state.into(),
        ..LifecycleInfo::default()
    }
}

impl Runner {
    /// Its whole life: started once what it depends on is there, then run
    /// until the environment stops; after a run ends (stopped on request,
    /// failed, completed) it waits to be started again.
    pub async fn run(mut self) {
        let mut outcome = self.drive().await;
        loop {
            match outcome {
                Ok(()) | Err(Halt::Stopped) | Err(Halt::Asked(_)) => {}
                Err(Halt::Failed(failure)) => self.fail(failure),
            }
            if self.launch.is_none() || !self.parked().await {
                return;
            }
            self.set(ServiceState::Starting);
            outcome = self.supervise(true).await;
        }
    }

    async fn drive(&mut self) -> Result<(), Halt> {
        self.wait_for_dependencies().await?;
        if self.launch.is_none() {
            return self.run_external().await;
        }
        self.set(ServiceState::Starting);
        self.run_hook(HookPoint::Prestart).await?;
        self.supervise(false).await
    }

    /// Spawns it and keeps it running: ready, then watched until it exits
    /// (restarted under its policy), is asked to stop or restart, or the
    /// environment stops. `initialized`: its `init` hook has run.
    async fn supervise(&mut self, mut initialized: bool) -> Result<(), Halt> {
        let mut restarts: u32 = 0;
        loop {
            let mut running = self.spawn(restarts)?;
            let (status, cause) = match self.until_ready(&mut running).await {
                Ok(Some(status)) => (status, None),
                Ok(None) => {
                    if !initialized {
                        if let Err(halt) = self.run_hook(HookPoint::Init).await {
                            return Err(self.end(running, halt).await);
                        }
                        initialized = true;
                    }
                    self.ready(&running);
                    match self.until_exit(&mut running).await {
                        Exit::Exited(status) => (status, None),
                        Exit::Halted => return Err(self.end(running, Halt::Stopped).await),
                        Exit::Asked(asked) => {
                            self.end_on_request(running, asked).await;
                            match asked {
                                Control::Restart => continue,
                                _ => return Err(Halt::Stopped),
                            }
                        }
                        Exit::Unhealthy(cause) => {
                            let status = stop::stop_child(
                                &mut running.child,
                                running.pid,
                                self.service.stop_grace,
                            )
                            .await;
                            (
                                status.unwrap_or_else(|| waited(Err(io_gone()))),
                                Some(cause),
                            )
                        }
                    }
                }
                Err(Halt::Asked(asked)) => {
                    self.end_on_request(running, asked).await;
                    match asked {
                        Control::Restart => continue,
                        _ => return Err(Halt::Stopped),
                    }
                }
                Err(halt) => return Err(self.end(running, halt).await),
            };
            if !self
                .after_exit(running, status, cause.as_deref(), &mut restarts)
                .await?
            {
                return Ok(());
            }
        }
    }

    pub(super) fn emit(&self, kind: EventKind, info: LifecycleInfo) {
        let mut draft = EventDraft::now(kind, Payload::Lifecycle(info));
        draft.service = Some(self.name.clone());
        self.shared.log.append(draft);
    }

    pub(super) fn set(&self, state: ServiceState) {
        self.progress.send_modify(|p| p.state = state);
        *self.shared.last_change.lock().expect("last change lock") = Instant::now();
    }

    /// The single way a service fails: `service.failed`, its state, and
    /// for a required service the environment's failure.
    fn fail(&self, failure: Failure) {
        self.emit(
            EventKind::ServiceFailed,
            LifecycleInfo {
                reason: Some(failure.reason.clone()),
                pid: failure.pid,
                exit_code: failure.exit_code,
                signal: failure.signal,
                restarts: failure.restarts,
                log_tail: failure.log_tail.clone(),
                ..info(ServiceState::Failed)
            },
        );
        self.set(ServiceState::Failed);
        if !self.service.optional {
            self.shared.failure.send_if_modified(|f| {
                if f.is_some() {
                    return false;
                }
                *f = Some(EnvironmentError {
                    service: Some(self.name.to_string()),
                    message: failure.reason,
                    log_tail: failure.log_tail,
                });
                true
            });
        }
    }

    fn spawn(&mut self, restarts: u32) -> Result<Running, Halt> {
        let launch = self
            .launch
            .as_ref()
            .expect("a started service has a command");
        let tail = LogTail::default();
        let pattern = match &self.probe {
            Some(Probe {
                probe: ReadyProbe::Log { pattern },
                ..
            }) => regex::Regex::new(pattern).ok(),
            _ => None,
        };
        let (matched_tx, matched) = watch::channel(false);
        let started = Instant::now();
        // The reserved ports are let go only now, just before it binds them.
        let spawned = process::spawn(
            &mut self.reserved,
            &self.name,
            launch,
            &self.log_file,
            &self.shared.log,
            &tail,
            pattern,
            matched_tx,
            self.shared.custody.guardian_fd(),
        );
        let (child, readers) = spawned.map_err(|e| Failure {
            reason: format!("{} could not start: {e}", self.name),
            restarts: Some(restarts),
            log_tail: tail.lines(),
            ..Failure::default()
        })?;
        let pid = child.id().unwrap_or_default() as i32;
        self.shared.custody.adopt(&self.name, pid);
        self.progress.send_modify(|p| p.spawned = true);
        self.emit(
            EventKind::ServiceStarting,
            LifecycleInfo {
                pid: Some(pid as u32),
                restarts: (restarts > 0).then_some(restarts),
                reason: Some(without_passwords(&launch.argv.join(" "))),
                ..info(ServiceState::Starting)
            },
        );
        Ok(Running {
            child,
            pid,
            readers,
            tail,
            matched,
            started,
        })
    }

    /// `Ok(None)` once ready; `Ok(Some(status))` if it exited first (a job
    /// is never ready: it runs to its exit).
    async fn until_ready(&mut self, running: &mut Running) -> Result<Option<ExitStatus>, Halt> {
        let job = self.service.job;
        let name = self.name.clone();
        let request = {
            let probe = self.probe.as_ref();
            let readiness = async {
                if job {
                    std::future::pending::<()>().await;
                }
                probe_until_ready(probe, &mut running.matched).await
            };
            tokio::pin!(readiness);
            loop {
                tokio::select! {
                    _ = self.stop.cancelled() => return Err(Halt::Stopped),
                    status = running.child.wait() => return Ok(Some(waited(status))),
                    ready = &mut readiness => return match ready {
                        Ok(()) => Ok(None),
                        Err(reason) => Err(Failure::because(format!("{name} {reason}")).into()),
                    },
                    Some(request) = self.control.recv() => match request {
                        Request::Control(Control::Start) => {}
                        other => break other,
                    },
                }
            }
        };
        Err(Halt::Asked(self.take(request)))
    }

    /// The event before the state: whoever sees the state (a dependent, a
    /// caller of `restart`) finds the event already logged.
    fn ready(&self, running: &Running) {
        self.emit(
            EventKind::ServiceReady,
            LifecycleInfo {
                pid: Some(running.pid as u32),
                reason: Some(format!(
                    "ready after {} ms",
                    running.started.elapsed().as_millis()
                )),
                ..info(ServiceState::Ready)
            },
        );
        self.set(ServiceState::Ready);
    }

    /// Stops a running process for `halt`: on a stop request it is
    /// `service.stopped`; on a failure the failure gains its pid and tail.
    async fn end(&self, mut running: Running, halt: Halt) -> Halt {
        let status =
            stop::stop_child(&mut running.child, running.pid, self.service.stop_grace).await;
        self.shared.custody.release(&self.name, running.pid);
        match halt {
            Halt::Stopped => {
                let (exit_code, signal) =
                    status.as_ref().map(stop::exit_fields).unwrap_or_default();
                self.emit(
                    EventKind::ServiceStopped,
                    LifecycleInfo {
                        pid: Some(running.pid as u32),
                        reason: status
                            .as_ref()
                            .map(|s| format!("{} {}", self.name, stop::describe_exit(s))),
                        exit_code,
                        signal,
                        ..info(ServiceState::Stopped)
                    },
                );
                self.set(ServiceState::Stopped);
                Halt::Stopped
            }
            Halt::Failed(mut failure) => {
                failure.pid.get_or_insert(running.pid as u32);
                if failure.log_tail.is_empty() {
                    failure.log_tail = running.tail.lines();
                }
                Halt::Failed(failure)
            }
            asked @ Halt::Asked(_) => asked,
        }
    }
}

/// Where a hook runs.
#[derive(Debug, Clone, Copy)]
pub(super) enum HookPoint {
    Prestart,
    Init,
}

/// `scheme://user:secret@host` as `scheme://user:***@host`: a command line
/// may carry a `$DB_URL`, and events never hold a password.
fn without_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(userinfo_end), Some(colon)) if colon < userinfo_end => {
                out.push_str(&authority[..=colon]);
                out.push_str("***");
                out.push_str(&authority[userinfo_end..]);
            }
            _ => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// The error `wait` gives for a child already reaped.
fn io_gone() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::ECHILD)
}

pub(super) fn waited(status: std::io::Result<ExitStatus>) -> ExitStatus {
    // `wait` fails only if the child was already reaped, which tapmesh
    // never does elsewhere; read it as a kill.
    use std::os::unix::process::ExitStatusExt;
    status.unwrap_or_else(|_| ExitStatus::from_raw(libc::SIGKILL))
}

#[cfg(test)]
mod tests {
    use super::without_passwords;

    #[test]
    fn passwords_in_urls_are_masked_and_the_rest_kept() {
        assert_eq!(
            without_passwords("psql postgres://shop:s3cret@127.0.0.1:5432/shop -c 'select 1'"),
            "psql postgres://shop:***@127.0.0.1:5432/shop -c 'select 1'"
        );
        assert_eq!(
            without_passwords("redis-cli -u redis://:pw@h:1 x http://h:80/a"),
            "redis-cli -u redis://:***@h:1 x http://h:80/a"
        );
        assert_eq!(
            without_passwords("curl http://user@h/"),
            "curl http://user@h/"
        );
    }
}
