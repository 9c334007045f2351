//! The guardian: a tiny process per environment that kills what is left of
//! its services once tapmesh is gone, however tapmesh went (SIGKILL, a
//! panic that aborts, the OOM killer).
//!
//! Why it is needed: each service leads its own session and has a
//! parent-death signal, but that signal reaches only the leader; what the
//! service forked (`sh -c 'worker & …'`) is adopted by init and runs on.
//! Nothing inside a process can act after it was SIGKILLed, so someone
//! outside must: the guardian holds the read end of a pipe whose only write
//! end is tapmesh's (close-on-exec, so no service inherits it). When tapmesh
//! dies, the kernel closes that end, the guardian reads EOF, and it kills
//! every process whose session is one of the services'. It repeats its
//! `/proc` scan until a pass finds no one left alive (at most 50 passes),
//! since a member may fork while a pass runs.
//!
//! Why `/bin/sh` with an embedded script rather than a fork of tapmesh or a
//! re-exec of the tapmesh binary: environments also run inside a user's test
//! binary (`tapmesh::Environment::up`), where `current_exe()` is the test
//! harness, and a bare `fork` of a multi-threaded process may only call
//! async-signal-safe functions until it execs. `sh` is everywhere a
//! `script` service can run, is spawned with posix_spawn, and costs about
//! a megabyte while it waits on `read`.
//!
//! Why not a cgroup with `cgroup.kill`: it needs a delegated, writable
//! cgroup v2 hierarchy, which unprivileged users and many containers do not
//! have (this project's CI machine exposes only read-only v1 controllers).
//! The guardian works wherever `/proc` does.
//!
//! A service is registered by its own forked child, just before `exec`
//! (see [`register_self`]): by the time it can fork anything, the guardian
//! knows its session. Once a session has ended, tapmesh writes `del`, so a
//! pid reused later for someone else's session is never swept.
//!
//! What it cannot catch: a process that calls `setsid` itself (a daemon
//! that detaches on purpose) leaves the session and every tracking short
//! of a cgroup; and the guardian itself can be SIGKILLed (then the crash
//! record, see `crash_record`, lets the next tapmesh clean up).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Stdio;

/// Reads `add SID` / `del SID` lines until EOF, then kills every live
/// process in a recorded session: first each session's process group
/// (the usual case, one kill), then, pass after pass, every other member
/// found in `/proc`. It ignores the signals a terminal or a process
/// manager sends the whole group so that it outlives tapmesh.
const SCRIPT: &str = r#"
trap '' INT TERM HUP QUIT PIPE
sids=' '
while read -r op sid; do
    case $op in
    add) sids="$sids$sid " ;;
    del) case $sids in *" $sid "*) sids="${sids%%" $sid "*} ${sids#*" $sid "}" ;; esac ;;
    esac
done
[ "$sids" = ' ' ] && exit 0
pass=0
while [ $pass -lt 50 ]; do
    pass=$((pass + 1))
    for sid in $sids; do kill -9 "-$sid" 2>/dev/null; done
    found=
    for stat in /proc/[0-9]*/stat; do
        line=
        read -r line 2>/dev/null <"$stat"
        set -- ${line##*) }
        case $1 in '' | Z | X | x) continue ;; esac
        case $sids in *" $4 "*)
            pid=${stat#/proc/}
            kill -9 "${pid%/stat}" 2>/dev/null && found=1 ;;
        esac
    done
    [ -z "$found" ] && break
done
"#;

/// A running guardian. Dropping it closes the pipe: the guardian then
/// sweeps the sessions still registered and exits.
pub struct Guardian {
    write: OwnedFd,
    child: tokio::process::Child,
    pid: i32,
}

impl Guardian {
    /// Starts `/bin/sh` with the script, in its own process group (so a
    /// Ctrl-C at the terminal does not reach it; it ignores it anyway).
    pub fn start() -> std::io::Result<Guardian> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fds we then own. Close-on-exec: neither
        // end may leak into a service, or EOF would never come.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned only here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // Non-blocking: a stopped guardian must not hang a service's
        // start (its child writes `add` before exec) or a shutdown.
        // SAFETY: fcntl on our own fd.
        unsafe {
            let flags = libc::fcntl(write.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(write.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
        let _forking = super::process::forking();
        let child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::from(read))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            // Dropped, it is reaped by tokio once it has swept and exited.
            .kill_on_drop(false)
            .spawn()?;
        let pid = child.id().unwrap_or_default() as i32;
        Ok(Guardian { write, child, pid })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The write end, for [`register_self`] in a service's forked child.
    pub fn fd(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// Session `sid` has ended: a later process reusing its number is not ours.
    pub fn forget(&self, sid: i32) {
        let mut buf = [0u8; LINE_MAX];
        let line = format_line(&mut buf, b"del ", sid);
        // SAFETY: write(2) of a short buffer to our own fd. A full pipe or
        // a dead guardian loses the line; the only cost is a sweep that
        // finds nothing (the session is empty by now).
        unsafe { libc::write(self.fd(), line.as_ptr().cast(), line.len()) };
    }

    /// Whether it is still there to do its job.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

const LINE_MAX: usize = 24;

/// `op` and `n` in decimal and a newline, without allocating (it runs
/// between fork and exec).
fn format_line<'a>(buf: &'a mut [u8; LINE_MAX], op: &[u8; 4], n: i32) -> &'a [u8] {
    buf[..4].copy_from_slice(op);
    let mut digits = [0u8; 12];
    let mut len = 0;
    let mut rest = n.unsigned_abs();
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for i in 0..len {
        buf[4 + i] = digits[len - 1 - i];
    }
    buf[4 + len] = b'\n';
    &buf[..5 + len]
}

/// In a service's child between fork and exec, once it leads its new
/// session: tells the guardian behind `fd` to sweep this session when
/// tapmesh dies. Only async-signal-safe calls. A write of under
/// `PIPE_BUF` bytes is atomic, so lines from children starting at once
/// never interleave.
pub fn register_self(fd: RawFd) {
    let mut buf = [0u8; LINE_MAX];
    // SAFETY: getpid, signal and write are async-signal-safe; `buf` is on
    // this stack. SIGPIPE is ignored around the write so a dead guardian
    // fails the write instead of killing the service before it starts.
    unsafe {
        let line = format_line(&mut buf, b"add ", libc::getpid());
        let previous = libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        libc::write(fd, line.as_ptr().cast(), line.len());
        libc::signal(libc::SIGPIPE, previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_formatted_without_allocating() {
        let mut buf = [0u8; LINE_MAX];
        assert_eq!(format_line(&mut buf, b"add ", 0), b"add 0\n");
        assert_eq!(format_line(&mut buf, b"del ", 4194304), b"del 4194304\n");
        assert_eq!(
            format_line(&mut buf, b"add ", i32::MAX),
            b"add 2147483647\n"
        );
    }
}
