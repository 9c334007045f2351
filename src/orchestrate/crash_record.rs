//! Crash records: what a running environment started, on disk, so that
//! the next tapmesh can clean up after one that died with its guardian
//! (both SIGKILLed, say by an OOM killer taking the process tree).
//!
//! Each environment keeps `<state dir>/.running/<pid>-<n>.json`: its owner
//! (tapmesh's pid and start time), its guardian, and each service's
//! session leader (pid, which is also its session id, and start time),
//! rewritten as services start and end and removed when the environment
//! ends normally. Whatever starts environments ([`clean_up_after_crashes`],
//! called by `tapmesh up`, `tapmesh serve` and `Environment::up` alike)
//! first looks for records whose owner is gone (no such pid, or one that
//! started at another time) and kills what is left of their sessions.
//!
//! Processes are identified by pid and start time, never by name. A
//! leftover of a session has no record of its own (the service forked it),
//! so it is recognised by its session id: while any member of session S
//! lives, the kernel gives pid S to no one, so if the leader S is gone
//! every process still in session S is one the service started. If pid S
//! is alive with another start time, S was free and reused, so the old
//! session is empty and nothing is killed. (The one gap: a stranger that
//! got pid S after the session ended, made its own session and exited,
//! leaving children; we never saw it happen and it needs the pid counter
//! to come round to S first.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::procfs;

/// A process as a record names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proc {
    pub pid: i32,
    pub start_time: u64,
}

impl Proc {
    /// `pid` now, if alive.
    pub fn of(pid: i32) -> Option<Proc> {
        Some(Proc {
            pid,
            start_time: procfs::start_time(pid)?,
        })
    }

    fn alive(&self) -> bool {
        procfs::is_alive(self.pid, self.start_time)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    owner: Proc,
    /// The spec's name.
    environment: String,
    /// The environment's directory (events, logs).
    dir: PathBuf,
    guardian: Option<Proc>,
    /// Each running service's session leader.
    services: BTreeMap<String, Proc>,
}

/// The record of one running environment.
pub struct CrashRecord {
    path: PathBuf,
    record: Record,
    removed: bool,
}

fn records_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(".running")
}

impl CrashRecord {
    /// Writes the record of a new environment.
    pub fn create(
        state_dir: &Path,
        environment: &str,
        dir: &Path,
        guardian: Option<Proc>,
    ) -> std::io::Result<CrashRecord> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let records = records_dir(state_dir);
        std::fs::create_dir_all(&records)?;
        let pid = std::process::id();
        let path = records.join(format!(
            "{pid}-{}.json",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let record = CrashRecord {
            path,
            record: Record {
                owner: Proc {
                    pid: pid as i32,
                    start_time: procfs::own_start_time(),
                },
                environment: environment.to_string(),
                dir: dir.to_path_buf(),
                guardian,
                services: BTreeMap::new(),
            },
            removed: false,
        };
        record.write()?;
        Ok(record)
    }

    fn write(&self) -> std::io::Result<()> {
        if self.removed {
            return Ok(());
        }
        // Whole or not at all: a crash mid-write must not leave half a record.
        let partial = self.path.with_extension("partial");
        std::fs::write(&partial, serde_json::to_vec(&self.record)?)?;
        std::fs::rename(&partial, &self.path)
    }

    fn write_or_warn(&self) {
        if let Err(e) = self.write() {
            tracing::warn!(path = %self.path.display(), "could not update the crash record: {e}");
        }
    }

    /// `service` now runs as session leader `leader`.
    pub fn started(&mut self, service: &str, leader: Proc) {
        self.record.services.insert(service.to_string(), leader);
        self.write_or_warn();
    }

    /// `service`'s session `sid` has ended.
    pub fn ended(&mut self, service: &str, sid: i32) {
        if self
            .record
            .services
            .get(service)
            .is_some_and(|p| p.pid == sid)
        {
            self.record.services.remove(service);
            self.write_or_warn();
        }
    }

    /// The environment ended normally: nothing to clean up after it.
    pub fn remove(&mut self) {
        self.removed = true;
        let _ = std::fs::remove_file(&self.path);
    }
}

/// An environment a dead tapmesh left behind, and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanedUp {
    /// The spec's name.
    pub environment: String,
    pub dir: PathBuf,
    /// The tapmesh that ran it.
    pub owner_pid: i32,
    /// Processes of its services that were still running and were killed.
    pub killed: usize,
}

impl std::fmt::Display for CleanedUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "environment {} ({}) was left by a tapmesh that died (pid {}): ",
            self.environment,
            self.dir.display(),
            self.owner_pid
        )?;
        match self.killed {
            0 => write!(f, "none of its processes was still running"),
            1 => write!(f, "killed 1 process still running"),
            n => write!(f, "killed {n} processes still running"),
        }
    }
}

/// Kills what environments of dead tapmesh processes left running under
/// `state_dir`, removes their records, and says what it did, one entry per
/// environment. Records of live tapmesh processes (this one included) are
/// left alone.
pub fn clean_up_after_crashes(state_dir: &Path) -> Vec<CleanedUp> {
    let Ok(entries) = std::fs::read_dir(records_dir(state_dir)) else {
        return Vec::new();
    };
    let mut cleaned = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(record) = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        else {
            continue;
        };
        if record.owner.alive() {
            continue;
        }
        // Claimed by a rename, so two tapmesh processes starting at once
        // do not both report it.
        let claimed = path.with_extension("cleaning");
        if std::fs::rename(&path, &claimed).is_err() {
            continue;
        }
        let killed = kill_leftovers(&record);
        let _ = std::fs::remove_file(&claimed);
        let done = CleanedUp {
            environment: record.environment,
            dir: record.dir,
            owner_pid: record.owner.pid,
            killed,
        };
        cleaned.push(done);
    }
    cleaned
}

fn kill_leftovers(record: &Record) -> usize {
    if let Some(guardian) = record.guardian.filter(Proc::alive) {
        // Stuck (stopped?) if it is still here with its owner gone.
        // SAFETY: kill(2) on the guardian this record names, checked alive.
        unsafe { libc::kill(guardian.pid, libc::SIGKILL) };
    }
    let mut killed = 0;
    for leader in record.services.values() {
        let reused = procfs::stat(leader.pid)
            .is_some_and(|s| !s.exited() && s.start_time != leader.start_time);
        if reused {
            continue;
        }
        killed += procfs::kill_session(leader.pid, &|s| s.start_time >= leader.start_time);
    }
    killed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_a_live_owner_is_left_alone_and_one_of_a_dead_owner_is_cleaned_up() {
        let state = tempfile::tempdir().unwrap();
        let mut live = CrashRecord::create(state.path(), "live", Path::new("/x"), None).unwrap();
        live.started("svc", Proc::of(std::process::id() as i32).unwrap());
        assert!(clean_up_after_crashes(state.path()).is_empty());
        assert!(live.path.exists());

        // The same record, as if its owner had died: a start time that no
        // live process has. Its service is no process that exists either.
        let mut dead = live.record.clone();
        dead.owner.start_time += 1;
        dead.environment = "dead".into();
        dead.services = BTreeMap::from([(
            "svc".to_string(),
            Proc {
                pid: i32::MAX - 1,
                start_time: 1,
            },
        )]);
        let dead_path = records_dir(state.path()).join("dead.json");
        std::fs::write(&dead_path, serde_json::to_vec(&dead).unwrap()).unwrap();
        let cleaned = clean_up_after_crashes(state.path());
        assert_eq!(
            cleaned,
            [CleanedUp {
                environment: "dead".into(),
                dir: "/x".into(),
                owner_pid: std::process::id() as i32,
                killed: 0,
            }]
        );
        assert!(!dead_path.exists());
        assert!(live.path.exists());
        live.remove();
        assert!(!live.path.exists());
    }
}
