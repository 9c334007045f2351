//! No process outlives tapmesh, however it ends: SIGKILL of `tapmesh up`
//! (the guardian sweeps), SIGKILL of tapmesh and its guardian both (the
//! next `tapmesh up` or `serve` cleans up and says so), a test that panics holding an
//! environment; and stopping a service: SIGKILL lands at `stop_grace`, and
//! `service.stopped` says how the service ended.
//!
//! A process is identified by pid and start time (field 22 of
//! /proc/PID/stat), so a reused pid never passes for a survivor; a zombie
//! counts as gone (on some machines init never reaps orphans).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{of_type, read_events};
use serde_json::Value;
use tapmesh::{Environment, EventKind, Spec};

/// A process as seen at one moment: alive while the same pid has the same
/// start time and is not a zombie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proc {
    pid: i32,
    start_time: u64,
}

/// (state, session, start time) of `pid`, from /proc/PID/stat.
fn stat(pid: i32) -> Option<(char, i32, u64)> {
    let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = line[line.rfind(')')? + 2..].split(' ').collect();
    Some((
        fields[0].chars().next()?,
        fields[3].parse().ok()?,
        fields[19].parse().ok()?,
    ))
}

impl Proc {
    fn of(pid: i32) -> Proc {
        let (_, _, start_time) = stat(pid).unwrap_or_else(|| panic!("no process {pid}"));
        Proc { pid, start_time }
    }

    fn alive(&self) -> bool {
        // SAFETY: signal 0 only asks whether the pid exists.
        let exists = unsafe { libc::kill(self.pid, 0) } == 0;
        exists
            && stat(self.pid).is_some_and(|(state, _, start)| {
                start == self.start_time && !matches!(state, 'Z' | 'X')
            })
    }
}

/// Every live process of session `sid`.
fn session_members(sid: i32) -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let (state, session, start_time) = stat(pid)?;
            (session == sid && !matches!(state, 'Z' | 'X')).then_some(Proc { pid, start_time })
        })
        .collect()
}

/// A service that forks: a plain background child, one that ignores
/// SIGTERM, one two levels down (sh → sh → sleep), and one in a process
/// group of its own (so killing the service's group alone would miss it).
/// Each writes its pid to a file in `$PIDS`.
const FORKER: &str = r#"
name: forker
services:
  forker:
    type: script
    env: { PIDS: "@PIDS@" }
    script: |
      sleep 1000 & echo $! > "$PIDS/plain.tmp"; mv "$PIDS/plain.tmp" "$PIDS/plain"
      (trap '' TERM; exec sleep 1001) & echo $! > "$PIDS/deaf.tmp"; mv "$PIDS/deaf.tmp" "$PIDS/deaf"
      sh -c 'sh -c "sleep 1002 & echo \$! > \"\$PIDS/deep.tmp\"; mv \"\$PIDS/deep.tmp\" \"\$PIDS/deep\"; wait" & wait' &
      python3 -c 'import os; os.setpgid(0, 0); os.execvp("sleep", ["sleep", "1003"])' & echo $! > "$PIDS/own_group.tmp"; mv "$PIDS/own_group.tmp" "$PIDS/own_group"
      wait
"#;

const CHILDREN: [&str; 4] = ["plain", "deaf", "deep", "own_group"];

/// A `tapmesh up` that a failing test does not leave running.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Processes a failing test must not leave running (once the guardian is
/// killed, nothing else would stop them).
struct KillOnDrop(Vec<Proc>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for p in self.0.iter().filter(|p| p.alive()) {
            sigkill(p.pid);
        }
    }
}

/// A temporary home for one `tapmesh up`: its spec, environment directory,
/// state directory (crash records) and the children's pid files.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(spec: &str) -> Home {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        std::fs::create_dir(&pids).unwrap();
        let spec = spec.replace("@PIDS@", pids.to_str().unwrap());
        std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
        Home { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tapmesh up` of `spec_file` with this home's state directory.
    fn up(&self, spec_file: &Path, env_dir: &str, extra: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tapmesh"));
        command
            .arg("up")
            .arg(spec_file)
            .arg("--dir")
            .arg(self.path(env_dir))
            .args(extra)
            .env("XDG_STATE_HOME", self.path("state"))
            .stdin(Stdio::null());
        command
    }

    fn start(&self) -> Running {
        Running(
            self.up(&self.path("spec.yaml"), "env", &[])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    fn events(&self) -> Vec<Value> {
        read_events(&self.path("env/events.jsonl"))
    }

    /// Waits until the environment is up and every child has written its
    /// pid; returns the service's leader and the children.
    fn wait_for_children(&self, tapmesh: &mut Running) -> (Proc, BTreeMap<&'static str, Proc>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = tapmesh.0.try_wait().unwrap() {
                panic!("tapmesh exited ({status}): {:#?}", self.events());
            }
            let events = self.events();
            let pids: BTreeMap<&str, i32> = CHILDREN
                .iter()
                .filter_map(|name| {
                    let text = std::fs::read_to_string(self.path("pids").join(name)).ok()?;
                    Some((*name, text.trim().parse().ok()?))
                })
                .collect();
            if !of_type(&events, "environment.up").is_empty() && pids.len() == CHILDREN.len() {
                let leader = of_type(&events, "service.starting")[0]["lifecycle"]["pid"]
                    .as_i64()
                    .unwrap() as i32;
                let children = pids.into_iter().map(|(n, p)| (n, Proc::of(p))).collect();
                return (Proc::of(leader), children);
            }
            assert!(
                Instant::now() < deadline,
                "not up with every child within 30 s: {events:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The crash records under the state directory.
    fn records(&self) -> Vec<(PathBuf, Value)> {
        let Ok(dir) = std::fs::read_dir(self.path("state/tapmesh/.running")) else {
            return Vec::new();
        };
        dir.filter_map(|e| {
            let path = e.ok()?.path();
            let record = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            Some((path, record))
        })
        .collect()
    }
}

fn sigkill(pid: i32) {
    // SAFETY: kill(2) on a process this test started (or its guardian).
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

fn survivors<'a>(procs: impl IntoIterator<Item = (&'a str, Proc)>) -> Vec<(&'a str, Proc)> {
    procs.into_iter().filter(|(_, p)| p.alive()).collect()
}

#[test]
fn sigkill_of_tapmesh_up_leaves_no_process_at_any_depth() {
    let home = Home::new(FORKER);
    let mut tapmesh = home.start();
    let (leader, children) = home.wait_for_children(&mut tapmesh);
    let records = home.records();
    assert_eq!(records.len(), 1, "one crash record: {records:#?}");
    let guardian = Proc::of(records[0].1["guardian"]["pid"].as_i64().unwrap() as i32);
    assert!(guardian.alive());
    // Every child runs in the service's session, and the last one in a
    // process group of its own.
    for (name, child) in &children {
        assert_eq!(stat(child.pid).unwrap().1, leader.pid, "{name}");
    }

    tapmesh.0.kill().unwrap();
    tapmesh.0.wait().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let left = survivors(
        children
            .iter()
            .map(|(n, p)| (*n, *p))
            .chain([("leader", leader), ("guardian", guardian)]),
    );
    assert!(left.is_empty(), "still running 2 s after SIGKILL: {left:?}");
    assert!(session_members(leader.pid).is_empty());
}

/// A `tapmesh up` of [`FORKER`] killed with its guardian: what its
/// service forked is still running.
struct Crash {
    tapmesh_pid: u32,
    leader: Proc,
    children: BTreeMap<&'static str, Proc>,
    /// How many processes of the service's session were left running.
    left_over: usize,
    record_path: PathBuf,
    _cleanup: KillOnDrop,
}

fn crash_with_guardian(home: &Home) -> Crash {
    let mut tapmesh = home.start();
    let (leader, children) = home.wait_for_children(&mut tapmesh);
    let cleanup = KillOnDrop(session_members(leader.pid));
    let (record_path, record) = home.records().pop().expect("a crash record");
    assert_eq!(record["owner"]["pid"], tapmesh.0.id());
    assert_eq!(record["services"]["forker"]["pid"], leader.pid);
    let guardian = Proc::of(record["guardian"]["pid"].as_i64().unwrap() as i32);

    // The guardian first, so nothing sweeps when tapmesh goes.
    sigkill(guardian.pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    while guardian.alive() {
        assert!(Instant::now() < deadline, "the guardian survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    tapmesh.0.kill().unwrap();
    tapmesh.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // The leader had the parent-death signal; what it forked did not.
    assert!(!leader.alive());
    let left_over = session_members(leader.pid);
    assert!(
        survivors(children.iter().map(|(n, p)| (*n, *p))).len() == CHILDREN.len(),
        "the children should have outlived both: {left_over:?}"
    );
    Crash {
        tapmesh_pid: tapmesh.0.id(),
        leader,
        children,
        left_over: left_over.len(),
        record_path,
        _cleanup: cleanup,
    }
}

impl Crash {
    /// The next start printed `prefix` and one line about the crash, and
    /// killed every leftover.
    fn assert_cleaned_up(&self, home: &Home, prefix: &str, out: &std::process::Output) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let reports: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("was left by a tapmesh that died"))
            .collect();
        assert_eq!(
            reports,
            [format!(
                "{prefix}: environment forker ({}) was left by a tapmesh that died (pid {}): killed {} processes still running",
                home.path("env").display(),
                self.tapmesh_pid,
                self.left_over
            )],
            "{stderr}"
        );
        let left = survivors(self.children.iter().map(|(n, p)| (*n, *p)));
        assert!(left.is_empty(), "not cleaned up: {left:?}");
        assert!(session_members(self.leader.pid).is_empty());
        // Its record is gone, and the next run removed its own on the way out.
        assert!(!self.record_path.exists());
        assert!(home.records().is_empty(), "{:#?}", home.records());
    }
}

#[test]
fn a_run_killed_with_its_guardian_is_cleaned_up_and_reported_by_the_next_tapmesh_up() {
    let home = Home::new(FORKER);
    let crash = crash_with_guardian(&home);
    // Another spec, the same state directory.
    std::fs::write(
        home.path("quiet.yaml"),
        "name: quiet\nservices:\n  idle: { type: script, script: sleep 1000 }\n",
    )
    .unwrap();
    let out = home
        .up(&home.path("quiet.yaml"), "quiet", &["--for", "1s"])
        .output()
        .unwrap();
    crash.assert_cleaned_up(&home, "tapmesh", &out);
}

#[test]
fn a_run_killed_with_its_guardian_is_cleaned_up_and_reported_by_the_next_tapmesh_serve() {
    let home = Home::new(FORKER);
    let crash = crash_with_guardian(&home);
    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout",
            "500ms",
        ])
        .arg("--state-dir")
        .arg(home.path("state/tapmesh"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    crash.assert_cleaned_up(&home, "tapmesh serve", &out);
}

#[test]
fn a_test_that_panics_holding_an_environment_leaves_no_process() {
    let home = Home::new(FORKER);
    let spec = Spec::from_path(&home.path("spec.yaml")).unwrap();
    let state = home.path("state");
    let pids = home.path("pids");
    let leader = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let env = Environment::builder(spec)
                .state_dir(state)
                .up()
                .await
                .unwrap();
            while CHILDREN.iter().any(|c| !pids.join(c).exists()) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let leader = env.process_groups()[0];
            std::fs::write(pids.join("leader"), leader.to_string()).unwrap();
            panic!("the test failed while holding the environment");
        })
    })
    .join();
    assert!(leader.is_err(), "the thread should have panicked");
    let leader: i32 = std::fs::read_to_string(home.path("pids/leader"))
        .unwrap()
        .parse()
        .unwrap();
    // Dropped while unwinding: every session was SIGKILLed then (the
    // processes take a moment to die).
    let deadline = Instant::now() + Duration::from_millis(500);
    while !session_members(leader).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running 500 ms after the panic: {:?}",
            session_members(leader)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(home.records().is_empty(), "{:#?}", home.records());
}

/// Brings `spec` up in a temporary state directory; returns it with the
/// leader's pid.
async fn up(spec: &str) -> (Environment, tempfile::TempDir, i32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    let env = Environment::builder(Spec::from_path(&path).unwrap())
        .state_dir(dir.path().join("state"))
        .up()
        .await
        .unwrap();
    let leader = env.process_groups()[0];
    (env, dir, leader)
}

/// The `lifecycle` of the one `service.stopped` event.
fn stopped(events: &[std::sync::Arc<tapmesh::events::Event>]) -> tapmesh::events::LifecycleInfo {
    let stopped: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::ServiceStopped)
        .collect();
    assert_eq!(stopped.len(), 1, "{events:#?}");
    stopped[0].lifecycle().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_ignores_sigterm_is_killed_at_its_grace_and_says_so() {
    let (env, _dir, leader) = up(
        "name: deaf\nservices:\n  deaf:\n    type: script\n    script: trap '' TERM; sleep 1000\n    stop_grace: 500ms\n",
    )
    .await;
    let members = session_members(leader);
    assert!(!members.is_empty());
    let log = env.log().clone();
    // Watched from a thread of its own, every 2 ms, while down() runs.
    let (began_tx, began_rx) = std::sync::mpsc::channel::<Instant>();
    let watcher = std::thread::spawn(move || {
        let began = began_rx.recv().unwrap();
        while members.iter().any(Proc::alive) {
            assert!(began.elapsed() < Duration::from_secs(10), "never killed");
            std::thread::sleep(Duration::from_millis(2));
        }
        began.elapsed()
    });
    let began = Instant::now();
    began_tx.send(began).unwrap();
    env.down().await.unwrap();
    let down_took = began.elapsed();
    let gone_after = watcher.join().unwrap();
    // Not before its grace; the upper bounds only say it was not left to
    // run (a loaded machine may take a while to schedule the kill).
    assert!(
        gone_after >= Duration::from_millis(500) && gone_after < Duration::from_secs(5),
        "killed {gone_after:?} after the SIGTERM (grace 500 ms)"
    );
    assert!(
        down_took < Duration::from_secs(5),
        "down took {down_took:?}"
    );
    let info = stopped(&log.since(1).unwrap());
    assert_eq!(info.signal.as_deref(), Some("SIGKILL"), "{info:?}");
    assert_eq!(info.exit_code, None);
    assert_eq!(info.pid, Some(leader as u32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_stopped_by_sigterm_says_how_it_ended() {
    // `exec`: the sleep is the leader and dies of the signal itself (a
    // shell waiting on its child would exit with status 143 instead).
    let (env, _dir, leader) = up(
        "name: polite\nservices:\n  polite:\n    type: script\n    script: exec sleep 1000\n    stop_grace: 5s\n",
    )
    .await;
    let log = env.log().clone();
    let began = Instant::now();
    env.down().await.unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(1),
        "waited {:?} on a service that obeyed SIGTERM",
        began.elapsed()
    );
    assert!(session_members(leader).is_empty());
    let info = stopped(&log.since(1).unwrap());
    assert_eq!(info.signal.as_deref(), Some("SIGTERM"), "{info:?}");
    assert_eq!(info.exit_code, None);
}
