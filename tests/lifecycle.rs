//! The lifecycle of a real system, with real processes: jobs, hooks,
//! `depends_on`, external services, `--only`, and variables.

mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tapmesh::events::{Event, EventKind, ServiceState};
use tapmesh::{Environment, Error, Spec};

fn builder(spec: &str, state: &Path) -> tapmesh::EnvironmentBuilder {
    let spec = Spec::parse_in(spec, state).unwrap_or_else(|e| panic!("{e}"));
    Environment::builder(spec)
        .state_dir(state)
        .stall_after(Duration::from_secs(30))
}

/// The seq of the first `kind` event about `service` that `also` accepts.
fn seq_of(
    events: &[Arc<Event>],
    kind: EventKind,
    service: &str,
    also: impl Fn(&Event) -> bool,
) -> u64 {
    events
        .iter()
        .find(|e| e.kind == kind && e.service.as_deref() == Some(service) && also(e))
        .unwrap_or_else(|| panic!("no {kind} for {service} in {events:#?}"))
        .seq
}

/// `service.starting` with a pid: the process was spawned.
fn spawned(e: &Event) -> bool {
    e.lifecycle().is_some_and(|l| l.pid.is_some())
}

fn any(_: &Event) -> bool {
    true
}

fn log_lines(events: &[Arc<Event>], service: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::ServiceLog && e.service.as_deref() == Some(service))
        .filter_map(|e| match &e.payload {
            tapmesh::events::Payload::Log(l) => Some(l.line.clone()),
            _ => None,
        })
        .collect()
}

/// The HTTP exchange whose path is `path`, once its proxy has seen it.
async fn request_to(env: &Environment, path: &str) -> tapmesh::events::RequestInfo {
    let event = env
        .wait_for(
            |e| e.request().is_some_and(|r| r.path == path),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    event.request().unwrap().clone()
}

const HTTP_SERVER: &str = "exec python3 -m http.server --bind 127.0.0.1 $PORT";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_to_completion_before_its_dependent_and_the_environment_stays_up() {
    let state = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
name: jobs
services:
  migrate:
    type: script
    job: true
    script: 'echo migrating; sleep 0.5; echo done > "$TAPMESH_ENV_DIR/migrated"'
  orders:
    type: script
    script: 'test -f "$TAPMESH_ENV_DIR/migrated" || exit 9; {HTTP_SERVER}'
    ingresses: {{ default: {{ protocol: http, ready: {{ path: / }} }} }}
    depends_on: {{ migrate: completed }}
"#
    );
    let env = builder(&spec, state.path()).up().await.unwrap();
    let events = env.events();
    let completed = seq_of(&events, EventKind::ServiceCompleted, "migrate", any);
    let info = events[completed as usize - 1].lifecycle().unwrap().clone();
    assert_eq!(info.state.service(), Some(ServiceState::Completed));
    assert_eq!(info.exit_code, Some(0));
    assert!(
        completed < seq_of(&events, EventKind::ServiceStarting, "orders", spawned),
        "orders started before migrate completed: {events:#?}"
    );
    assert!(!events.iter().any(|e| e.kind == EventKind::ServiceFailed));
    let states = env.service_states();
    assert_eq!(states["migrate"], ServiceState::Completed);
    assert_eq!(states["orders"], ServiceState::Ready);
    // Still up a while later: the job's exit is not a failure.
    let still_up = tokio::time::timeout(Duration::from_secs(1), env.failed()).await;
    assert!(still_up.is_err(), "the environment failed: {still_up:?}");
    let summary = env.down().await.unwrap();
    let json = serde_json::to_value(&summary).unwrap();
    assert_eq!(json["services"]["migrate"]["state"], "completed");
    assert_eq!(json["services"]["orders"]["state"], "stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_stops_the_environment_with_its_log_tail() {
    let state = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
name: badjob
services:
  migrate:
    type: script
    job: true
    script: 'echo "applying 0002_add_sku"; echo "ERROR: relation orders does not exist" >&2; exit 3'
  orders:
    type: script
    script: '{HTTP_SERVER}'
    ingresses: {{ default: {{ protocol: http }} }}
    depends_on: {{ migrate: completed }}
"#
    );
    let prepared = builder(&spec, state.path()).prepare().unwrap();
    let log = prepared.log().clone();
    let Err(Error::Start { error, .. }) = prepared.start().await else {
        panic!("a failing job must stop the environment");
    };
    assert_eq!(error.service.as_deref(), Some("migrate"));
    assert!(
        error.message.contains("exited with status 3"),
        "{}",
        error.message
    );
    assert!(
        error
            .log_tail
            .iter()
            .any(|l| l == "ERROR: relation orders does not exist"),
        "{:?}",
        error.log_tail
    );
    let events = log.since(1).unwrap();
    let failed = seq_of(&events, EventKind::ServiceFailed, "migrate", any);
    let info = events[failed as usize - 1].lifecycle().unwrap();
    assert_eq!(info.exit_code, Some(3));
    assert!(info.log_tail.contains(&"applying 0002_add_sku".to_string()));
    // Its dependent never ran, and is reported as not started.
    assert!(!events
        .iter()
        .any(|e| e.kind == EventKind::ServiceStarting && e.service.as_deref() == Some("orders")));
    assert!(events.iter().any(|e| e.kind == EventKind::EnvironmentDown));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_see_the_wiring_and_init_runs_before_dependents_start() {
    let state = tempfile::tempdir().unwrap();
    let get = |url: &str| {
        format!(r#"python3 -c "import urllib.request as u; u.urlopen(\"http://{url}\").read()""#)
    };
    let spec = format!(
        r#"
name: hooks
services:
  db:
    type: script
    script: '{HTTP_SERVER}'
    ingresses: {{ default: {{ protocol: http, ready: {{ path: / }} }} }}
    init: 'echo "seeding db at $HOSTPORT in $TAPMESH_TEMP_DIR"; {seed}'
  api:
    type: script
    script: '{HTTP_SERVER}'
    ingresses: {{ default: {{ protocol: http }} }}
    egresses: {{ db: db }}
    prestart: 'echo "prestart sees db at $DB_HOSTPORT"; {prestart}'
"#,
        seed = get("$HOSTPORT/?seeded-by-init"),
        prestart = get("$DB_HOSTPORT/?from-prestart"),
    );
    let env = builder(&spec, state.path()).up().await.unwrap();
    let events = env.events();
    let db_init = seq_of(&events, EventKind::ServiceInit, "db", any);
    let db_ready = seq_of(&events, EventKind::ServiceReady, "db", any);
    let api_prestart = seq_of(&events, EventKind::ServicePrestart, "api", any);
    let api_spawned = seq_of(&events, EventKind::ServiceStarting, "api", spawned);
    assert!(
        db_init < db_ready && db_ready < api_prestart && api_prestart < api_spawned,
        "init {db_init}, ready {db_ready}, prestart {api_prestart}, api spawned {api_spawned}"
    );
    // The prestart hook reached db through its egress: the edge's proxy
    // saw the call, from api.
    let request = request_to(&env, "/?from-prestart").await;
    assert_eq!((&*request.source, &*request.target), ("api", "db"));
    assert_eq!(
        (request.method.as_str(), request.status_code),
        ("GET", Some(200))
    );
    let api_says = log_lines(&events, "api");
    let line = api_says
        .iter()
        .find(|l| l.starts_with("prestart sees db at 127.0.0.1:"))
        .unwrap_or_else(|| panic!("{api_says:?}"));
    assert!(line.len() > "prestart sees db at 127.0.0.1:".len());
    // init's output is in db's log, and it was given db's own address and
    // scratch directory.
    let db_addr = env.endpoints()["db"]["default"].address;
    let temp = env.dir().join("tmp/db");
    let expected = format!("seeding db at {db_addr} in {}", temp.display());
    assert!(
        log_lines(&events, "db").contains(&expected),
        "{:?}",
        log_lines(&events, "db")
    );
    let db_log = std::fs::read_to_string(env.dir().join("logs/db.log")).unwrap();
    assert!(db_log.contains(&expected), "{db_log}");
    assert!(db_log.contains("GET /?seeded-by-init"), "{db_log}");
    assert!(temp.is_dir());
    let dir = env.dir().to_path_buf();
    env.down().await.unwrap();
    assert!(
        !dir.join("tmp").exists(),
        "TAPMESH_TEMP_DIR outlived the environment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_fails_its_service_with_the_hooks_log_tail() {
    let state = tempfile::tempdir().unwrap();
    let spec = r#"
name: badhook
services:
  api:
    type: script
    script: 'exec sleep 30'
    prestart: 'echo "checking schema"; echo "schema is 3 versions behind" >&2; exit 4'
"#;
    let Err(Error::Start { error, .. }) = builder(spec, state.path()).up().await else {
        panic!("a failing prestart hook must fail its service");
    };
    assert_eq!(error.service.as_deref(), Some("api"));
    assert!(
        error.message.contains("prestart hook exited with status 4"),
        "{}",
        error.message
    );
    // stdout and stderr are read apart, so their lines may interleave
    // either way.
    let mut tail = error.log_tail.clone();
    tail.sort();
    assert_eq!(tail, vec!["checking schema", "schema is 3 versions behind"]);
}

/// A server tapmesh does not start: an HTTP server of the test's own.
struct OwnServer(std::process::Child, u16);

impl OwnServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        Self(child, port)
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_services_traffic_shows_as_events() {
    let staging = OwnServer::start();
    let state = tempfile::tempdir().unwrap();
    let spec = format!(
        r#"
name: ext
services:
  staging:
    type: external
    address: 127.0.0.1:{port}
    ingresses: {{ default: {{ protocol: http, ready: {{ path: /, timeout: 20s }} }} }}
  client:
    type: script
    script: 'python3 -c "import urllib.request as u; u.urlopen(\"http://$STAGING_HOSTPORT/?from-client\").read()"; exec sleep 30'
    egresses: {{ staging: staging }}
"#,
        port = staging.1
    );
    let env = builder(&spec, state.path()).up().await.unwrap();
    let request = request_to(&env, "/?from-client").await;
    assert_eq!((&*request.source, &*request.target), ("client", "staging"));
    assert_eq!(request.method, "GET");
    assert_eq!(request.status_code, Some(200));
    // Its address is the external one; the test reaches it observed too.
    let endpoint = &env.endpoints()["staging"]["default"];
    assert_eq!(endpoint.address.port(), staging.1);
    assert_eq!(env.service_states()["staging"], ServiceState::Ready);
    let ready = env
        .events()
        .iter()
        .find(|e| e.kind == EventKind::ServiceReady && e.service.as_deref() == Some("staging"))
        .cloned()
        .unwrap();
    assert_eq!(ready.lifecycle().unwrap().pid, None);
    env.down().await.unwrap();
    // tapmesh did not stop what it did not start.
    assert!(std::net::TcpStream::connect(("127.0.0.1", staging.1)).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_starts_the_named_services_and_what_they_depend_on() {
    let state = tempfile::tempdir().unwrap();
    let spec = r#"
name: part
services:
  db: { type: script, script: 'exec sleep 30' }
  migrate: { type: script, job: true, script: 'true', depends_on: [db] }
  api: { type: script, script: 'exec sleep 30', depends_on: { migrate: completed } }
  web: { type: script, script: 'exec sleep 30', depends_on: [api] }
  mail: { type: script, script: 'exec sleep 30' }
"#;
    let env = builder(spec, state.path())
        .only(["api"])
        .up()
        .await
        .unwrap();
    let started: BTreeSet<String> = env
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::ServiceStarting)
        .filter_map(|e| e.service.as_deref().map(str::to_string))
        .collect();
    assert_eq!(
        started,
        BTreeSet::from(["api".into(), "db".into(), "migrate".into()])
    );
    assert_eq!(
        env.service_states().keys().collect::<Vec<_>>(),
        ["api", "db", "migrate"]
    );
    env.down().await.unwrap();
    let unknown = builder(spec, state.path()).only(["api", "nope"]).up().await;
    match unknown {
        Err(Error::Spec(errors)) => assert!(errors.to_string().contains("\"nope\""), "{errors}"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("an unknown --only name must be refused"),
    }
}

#[test]
fn only_on_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.yaml");
    std::fs::write(
        &spec,
        r#"
name: part
services:
  db: { type: script, script: 'exec sleep 30' }
  api: { type: script, script: 'exec sleep 30', depends_on: [db] }
  mail: { type: script, script: 'exec sleep 30' }
"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .arg("up")
        .arg(&spec)
        .arg("--dir")
        .arg(dir.path().join("env"))
        .args(["--only", "api", "--for", "1s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let events = common::read_events(&dir.path().join("env/events.jsonl"));
    let started: BTreeSet<&str> = common::of_type(&events, "service.starting")
        .iter()
        .filter_map(|e| e["service"].as_str())
        .collect();
    assert_eq!(started, BTreeSet::from(["api", "db"]));
}

#[test]
fn only_through_the_daemon() {
    let daemon = common::daemon::Daemon::start(&[]);
    let spec = r#"
name: part
services:
  db: { type: script, script: 'exec sleep 30' }
  api: { type: script, script: 'exec sleep 30', depends_on: [db] }
  mail: { type: script, script: 'exec sleep 30' }
"#;
    let (status, created) = daemon.call(
        "POST",
        "/environments?wait=true&only=api",
        Some(("application/yaml", spec)),
    );
    assert_eq!(status, 201, "{created:#}");
    let services: Vec<&String> = created["services"].as_object().unwrap().keys().collect();
    assert_eq!(services, ["api", "db"]);
    assert_eq!(created["services"]["db"]["state"], "ready");
    let id = created["id"].as_str().unwrap();
    let (status, _) = daemon.call("DELETE", &format!("/environments/{id}"), None);
    assert_eq!(status, 200);
    let (status, refused) = daemon.call(
        "POST",
        "/environments?only=api,nope",
        Some(("application/yaml", spec)),
    );
    assert_eq!(status, 422, "{refused:#}");
    assert_eq!(refused["problems"][0]["path"], "only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dollar_var_and_braced_var_expand_alike() {
    let state = tempfile::tempdir().unwrap();
    let spec = r#"
name: vars
services:
  echo:
    command: [sh, -c, 'echo "argv: $1 $2 $3"; echo "env: $PLAIN $BRACED"; exec sleep 30', sh, "$PORT", "${PORT}", "$$PORT"]
    env: { PLAIN: "http://$HOSTPORT/x", BRACED: "http://${HOSTPORT}/x" }
    ingresses: { default: { ready: { type: log, pattern: "^env: " } } }
"#;
    let env = builder(spec, state.path()).up().await.unwrap();
    let addr = env.endpoints()["echo"]["default"].address;
    let lines = log_lines(&env.events(), "echo");
    let port = addr.port();
    assert!(
        lines.contains(&format!("argv: {port} {port} $PORT")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("env: http://{addr}/x http://{addr}/x")),
        "{lines:?}"
    );
    env.down().await.unwrap();
}

#[test]
fn an_unknown_variable_is_refused_before_anything_starts() {
    let spec = r#"
name: typo
services:
  api:
    command: [server, --db, "$DB_HOSTPORT", --cache, "${CACHE_HOSTPORTT}"]
    env: { LEVEL: "$TAPMESH_TEST_SURELY_UNSET_1" }
    egresses: { db: db }
  db: { command: [db], ingresses: { default: {} } }
"#;
    let errors = Spec::parse(spec).unwrap_err();
    let text = errors.to_string();
    assert_eq!(errors.0.len(), 2, "{text}");
    assert!(
        text.contains("services.api.command[4]: $CACHE_HOSTPORTT is not set"),
        "{text}"
    );
    assert!(
        text.contains("services.api.env.LEVEL: $TAPMESH_TEST_SURELY_UNSET_1 is not set"),
        "{text}"
    );
    // `tapmesh up` refuses it the same way, before it writes anything.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, spec).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .arg("up")
        .arg(&path)
        .arg("--dir")
        .arg(dir.path().join("env"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("CACHE_HOSTPORTT"));
    assert!(!dir.path().join("env/events.jsonl").exists());
}

/// A start that fails before any service runs (here a `cargo` service with
/// no package) still ends in `environment.down`, so a reader waiting for
/// `environment.up` is not left waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_fails_before_any_service_runs_says_down() {
    let state = tempfile::tempdir().unwrap();
    let spec = "name: nobuild\nservices:\n  api: { type: cargo, package: nowhere }\n";
    let prepared = builder(spec, state.path()).prepare().unwrap();
    let log = prepared.log().clone();
    let Err(Error::Start { error, .. }) = prepared.start().await else {
        panic!("a cargo service without a package must not start");
    };
    assert_eq!(error.service.as_deref(), Some("api"));
    assert!(error.message.contains("no Cargo.toml"), "{}", error.message);
    let events = log.since(1).unwrap();
    let down = events.last().unwrap();
    assert_eq!(down.kind, EventKind::EnvironmentDown);
    let reason = down.lifecycle().unwrap().reason.clone().unwrap();
    assert!(
        reason.starts_with("did not start: api: no Cargo.toml"),
        "{reason}"
    );
}
