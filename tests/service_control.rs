//! One service changed while the rest runs, with real processes: restarted,
//! stopped and started through the Rust API (the daemon's and the CLI's
//! routes call the same), and restarted by its liveness probe.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tapmesh::events::{Event, EventKind, ServiceState};
use tapmesh::{Environment, Spec};

fn builder(spec: &str, state: &Path) -> tapmesh::EnvironmentBuilder {
    let spec = Spec::parse_in(spec, state).unwrap_or_else(|e| panic!("{e}"));
    Environment::builder(spec)
        .state_dir(state)
        .stall_after(Duration::from_secs(30))
}

const HTTP_SERVER: &str = "exec python3 -m http.server --bind 127.0.0.1 $PORT";

/// `front` calls `store` through its egress (so through the edge's proxy)
/// ten times a second, forever; `store` answers HTTP.
fn caller_and_store() -> String {
    format!(
        r#"
name: control
services:
  store:
    type: script
    script: '{HTTP_SERVER}'
    ingresses: {{ default: {{ protocol: http, ready: {{ path: / }} }} }}
  front:
    type: script
    script: 'while true; do curl -s -o /dev/null "http://$STORE_HOSTPORT/?t=$(date +%s%N)"; sleep 0.1; done'
    egresses: {{ store: {{ service: store }} }}
"#
    )
}

fn lifecycle_of<'a>(events: &'a [Arc<Event>], service: &str) -> Vec<&'a Arc<Event>> {
    events
        .iter()
        .filter(|e| e.service.as_deref() == Some(service) && e.lifecycle().is_some())
        .filter(|e| e.kind != EventKind::ServiceLog)
        .collect()
}

fn kinds(events: &[&Arc<Event>]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// The first request front→store answered 200 after `seq`.
async fn answered_after(env: &Environment, seq: u64) -> Arc<Event> {
    env.wait_for(
        |e| {
            e.seq > seq
                && e.request().is_some_and(|r| {
                    r.source.as_ref() == "front"
                        && r.target.as_ref() == "store"
                        && r.status_code == Some(200)
                })
        },
        Duration::from_secs(20),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_service_keeps_its_address_its_caller_recovers_and_nothing_else_restarts() {
    let state = tempfile::tempdir().unwrap();
    let env = builder(&caller_and_store(), state.path())
        .up()
        .await
        .unwrap();
    let address = env.endpoint("store").unwrap();
    let first = answered_after(&env, 0).await;

    let state_after = env.restart("store").await.unwrap();
    assert_eq!(state_after, ServiceState::Ready);
    assert_eq!(env.endpoint("store").unwrap(), address, "same address");
    let events = env.events();
    let store = lifecycle_of(&events, "store");
    assert_eq!(
        kinds(&store),
        [
            "service.starting",
            "service.ready",
            "service.restarting",
            "service.starting",
            "service.ready"
        ],
        "{store:#?}"
    );
    let restarting = store[2].lifecycle().unwrap();
    assert_eq!(restarting.state.service(), Some(ServiceState::Restarting));
    let reason = restarting.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("store restarting on request"),
        "{reason}"
    );
    // A new process: the old one was stopped (SIGTERM), the new one has its
    // own pid.
    let old_pid = store[0].lifecycle().unwrap().pid.unwrap();
    let new_pid = store[3].lifecycle().unwrap().pid.unwrap();
    assert_eq!(restarting.pid, Some(old_pid));
    assert_ne!(old_pid, new_pid);
    assert!(
        !env.process_groups().contains(&(old_pid as i32)),
        "the old process group is gone"
    );
    // front was started once and never touched.
    assert_eq!(
        kinds(&lifecycle_of(&events, "front")),
        ["service.starting", "service.ready"]
    );
    // front's calls reach the new store through the same proxy.
    let ready_again = store[4].seq;
    let after = answered_after(&env, ready_again).await;
    let (before, after) = (first.request().unwrap(), after.request().unwrap());
    assert_eq!(before.target, after.target);
    assert_eq!(before.ingress, after.ingress);
    assert_eq!(
        env.service_states()["front"],
        ServiceState::Ready,
        "front still running"
    );
    env.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_service_stays_stopped_until_started_and_its_caller_sees_both() {
    let state = tempfile::tempdir().unwrap();
    let env = builder(&caller_and_store(), state.path())
        .up()
        .await
        .unwrap();
    answered_after(&env, 0).await;

    assert_eq!(
        env.stop_service("store").await.unwrap(),
        ServiceState::Stopped
    );
    let stopped = env
        .wait_for(
            |e| e.kind == EventKind::ServiceStopped && e.service.as_deref() == Some("store"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let info = stopped.lifecycle().unwrap();
    assert_eq!(info.state.service(), Some(ServiceState::Stopped));
    assert!(
        info.reason
            .as_deref()
            .unwrap()
            .starts_with("store stopped on request"),
        "{info:?}"
    );
    assert_eq!(info.signal.as_deref(), Some("SIGTERM"));
    // Stopped means stopped: asking again changes nothing.
    assert_eq!(
        env.stop_service("store").await.unwrap(),
        ServiceState::Stopped
    );
    // front keeps calling; its proxy reports the refused connections.
    let refused = env
        .wait_for(
            |e| {
                e.seq > stopped.seq
                    && e.kind == EventKind::ConnectionClosed
                    && e.connection().is_some_and(|c| {
                        c.source.as_ref() == "front"
                            && c.error.as_deref().is_some_and(|m| m.contains("refused"))
                    })
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(env.service_states()["store"], ServiceState::Stopped);
    assert_eq!(env.service_states()["front"], ServiceState::Ready);

    assert_eq!(env.start("store").await.unwrap(), ServiceState::Ready);
    answered_after(&env, refused.seq).await;
    let events = env.events();
    assert_eq!(
        kinds(&lifecycle_of(&events, "store")),
        [
            "service.starting",
            "service.ready",
            "service.stopped",
            "service.starting",
            "service.ready"
        ]
    );
    assert_eq!(
        kinds(&lifecycle_of(&events, "front")),
        ["service.starting", "service.ready"]
    );
    // Starting a running service changes nothing either.
    assert_eq!(env.start("store").await.unwrap(), ServiceState::Ready);
    assert!(matches!(
        env.restart("nope").await,
        Err(tapmesh::Error::Control(
            tapmesh::environment::ControlError::NoSuchService(_)
        ))
    ));
    env.down().await.unwrap();
}

/// Answers `/health` 200 until the file `sick` appears in the environment's
/// directory, then 500.
const FLAKY: &str = r#"
import http.server, os, sys
SICK = os.path.join(os.environ["TAPMESH_ENV_DIR"], "sick")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 500 if os.path.exists(SICK) else 200
        self.send_response(code)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_reports_each_failure_then_restarts_under_the_policy() {
    let state = tempfile::tempdir().unwrap();
    let server = state.path().join("flaky.py");
    std::fs::write(&server, FLAKY).unwrap();
    let spec = format!(
        r#"
name: liveness
services:
  flaky:
    type: script
    script: 'exec python3 {}'
    ingresses: {{ default: {{ protocol: http, ready: {{ path: /health, interval: 50ms }} }} }}
    liveness: {{ interval: 100ms, failures: 3 }}
    restart: {{ max_restarts: 1, backoff: 100ms }}
"#,
        server.display()
    );
    let env = builder(&spec, state.path()).up().await.unwrap();
    // Healthy: a few probes pass and nothing is said.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!env
        .events()
        .iter()
        .any(|e| e.kind == EventKind::HealthCheckFailed));

    std::fs::write(env.dir().join("sick"), b"").unwrap();
    let restarting = env
        .wait_for(
            |e| e.kind == EventKind::ServiceRestarting,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    // It comes back healthy once the cause is gone.
    std::fs::remove_file(env.dir().join("sick")).unwrap();
    let ready_again = env
        .wait_for(
            |e| e.seq > restarting.seq && e.kind == EventKind::ServiceReady,
            Duration::from_secs(20),
        )
        .await
        .unwrap();

    let events = env.events();
    let failed: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::HealthCheckFailed && e.seq < restarting.seq)
        .map(|e| e.lifecycle().unwrap().clone())
        .collect();
    assert_eq!(failed.len(), 3, "{failed:#?}");
    let first_pid = events
        .iter()
        .find(|e| e.kind == EventKind::ServiceStarting && e.lifecycle().unwrap().pid.is_some())
        .unwrap()
        .lifecycle()
        .unwrap()
        .pid;
    for (i, f) in failed.iter().enumerate() {
        assert_eq!(f.failures, Some(i as u32 + 1));
        assert_eq!(f.failure_threshold, Some(3));
        assert_eq!(f.pid, first_pid);
        assert_eq!(
            f.reason.as_deref(),
            Some("flaky liveness probe: GET /health answered 500")
        );
    }
    let info = restarting.lifecycle().unwrap();
    assert_eq!(info.restarts, Some(1));
    let reason = info.reason.as_deref().unwrap();
    assert!(
        reason.starts_with(
            "flaky failed its liveness probe 3 times in a row (GET /health answered 500); restart 1 of 1"
        ),
        "{reason}"
    );
    // A new process, under the same name and address.
    let new_pid = ready_again.lifecycle().unwrap().pid;
    assert!(new_pid.is_some() && new_pid != first_pid);
    env.down().await.unwrap();
}

mod common;

/// The same through the daemon: its route, and the CLI that calls it.
#[test]
fn the_daemon_and_the_cli_restart_stop_and_start_one_service() {
    use common::daemon::Daemon;
    let daemon = Daemon::start(&[]);
    let (status, created) = daemon.call(
        "POST",
        "/environments?wait=true",
        Some(("application/yaml", &caller_and_store())),
    );
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_string();
    let store_pid = created["services"]["store"]["pid"].as_i64().unwrap();
    let front_pid = created["services"]["front"]["pid"].as_i64().unwrap();
    let route = |action: &str| format!("/environments/{id}/services/store/{action}");

    // A web page cannot: no JSON content type, or a foreign Origin.
    let (status, _) = daemon.request(
        "POST",
        &route("stop"),
        &["content-type: text/plain"],
        Some("{}"),
    );
    assert_eq!(status, 415);
    let (status, _) = daemon.request(
        "POST",
        &route("stop"),
        &[
            "content-type: application/json",
            "origin: http://evil.example",
        ],
        Some("{}"),
    );
    assert_eq!(status, 403);

    let (status, answer) = daemon.call("POST", &route("restart"), Some(("application/json", "{}")));
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer["service"], "store");
    assert_eq!(answer["action"], "restart");
    assert_eq!(answer["state"], "ready");
    let (_, now) = daemon.call("GET", &format!("/environments/{id}"), None);
    assert_ne!(now["services"]["store"]["pid"].as_i64().unwrap(), store_pid);
    assert_eq!(now["services"]["front"]["pid"].as_i64().unwrap(), front_pid);

    let (status, answer) = daemon.call(
        "POST",
        &format!("/environments/{id}/services/nope/restart"),
        Some(("application/json", "{}")),
    );
    assert_eq!(status, 404, "{answer:#}");
    let (status, _) = daemon.call("POST", &route("reboot"), Some(("application/json", "{}")));
    assert_eq!(status, 404);

    // The CLI, by the environment's address.
    let env_url = daemon.url(&format!("/environments/{id}"));
    let cli = |action: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapmesh"))
            .args([action, &env_url, "store"])
            .output()
            .unwrap();
        assert!(out.status.success(), "tapmesh {action}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli("stop"), "stop store: stopped\n");
    let (_, now) = daemon.call("GET", &format!("/environments/{id}"), None);
    assert_eq!(now["services"]["store"]["state"], "stopped");
    assert_eq!(now["services"]["front"]["state"], "ready");
    assert_eq!(cli("start"), "start store: ready\n");
    let (_, now) = daemon.call("GET", &format!("/environments/{id}"), None);
    assert_eq!(now["services"]["store"]["state"], "ready");

    let types: Vec<String> = daemon
        .events(&id)
        .iter()
        .filter(|e| e["service"] == "store" && e["type"] != "service.log")
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "service.starting",
            "service.ready",
            "service.restarting",
            "service.starting",
            "service.ready",
            "service.stopped",
            "service.starting",
            "service.ready"
        ]
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args(["restart", &env_url, "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("has no service \"nope\""), "{stderr}");
    let (status, _) = daemon.call("DELETE", &format!("/environments/{id}"), None);
    assert_eq!(status, 200);
}
