//! `tapmesh serve` end to end: specs posted over HTTP (curl), environments
//! run by the daemon, their events read as SSE (with a disconnect and a
//! `Last-Event-ID` resume) and NDJSON and through `tapmesh events|traffic`,
//! bad requests and invalid specs refused, TTLs, idle exit, and no process
//! left behind by DELETE or by stopping the daemon.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::{assert_no_process_left, of_type};
use serde_json::{json, Value};

/// A web server and a client that makes `REQUESTS` calls to it, one every
/// 100 ms, then idles with a background child (which must die too).
const MINI: &str = r#"
name: mini
services:
  web:
    type: process
    command: [python3, -m, http.server, "${PORT}", --bind, 127.0.0.1]
    ingresses:
      default: { protocol: http, ready: { type: http, path: / } }
  client:
    type: script
    script: |
      for i in $(seq 1 20); do curl -s -o /dev/null "http://$WEB_HOSTPORT/?n=$i"; sleep 0.1; done
      sleep 1000 & wait
    egresses:
      web: { service: web }
"#;
const REQUESTS: usize = 20;

/// One SSE event off the wire.
#[derive(Debug)]
struct SseEvent {
    id: u64,
    kind: String,
    data: Value,
}

/// A raw SSE reader, so the test controls exactly when it disconnects.
struct Sse {
    reader: BufReader<TcpStream>,
}

impl Sse {
    fn connect(addr: SocketAddr, path: &str, last_event_id: Option<u64>) -> Self {
        Self {
            reader: common::daemon::open_sse(addr, path, last_event_id),
        }
    }

    /// The next chunk of the body (chunked transfer coding).
    fn chunk(&mut self) -> Vec<u8> {
        let mut size = String::new();
        self.reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut data = vec![0; size + 2];
        self.reader.read_exact(&mut data).unwrap();
        data.truncate(size);
        data
    }

    fn next(&mut self, pending: &mut String) -> SseEvent {
        loop {
            if let Some(end) = pending.find("\n\n") {
                let block: String = pending.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: 0,
                    kind: String::new(),
                    data: Value::Null,
                };
                let mut is_event = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.parse().unwrap();
                        is_event = true;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.kind = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data = serde_json::from_str(v).unwrap();
                    }
                }
                if is_event {
                    return event;
                }
                continue; // a keep-alive comment
            }
            let chunk = self.chunk();
            assert!(!chunk.is_empty(), "the stream ended");
            pending.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

fn pids(environment: &Value) -> Vec<i32> {
    environment["services"]
        .as_object()
        .unwrap()
        .values()
        .map(|s| s["pid"].as_i64().expect("a running service has a pid") as i32)
        .collect()
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tapmesh(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "tapmesh {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_posted_environment_streams_resumes_without_loss_and_delete_leaves_no_process() {
    let daemon = Daemon::start(&[]);
    let (status, created) = daemon.call(
        "POST",
        "/environments?wait=true",
        Some(("application/yaml", MINI)),
    );
    assert_eq!(status, 201, "{created:#}");
    assert_eq!(created["state"], "up");
    assert_eq!(created["name"], "mini");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("mini-"), "{id}");
    assert_eq!(created["services"]["web"]["state"], "ready");
    assert_eq!(created["services"]["client"]["state"], "ready");
    let web = &created["endpoints"]["web"]["default"];
    assert!(web["address"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(web["observed"].as_str().unwrap().starts_with("127.0.0.1:"));
    let groups = pids(&created);
    assert_eq!(groups.len(), 2);
    let (status, listed) = daemon.call("GET", "/environments", None);
    assert_eq!(status, 200);
    assert_eq!(listed[0]["id"], id.as_str());

    // A `tapmesh events --follow` reads live from the daemon until the
    // environment goes down.
    let follower = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args(["events", "--follow", "--json"])
        .arg(daemon.url(&format!("/environments/{id}")))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    // Read the first ten events, then disconnect mid-stream.
    let path = format!("/environments/{id}/events");
    let mut first = Vec::new();
    {
        let mut sse = Sse::connect(daemon.addr, &path, None);
        let mut pending = String::new();
        while first.len() < 10 {
            first.push(sse.next(&mut pending));
        }
    }
    let last_seen = first.last().unwrap().id;

    // The client goes on making calls while nobody reads.
    wait_until("all the client's requests", Duration::from_secs(60), || {
        of_type(&daemon.events(&id), "request.completed").len() == REQUESTS
    });
    let logged = daemon.events(&id);
    let target = logged.last().unwrap()["seq"].as_u64().unwrap();
    assert!(target > last_seen + REQUESTS as u64 / 2, "{target}");

    // Resume where the first stream stopped.
    let mut second = Vec::new();
    {
        let mut sse = Sse::connect(daemon.addr, &path, Some(last_seen));
        let mut pending = String::new();
        while second.last().is_none_or(|e: &SseEvent| e.id < target) {
            second.push(sse.next(&mut pending));
        }
    }
    let streamed: Vec<&SseEvent> = first.iter().chain(&second).collect();
    let ids: Vec<u64> = streamed.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        (1..=target).collect::<Vec<_>>(),
        "every event exactly once"
    );
    for (sse, logged) in streamed.iter().zip(&logged) {
        assert_eq!(&sse.data, logged);
        assert_eq!(sse.kind, logged["type"].as_str().unwrap());
    }
    let requests = of_type(&logged, "request.completed");
    for (i, e) in requests.iter().enumerate() {
        let r = &e["request"];
        assert_eq!(r["source"], "client");
        assert_eq!(r["target"], "web");
        assert_eq!(r["method"], "GET");
        assert_eq!(r["path"], format!("/?n={}", i + 1));
        assert_eq!(r["status_code"], 200);
        assert_eq!(e["environment"], "mini");
    }

    // The CLI reads the same environment from the daemon.
    let lines = tapmesh(&[
        "events",
        &daemon.url(&format!("/environments/{id}")),
        "--type",
        "request.completed",
        "--json",
    ]);
    assert_eq!(lines.lines().count(), REQUESTS, "{lines}");
    let traffic: Value =
        serde_json::from_str(&tapmesh(&["traffic", &daemon.url(""), "--json"])).unwrap();
    assert_eq!(traffic[0]["source"], "client");
    assert_eq!(traffic[0]["target"], "web");
    assert_eq!(traffic[0]["calls"], REQUESTS);
    assert_eq!(traffic[0]["errors"], 0);
    let log = common::curl(&[&daemon.url(&format!("/environments/{id}/log?service=web"))]);
    assert_eq!(
        log.lines().filter(|l| l.contains("\"GET /?n=")).count(),
        REQUESTS,
        "{log}"
    );

    // DELETE: every process gone (the client's background sleep too), the
    // summary answered and kept.
    let (status, deleted) = daemon.call("DELETE", &format!("/environments/{id}"), None);
    assert_eq!(status, 200, "{deleted:#}");
    assert_eq!(deleted["state"], "down");
    assert_no_process_left(&groups);
    let summary = &deleted["summary"];
    assert_eq!(summary["outcome"], "stopped");
    assert_eq!(summary["reason"], "deleted");
    assert_eq!(summary["edges"][0]["calls"], REQUESTS);
    assert_eq!(summary["services"]["web"]["state"], "stopped");
    assert_eq!(summary["events_by_type"]["request.completed"], REQUESTS);
    let (status, _) = daemon.call("GET", &format!("/environments/{id}"), None);
    assert_eq!(status, 404);

    // Kept on disk: every event (ending with environment.down) and the summary.
    let dir = daemon.state_dir.path().join(&id);
    let kept = common::read_events(&dir.join("events.jsonl"));
    common::assert_gap_free(&kept);
    assert_eq!(kept.last().unwrap()["type"], "environment.down");
    assert_eq!(&kept[..logged.len()], &logged[..]);
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(&on_disk, summary);

    // The follower saw everything live, and ended with the environment.
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let followed: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(followed, kept);
}

#[test]
fn bad_requests_get_400_and_an_invalid_spec_422_with_every_problem() {
    let daemon = Daemon::start(&[]);
    let (status, body) = daemon.call("POST", "/environments", Some(("application/yaml", "")));
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("empty"), "{body}");
    // Only types a web page cannot send without a preflight.
    for content_type in ["image/png", "text/plain"] {
        let (status, body) = daemon.call("POST", "/environments", Some((content_type, MINI)));
        assert_eq!(status, 415, "{content_type}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(content_type),
            "{body}"
        );
    }
    let (status, body) = daemon.call("POST", "/environments", None);
    assert_eq!(status, 415, "{body}");
    let (status, body) = daemon.call(
        "POST",
        "/environments?ttl=soon",
        Some(("application/yaml", MINI)),
    );
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("ttl"), "{body}");
    let (status, body) = daemon.call(
        "POST",
        "/environments?base_dir=relative/dir",
        Some(("application/yaml", MINI)),
    );
    assert_eq!(status, 400, "{body}");

    let ten = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/specs/ten_mistakes.yaml"
    ))
    .unwrap();
    let (status, body) = daemon.call("POST", "/environments", Some(("application/yaml", &ten)));
    assert_eq!(status, 422, "{body:#}");
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 10, "{body:#}");
    let paths: Vec<&str> = problems
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    for expected in [
        "capture_limit",
        "services.api.ingresses.default.protocol",
        "services.api.egresses.db.service",
    ] {
        assert!(paths.contains(&expected), "{paths:?}");
    }
    // The same spec as JSON: one schema, the same answer.
    let as_json: Value = serde_saphyr::from_str(&ten).unwrap();
    let (status, body) = daemon.call(
        "POST",
        "/environments",
        Some(("application/json", &as_json.to_string())),
    );
    assert_eq!(status, 422);
    assert_eq!(body["problems"].as_array().unwrap().len(), 10);

    // Nothing was started, and unknown environments are 404.
    let (status, listed) = daemon.call("GET", "/environments", None);
    assert_eq!((status, listed), (200, json!([])));
    assert_eq!(daemon.call("GET", "/environments/nope", None).0, 404);
    assert_eq!(daemon.call("DELETE", "/environments/nope", None).0, 404);
    assert_eq!(daemon.call("GET", "/environments/nope/events", None).0, 404);
    assert!(
        std::fs::read_dir(daemon.state_dir.path())
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no environment directory for refused specs"
    );
}

const SLEEPER: &str = r#"
name: sleeper
services:
  nap:
    type: script
    script: sleep 1000 & sleep 1000; wait
"#;

#[test]
fn an_environment_past_its_ttl_is_stopped_then_an_idle_daemon_exits() {
    let mut daemon = Daemon::start(&["--idle-timeout", "1s"]);
    let (status, created) = daemon.call(
        "POST",
        "/environments?wait=true&ttl=3s",
        Some(("application/yaml", SLEEPER)),
    );
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(created["expires_at"].is_string());
    let groups = pids(&created);
    // Running for longer than the idle timeout: the daemon stays.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.child.try_wait().unwrap().is_none());
    wait_until("the ttl to stop it", Duration::from_secs(30), || {
        daemon.call("GET", &format!("/environments/{id}"), None).1["state"] == "expired"
    });
    assert_no_process_left(&groups);
    let (_, env) = daemon.call("GET", &format!("/environments/{id}"), None);
    assert_eq!(env["summary"]["outcome"], "expired");
    assert!(
        env["summary"]["reason"].as_str().unwrap().contains("3s"),
        "{env:#}"
    );
    // Nothing running, no request: the daemon exits by itself.
    let status = daemon.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let kept = daemon.state_dir.path().join(&id).join("summary.json");
    assert!(kept.exists(), "{}", kept.display());
}

#[test]
fn stopping_the_daemon_stops_its_environments_and_keeps_their_files() {
    let mut daemon = Daemon::start(&[]);
    let mut all_groups = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, created) = daemon.call(
            "POST",
            "/environments?wait=true",
            Some(("application/yaml", SLEEPER)),
        );
        assert_eq!(status, 201, "{created:#}");
        all_groups.extend(pids(&created));
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1]);
    // Two environments with one name: by name is ambiguous, by id is not.
    assert_eq!(daemon.call("GET", "/environments/sleeper", None).0, 404);
    assert_eq!(
        daemon
            .call("GET", &format!("/environments/{}", ids[1]), None)
            .0,
        200
    );
    let status = daemon.terminate();
    assert!(status.success(), "{status}");
    assert_no_process_left(&all_groups);
    for id in &ids {
        let dir: PathBuf = daemon.state_dir.path().join(id);
        let summary: Value =
            serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["outcome"], "stopped");
        assert_eq!(summary["services"]["nap"]["state"], "stopped");
        let events = common::read_events(&dir.join("events.jsonl"));
        assert_eq!(events.last().unwrap()["type"], "environment.down");
        assert!(Path::new(&dir.join("logs/nap.log")).exists());
    }
}
