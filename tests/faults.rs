//! Faults on edges, driven with real clients (curl, iperf3) through real
//! environments: what each client sees is what it would see from a real
//! failure, and every fault that acted is in the events.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tapmesh::events::{Event, EventKind};
use tapmesh::{Environment, Fault, Spec};

fn environment_spec(spec: &str, state: &Path) -> tapmesh::EnvironmentBuilder {
    let spec = Spec::parse_in(spec, state).unwrap_or_else(|e| panic!("{e}"));
    Environment::builder(spec)
        .state_dir(state)
        .stall_after(Duration::from_secs(30))
}

/// `store` serves `dir` over HTTP (Python's threaded http.server);
/// `front` calls its /teapot through an egress that has a fault from the spec.
fn store_spec(dir: &Path) -> String {
    format!(
        r#"
name: faults
services:
  store:
    type: script
    script: 'cd {dir} && exec python3 -m http.server --bind 127.0.0.1 $PORT'
    ingresses: {{ default: {{ protocol: http, ready: {{ path: /hello.txt }} }} }}
  front:
    type: script
    script: 'while true; do curl -s -o /dev/null "http://$STORE_HOSTPORT/teapot"; sleep 0.2; done'
    egresses:
      store:
        service: store
        faults:
          - {{ name: teapot, type: abort, match: 'http.path == "/teapot"', attributes: {{ http_status: 418, body: "short and stout" }} }}
"#,
        dir = dir.display()
    )
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs (apt-get install curl)")
}

fn requests_to(env: &Environment, path: &str, after: u64) -> Vec<Arc<Event>> {
    env.events()
        .into_iter()
        .filter(|e| e.seq > after)
        .filter(|e| {
            e.request()
                .is_some_and(|r| r.source.as_ref() == "~test" && r.path == path)
        })
        .collect()
}

/// `fault.injected` on the test's own edge.
fn faults_injected(env: &Environment, after: u64) -> Vec<Arc<Event>> {
    env.events()
        .into_iter()
        .filter(|e| e.seq > after && e.kind == EventKind::FaultInjected)
        .filter(|e| e.source() == Some("~test"))
        .collect()
}

fn fault_of(event: &Event) -> &tapmesh::events::FaultInfo {
    match &event.payload {
        tapmesh::events::Payload::Fault(f) => f,
        other => panic!("not a fault.injected: {other:?}"),
    }
}

async fn up(dir: &Path) -> Environment {
    std::fs::write(dir.join("hello.txt"), "hello\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i * 7 + i / 1000) as u8)
        .collect();
    std::fs::write(dir.join("big.bin"), big).unwrap();
    environment_spec(&store_spec(dir), dir).up().await.unwrap()
}

fn last_seq(env: &Environment) -> u64 {
    env.events().last().map_or(0, |e| e.seq)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_retries_through_two_aborts_then_succeeds_and_the_events_say_which_were_faults() {
    let dir = tempfile::tempdir().unwrap();
    let env = up(dir.path()).await;
    let url = format!("http://{}/hello.txt", env.endpoint("store").unwrap());
    let since = last_seq(&env);

    let guard = env
        .fault(
            "~test->store",
            Fault::abort_http(503)
                .matching(r#"http.path == "/hello.txt""#)
                .first(2)
                .named("flaky"),
        )
        .await
        .unwrap();
    // Not silent: curl says what it retries.
    let out = Command::new("curl")
        .args([
            "--max-time",
            "20",
            "--retry",
            "3",
            "--retry-delay",
            "1",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    // curl said what it retried, as it does for a real 503.
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.matches("Will retry").count(), 2, "{said}");

    env.wait_for(
        |e| {
            e.seq > since
                && e.request()
                    .is_some_and(|r| r.path == "/hello.txt" && r.status_code == Some(200))
        },
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let requests = requests_to(&env, "/hello.txt", since);
    let seen: Vec<(Option<u16>, Option<&str>)> = requests
        .iter()
        .map(|e| {
            let r = e.request().unwrap();
            (r.status_code, r.fault.as_deref())
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some(503), Some("flaky")),
            (Some(503), Some("flaky")),
            (Some(200), None)
        ]
    );
    let answered = requests[0].request().unwrap();
    assert_eq!(
        answered.response_headers.get("x-tapmesh-fault"),
        Some("flaky")
    );
    assert!(answered.latency_ms.is_some());

    let injected = faults_injected(&env, since);
    assert_eq!(injected.len(), 2, "{injected:?}");
    for (event, request) in injected.iter().zip(&requests) {
        let f = fault_of(event);
        assert_eq!((f.fault.as_str(), f.kind.as_str()), ("flaky", "abort"));
        assert_eq!((f.source.as_ref(), f.target.as_ref()), ("~test", "store"));
        assert_eq!(f.request_seq, Some(request.seq));
        assert_eq!(f.connection, request.request().unwrap().connection);
        assert!(
            f.detail.contains("answered GET /hello.txt with 503"),
            "{}",
            f.detail
        );
        assert!(event.seq > request.seq);
    }
    assert_eq!(
        env.faults()
            .iter()
            .find(|(e, _)| e == "~test->store")
            .unwrap()
            .1
            .len(),
        1
    );
    // `tapmesh traffic` counts the injected failures apart from real errors.
    let events: Vec<Event> = env.events().iter().map(|e| (**e).clone()).collect();
    let summary = tapmesh::inspect::summarize(&events);
    let edge = summary
        .iter()
        .find(|s| s.source == "~test" && s.target == "store")
        .unwrap();
    assert_eq!((edge.calls, edge.errors, edge.faults), (3, 0, 2));
    drop(guard);
    assert!(env
        .faults()
        .iter()
        .all(|(_, f)| f.is_empty() || f[0].name == "teapot"));

    // The spec's own fault on front's egress acted from the start.
    let teapot = env
        .wait_for(
            |e| {
                e.request()
                    .is_some_and(|r| r.source.as_ref() == "front" && r.fault.is_some())
            },
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let r = teapot.request().unwrap();
    assert_eq!(
        (r.status_code, r.fault.as_deref()),
        (Some(418), Some("teapot"))
    );
    assert_eq!(r.response_body, "short and stout");
    env.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_adds_what_it_says_to_what_the_client_measures() {
    let dir = tempfile::tempdir().unwrap();
    let env = up(dir.path()).await;
    let url = format!("http://{}/hello.txt", env.endpoint("store").unwrap());
    let timed = |n: usize| -> f64 {
        median(
            (0..n)
                .map(|_| {
                    let out = curl(&["-o", "/dev/null", "-w", "%{time_total}", &url]);
                    assert!(out.status.success());
                    String::from_utf8_lossy(&out.stdout).parse::<f64>().unwrap() * 1000.0
                })
                .collect(),
        )
    };
    let before = timed(7);
    let since = last_seq(&env);
    let guard = env
        .fault("~test->store", Fault::latency(Duration::from_millis(100)))
        .await
        .unwrap();
    let with = timed(7);
    drop(guard);
    let added = with - before;
    assert!(
        (80.0..=120.0).contains(&added),
        "latency 100ms added {added:.1} ms ({before:.1} → {with:.1})"
    );
    let injected = faults_injected(&env, since);
    assert!(injected.len() >= 7, "one per connection: {injected:?}");
    let f = fault_of(&injected[0]);
    assert_eq!(f.kind, "latency");
    assert!(
        f.detail.contains("latency 100ms on target → client"),
        "{}",
        f.detail
    );
    env.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_peer_and_down_fail_as_a_real_failure_would_and_the_edge_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let env = up(dir.path()).await;
    let addr = env.endpoint("store").unwrap();
    let url = format!("http://{addr}/hello.txt");

    let reset = env
        .fault("~test->store", Fault::reset_peer(Duration::ZERO))
        .await
        .unwrap();
    let out = curl(&[&url]);
    // 56: failure receiving data, as from a server that resets.
    assert_eq!(
        out.status.code(),
        Some(56),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("reset by peer"));
    drop(reset);

    // An open connection, idle before the edge goes down, is reset.
    let mut open = TcpStream::connect(addr).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let down = env.fault("~test->store", Fault::down()).await.unwrap();
    let mut buf = [0u8; 16];
    let read = std::io::Read::read(&mut open, &mut buf);
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "an open connection is reset when the edge goes down"
    );
    // As from a stopped server: what curl says of a port nobody listens on.
    let out = curl(&[&url]);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let out = curl(&[&format!("http://127.0.0.1:{port}/hello.txt")]);
        let said = String::from_utf8_lossy(&out.stderr).replace(&port.to_string(), "PORT");
        (out.status.code(), said)
    };
    let said = String::from_utf8_lossy(&out.stderr).replace(&addr.port().to_string(), "PORT");
    assert_eq!((out.status.code(), said), closed);
    assert_eq!(closed.0, Some(7));
    drop(down);
    // Up again, on the same address.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = curl(&[&url]);
        if out.status.success() {
            assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the edge did not come back up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    env.down().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_added_and_removed_under_traffic_lose_and_duplicate_no_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let env = up(dir.path()).await;
    let url = format!("http://{}/big.bin", env.endpoint("store").unwrap());
    let expected = std::fs::read(dir.path().join("big.bin")).unwrap();
    let since = last_seq(&env);

    let downloads: Vec<_> = (0..3)
        .map(|i| {
            let (url, out) = (url.clone(), dir.path().join(format!("got-{i}")));
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| {
                        let status = Command::new("curl")
                            .args(["-sS", "--max-time", "60", "--limit-rate", "20M", "-o"])
                            .arg(&out)
                            .arg(&url)
                            .status()
                            .unwrap();
                        assert!(status.success());
                        std::fs::read(&out).unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // While they run: faults that do not pick them come and go, and one
    // that slows every chunk a little (it acts on them but must lose nothing).
    let mut toggles = 0;
    while !downloads.iter().all(|d| d.is_finished()) && toggles < 400 {
        let a = env
            .fault(
                "~test->store",
                Fault::abort_http(500).matching(r#"http.path == "/other""#),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let b = env
            .fault("~test->store", Fault::latency(Duration::from_millis(1)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop((a, b));
        tokio::time::sleep(Duration::from_millis(10)).await;
        toggles += 1;
    }
    let mut got = 0;
    for d in downloads {
        for body in d.join().unwrap() {
            assert!(
                body == expected,
                "a download differs: {} bytes of {}",
                body.len(),
                expected.len()
            );
            got += 1;
        }
    }
    assert_eq!(got, 12);
    assert!(
        toggles >= 3,
        "the faults changed only {toggles} times during the downloads"
    );
    env.wait_for(
        |e| e.seq > since && requests_done(e),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let requests = requests_to(&env, "/big.bin", since);
    assert_eq!(requests.len(), 12);
    for r in requests.iter().map(|e| e.request().unwrap()) {
        assert_eq!(
            (r.status_code, r.response_size, r.fault.as_deref()),
            (Some(200), expected.len() as u64, None)
        );
    }
    env.down().await.unwrap();
}

fn requests_done(e: &Event) -> bool {
    e.request().is_some_and(|r| r.path == "/big.bin")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iperf3_through_bandwidth_measures_the_rate_set() {
    let dir = tempfile::tempdir().unwrap();
    let spec = r#"
name: perf
services:
  perf:
    type: script
    script: 'exec iperf3 --server --forceflush --bind 127.0.0.1 --port $PORT'
    ingresses: { default: { protocol: tcp, ready: { type: log, pattern: "Server listening" } } }
"#;
    let env = environment_spec(spec, dir.path()).up().await.unwrap();
    let addr: SocketAddr = env.endpoint("perf").unwrap();
    // 10 Mbit/s = 1,250 KB/s; iperf3's client sends, so upstream.
    let _slow = env
        .fault("~test->perf", Fault::bandwidth(1250).upstream())
        .await
        .unwrap();
    let out = Command::new("iperf3")
        .args([
            "--client",
            "127.0.0.1",
            "--port",
            &addr.port().to_string(),
            "--time",
            "4",
            "--json",
        ])
        .output()
        .expect("iperf3 runs (apt-get install iperf3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let received = report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap();
    let ratio = received / 10_000_000.0;
    assert!(
        (0.9..=1.1).contains(&ratio),
        "iperf3 measured {received:.0} bit/s through bandwidth 10 Mbit/s"
    );
    env.down().await.unwrap();
}

mod common;

/// The daemon's `/faults` routes and `tapmesh fault`, on an environment
/// posted to it: a fault added through each acts, is listed and removed;
/// bad faults are refused with every problem and its path.
#[test]
fn the_daemon_and_the_cli_add_list_and_clear_faults() {
    use common::daemon::Daemon;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello\n").unwrap();
    let daemon = Daemon::start(&[]);
    let (status, created) = daemon.call(
        "POST",
        "/environments?wait=true",
        Some(("application/yaml", &store_spec(dir.path()))),
    );
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_string();
    let faults = format!("/environments/{id}/faults");
    let store = created["endpoints"]["store"]["default"]["observed"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("http://{store}/hello.txt");

    // The spec's fault is there from the start.
    let (status, listed) = daemon.call("GET", &faults, None);
    assert_eq!(status, 200);
    assert_eq!(listed["front->store"][0]["name"], "teapot");
    assert_eq!(listed["front->store"][0]["attributes"]["http_status"], 418);
    assert_eq!(listed["~test->store"], serde_json::json!([]));

    // Added through the route, it acts.
    let body = r#"{"edge": "~test->store", "name": "nope", "type": "abort",
        "match": "http.method == \"GET\"", "first": 1,
        "attributes": {"http_status": 502, "body": "bad gateway, on purpose"}}"#;
    let (status, added) = daemon.call("POST", &faults, Some(("application/json", body)));
    assert_eq!(status, 201, "{added:#}");
    assert_eq!(
        (added["edge"].as_str(), added["first"].as_u64()),
        (Some("~test->store"), Some(1))
    );
    let out = curl(&["-w", " %{http_code}", &url]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bad gateway, on purpose 502"
    );
    let out = curl(&[&url]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello\n",
        "first: 1 picks one request"
    );

    // Refused: every problem with its path; an unknown edge; a name taken.
    let bad = r#"{"edge": "~test->store", "type": "latency", "toxicity": 3,
        "attributes": {"latency": "soon", "colour": 1}}"#;
    let (status, refused) = daemon.call("POST", &faults, Some(("application/json", bad)));
    assert_eq!(status, 400, "{refused:#}");
    let paths: Vec<&str> = refused["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"toxicity") && paths.contains(&"attributes.latency"),
        "{refused:#}"
    );
    let (status, _) = daemon.call(
        "POST",
        &faults,
        Some(("application/json", r#"{"edge": "a->b", "type": "down"}"#)),
    );
    assert_eq!(status, 404);
    let (status, taken) = daemon.call("POST", &faults, Some(("application/json", body)));
    assert_eq!(status, 409, "{taken:#}");
    // A web page cannot add one (no JSON content type: no preflight-free change).
    let (status, _) = daemon.request("POST", &faults, &["content-type: text/plain"], Some(body));
    assert_eq!(status, 415);

    // The CLI, by the environment's address.
    let env_url = daemon.url(&format!("/environments/{id}"));
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
            .arg("fault")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "tapmesh fault {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let said = cli(&[
        "add",
        &env_url,
        "~test->store",
        "latency",
        "-a",
        "latency=150",
        "--name",
        "slow",
    ]);
    assert_eq!(
        said,
        "added to ~test->store: slow (latency) jitter=0 latency=150\n"
    );
    let listed = cli(&["list", &env_url]);
    assert!(
        listed.contains("~test->store: slow (latency) jitter=0 latency=150\n"),
        "{listed}"
    );
    assert!(listed.contains("~test->store: nope (abort)"), "{listed}");
    assert!(listed.contains("front->store: teapot (abort)"), "{listed}");
    let out = curl(&["-o", "/dev/null", "-w", "%{time_total}", &url]);
    let took = String::from_utf8_lossy(&out.stdout).parse::<f64>().unwrap();
    assert!(
        took >= 0.14,
        "latency 150ms from the CLI: the request took {took}s"
    );
    assert_eq!(
        cli(&["clear", &env_url, "~test->store", "--name", "slow"]),
        "removed 1 fault(s)\n"
    );
    assert_eq!(cli(&["clear", &env_url]), "removed 2 fault(s)\n");
    let (_, listed) = daemon.call("GET", &faults, None);
    assert!(
        listed
            .as_object()
            .unwrap()
            .values()
            .all(|f| f == &serde_json::json!([])),
        "{listed:#}"
    );
    let (status, gone) = daemon.call(
        "DELETE",
        &format!("{faults}?edge=~test-%3Estore&name=gone"),
        None,
    );
    assert_eq!(status, 404, "{gone:#}");

    let (status, _) = daemon.call("DELETE", &format!("/environments/{id}"), None);
    assert_eq!(status, 200);
}
