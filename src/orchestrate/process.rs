//! Starting one service process and reading its output.
//!
//! Each service leads its own session (and so its own process group, same
//! id), so stopping it reaches everything it started (`sh -c` children,
//! workers, jobs a shell put in groups of their own), and asks the kernel
//! to kill it if tapmesh dies (`PR_SET_PDEATHSIG`). What it forks is the
//! guardian's to kill then (see `custody`).

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::events::{EventDraft, EventKind, EventLog, Payload, ServiceLogInfo};

/// Lines kept for a failure report.
pub const LOG_TAIL_LINES: usize = 50;
/// A longer line is cut here in events and the tail (the log file keeps it whole).
const MAX_LINE: usize = 8 << 10;

/// What to run: argv, environment, directory, and as whom.
#[derive(Debug, Clone)]
pub struct Launchable {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub dir: PathBuf,
    /// Another user than tapmesh's (a server that refuses root).
    pub run_as: Option<RunAs>,
    /// Written to its standard input, which then closes (a secret that
    /// must not sit in a file or show in its command line); none: no input.
    pub stdin: Option<String>,
}

/// A user (and its primary group) a process runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// The account `name`, if the system has it.
    pub fn named(name: &str) -> Option<Self> {
        let name = std::ffi::CString::new(name).ok()?;
        // SAFETY: getpwnam reads a NUL-terminated name and returns null or a
        // pointer to a static record, read at once (nothing else here calls
        // the getpw* functions concurrently with this short read).
        unsafe {
            let entry = libc::getpwnam(name.as_ptr());
            (!entry.is_null()).then(|| Self {
                uid: (*entry).pw_uid,
                gid: (*entry).pw_gid,
            })
        }
    }
}

/// The last lines a service wrote, shared by its output readers.
#[derive(Clone, Default)]
pub struct LogTail(Arc<Mutex<VecDeque<String>>>);

impl LogTail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().expect("log tail lock");
        if lines.len() == LOG_TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("log tail lock")
            .iter()
            .cloned()
            .collect()
    }
}

/// Held from a fork until its child has exec'd (std's `spawn` returns only
/// then), and while a service's reserved port is let go. A forked child
/// holds a copy of every descriptor until its exec closes them, so a port
/// let go while another child sat between fork and exec stayed listening
/// in that child: the service's readiness probe was answered by the copy
/// and its own bind failed with EADDRINUSE (seen under load).
static FORK: Mutex<()> = Mutex::new(());

/// Takes [`FORK`]; every spawn of the orchestrator goes through it.
pub fn forking() -> std::sync::MutexGuard<'static, ()> {
    FORK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `command`'s output, like [`Command::output`] (stdout and stderr
/// captured), forked under [`FORK`].
pub async fn output(command: &mut Command) -> std::io::Result<std::process::Output> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = {
        let _forking = forking();
        command.spawn()
    };
    child?.wait_with_output().await
}

/// Spawns `what` as the leader of a new session, registered with the
/// guardian behind `guardian_fd`, its output going to `log_file`,
/// `service.log` events and `tail`; each line is also offered to
/// `matched` (a log readiness pattern), which is set once one matches.
/// `reserved` (the service's ports, held until now) are let go just
/// before the fork, under [`FORK`].
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    reserved: &mut Vec<std::net::TcpListener>,
    service: &Arc<str>,
    what: &Launchable,
    log_file: &Path,
    events: &EventLog,
    tail: &LogTail,
    pattern: Option<regex::Regex>,
    matched: watch::Sender<bool>,
    guardian_fd: Option<std::os::fd::RawFd>,
) -> std::io::Result<(Child, OutputReaders)> {
    let mut command = session_command(what, guardian_fd)?;
    let spawned = {
        // Under the fork lock, so no other child can be holding a copy of
        // these ports when the service binds them.
        let _forking = forking();
        reserved.clear();
        command.spawn()
    };
    let mut child = spawned.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("starting {:?} in {}: {e}", what.argv[0], what.dir.display()),
        )
    })?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_file)?;
    // Lines are small and the file local: a plain write, under a lock only
    // because stdout and stderr share the file.
    let file = Arc::new(Mutex::new(file));
    let pattern = pattern.map(Arc::new);
    let mut readers = OutputReaders(Vec::new());
    if let Some(out) = child.stdout.take() {
        readers.0.push(tokio::spawn(read_lines(
            out,
            "stdout",
            service.clone(),
            file.clone(),
            events.clone(),
            tail.clone(),
            pattern.clone(),
            matched.clone(),
        )));
    }
    if let Some(err) = child.stderr.take() {
        readers.0.push(tokio::spawn(read_lines(
            err,
            "stderr",
            service.clone(),
            file,
            events.clone(),
            tail.clone(),
            pattern,
            matched,
        )));
    }
    if let (Some(input), Some(mut stdin)) = (what.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            // A process that exits without reading it is its own failure.
            let _ = stdin.write_all(input.as_bytes()).await;
        });
    }
    Ok((child, readers))
}

/// `what` as a command whose child leads a new session, gets SIGKILL
/// when tapmesh dies, and registers itself with the guardian.
fn session_command(
    what: &Launchable,
    guardian_fd: Option<std::os::fd::RawFd>,
) -> std::io::Result<Command> {
    let (program, args) = what
        .argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("an empty command"))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(&what.env)
        .current_dir(&what.dir)
        .stdin(if what.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(user) = what.run_as {
        // std drops root's supplementary groups with this.
        command.uid(user.uid).gid(user.gid);
    }
    let parent = std::process::id() as i32;
    // SAFETY: only async-signal-safe calls between fork and exec (setsid,
    // prctl, getppid, kill, and the guardian's write).
    unsafe {
        command.pre_exec(move || {
            // Not `process_group(0)`: a group leader may not call setsid.
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // tapmesh died before the prctl: no signal would ever come.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            if let Some(fd) = guardian_fd {
                super::guardian::register_self(fd);
            }
            Ok(())
        });
    }
    Ok(command)
}

/// The tasks reading a process's output.
pub struct OutputReaders(Vec<tokio::task::JoinHandle<()>>);

impl OutputReaders {
    /// Waits (at most `limit`) until the output is read to its end, so a
    /// failure report has the last lines a process wrote before it exited.
    pub async fn finish(self, limit: std::time::Duration) {
        let all = futures_util::future::join_all(self.0);
        let _ = tokio::time::timeout(limit, all).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_lines(
    stream: impl AsyncRead + Unpin,
    name: &'static str,
    service: Arc<str>,
    file: Arc<Mutex<std::fs::File>>,
    events: EventLog,
    tail: LogTail,
    pattern: Option<Arc<regex::Regex>>,
    matched: watch::Sender<bool>,
) {
    let mut reader = BufReader::new(stream);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let _ = std::io::Write::write_all(&mut *file.lock().expect("log file lock"), &raw);
        let mut line = String::from_utf8_lossy(&raw)
            .trim_end_matches(['\n', '\r'])
            .to_string();
        if line.len() > MAX_LINE {
            let mut cut = MAX_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        if let Some(pattern) = &pattern {
            if !*matched.borrow() && pattern.is_match(&line) {
                let _ = matched.send(true);
            }
        }
        tail.push(line.clone());
        let mut draft = EventDraft::now(
            EventKind::ServiceLog,
            Payload::Log(ServiceLogInfo {
                stream: name.to_string(),
                line,
            }),
        );
        draft.service = Some(service.clone());
        events.append(draft);
    }
}

/// Sends `signal` to the process group `pgid`.
pub fn signal_group(pgid: i32, signal: i32) {
    if pgid > 0 {
        // SAFETY: kill(2) on a process group this environment started.
        unsafe { libc::kill(-pgid, signal) };
    }
}
