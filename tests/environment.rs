//! Environments end to end: `tapmesh validate` on a broken spec, `tapmesh
//! up` on small `sh -c` services (start order, restarts, optional services,
//! no process left behind), and the example shop observed on every edge.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_no_process_left, of_type, read_events};
use serde_json::Value;

fn tapmesh() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tapmesh"));
    // Builds of `cargo` services land under target/, rebuilt from scratch
    // on a fresh machine and reused after.
    command.env(
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tapmesh-test-cache"),
    );
    command
}

#[test]
fn a_spec_with_ten_mistakes_reports_all_ten_and_starts_nothing() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/specs/ten_mistakes.yaml");
    let out = tapmesh().args(["validate", spec]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let printed = String::from_utf8_lossy(&out.stdout);
    let expected = [
        ("capture_limit", "is not a size"),
        ("colour", "unknown field"),
        (
            "services.api.ingresses.default.protocol",
            "unknown protocol \"smtp\"",
        ),
        (
            "services.api.egresses.db.service",
            "unknown service \"database\"",
        ),
        (
            "services.api.egresses.cache.ingress",
            "\"cache\" has no ingress \"admin\"",
        ),
        ("services.api.restart.backoff", "is not a duration"),
        (
            "services.cache.command",
            "missing: a process service needs a command",
        ),
        (
            "services.cache.ingresses.default.ready",
            "no way to become ready",
        ),
        ("services.worker.type", "unknown service type \"container\""),
        ("services.a~b", "'~' is reserved"),
    ];
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), expected.len(), "{printed}");
    for (path, message) in expected {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{path}: ")) && l.contains(message)),
            "no `{path}: …{message}…` in\n{printed}"
        );
    }
    // `up` refuses it the same way before starting anything.
    let dir = tempfile::tempdir().unwrap();
    let out = tapmesh()
        .args(["up", spec, "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not started, 10 problems"));
    assert!(!dir.path().join("events.jsonl").exists());
}

/// `tapmesh up` in the background, its events in a temp dir.
struct Up {
    child: Child,
    dir: tempfile::TempDir,
}

impl Up {
    fn start(spec_text: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().join("spec.yaml");
        std::fs::write(&spec, spec_text).unwrap();
        Self::start_file(&spec, dir, extra)
    }

    fn start_file(spec: &Path, dir: tempfile::TempDir, extra: &[&str]) -> Self {
        let child = tapmesh()
            .arg("up")
            .arg(spec)
            .arg("--dir")
            .arg(dir.path().join("env"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Self { child, dir }
    }

    fn events_path(&self) -> PathBuf {
        self.dir.path().join("env/events.jsonl")
    }

    fn events(&self) -> Vec<Value> {
        read_events(&self.events_path())
    }

    fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events();
            if pred(&events) {
                return events;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {timeout:?}: {events:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for tapmesh to exit by itself.
    fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let path = self.events_path();
        common::wait_exit(&mut self.child, timeout, || {
            format!("tapmesh up; events: {:#?}", read_events(&path))
        })
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let path = self.events_path();
        common::terminate(&mut self.child, Duration::from_secs(60), || {
            format!("tapmesh up; events: {:#?}", read_events(&path))
        })
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lifecycle<'a>(events: &'a [Value], kind: &str, service: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["service"] == service)
        .collect()
}

/// The process group of every service start (its leader's pid).
fn process_groups(events: &[Value]) -> Vec<i32> {
    of_type(events, "service.starting")
        .iter()
        .filter_map(|e| e["lifecycle"]["pid"].as_i64())
        .map(|p| p as i32)
        .collect()
}

const ORDERED: &str = r#"
name: ordered
services:
  db:
    type: script
    # Ready only after a second: its ingress opens late.
    script: sleep 1; exec python3 -m http.server --bind 127.0.0.1 $PORT
    ingresses: { default: { protocol: http, ready: { path: / } } }
  api:
    type: script
    script: echo "api sees db at $DB_HOSTPORT"; sleep 1000 & sleep 1000; wait
    ingresses: { default: { protocol: tcp, ready: { type: log, pattern: "sees db" } } }
    egresses: { db: { service: db } }
  flaky:
    type: script
    script: echo "flaky gives up"; exit 3
    optional: true
"#;

#[test]
fn start_order_follows_readiness_optional_failure_is_tolerated_and_sigterm_leaves_nothing() {
    let mut up = Up::start(ORDERED, &[]);
    let events = up.wait_for("environment.up", Duration::from_secs(60), |e| {
        !of_type(e, "environment.up").is_empty()
    });
    let seq = |e: &Value| e["seq"].as_u64().unwrap();
    let db_ready = lifecycle(&events, "service.ready", "db");
    let api_starting = lifecycle(&events, "service.starting", "api");
    assert_eq!(db_ready.len(), 1);
    assert!(
        seq(api_starting[0]) > seq(db_ready[0]),
        "api started before db was ready"
    );
    // The api was told where db is: through db's proxy, not db itself.
    let up_event = &of_type(&events, "environment.up")[0];
    let db_addr = up_event["lifecycle"]["endpoints"]["db"]["default"]["address"]
        .as_str()
        .unwrap();
    let api_log: Vec<&Value> = lifecycle(&events, "service.log", "api");
    let told = api_log[0]["log"]["line"].as_str().unwrap();
    assert!(told.starts_with("api sees db at 127.0.0.1:"), "{told}");
    assert!(
        !told.ends_with(db_addr),
        "api was wired to db directly: {told}"
    );
    // The optional service failed; the environment is up regardless.
    let failed = lifecycle(&events, "service.failed", "flaky");
    assert_eq!(failed[0]["lifecycle"]["exit_code"], 3);
    assert_eq!(failed[0]["lifecycle"]["log_tail"][0], "flaky gives up");

    let groups = process_groups(&events);
    let status = up.terminate();
    assert!(status.success(), "{status}");
    // api's two background sleeps were in its group: gone too.
    assert_no_process_left(&groups);
    let events = up.events();
    assert_eq!(of_type(&events, "environment.down").len(), 1);
    let stopped: Vec<&str> = of_type(&events, "service.stopped")
        .iter()
        .map(|e| e["service"].as_str().unwrap())
        .collect();
    assert_eq!(stopped, ["api", "db"], "reverse start order");
}

#[test]
fn a_crashing_service_restarts_as_its_policy_says_then_stops_the_environment() {
    let spec = r#"
name: crashing
services:
  crasher:
    type: script
    script: |
      echo "starting crasher"
      echo "boom: cannot open config" >&2
      exit 7
    restart: { max_restarts: 2, backoff: 100ms }
"#;
    let mut up = Up::start(spec, &[]);
    let status = up.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1));
    let events = up.events();
    let restarting = lifecycle(&events, "service.restarting", "crasher");
    assert_eq!(restarting.len(), 2, "{events:#?}");
    assert_eq!(lifecycle(&events, "service.starting", "crasher").len(), 3);
    let failed = lifecycle(&events, "service.failed", "crasher");
    assert_eq!(failed.len(), 1);
    let info = &failed[0]["lifecycle"];
    assert_eq!(info["exit_code"], 7);
    assert_eq!(info["restarts"], 2);
    assert!(info["reason"]
        .as_str()
        .unwrap()
        .contains("exited with status 7 (after 2 restarts)"));
    let tail: Vec<&str> = info["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(tail.contains(&"boom: cannot open config"), "{tail:?}");
    assert!(of_type(&events, "environment.up").is_empty());
    let down = of_type(&events, "environment.down");
    assert_eq!(down.len(), 1);
    assert!(down[0]["lifecycle"]["reason"]
        .as_str()
        .unwrap()
        .starts_with("did not start: crasher exited with status 7"));
    // The summary beside the events says how it ended.
    let summary: Value =
        serde_json::from_slice(&std::fs::read(up.dir.path().join("env/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["outcome"], "failed");
    assert_eq!(summary["services"]["crasher"]["state"], "failed");
    assert_eq!(summary["services"]["crasher"]["restarts"], 2);
    assert_eq!(summary["services"]["crasher"]["exit_code"], 7);
}

/// The README's example: five protocols (HTTP, gRPC, Kafka, SQL, Redis),
/// each on its own edge, and the user's own traffic (the `~test` node)
/// observed too.
#[test]
fn the_shop_example_shows_http_grpc_kafka_sql_and_redis_on_the_right_edges() {
    let spec = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/shop/shop.yaml"
    ));
    let mut up = Up::start_file(spec, tempfile::tempdir().unwrap(), &[]);
    // The first build of the shop's services can take minutes.
    let events = up.wait_for("environment.up", Duration::from_secs(900), |e| {
        !of_type(e, "environment.up").is_empty() || !of_type(e, "environment.down").is_empty()
    });
    let up_event = of_type(&events, "environment.up");
    assert_eq!(up_event.len(), 1, "the shop did not come up: {events:#?}");
    let front = up_event[0]["lifecycle"]["endpoints"]["front"]["default"]["observed"]
        .as_str()
        .unwrap()
        .to_string();
    let mine = common::curl(&[&format!("http://{front}/api/items/sku-2")]);
    assert!(mine.contains("\"name\":\"teapot\""), "{mine}");

    let has = |events: &[Value], kind: &str, source: &str, target: &str| {
        of_type(events, kind).iter().any(|e| {
            let p = e
                .as_object()
                .unwrap()
                .values()
                .find(|v| v.get("source").is_some())
                .unwrap();
            p["source"] == source && p["target"] == target
        })
    };
    let events = up.wait_for(
        "traffic of all five protocols",
        Duration::from_secs(60),
        |e| {
            has(e, "request.completed", "load", "front")
                && has(e, "request.completed", "front", "orders")
                && has(e, "grpc.call.completed", "orders", "inventory")
                && has(e, "kafka.request.completed", "orders", "broker")
                && has(e, "postgres.query.completed", "orders", "db")
                && has(e, "redis.command.completed", "orders", "cache")
                && has(e, "request.completed", "~test", "front")
        },
    );
    let reserve = of_type(&events, "grpc.call.completed")
        .into_iter()
        .map(|e| &e["grpc_call"])
        .find(|c| c["method"] == "Reserve" && c["grpc_status"] == 0)
        .expect("a successful Reserve call");
    assert_eq!(reserve["service"], "shop.Inventory");
    assert_eq!(reserve["decoded_with"], "descriptor_set");
    assert!(reserve["request_body_decoded"][0]["sku"]
        .as_str()
        .unwrap()
        .starts_with("sku-"));
    let produce = of_type(&events, "kafka.request.completed")
        .into_iter()
        .map(|e| &e["kafka_request"])
        .find(|k| k["api_name"] == "Produce")
        .expect("a Produce request");
    assert_eq!(produce["topics"][0]["topic"], "orders");
    let mine: Vec<&Value> = of_type(&events, "request.completed")
        .into_iter()
        .map(|e| &e["request"])
        .filter(|r| r["source"] == "~test")
        .collect();
    assert_eq!(mine[0]["path"], "/api/items/sku-2");
    assert_eq!(mine[0]["status_code"], 200);

    // Each order is a row: its INSERT, with its parameters, on orders → db.
    let insert = of_type(&events, "postgres.query.completed")
        .into_iter()
        .map(|e| &e["query"])
        .find(|q| q["sql"].as_str().unwrap().starts_with("INSERT INTO orders"))
        .expect("an INSERT of an order");
    assert_eq!(insert["database"], "shop");
    assert_eq!(insert["user"], "shop");
    assert_eq!(insert["command"], "INSERT");
    assert_eq!(insert["rows"], 1);
    assert!(insert["params"][0].as_str().unwrap().starts_with("sku-"));
    // Item lookups go through the cache first.
    let lookup = of_type(&events, "redis.command.completed")
        .into_iter()
        .map(|e| &e["command"])
        .find(|c| c["command"] == "GET")
        .expect("a cache GET");
    assert!(lookup["args"][0].as_str().unwrap().starts_with("item:sku-"));

    let groups = process_groups(&events);
    // Seven services: the database, the cache and the broker among them.
    assert_eq!(groups.len(), 7, "one process group per service");
    assert!(up.terminate().success());
    assert_no_process_left(&groups);
}
