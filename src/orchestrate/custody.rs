//! Keeping an environment's processes from outliving it, in three layers:
//!
//! 1. each service leads its own session (`setsid` before exec) and is
//!    SIGKILLed by the kernel if tapmesh dies (`PR_SET_PDEATHSIG`); when
//!    it stops or exits, everything left in its session is killed;
//! 2. the [`Guardian`] kills every process of those sessions when tapmesh
//!    dies in a way that runs none of its code (SIGKILL, abort);
//! 3. the [`CrashRecord`] lets the next tapmesh clean up if the guardian
//!    died too.
//!
//! A dropped environment (a test that panicked holding one) kills every
//! session it started itself, and its guardian sweeps once more.

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::crash_record::{CrashRecord, Proc};
use super::guardian::Guardian;
use super::{process, procfs};

/// The sessions alive in an environment, and who guards them.
#[derive(Clone)]
pub(super) struct Custody(Arc<Inner>);

struct Inner {
    /// Session id (= the leader's pid) → its leader's start time.
    sessions: Mutex<BTreeMap<i32, u64>>,
    guardian: Mutex<Option<Guardian>>,
    guardian_fd: Option<RawFd>,
    record: Mutex<Option<CrashRecord>>,
}

impl Custody {
    /// Starts the guardian and, with a state directory, the crash record.
    /// Either failing is reported and the environment runs without it (its
    /// services still have their parent-death signal).
    pub fn new(state_dir: Option<&Path>, environment: &str, dir: &Path) -> Custody {
        let guardian = Guardian::start()
            .map_err(|e| {
                tracing::warn!(
                    "could not start the guardian (/bin/sh): processes that services fork may outlive a tapmesh that is killed: {e}"
                )
            })
            .ok();
        let guardian_fd = guardian.as_ref().map(Guardian::fd);
        let record = state_dir.and_then(|state_dir| {
            let guardian_proc = guardian.as_ref().and_then(|g| Proc::of(g.pid()));
            CrashRecord::create(state_dir, environment, dir, guardian_proc)
                .map_err(|e| {
                    tracing::warn!(state_dir = %state_dir.display(), "could not write the crash record: {e}")
                })
                .ok()
        });
        Custody(Arc::new(Inner {
            sessions: Mutex::new(BTreeMap::new()),
            guardian: Mutex::new(guardian),
            guardian_fd,
            record: Mutex::new(record),
        }))
    }

    /// The guardian's pipe, for a service's child to register itself.
    pub fn guardian_fd(&self) -> Option<RawFd> {
        self.0.guardian_fd
    }

    /// `service` started as the leader of session `sid` (already known to
    /// the guardian: its child registered itself).
    pub fn adopt(&self, service: &str, sid: i32) {
        // Its stat, even if it has already exited (a zombie until reaped):
        // what it forked may still run.
        let Some(leader) = procfs::stat(sid).map(|s| Proc {
            pid: sid,
            start_time: s.start_time,
        }) else {
            return;
        };
        self.0
            .sessions
            .lock()
            .expect("sessions lock")
            .insert(sid, leader.start_time);
        if let Some(record) = self.0.record.lock().expect("record lock").as_mut() {
            record.started(service, leader);
        }
        let mut guardian = self.0.guardian.lock().expect("guardian lock");
        if guardian.as_mut().is_some_and(|g| !g.running()) {
            tracing::warn!(
                "the guardian has exited: processes that services fork may outlive a tapmesh that is killed"
            );
            *guardian = None;
        }
    }

    /// `service`'s leader `sid` has exited and been reaped: kills whatever
    /// is left of its session, then forgets it.
    pub fn release(&self, service: &str, sid: i32) {
        kill_session(sid);
        self.0.sessions.lock().expect("sessions lock").remove(&sid);
        if let Some(guardian) = self.0.guardian.lock().expect("guardian lock").as_ref() {
            guardian.forget(sid);
        }
        if let Some(record) = self.0.record.lock().expect("record lock").as_mut() {
            record.ended(service, sid);
        }
    }

    /// The sessions (and process groups: same ids) of the services running now.
    pub fn all(&self) -> Vec<i32> {
        self.0
            .sessions
            .lock()
            .expect("sessions lock")
            .keys()
            .copied()
            .collect()
    }

    /// The last resort of a dropped environment: every session, killed now.
    /// Returns how many sessions there were.
    pub fn kill_all(&self) -> usize {
        let sessions = self.all();
        for &sid in &sessions {
            kill_session(sid);
        }
        sessions.len()
    }

    /// The environment has ended: its record goes, and the guardian, once
    /// every clone of this is gone, sweeps and exits.
    pub fn close(&self) {
        if let Some(record) = self.0.record.lock().expect("record lock").as_mut() {
            record.remove();
        }
    }
}

impl Drop for Inner {
    /// A start that failed before its environment existed still ends
    /// normally: no record may be left to look like a crash.
    fn drop(&mut self) {
        if let Some(record) = self.record.get_mut().ok().and_then(Option::as_mut) {
            record.remove();
        }
    }
}

/// SIGKILL to session `sid`'s process group (one call, the usual case),
/// then to every other member `/proc` shows.
fn kill_session(sid: i32) {
    process::signal_group(sid, libc::SIGKILL);
    procfs::kill_session(sid, &|_| true);
}
