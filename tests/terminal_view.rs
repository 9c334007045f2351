//! What a person sees of `tapmesh up`: the real binary in a real
//! pseudo-terminal (tmux), on a spec with a `cargo` service built from
//! scratch and two script services; and `tapmesh up | head`, whose reader
//! goes away.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{of_type, read_events};
use serde_json::Value;

/// A workspace whose binary needs five units (two libraries, a build
/// script compiled and run, the binary); the build script takes a couple
/// of seconds, so the build is seen under way.
const WORKSPACE: &[(&str, &str)] = &[
    (
        "ws/Cargo.toml",
        "[workspace]\nmembers = [\"app\", \"one\", \"two\"]\nresolver = \"2\"\n",
    ),
    (
        "ws/one/Cargo.toml",
        "[package]\nname = \"one\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    ),
    ("ws/one/src/lib.rs", "pub fn one() -> u32 { 1 }\n"),
    (
        "ws/two/Cargo.toml",
        "[package]\nname = \"two\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\none = { path = \"../one\" }\n",
    ),
    ("ws/two/src/lib.rs", "pub fn two() -> u32 { one::one() + 1 }\n"),
    (
        "ws/app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ntwo = { path = \"../two\" }\n",
    ),
    (
        "ws/app/build.rs",
        "fn main() {\n    std::thread::sleep(std::time::Duration::from_secs(2));\n    println!(\"cargo:rerun-if-changed=build.rs\");\n}\n",
    ),
    (
        "ws/app/src/main.rs",
        "fn main() { println!(\"two is {}\", two::two()); }\n",
    ),
];

/// `tool` is built, runs once and completes; `web` waits for it, then
/// serves; `caller` calls `web` through its observed edge.
const SPEC: &str = r#"
name: termview
services:
  tool:
    type: cargo
    package: ws/app
    job: true
  web:
    type: script
    script: 'exec python3 -m http.server --bind 127.0.0.1 $PORT'
    ingresses: { default: { protocol: http, ready: { path: / } } }
    depends_on: { tool: completed }
  caller:
    type: script
    script: 'while true; do curl -s -o /dev/null http://$WEB_HOSTPORT/; sleep 0.3; done'
    egresses: { web: { service: web } }
"#;

/// Two services that start at once: their lines come before the third.
const SMALL_SPEC: &str = r#"
name: piped
services:
  web:
    type: script
    script: 'exec python3 -m http.server --bind 127.0.0.1 $PORT'
    ingresses: { default: { protocol: http, ready: { path: / } } }
  sleeper: { type: script, script: 'exec sleep 300' }
"#;

struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new(spec: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in WORKSPACE {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tapmesh up` with a cache and state of this scene's own (a fresh
    /// build), its environment in `env_dir`.
    fn up(&self, env_dir: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tapmesh"));
        command
            .arg("up")
            .arg(self.path("spec.yaml"))
            .arg("--dir")
            .arg(self.path(env_dir))
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("XDG_STATE_HOME", self.path("state"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        command
    }
}

/// A tmux server of the test's own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` (a shell line) in a 200×50 pane.
    fn start(command: &str) -> Self {
        let socket = format!("tapmesh-test-{}-{}", std::process::id(), unique());
        let tmux = Self { socket };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-s", "main", "-x", "200", "-y", "50"])
            .arg(command)
            .status()
            .expect("tmux runs (scripts/test.sh installs it)");
        assert!(status.success());
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    /// The pane, its history included.
    fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", "main"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &str) {
        self.command()
            .args(["send-keys", "-t", "main", keys])
            .status()
            .unwrap();
    }

    /// Every screen seen until `done` holds for one (or `timeout` passes).
    fn watch(&self, timeout: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut screens = Vec::new();
        loop {
            let screen = self.screen();
            let finished = done(&screen);
            screens.push(screen);
            if finished || Instant::now() > deadline {
                return screens;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// `command` as one shell line, then a marker with its exit status, and
/// the pane kept open.
fn shell_line(command: &Command) -> String {
    let mut line = String::from("env");
    for (key, value) in command.get_envs() {
        let value = value.map(|v| v.to_string_lossy().into_owned());
        line.push_str(&format!(
            " {}={}",
            key.to_string_lossy(),
            value.unwrap_or_default()
        ));
    }
    line.push(' ');
    line.push_str(&command.get_program().to_string_lossy());
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line + "; echo tapmesh-exited-$?; sleep 600"
}

/// The table says up, and a traffic event's line is below it.
fn traffic_below_the_table(screen: &str) -> bool {
    screen
        .find("termview: up after")
        .is_some_and(|up| screen[up..].contains("request.completed"))
}

fn is_log_line(line: &str) -> bool {
    line.contains(" INFO ") || line.contains("tapmesh::")
}

/// A table line for `service` in `state`: `  web  ready  0 …`.
fn has_row(screen: &str, service: &str, state: &str) -> bool {
    screen.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.len() >= 2 && words[0] == service && words[1] == state
    })
}

#[test]
fn the_table_shows_the_start_and_the_build_then_events_follow_without_log_lines() {
    let scene = Scene::new(SPEC);
    let tmux = Tmux::start(&shell_line(&scene.up("env")));
    let screens = tmux.watch(Duration::from_secs(300), |s| {
        traffic_below_the_table(s) || s.contains("tapmesh-exited-")
    });
    let last = screens.last().unwrap();
    assert!(traffic_below_the_table(last), "no traffic once up: {last}");

    // While starting: the table, every service in it, the build under way.
    let starting: Vec<&String> = screens
        .iter()
        .filter(|s| s.contains("termview: starting"))
        .collect();
    assert!(!starting.is_empty(), "no table while starting: {last}");
    assert!(
        starting.iter().any(|s| s.contains("SERVICE")
            && has_row(s, "tool", "building")
            && has_row(s, "web", "waiting")
            && has_row(s, "caller", "waiting")),
        "{starting:#?}"
    );
    assert!(
        starting
            .iter()
            .any(|s| s.contains("waits for tool (building; to be completed)")),
        "{starting:#?}"
    );
    let progress = regex::Regex::new(r"tool +building (\d+)/(\d+)").unwrap();
    let seen: Vec<(u32, u32)> = starting
        .iter()
        .flat_map(|s| progress.captures_iter(s))
        .map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap()))
        .collect();
    assert!(!seen.is_empty(), "no build progress shown: {starting:#?}");
    // The events behind it advance: at least two counts, the last all five.
    let events = read_events(&scene.path("env/events.jsonl"));
    let compiled: Vec<u64> = of_type(&events, "build.progress")
        .iter()
        .map(|e| e["lifecycle"]["build"]["compiled"].as_u64().unwrap_or(0))
        .collect();
    let mut distinct = compiled.clone();
    distinct.dedup();
    assert!(distinct.len() >= 2, "{compiled:?}");
    assert_eq!(compiled.last(), Some(&5), "{compiled:?}");

    // Then up: the same table, redrawn in place (once on the screen), with
    // the endpoints, and events below it.
    assert!(last.contains("termview: up after"), "{last}");
    assert_eq!(last.matches("SERVICE").count(), 1, "{last}");
    assert!(has_row(last, "tool", "completed"), "{last}");
    assert!(has_row(last, "web", "ready"), "{last}");
    assert!(has_row(last, "caller", "ready"), "{last}");
    assert!(
        regex::Regex::new(r"web +ready +0 +127\.0\.0\.1:\d+ +127\.0\.0\.1:\d+")
            .unwrap()
            .is_match(last),
        "{last}"
    );

    // No log line of tapmesh's on the terminal; they are in its file.
    for screen in &screens {
        assert!(!screen.lines().any(is_log_line), "{screen}");
    }
    let logged = std::fs::read_to_string(scene.path("env/tapmesh.log")).unwrap();
    assert!(logged.contains("cargo service built"), "{logged}");

    tmux.keys("C-c");
    let screens = tmux.watch(Duration::from_secs(60), |s| s.contains("tapmesh-exited-"));
    let last = screens.last().unwrap();
    assert!(
        last.contains("tapmesh: SIGINT; stopping termview"),
        "{last}"
    );
    assert!(last.contains("tapmesh-exited-0"), "{last}");
    assert!(!last.lines().any(is_log_line), "{last}");
}

#[test]
fn with_verbose_tapmeshs_log_lines_are_on_stderr() {
    // The build logs a line (INFO) of its own.
    let scene = Scene::new(SPEC);
    let mut up = scene.up("env");
    up.arg("-v");
    // On the terminal, through the view.
    let tmux = Tmux::start(&shell_line(&up));
    let screens = tmux.watch(Duration::from_secs(300), |s| {
        s.contains("termview: up after") || s.contains("tapmesh-exited-")
    });
    let last = screens.last().unwrap();
    assert!(last.contains("termview: up after"), "{last}");
    assert!(last.lines().any(is_log_line), "{last}");
    assert!(!scene.path("env/tapmesh.log").exists());
    drop(tmux);

    // Elsewhere: stderr has them, stdout none.
    let out = scene
        .up("env2")
        .args(["-v", "--for", "1s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().any(is_log_line), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.lines().any(is_log_line), "{stdout}");
    assert!(stdout.contains("environment termview is up"), "{stdout}");
}

/// Pids of the services' processes (each leads its own session).
fn service_sessions(events: &[Value]) -> Vec<i32> {
    of_type(events, "service.starting")
        .iter()
        .filter_map(|e| e["lifecycle"]["pid"].as_i64())
        .map(|pid| pid as i32)
        .collect()
}

/// Processes of session `sid` still running (not zombies).
fn session_members(sid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the command's `)`: state, ppid, pgrp, session.
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
            fields[3].parse() == Ok(sid) && !matches!(fields[0], "Z" | "X")
        })
        .collect()
}

fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stderr read to its end on a thread of its own.
fn read_all(stream: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = BufReader::new(stream).read_to_string(&mut text);
        text
    })
}

#[test]
fn up_piped_into_head_stops_by_itself_when_head_is_done() {
    let scene = Scene::new(SMALL_SPEC);
    let mut up = scene
        .up("env")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `tapmesh up … | head -n 3`, the pipe's reading end in head alone.
    let head = Command::new("head")
        .args(["-n", "3"])
        .stdin(Stdio::from(up.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = read_all(up.stderr.take().unwrap());
    let status = wait_bounded(&mut up, Duration::from_secs(60));
    let stderr = stderr.join().unwrap();
    assert!(status.is_some(), "still running a minute later: {stderr}");
    assert!(status.unwrap().success(), "{status:?}: {stderr}");
    let head = head.wait_with_output().unwrap();
    let head = String::from_utf8_lossy(&head.stdout);
    assert_eq!(head.lines().count(), 3, "{head}");
    assert!(stderr.contains("its output closed"), "{stderr}");
    assert!(stderr.contains("events kept in"), "{stderr}");
    let events = read_events(&scene.path("env/events.jsonl"));
    for sid in service_sessions(&events) {
        assert_eq!(session_members(sid), Vec::<i32>::new(), "{events:#?}");
    }
}

#[test]
fn a_reader_that_leaves_after_up_gets_a_graceful_stop() {
    let scene = Scene::new(SMALL_SPEC);
    let mut up = scene
        .up("env")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = read_all(up.stderr.take().unwrap());
    let mut stdout = BufReader::new(up.stdout.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains("environment piped is up") && Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push_str(&line);
    }
    assert!(seen.contains("environment piped is up"), "{seen}");
    // The reader goes; nothing more is written (no traffic), and tapmesh
    // still notices.
    drop(stdout);
    let status = wait_bounded(&mut up, Duration::from_secs(60));
    let stderr = stderr.join().unwrap();
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {stderr}");
    assert!(
        stderr.contains("its output closed; stopping piped"),
        "{stderr}"
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(scene.path("env/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["outcome"], "stopped");
    assert_eq!(summary["reason"], "its output closed");
    let events = read_events(&scene.path("env/events.jsonl"));
    let stopped: Vec<&str> = of_type(&events, "service.stopped")
        .iter()
        .filter_map(|e| e["service"].as_str())
        .collect();
    assert_eq!(stopped.len(), 2, "{events:#?}");
    for sid in service_sessions(&events) {
        assert_eq!(session_members(sid), Vec::<i32>::new());
    }
}
