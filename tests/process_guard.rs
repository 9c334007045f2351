//! Stopping a service: SIGKILL lands at `stop_grace`, and
//! `service.stopped` says how the service ended.
//!
//! A process is identified by pid and start time (field 22 of
//! /proc/PID/stat), so a reused pid never passes for a survivor; a zombie
//! counts as gone (on some machines init never reaps orphans).

use std::time::{Duration, Instant};

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
    assert!(
        gone_after >= Duration::from_millis(500) && gone_after < Duration::from_millis(800),
        "killed {gone_after:?} after the SIGTERM (grace 500 ms)"
    );
    assert!(
        down_took < Duration::from_millis(800),
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
