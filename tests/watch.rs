//! `up --watch` through the Rust API it runs on: a source edit rebuilds and
//! restarts one `cargo` service while the others keep answering; a spec
//! edit restarts the service it changes; an invalid or reshaping edit is
//! refused with nothing touched.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tapmesh::environment::WatchReport;
use tapmesh::events::EventKind;
use tapmesh::{Environment, Spec};

/// A dependency-free HTTP server answering every request with `VERSION`.
fn server_source(version: &str) -> String {
    format!(
        r#"use std::io::{{Read, Write}};
fn main() {{
    let port = std::env::var("PORT").unwrap();
    let listener = std::net::TcpListener::bind(format!("127.0.0.1:{{port}}")).unwrap();
    for stream in listener.incoming() {{
        let Ok(mut stream) = stream else {{ continue }};
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf);
        let body = "{version}";
        let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: {{}}\r\nconnection: close\r\n\r\n{{body}}", body.len());
    }}
}}
"#
    )
}

fn spec_text(greeting: &str, extra: &str) -> String {
    format!(
        r#"
name: watched
services:
  hello:
    type: cargo
    package: hello
    ingresses: {{ default: {{ protocol: http, ready: {{ path: / }} }} }}
  other:
    type: script
    script: 'exec python3 -m http.server --bind 127.0.0.1 $PORT'
    env: {{ GREETING: {greeting} }}
    ingresses: {{ default: {{ protocol: http, ready: {{ path: / }} }} }}
{extra}"#
    )
}

/// GET / (a fresh connection); the body, or why not.
fn get(addr: SocketAddr) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    if !response.starts_with("HTTP/1.") || !response.contains(" 200 ") {
        return Err(format!("answered {:?}", response.lines().next()));
    }
    Ok(response.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

async fn next(reports: &mut tokio::sync::mpsc::UnboundedReceiver<WatchReport>) -> WatchReport {
    tokio::time::timeout(Duration::from_secs(120), reports.recv())
        .await
        .expect("a report within two minutes")
        .unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_redeploy_only_what_they_concern_while_the_rest_keeps_answering() {
    let state = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    let package = project.path().join("hello");
    std::fs::create_dir_all(package.join("src")).unwrap();
    write(
        &package.join("Cargo.toml"),
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(&package.join("src/main.rs"), &server_source("v1"));
    let spec_path = project.path().join("spec.yaml");
    write(&spec_path, &spec_text("one", ""));

    let spec = Spec::from_path(&spec_path).unwrap();
    let env = Environment::builder(spec)
        .state_dir(state.path())
        .cache_dir(state.path().join("cache"))
        .up()
        .await
        .unwrap();
    let hello = env.endpoint("hello").unwrap();
    let other = env.endpoint("other").unwrap();
    assert_eq!(get(hello).unwrap(), "v1");

    // A load loop on `other`, which no edit below but the last concerns.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let load = {
        let (stop, answered, failed) = (stop.clone(), answered.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match get(other) {
                    Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        errors.push(e);
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                std::thread::sleep(Duration::from_millis(50));
            }
            errors
        })
    };

    let (tx, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let watching = env.watch(&spec_path, &[], move |r| {
        let _ = tx.send(r);
    });
    let script = async {
        // 1. A source edit: hello rebuilt and restarted, nothing else.
        write(&package.join("src/main.rs"), &server_source("v2"));
        match next(&mut reports).await {
            WatchReport::Redeployed(done) => {
                assert_eq!(done, [("hello".to_string(), "hello changed".to_string())])
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(get(hello).unwrap(), "v2", "same address, new build");

        // 2. An invalid edit changes nothing and says every problem.
        write(
            &spec_path,
            "name: watched\nservices:\n  hello: { type: nope }\n  other: 7\n",
        );
        match next(&mut reports).await {
            WatchReport::Invalid(problems) => {
                assert!(problems.contains("services.hello.type"), "{problems}");
                assert!(problems.contains("services.other"), "{problems}");
            }
            other => panic!("{other:?}"),
        }
        // 3. So is an edit that adds a service (it would need new ports).
        write(
            &spec_path,
            &spec_text(
                "one",
                "  extra:\n    type: script\n    script: 'sleep 100'\n",
            ),
        );
        match next(&mut reports).await {
            WatchReport::NotApplied(why) => assert!(why.contains("service extra added"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(get(hello).unwrap(), "v2");
        let before = (
            answered.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        // 4. A spec edit to one service's settings restarts it alone.
        write(&spec_path, &spec_text("two", ""));
        match next(&mut reports).await {
            WatchReport::Redeployed(done) => assert_eq!(
                done,
                [("other".to_string(), "its spec changed".to_string())]
            ),
            other => panic!("{other:?}"),
        }
        before
    };
    // Biased: the watch takes its first look before the first edit.
    let (answered_before, failed_before) = tokio::select! {
        biased;
        _ = watching => unreachable!("watch runs until dropped"),
        before = script => before,
    };
    stop.store(true, Ordering::Relaxed);
    let errors = load.join().unwrap();

    let events = env.events();
    let restarts: Vec<(String, String)> = events
        .iter()
        .filter(|e| e.kind == EventKind::ServiceRestarting)
        .map(|e| {
            (
                e.service.as_deref().unwrap().to_string(),
                e.lifecycle().unwrap().reason.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        restarts,
        [
            (
                "hello".to_string(),
                "hello redeploying (hello changed) (was killed by SIGTERM)".to_string()
            ),
            (
                "other".to_string(),
                "other redeploying (its spec changed) (was killed by SIGTERM)".to_string()
            ),
        ]
    );
    let redeployed: Vec<Vec<String>> = events
        .iter()
        .filter(|e| e.kind == EventKind::EnvironmentRedeployed)
        .map(|e| e.lifecycle().unwrap().redeployed.clone())
        .collect();
    assert_eq!(redeployed, [vec!["hello"], vec!["other"]]);
    // The load loop never failed while hello was rebuilt and restarted and
    // the refused edits came and went (only other's own restart, last, may
    // cost it a request).
    assert!(answered_before > 10, "{answered_before}");
    assert_eq!(failed_before, 0, "{errors:?}");
    // And by the events of that edge: every call to `other` until its own
    // restart was answered 200, through hello's rebuild and restart.
    let other_restart = events
        .iter()
        .find(|e| e.kind == EventKind::ServiceRestarting && e.service.as_deref() == Some("other"))
        .unwrap()
        .seq;
    let calls: Vec<_> = events
        .iter()
        .filter(|e| e.seq < other_restart)
        .filter_map(|e| e.request())
        .filter(|r| r.target.as_ref() == "other")
        .collect();
    assert!(calls.len() as u32 >= answered_before / 2, "{}", calls.len());
    assert!(
        calls
            .iter()
            .all(|r| r.status_code == Some(200) && r.error.is_none()),
        "{calls:#?}"
    );
    env.down().await.unwrap();
}
