//! Shared helpers for the integration tests: run the real `tapmesh` binary
//! and read the events it writes.
#![allow(dead_code)] // each test binary uses its own subset

pub mod daemon;
pub mod kafka;
pub mod nginx;
pub mod postgres;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `tapmesh proxy` process writing its events to a temporary file.
pub struct ProxyProcess {
    child: Child,
    pub addr: SocketAddr,
    pub events_path: PathBuf,
    /// Every line the proxy has logged so far.
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl ProxyProcess {
    /// Starts `tapmesh proxy --listen 127.0.0.1:0 --target TARGET` with
    /// `extra` arguments and waits until it is listening.
    pub fn start(target: SocketAddr, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let events_path = dir.path().join("events.jsonl");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
            .args([
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--target",
                &target.to_string(),
                "--events",
            ])
            .arg(&events_path)
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tapmesh");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
        let lines = std::sync::Arc::clone(&log);
        // Keep draining stderr for the proxy's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line.clone());
                if let Some(addr) = listening_address(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                if std::env::var_os("TAPMESH_TEST_VERBOSE").is_some() {
                    eprintln!("[proxy] {line}");
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the proxy did not report its listening address");
        Self {
            child,
            addr,
            events_path,
            log,
            _dir: dir,
        }
    }

    /// The lines the proxy has logged so far (stderr, `RUST_LOG=info`).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, waits for a clean exit and returns every event written.
    pub fn stop(mut self) -> Vec<Value> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "the proxy exited with {status}");
        read_events(&self.events_path)
    }

    /// The events written so far (the file is flushed as events arrive).
    pub fn events(&self) -> Vec<Value> {
        read_events(&self.events_path)
    }

    /// Polls the event file until `pred` holds for some event.
    pub fn wait_for_event(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no event {what} within 30 s; events: {:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the proxy's `proxy listening listen=ADDR …` log line.
pub fn listening_address(log_line: &str) -> Option<SocketAddr> {
    let rest = log_line.split("listen=").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// Parses every complete line of the event file. The writer may be midway
/// through a line while a test reads, so a last line without its newline is
/// not yet an event.
pub fn read_events(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => "",
    };
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}")))
        .collect()
}

/// The events of one type, in order.
pub fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// Checks seqs run 1, 2, 3 … with no gap.
pub fn assert_gap_free(events: &[Value]) {
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "seq gap at index {i}: {e}");
    }
}

/// Runs curl with `args`, returning its stdout; panics with stderr on failure.
pub fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .expect("curl is not installed: apt-get install -y curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn url(proxy: &ProxyProcess, path: &str) -> String {
    format!("http://{}{}", proxy.addr, path)
}

/// Stops the proxy once `n` requests are logged; returns all events and the
/// requests in connection order (in log order within a connection).
pub fn requests_after(proxy: ProxyProcess, n: usize) -> (Vec<Value>, Vec<Value>) {
    proxy.wait_for_event(&format!("{n} request.completed"), |_| {
        of_type(&proxy.events(), "request.completed").len() >= n
    });
    // Closed connections too, so the file holds every event of the run.
    let events = proxy.stop();
    assert_gap_free(&events);
    let mut requests: Vec<Value> = of_type(&events, "request.completed")
        .into_iter()
        .map(|e| e["request"].clone())
        .collect();
    assert_eq!(requests.len(), n, "{events:#?}");
    // The proxy forwards before it logs, so one client's exchange can be
    // logged after the next client's; connection ids follow accept order.
    requests.sort_by_key(|r| r["connection"].as_u64());
    (events, requests)
}

/// The Python with the test peers installed (see scripts/test.sh).
pub fn peer_python() -> std::path::PathBuf {
    let python = std::env::var_os("TAPMESH_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
        });
    assert!(
        python.exists(),
        "{} not found: run scripts/test.sh, or python3 -m venv .venv && .venv/bin/pip install -r tests/peers/requirements.txt",
        python.display()
    );
    python
}

/// Waits (up to 10 s) until none of these process groups has a live
/// process left, and fails naming the first that still has one. A zombie
/// is not live: it has exited and waits only for its new parent (init, on
/// some machines slow to reap orphans) to collect it.
pub fn assert_no_process_left(groups: &[i32]) {
    assert!(!groups.is_empty(), "no process group to check");
    let deadline = Instant::now() + Duration::from_secs(10);
    for &pgid in groups {
        while let Some(pid) = live_member(pgid) {
            assert!(
                Instant::now() < deadline,
                "process group {pgid} is still alive (pid {pid})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A process of group `pgid` that has not exited, from /proc.
fn live_member(pgid: i32) -> Option<i32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // After the command's closing parenthesis: state ppid pgrp …
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let live = !matches!(fields.first(), Some(&("Z" | "X" | "x")));
        if live && fields.get(2) == Some(&pgid.to_string().as_str()) {
            return Some(pid);
        }
    }
    None
}

/// Waits up to `within` for `child` to exit by itself; on timeout fails
/// with `what()` (say, the events so far).
pub fn wait_exit(
    child: &mut Child,
    within: Duration,
    what: impl Fn() -> String,
) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not exit within {within:?}: {}",
            child.id(),
            what()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM to `child`, then [`wait_exit`].
pub fn terminate(
    child: &mut Child,
    within: Duration,
    what: impl Fn() -> String,
) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    wait_exit(child, within, what)
}

/// A free port below the kernel's ephemeral range, for a server the test
/// starts itself: a port taken with `bind(0)` and let go may be reused by
/// an outgoing connection (or sit in TIME_WAIT) before the server binds it.
pub fn free_port_below_ephemeral() -> u16 {
    use std::hash::BuildHasher;
    let random = std::hash::RandomState::new();
    (0..200u64)
        .map(|i| 20_000 + (random.hash_one(i) % 12_000) as u16)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port below 32000")
}

/// Every file under `dir`, however deep, appended to `out`.
pub fn files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files(&path, out);
        } else if kind.is_file() {
            out.push(path);
        }
    }
}
