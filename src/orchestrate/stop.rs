//! Stopping a service, and saying how it ended.
//!
//! The grace period runs from the SIGTERM, once, for the whole session:
//! SIGKILL lands at `stop_grace` on whatever is still alive, leader or
//! not. (It used to restart the clock when the leader had exited and then
//! wait for the process group to be empty; an exited but unreaped member
//! counts as present for `kill(-pgid, 0)`, and an orphan's zombie waits on
//! init, which in some containers never reaps, so the stop took a second
//! full grace period before it gave up.) Here a zombie counts as gone.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Child;
use tokio::time::Instant;

use super::{process, procfs};
use crate::events::signal_name;

/// How often, after the leader has exited, the session is looked at for
/// members still running (a child that ignores SIGTERM).
const POLL: Duration = Duration::from_millis(20);

/// SIGTERM to the service's session, SIGKILL at `grace` to whatever of it
/// is still alive, then reaps the leader. The leader's exit status, if it
/// could be waited for.
pub async fn stop_child(child: &mut Child, sid: i32, grace: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + grace;
    process::signal_group(sid, libc::SIGTERM);
    // Members a shell moved into process groups of their own; the leader's
    // group has had its SIGTERM (a second one means "hurry" to some programs).
    procfs::signal_session(sid, libc::SIGTERM, &|s| s.pgrp != sid);
    let status = tokio::time::timeout_at(deadline, child.wait()).await;
    if status.is_ok() {
        while Instant::now() < deadline && procfs::session_alive(sid) {
            tokio::time::sleep_until((Instant::now() + POLL).min(deadline)).await;
        }
    }
    process::signal_group(sid, libc::SIGKILL);
    procfs::kill_session(sid, &|_| true);
    match status {
        Ok(status) => status.ok(),
        Err(_) => child.wait().await.ok(),
    }
}

/// The exit code, or the signal's name, of a process that ended.
pub fn exit_fields(status: &ExitStatus) -> (Option<i32>, Option<String>) {
    (status.code(), status.signal().map(signal_name))
}

/// `exited with status 3`, `was killed by SIGKILL`.
pub fn describe_exit(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by {}", signal_name(signal)),
        _ => format!("exited ({status})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_is_described_by_its_code_or_its_signals_name() {
        assert_eq!(
            describe_exit(&ExitStatus::from_raw(libc::SIGKILL)),
            "was killed by SIGKILL"
        );
        assert_eq!(exit_fields(&ExitStatus::from_raw(3 << 8)), (Some(3), None));
    }
}
