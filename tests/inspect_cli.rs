//! `tapmesh events`, `traffic` and `export` on the events of a real curl
//! session through the proxy to nginx.

mod common;

use std::process::Command;

use common::nginx::Nginx;
use common::{curl, requests_after, url, ProxyProcess};
use serde_json::Value;

fn tapmesh(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tapmesh {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A curl session (HTTP/1.1 and HTTP/2, a POST, a 404) through the proxy;
/// returns the events file it left.
fn session() -> (tempfile::TempDir, std::path::PathBuf) {
    let nginx = Nginx::start();
    let proxy = ProxyProcess::start(
        nginx.http_addr(),
        &[
            "--protocol",
            "http",
            "--source",
            "curl",
            "--target-name",
            "web",
        ],
    );
    curl(&[
        &url(&proxy, "/echo-query?a=1&b=2"),
        &url(&proxy, "/missing"),
    ]);
    curl(&["--data-binary", "hello=world", &url(&proxy, "/upload")]);
    // The proxy's own file goes with it: keep a copy of every event.
    let (events, _) = requests_after(proxy, 3);
    let dir = tempfile::tempdir().unwrap();
    let kept = dir.path().join("events.jsonl");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&kept, text).unwrap();
    (dir, kept)
}

/// The HAR 1.2 required fields and their types (http://www.softwareishard.com/blog/har-12-spec/).
fn check_har_1_2(har: &Value) {
    let log = &har["log"];
    assert_eq!(log["version"], "1.2");
    assert!(log["creator"]["name"].is_string() && log["creator"]["version"].is_string());
    for e in log["entries"].as_array().expect("entries") {
        let started = e["startedDateTime"].as_str().expect("startedDateTime");
        chrono::DateTime::parse_from_rfc3339(started).expect("ISO 8601 startedDateTime");
        assert!(e["time"].is_number());
        let req = &e["request"];
        for field in ["method", "url", "httpVersion"] {
            assert!(req[field].is_string(), "request.{field}: {req}");
        }
        for field in ["cookies", "headers", "queryString"] {
            assert!(req[field].is_array(), "request.{field}");
        }
        assert!(req["headersSize"].is_i64() && req["bodySize"].is_i64());
        for h in req["headers"].as_array().unwrap() {
            assert!(h["name"].is_string() && h["value"].is_string());
        }
        if let Some(post) = req.get("postData") {
            assert!(post["mimeType"].is_string() && post["text"].is_string());
        }
        let resp = &e["response"];
        assert!(resp["status"].is_u64());
        for field in ["statusText", "httpVersion", "redirectURL"] {
            assert!(resp[field].is_string(), "response.{field}");
        }
        assert!(resp["cookies"].is_array() && resp["headers"].is_array());
        assert!(resp["content"]["size"].is_i64() && resp["content"]["mimeType"].is_string());
        assert!(resp["headersSize"].is_i64() && resp["bodySize"].is_i64());
        assert!(e["cache"].is_object());
        for t in ["send", "wait", "receive"] {
            assert!(e["timings"][t]
                .as_f64()
                .is_some_and(|v| v >= 0.0 || v == -1.0));
        }
    }
}

#[test]
fn har_export_has_one_valid_entry_per_request() {
    let (dir, events) = session();
    let har_path = dir.path().join("session.har");
    let events = events.to_str().unwrap();
    tapmesh(&["export", events, "--har", har_path.to_str().unwrap()]);
    let har: Value = serde_json::from_slice(&std::fs::read(&har_path).unwrap()).unwrap();
    check_har_1_2(&har);
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    // Found by URL: the two curl runs are two connections, and the proxy
    // logs each exchange after forwarding it, so their order may vary.
    let by_path = |path: &str| {
        entries
            .iter()
            .find(|e| e["request"]["url"].as_str().unwrap().ends_with(path))
            .unwrap_or_else(|| panic!("no entry for {path}: {entries:#?}"))
    };
    let query = by_path("/echo-query?a=1&b=2");
    assert_eq!(query["request"]["method"], "GET");
    assert_eq!(
        query["request"]["queryString"],
        serde_json::json!([{"name": "a", "value": "1"}, {"name": "b", "value": "2"}])
    );
    assert_eq!(query["response"]["content"]["text"], "a=1&b=2\n");
    assert_eq!(by_path("/missing")["response"]["status"], 404);
    let upload = by_path("/upload");
    assert_eq!(upload["request"]["method"], "POST");
    assert_eq!(upload["request"]["postData"]["text"], "hello=world");
    assert_eq!(upload["response"]["status"], 201);
}

#[test]
fn events_filters_and_traffic_summary() {
    let (_dir, events) = session();
    let events = events.to_str().unwrap();

    let lines = tapmesh(&["events", events, "--type", "request.completed"]);
    assert_eq!(lines.lines().count(), 3, "{lines}");
    assert!(lines.contains("curl->web"), "{lines}");
    assert!(lines.contains("GET /missing → 404"), "{lines}");

    let errors = tapmesh(&["events", events, "--status", "4xx", "--json"]);
    let errors: Vec<Value> = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["request"]["path"], "/missing");

    assert_eq!(tapmesh(&["events", events, "--edge", "other->web"]), "");
    let on_edge = tapmesh(&["events", events, "--edge", "curl->web"]);
    assert!(
        on_edge.lines().count() >= 5,
        "connections and requests: {on_edge}"
    );

    let summary: Value = serde_json::from_str(&tapmesh(&["traffic", events, "--json"])).unwrap();
    let edge = &summary[0];
    assert_eq!(edge["source"], "curl");
    assert_eq!(edge["target"], "web");
    assert_eq!(edge["calls"], 3);
    assert_eq!(edge["errors"], 0, "a 404 is not a server error");
    assert_eq!(edge["bytes_in"], 11);
    assert!(edge["p99_ms"].as_f64().unwrap() >= edge["p50_ms"].as_f64().unwrap());
    let table = tapmesh(&["traffic", events]);
    assert!(table.contains("curl->web"), "{table}");

    let seq = errors[0]["seq"].as_u64().unwrap().to_string();
    let detail: Value =
        serde_json::from_str(&tapmesh(&["traffic", events, "--detail", &seq])).unwrap();
    assert_eq!(detail, errors[0]);
}

/// Events of a type this version does not know (from a newer tapmesh)
/// between known ones: shown with a generic line, written back as read,
/// and no obstacle to summaries and exports.
#[test]
fn unknown_event_types_pass_through() {
    let lines = [
        r#"{"seq":1,"type":"connection.opened","timestamp":"2026-11-23T10:00:00.100Z","environment":"e","connection":{"id":1,"source":"a","target":"b","ingress":"default","client_addr":"127.0.0.1:5000","bytes_in":0,"bytes_out":0,"duration_ms":0.0}}"#,
        r#"{"seq":2,"type":"request.completed","timestamp":"2026-11-23T10:00:01.250Z","environment":"e","request":{"connection":1,"source":"a","target":"b","ingress":"default","version":"HTTP/1.1","method":"GET","path":"/items","status_code":200,"latency_ms":3.06,"request_size":0,"response_size":3,"request_headers":{"host":"b"},"response_headers":{},"request_body":"","request_body_encoding":"utf8","request_body_truncated":false,"response_body":"ok\n","response_body_encoding":"utf8","response_body_truncated":false}}"#,
        r#"{"seq":3,"type":"chaos.injected","timestamp":"2026-11-23T10:00:02Z","environment":"e","chaos":{"edge":"a->b","delay_ms":1.50}}"#,
        r#"{"seq":4,"type":"service.ready","timestamp":"2026-11-23T10:00:03Z","environment":"e","service":"b","health":{"probe":"grpc"}}"#,
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, &text).unwrap();
    let file = file.to_str().unwrap();

    let table = tapmesh(&["events", file]);
    let fault = table.lines().nth(2).unwrap();
    assert!(
        fault.contains("chaos.injected") && fault.contains("delay_ms=1.5 edge=a->b"),
        "{table}"
    );
    assert!(
        table.lines().nth(3).unwrap().contains("probe=grpc"),
        "{table}"
    );
    assert_eq!(tapmesh(&["events", file, "--json"]), text);
    assert_eq!(
        tapmesh(&["events", file, "--type", "chaos.*", "--json"]),
        format!("{}\n", lines[2])
    );

    let summary: Value = serde_json::from_str(&tapmesh(&["traffic", file, "--json"])).unwrap();
    assert_eq!(summary.as_array().unwrap().len(), 1, "{summary}");
    assert_eq!(
        (
            summary[0]["calls"].as_u64(),
            summary[0]["connections"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert!(tapmesh(&["traffic", file]).contains("a->b"));
    let detail: Value =
        serde_json::from_str(&tapmesh(&["traffic", file, "--detail", "3"])).unwrap();
    assert_eq!(detail, serde_json::from_str::<Value>(lines[2]).unwrap());

    let har = dir.path().join("out.har");
    let jsonl = dir.path().join("out.jsonl");
    let (har, jsonl) = (har.to_str().unwrap(), jsonl.to_str().unwrap());
    tapmesh(&["export", file, "--har", har, "--jsonl", jsonl]);
    assert_eq!(std::fs::read_to_string(jsonl).unwrap(), text);
    let har: Value = serde_json::from_slice(&std::fs::read(har).unwrap()).unwrap();
    check_har_1_2(&har);
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 1);
}

/// A known event type whose payload does not read is still an error,
/// naming its line.
#[test]
fn a_malformed_known_event_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    std::fs::write(
        &file,
        concat!(
            r#"{"seq":1,"type":"chaos.injected","timestamp":"2026-11-23T10:00:02Z","environment":"e","chaos":{}}"#,
            "\n",
            r#"{"seq":2,"type":"request.completed","timestamp":"2026-11-23T10:00:02Z","environment":"e","request":{"source":"a"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args(["events", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("line 2: not an event"), "{stderr}");
}
