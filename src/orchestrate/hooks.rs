//! A service's hooks: `prestart` before its process starts, with its full
//! wiring; `init` once it is ready, before anything that depends on it
//! starts. Each runs in its own session like the service (so nothing it
//! forks outlives tapmesh), writes to the service's log, and either emits
//! `service.prestart` / `service.init` or fails the service with its tail.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::process::{self, LogTail};
use super::runner::{info, Failure, Halt, HookPoint, PreparedHook, Runner};
use super::stop;
use crate::events::{EventKind, LifecycleInfo, ServiceState};

impl HookPoint {
    fn name(self) -> &'static str {
        match self {
            Self::Prestart => "prestart",
            Self::Init => "init",
        }
    }

    fn event(self) -> EventKind {
        match self {
            Self::Prestart => EventKind::ServicePrestart,
            Self::Init => EventKind::ServiceInit,
        }
    }
}

impl Runner {
    /// Runs the hook at `point`, if the service has one, to its end.
    pub(super) async fn run_hook(&mut self, point: HookPoint) -> Result<(), Halt> {
        let Some(hook) = self.hook(point) else {
            return Ok(());
        };
        let timeout = hook.hook.timeout;
        let started = Instant::now();
        let mut running = self.start_hook(point)?;
        let status = self.until_hook_exits(&mut running, point, timeout).await?;
        let failed = |reason: String, exit_code, signal| Failure {
            reason,
            log_tail: running.tail.lines(),
            exit_code,
            signal,
            pid: Some(running.pid as u32),
            ..Failure::default()
        };
        let (what, name) = (point.name(), &self.name);
        let status = status.map_err(|e| {
            failed(
                format!("{name}: its {what} hook could not be waited for: {e}"),
                None,
                None,
            )
        })?;
        let (exit_code, signal) = stop::exit_fields(&status);
        if !status.success() {
            let how = stop::describe_exit(&status);
            return Err(failed(format!("{name}: its {what} hook {how}"), exit_code, signal).into());
        }
        self.emit(
            point.event(),
            LifecycleInfo {
                pid: Some(running.pid as u32),
                exit_code,
                // Not its command line: a script may be many lines.
                reason: Some(format!(
                    "{what} hook ran in {} ms",
                    started.elapsed().as_millis()
                )),
                ..info(ServiceState::Starting)
            },
        );
        Ok(())
    }

    fn hook(&self, point: HookPoint) -> Option<&PreparedHook> {
        match point {
            HookPoint::Prestart => self.prestart.as_ref(),
            HookPoint::Init => self.init.as_ref(),
        }
    }

    fn start_hook(&self, point: HookPoint) -> Result<HookProcess, Failure> {
        let hook = self.hook(point).expect("a hook to start");
        let tail = LogTail::default();
        let (matched, _) = watch::channel(false);
        let (child, readers) = process::spawn(
            &mut Vec::new(),
            &self.name,
            &hook.launch,
            &self.log_file,
            &self.shared.log,
            &tail,
            None,
            matched,
            self.shared.custody.guardian_fd(),
        )
        .map_err(|e| {
            Failure::because(format!(
                "{}: its {} hook could not start: {e}",
                self.name,
                point.name()
            ))
        })?;
        let pid = child.id().unwrap_or_default() as i32;
        self.shared.custody.adopt(&self.name, pid);
        Ok(HookProcess {
            child,
            pid,
            readers: Some(readers),
            tail,
        })
    }

    /// Its exit status once it exits, its output read to the end; a stop
    /// request or its timeout stops it first.
    async fn until_hook_exits(
        &self,
        running: &mut HookProcess,
        point: HookPoint,
        timeout: Duration,
    ) -> Result<std::io::Result<ExitStatus>, Halt> {
        let exit = tokio::select! {
            _ = self.stop.cancelled() => None,
            _ = tokio::time::sleep(timeout) => Some(None),
            status = running.child.wait() => Some(Some(status)),
        };
        if !matches!(exit, Some(Some(_))) {
            stop::stop_child(&mut running.child, running.pid, self.service.stop_grace).await;
        }
        self.shared.custody.release(&self.name, running.pid);
        if let Some(readers) = running.readers.take() {
            readers.finish(Duration::from_secs(1)).await;
        }
        match exit {
            Some(Some(status)) => Ok(status),
            Some(None) => Err(Failure {
                reason: format!(
                    "{}: its {} hook did not finish within {}",
                    self.name,
                    point.name(),
                    humantime::format_duration(timeout)
                ),
                log_tail: running.tail.lines(),
                pid: Some(running.pid as u32),
                ..Failure::default()
            }
            .into()),
            None => {
                self.set(ServiceState::Stopped);
                Err(Halt::Stopped)
            }
        }
    }
}

/// A hook's running process.
struct HookProcess {
    child: tokio::process::Child,
    pid: i32,
    readers: Option<process::OutputReaders>,
    tail: LogTail,
}
