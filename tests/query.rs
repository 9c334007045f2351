//! One query language on every surface, with real traffic: curl calls an
//! HTTP server through the environment's proxy, then the same queries are
//! asked of the Rust API, of `tapmesh events FILE -q`, of the daemon's
//! stream `?q=` and of the Python package, which must all give the same
//! events. Failed expectations explain themselves (asserted on their text),
//! notes land on the timeline, and a test that panics with an environment
//! up prints the explanation once.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tapmesh::server::{router, serve, HostedEnvironment, Registry};
use tapmesh::{Environment, Spec};

const SPEC: &str = r#"
name: query
services:
  web:
    type: script
    script: 'exec python3 -m http.server --bind 127.0.0.1 $PORT'
    ingresses: { default: { protocol: http, ready: { path: / } } }
"#;

/// The queries every surface is asked, each matching some events but not
/// all of them.
const QUERIES: &[&str] = &[
    "http.status >= 400",
    r#"http.method == "GET" && http.request.headers["x-request-id"] == "r-2""#,
    r#"http.request.json.sku == "A-7" && http.status == 501"#,
    r#"edge == "~test->web" && latency < duration("10s") && http.path.startsWith("/missing")"#,
    r#"type == "service.ready" || lifecycle.state == "up""#,
    r#"type.startsWith("connection.") && connection.bytes_out > 0"#,
];

async fn up(state: &Path) -> Environment {
    let spec = Spec::parse_in(SPEC, state).unwrap_or_else(|e| panic!("{e}"));
    Environment::builder(spec)
        .state_dir(state)
        .stall_after(Duration::from_secs(30))
        .up()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Five exchanges: 200, 404, 200 with a request id, a JSON POST (which
/// `http.server` answers 501), and another 404.
async fn drive(env: &Environment) {
    let web = env.endpoint("web").unwrap();
    let base = format!("http://{web}");
    let calls: [&[&str]; 5] = [
        &["/"],
        &["/missing"],
        &["-H", "x-request-id: r-2", "/"],
        &[
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data",
            r#"{"sku":"A-7","qty":2}"#,
            "/",
        ],
        &["/missing/again"],
    ];
    for args in calls {
        let (path, flags) = args.split_last().unwrap();
        let mut all: Vec<String> = vec!["-s".into(), "-o".into(), "/dev/null".into()];
        all.extend(flags.iter().map(|f| f.to_string()));
        all.push(format!("{base}{path}"));
        let status = Command::new("curl").args(&all).status().unwrap();
        assert!(status.success(), "curl {all:?}");
    }
    env.wait_for_q(r#"http.path == "/missing/again""#, Duration::from_secs(10))
        .await
        .unwrap();
    env.log().flush().unwrap();
}

fn seqs_of_json_lines(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            v["seq"].as_u64().unwrap()
        })
        .collect()
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args(args)
        .output()
        .unwrap()
}

/// `GET path` on the in-process daemon with curl; `(status, body)`.
fn daemon_get(addr: SocketAddr, path: &str, query: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-G",
            "-H",
            "accept: application/x-ndjson",
            "-w",
            "\n%{http_code}",
        ])
        .args(["--data-urlencode", &format!("q={query}")])
        .arg(format!("http://{addr}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_string())
}

/// Serves the environment's log the way the daemon serves its own.
async fn host(env: &Environment) -> SocketAddr {
    let registry = Registry::new();
    registry.insert(
        HostedEnvironment::observed("query", "query", env.log().clone()).with_dir(env.dir()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, router(registry), std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_query_gives_the_same_events_on_every_surface() {
    let state = tempfile::tempdir().unwrap();
    let env = up(state.path()).await;
    drive(&env).await;
    let addr = host(&env).await;
    let file = env.dir().join("events.jsonl");
    let total = env.events().len();
    let python = common::peer_python();
    for query in QUERIES {
        let rust: Vec<u64> = env
            .events_matching(query)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect();
        assert!(
            !rust.is_empty() && rust.len() < total,
            "{query} should match some of the {total} events, not {rust:?}"
        );
        let out = cli(&["events", file.to_str().unwrap(), "-q", query, "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let from_cli = seqs_of_json_lines(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(from_cli, rust, "tapmesh events -q {query}");

        let (status, body) = daemon_get(addr, "/environments/query/events?follow=false", query);
        assert_eq!(status, 200, "{body}");
        assert_eq!(seqs_of_json_lines(&body), rust, "daemon ?q={query}");

        let script = "import json, sys, tapmesh\n\
            env = tapmesh.Environment.attach(sys.argv[1], 'query')\n\
            print(json.dumps([e.seq for e in env.events(sys.argv[2])]))";
        let out = Command::new(&python)
            .args(["-c", script, &format!("http://{addr}"), query])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let from_python: Vec<u64> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(from_python, rust, "python events({query})");
    }

    // A query that cannot run is refused with its position on each surface,
    // before anything is read.
    let bad = "http.sttus >= 500";
    let out = cli(&["events", file.to_str().unwrap(), "-q", bad]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("query error at 1:5: unknown field `sttus` of `http`"),
        "{stderr}"
    );
    let (status, body) = daemon_get(addr, "/environments/query/events", bad);
    assert_eq!(status, 400, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        error["position"],
        serde_json::json!({"line": 1, "column": 5})
    );
    assert!(error["error"]
        .as_str()
        .unwrap()
        .contains("expected one of: method, path, status"));
    let Err(tapmesh::Error::Query(e)) = env.events_matching(bad) else {
        panic!("a bad query is an error");
    };
    assert_eq!((e.line, e.column), (1, 5));
    env.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_expectation_explains_what_the_system_did() {
    let state = tempfile::tempdir().unwrap();
    let env = up(state.path()).await;
    drive(&env).await;
    let file = env.dir().join("events.jsonl").display().to_string();
    let missing = env
        .events_matching(r#"http.path == "/missing""#)
        .unwrap()
        .remove(0);
    let post = env
        .events_matching(r#"http.method == "POST""#)
        .unwrap()
        .remove(0);

    let query = r#"http.path == "/missing" && http.status == 200"#;
    let error = env.expect(query).count(1).unwrap_err().to_string();
    let expected_head = format!(
        "expected exactly 1 event matching `{query}`, found 0 in query\n0 of {} events match `{query}`\n",
        env.events().len()
    );
    assert!(error.starts_with(&expected_head), "{error}");
    // The nearest call, named, with the condition it missed and its value.
    let nearest = format!(
        "nearest events that do not match:\n  {}\n",
        tapmesh::inspect::one_line(&missing)
    );
    assert!(error.contains(&nearest), "{error}");
    assert!(error.contains("GET /missing → 404"), "{error}");
    assert!(
        error.contains(
            "1 of 2 conditions held; missed:\n        http.status == 200   (http.status = 404)"
        ),
        "{error}"
    );
    // What went wrong: the POST answered 501.
    assert!(
        error.contains("what went wrong in the environment (1):"),
        "{error}"
    );
    assert!(
        error.contains(&tapmesh::inspect::one_line(&post)),
        "{error}"
    );
    // And where to look.
    assert!(
        error.contains(&format!(
            "  tapmesh traffic {file} --detail {}",
            missing.seq
        )),
        "{error}"
    );
    assert!(
        error.contains(&format!("  tapmesh events {file} -q '{query}'")),
        "{error}"
    );

    // Counting that holds returns the events.
    let found = env.expect(r#"http.status == 404"#).count(2).unwrap();
    assert_eq!(found.len(), 2);
    env.expect(r#"grpc.method == "Reserve""#).none().unwrap();
    let error = env
        .expect("http.status >= 200")
        .at_least(9)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("expected at least 9 events matching `http.status >= 200`, found 5"),
        "{error}"
    );

    // A wait that times out explains too.
    let error = env
        .wait_for_q(r#"http.path == "/never""#, Duration::from_millis(300))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("no event matched `http.path == \"/never\"` within 300ms in query\n"),
        "{error}"
    );
    assert!(
        error.contains("what went wrong in the environment (1):"),
        "{error}"
    );

    // Notes: from the Rust API and from the daemon's route.
    let seq = env.note("placing an order");
    let addr = host(&env).await;
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", "-H", "content-type: application/json"])
        .args([
            "--data",
            r#"{"text": "checking the order"}"#,
            "-w",
            "\n%{http_code}",
        ])
        .arg(format!("http://{addr}/environments/query/notes"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.ends_with("\n201"), "{text}");
    let notes = env.events_matching(r#"type == "test.note""#).unwrap();
    let texts: Vec<&str> = notes
        .iter()
        .map(|e| match &e.payload {
            tapmesh::Payload::Note(n) => n.text.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["placing an order", "checking the order"]);
    assert_eq!(notes[0].seq, seq);
    env.expect(r#"note.text.contains("checking")"#)
        .count(1)
        .unwrap();
    // A note from a page without a JSON content type is refused.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "content-type: text/plain", "--data", "x"])
        .arg(format!("http://{addr}/environments/query/notes"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "415");
    env.down().await.unwrap();
}

/// Runs one of the `child_*` tests below in a process of its own and
/// returns everything it printed.
fn run_child(name: &str, state: &Path) -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", name, "--test-threads=1"])
        .env("TAPMESH_TEST_STATE", state)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{name} was meant to fail");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_test_that_panics_with_an_environment_up_prints_the_explanation_once() {
    let state = tempfile::tempdir().unwrap();
    let output = run_child("child_panics_on_its_own", state.path());
    assert_eq!(
        output
            .matches("tapmesh: the test panicked with environment query up")
            .count(),
        1,
        "{output}"
    );
    assert!(output.contains("the latest calls (5 in all):"), "{output}");
    assert!(output.contains("GET /missing/again → 404"), "{output}");
    assert!(
        output.contains("what went wrong in the environment (1):"),
        "{output}"
    );
    assert!(output.contains("the test's own assertion"), "{output}");

    // A failed expectation's error already holds the explanation: the
    // drop that follows does not print it again.
    let output = run_child("child_fails_an_expectation", state.path());
    assert_eq!(
        output.matches("what went wrong in the environment").count(),
        1,
        "{output}"
    );
    assert!(!output.contains("tapmesh: the test panicked"), "{output}");
    assert!(
        output.contains("expected exactly 1 event matching `http.status == 201`"),
        "{output}"
    );
}

fn child_state() -> std::path::PathBuf {
    std::env::var_os("TAPMESH_TEST_STATE")
        .expect("run by a_test_that_panics_with_an_environment_up_prints_the_explanation_once")
        .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by a_test_that_panics_…"]
async fn child_panics_on_its_own() {
    let env = up(&child_state()).await;
    drive(&env).await;
    let _keep = env;
    panic!("the test's own assertion failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run in a child process by a_test_that_panics_…"]
async fn child_fails_an_expectation() {
    let env = up(&child_state()).await;
    drive(&env).await;
    env.expect("http.status == 201").count(1).unwrap();
}
