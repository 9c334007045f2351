//! A service's process exited on its own: a job that succeeded is
//! completed; anything else restarts under its policy, with a doubling
//! backoff, or fails.

use std::process::ExitStatus;
use std::time::Duration;

use super::runner::{info, Failure, Halt, Runner, Running};
use super::stop;
use crate::events::{EventKind, LifecycleInfo, ServiceState};

impl Runner {
    /// It exited on its own: a job that succeeded completes; anything else
    /// restarts under its policy (`Ok(true)`) or fails.
    pub(super) async fn after_exit(
        &self,
        running: Running,
        status: ExitStatus,
        cause: Option<&str>,
        restarts: &mut u32,
    ) -> Result<bool, Halt> {
        // Whatever it left in its session goes too, and its last words are
        // read before anyone reports on it.
        self.shared.custody.release(&self.name, running.pid);
        running.readers.finish(Duration::from_secs(1)).await;
        let (exit_code, signal) = stop::exit_fields(&status);
        // Stopped for failing its liveness probe: that is the news, not the
        // signal it was stopped with.
        let how = match cause {
            Some(cause) => cause.to_string(),
            None => stop::describe_exit(&status),
        };
        let ran = running.started.elapsed();
        if self.service.job && status.success() && cause.is_none() {
            self.emit(
                EventKind::ServiceCompleted,
                LifecycleInfo {
                    pid: Some(running.pid as u32),
                    reason: Some(format!("{} completed in {} ms", self.name, ran.as_millis())),
                    exit_code,
                    restarts: (*restarts > 0).then_some(*restarts),
                    ..info(ServiceState::Completed)
                },
            );
            self.set(ServiceState::Completed);
            return Ok(false);
        }
        let policy = self.service.restart;
        // A healthy spell wipes the slate.
        if self.progress.borrow().state == ServiceState::Ready && ran >= policy.healthy_after {
            *restarts = 0;
        }
        if *restarts < policy.max_restarts {
            *restarts += 1;
            self.restart_after(&how, exit_code, signal, *restarts)
                .await?;
            return Ok(true);
        }
        let after = if policy.max_restarts > 0 {
            format!(" (after {restarts} restarts)")
        } else {
            String::new()
        };
        Err(Failure {
            reason: format!("{} {how}{after}", self.name),
            log_tail: running.tail.lines(),
            exit_code,
            signal,
            restarts: Some(*restarts),
            pid: Some(running.pid as u32),
        }
        .into())
    }

    async fn restart_after(
        &self,
        how: &str,
        exit_code: Option<i32>,
        signal: Option<String>,
        restarts: u32,
    ) -> Result<(), Halt> {
        let policy = self.service.restart;
        let backoff = policy
            .backoff
            .saturating_mul(1u32 << (restarts - 1).min(16))
            .min(Duration::from_secs(30));
        self.emit(
            EventKind::ServiceRestarting,
            LifecycleInfo {
                reason: Some(format!(
                    "{} {how}; restart {restarts} of {} in {}",
                    self.name,
                    policy.max_restarts,
                    humantime::format_duration(backoff)
                )),
                exit_code,
                signal,
                restarts: Some(restarts),
                ..info(ServiceState::Restarting)
            },
        );
        self.set(ServiceState::Restarting);
        tokio::select! {
            _ = self.stop.cancelled() => {
                self.set(ServiceState::Stopped);
                Err(Halt::Stopped)
            }
            _ = tokio::time::sleep(backoff) => Ok(()),
        }
    }
}
