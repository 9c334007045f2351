//! A service's hooks: `prestart` before its process starts, with its full
//! wiring; `init` once it is ready, before anything that depends on it
//! starts. Each runs in its own session like the service (so nothing it
//! forks outlives tapmesh), writes to the service's log, and either emits
//! `service.prestart` / `service.init` or fails the service with its tail.

use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::process::{self, LogTail};
use super::runner::{info, Failure, Halt, HookPoint, Runner};
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
        let hook = match point {
            HookPoint::Prestart => self.prestart.as_ref(),
            HookPoint::Init => self.init.as_ref(),
        };
        let Some(hook) = hook else {
            return Ok(());
        };
        let what = point.name();
        let tail = LogTail::default();
        let (matched, _) = watch::channel(false);
        let started = Instant::now();
        let (mut child, readers) = process::spawn(
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
                "{}: its {what} hook could not start: {e}",
                self.name
            ))
        })?;
        let pid = child.id().unwrap_or_default() as i32;
        self.shared.custody.adopt(&self.name, pid);
        let timeout = hook.hook.timeout;
        let exit = tokio::select! {
            _ = self.stop.cancelled() => None,
            _ = tokio::time::sleep(timeout) => Some(None),
            status = child.wait() => Some(Some(status)),
        };
        let status = match exit {
            Some(Some(status)) => status,
            other => {
                stop::stop_child(&mut child, pid, self.service.stop_grace).await;
                self.shared.custody.release(&self.name, pid);
                if other.is_none() {
                    self.set(ServiceState::Stopped);
                    return Err(Halt::Stopped);
                }
                readers.finish(Duration::from_secs(1)).await;
                return Err(Failure {
                    reason: format!(
                        "{}: its {what} hook did not finish within {}",
                        self.name,
                        humantime::format_duration(timeout)
                    ),
                    log_tail: tail.lines(),
                    pid: Some(pid as u32),
                    ..Failure::default()
                }
                .into());
            }
        };
        self.shared.custody.release(&self.name, pid);
        readers.finish(Duration::from_secs(1)).await;
        let status = status.map_err(|e| {
            Failure::because(format!(
                "{}: its {what} hook could not be waited for: {e}",
                self.name
            ))
        })?;
        let (exit_code, signal) = stop::exit_fields(&status);
        if !status.success() {
            return Err(Failure {
                reason: format!(
                    "{}: its {what} hook {}",
                    self.name,
                    stop::describe_exit(&status)
                ),
                log_tail: tail.lines(),
                exit_code,
                signal,
                pid: Some(pid as u32),
                ..Failure::default()
            }
            .into());
        }
        self.emit(
            point.event(),
            LifecycleInfo {
                pid: Some(pid as u32),
                exit_code,
                reason: Some(format!(
                    "{what} hook ran in {} ms: {}",
                    started.elapsed().as_millis(),
                    hook.launch.argv.join(" ")
                )),
                ..info(ServiceState::Starting)
            },
        );
        Ok(())
    }
}
