//! What `/proc` says about processes: their session and start time, and
//! killing every live member of a session.
//!
//! A session, not a process group, is what holds everything a service
//! started: a child can move to another group of the session (a shell with
//! job control does, for each job) but leaves the session only by calling
//! `setsid` itself. A process is told apart from a later one that reused
//! its pid by its start time (clock ticks since boot, field 22 of
//! `/proc/PID/stat`), never by its name.

use std::collections::BTreeSet;

/// The fields of `/proc/PID/stat` tapmesh uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z` (exited, not yet reaped) …
    pub state: u8,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks after boot.
    pub start_time: u64,
}

impl Stat {
    /// Exited: a zombie waits only for its parent (or, orphaned, for init,
    /// which in some containers never comes) to collect its status.
    pub fn exited(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }
}

/// Parses a `/proc/PID/stat` line. The command name, in parentheses, may
/// itself hold spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `rest` starts at field 3 (state); start time is field 22.
    Some(Stat {
        state: *fields.first()?.as_bytes().first()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// `pid`'s stat now, or `None` if there is no such process.
pub fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// When `pid` started, if it is alive (a zombie counts as gone).
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).filter(|s| !s.exited()).map(|s| s.start_time)
}

/// Whether `pid` is the same live process that started at `start_time`.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    self::start_time(pid) == Some(start_time)
}

/// Every process now, with its stat.
pub fn all() -> Vec<(i32, Stat)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        Some((pid, stat(pid)?))
    })
    .collect()
}

/// The live members of session `sid` that `keep` accepts.
fn members(sid: i32, keep: &dyn Fn(&Stat) -> bool) -> Vec<i32> {
    all()
        .into_iter()
        .filter(|(_, s)| s.session == sid && !s.exited() && keep(s))
        .map(|(pid, _)| pid)
        .collect()
}

/// Whether session `sid` has a live member.
pub fn session_alive(sid: i32) -> bool {
    sid > 0 && !members(sid, &|_| true).is_empty()
}

/// Sends `signal` once to every live member of session `sid` that `keep` accepts.
pub fn signal_session(sid: i32, signal: i32, keep: &dyn Fn(&Stat) -> bool) {
    if sid <= 0 {
        return;
    }
    for pid in members(sid, keep) {
        // SAFETY: kill(2) on a member of a session this environment started.
        unsafe { libc::kill(pid, signal) };
    }
}

/// SIGKILLs every live member of session `sid` that `keep` accepts, scanning
/// again until a pass finds no member it has not already killed (a member
/// may fork while the scan runs; a killed one can fork no more), at most
/// `MAX_PASSES` times. Returns how many it killed.
pub fn kill_session(sid: i32, keep: &dyn Fn(&Stat) -> bool) -> usize {
    const MAX_PASSES: usize = 64;
    if sid <= 0 {
        return 0;
    }
    let mut killed = BTreeSet::new();
    for _ in 0..MAX_PASSES {
        let mut new = false;
        for pid in members(sid, keep) {
            if killed.insert(pid) {
                new = true;
                // SAFETY: kill(2) on a member of a session this environment started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if !new {
            break;
        }
    }
    killed.len()
}

/// This process's own start time (to tell a crashed tapmesh from a live one).
pub fn own_start_time() -> u64 {
    start_time(std::process::id() as i32).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let line =
            "4242 (a (b) c) S 17 4242 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                state: b'S',
                ppid: 17,
                pgrp: 4242,
                session: 4240,
                start_time: 987654,
            }
        );
        assert!(parse_stat("12 (x) S 1 2").is_none());
    }

    #[test]
    fn this_process_is_alive_and_a_made_up_start_time_is_not() {
        let pid = std::process::id() as i32;
        let started = own_start_time();
        assert!(started > 0);
        assert!(is_alive(pid, started));
        assert!(!is_alive(pid, started + 1));
        assert_eq!(stat(pid).unwrap().session, unsafe { libc::getsid(0) });
    }
}
