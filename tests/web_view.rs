//! The web view's server side, end to end with a real daemon (and a real
//! `tapmesh up`): the page and its files with a policy that allows no
//! inline script, the spec's topology, one event by seq with its gzip body
//! undone, HAR and JSON Lines exports of a query, and the same refusal of
//! other sites' requests as every other route. The page itself is driven
//! in a real browser by tests/browser (run by scripts/test.sh).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use common::of_type;
use serde_json::{json, Value};

/// `web` answers JSON, gzipped under `/gz`; `client` calls it twice
/// through its (observed) egress, then idles.
const GZ: &str = r#"
name: gz
services:
  web:
    type: process
    command:
      - python3
      - -c
      - |
        import gzip, http.server, json, os
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps({"path": self.path, "items": list(range(50))}).encode()
                gz = self.path.startswith("/gz")
                if gz:
                    body = gzip.compress(body)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                if gz:
                    self.send_header("content-encoding", "gzip")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    ingresses:
      default: { protocol: http, ready: { type: tcp } }
  client:
    type: script
    script: |
      curl -s -o /dev/null -H 'accept-encoding: gzip' "http://$WEB_HOSTPORT/gz"
      curl -s -o /dev/null "http://$WEB_HOSTPORT/plain"
      sleep 1000 & wait
    egresses:
      web: { service: web }
"#;

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `curl -i`: status, headers (lower-case names), body.
fn get(url: &str, headers: &[&str]) -> (u16, Vec<(String, String)>, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--max-time", "30"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().unwrap();
    assert!(out.status.success(), "curl {url}: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn the_daemon_serves_the_page_an_event_with_its_body_undone_and_exports_of_a_query() {
    let daemon = Daemon::start(&[]);
    let (status, created) = daemon.call(
        "POST",
        "/environments?wait=true",
        Some(("application/yaml", GZ)),
    );
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_string();
    wait_until("the client's two calls", Duration::from_secs(60), || {
        of_type(&daemon.events(&id), "request.completed").len() == 2
    });

    // The page and its files, each under a policy that allows only them.
    let (status, headers, page) = get(&daemon.url("/"), &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&headers, "content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(header(&headers, "x-frame-options"), Some("DENY"));
    assert!(
        page.contains(r#"<script type="module" src="/ui/app.js""#),
        "{page}"
    );
    for (file, kind) in [
        ("app.js", "text/javascript"),
        ("dom.js", "text/javascript"),
        ("map.js", "text/javascript"),
        ("detail.js", "text/javascript"),
        ("worker.js", "text/javascript"),
        ("app.css", "text/css"),
    ] {
        let (status, headers, body) = get(&daemon.url(&format!("/ui/{file}")), &[]);
        assert_eq!(status, 200, "{file}");
        assert_eq!(header(&headers, "content-type"), Some(kind), "{file}");
        assert!(body.len() > 1000, "{file} is {} bytes", body.len());
    }
    let (status, _, _) = get(&daemon.url("/ui/nothing.js"), &[]);
    assert_eq!(status, 404);

    // What the map draws before any traffic: the spec's services and edges.
    let (_, described) = daemon.call("GET", &format!("/environments/{id}"), None);
    let topology = &described["topology"];
    let names: BTreeSet<&str> = topology["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["client", "web"]));
    assert_eq!(
        topology["edges"],
        json!([{"source": "client", "egress": "web", "target": "web", "ingress": "default", "protocol": "http"}])
    );
    let web = topology["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "web")
        .unwrap();
    assert_eq!(web["type"], "process");
    assert_eq!(
        web["ingresses"],
        json!([{"name": "default", "protocol": "http"}])
    );

    // One event by seq: the gzip body as sent, and its decompressed view.
    let events = daemon.events(&id);
    let calls = of_type(&events, "request.completed");
    let gz = calls
        .iter()
        .find(|e| e["request"]["path"] == "/gz")
        .unwrap();
    let plain = calls
        .iter()
        .find(|e| e["request"]["path"] == "/plain")
        .unwrap();
    assert_eq!(gz["request"]["response_body_encoding"], "base64");
    let seq = gz["seq"].as_u64().unwrap();
    let (status, one) = daemon.call("GET", &format!("/environments/{id}/events/{seq}"), None);
    assert_eq!(status, 200, "{one:#}");
    assert_eq!(&one["event"], *gz);
    let response = &one["bodies"]["response"];
    assert_eq!(response["codings"], json!(["gzip"]));
    assert_eq!(response["truncated"], false);
    let decoded: Value = serde_json::from_str(response["text"].as_str().unwrap()).unwrap();
    assert_eq!(
        decoded,
        json!({"path": "/gz", "items": (0..50).collect::<Vec<_>>()})
    );
    assert_eq!(one["bodies"]["request"], Value::Null);
    let seq = plain["seq"].as_u64().unwrap();
    let (_, one) = daemon.call("GET", &format!("/environments/{id}/events/{seq}"), None);
    assert_eq!(one["event"]["request"]["path"], "/plain");
    assert_eq!(one["bodies"]["response"], Value::Null, "nothing to undo");
    let (status, _) = daemon.call("GET", &format!("/environments/{id}/events/9999999"), None);
    assert_eq!(status, 404);

    // HAR of a query: only what it keeps.
    let q = encode(r#"http.path == "/gz""#);
    let (status, headers, body) = get(&daemon.url(&format!("/environments/{id}/har?q={q}")), &[]);
    assert_eq!(status, 200, "{body}");
    assert!(header(&headers, "content-disposition")
        .unwrap()
        .starts_with("attachment"));
    let har: Value = serde_json::from_str(&body).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{har:#}");
    assert!(entries[0]["request"]["url"]
        .as_str()
        .unwrap()
        .ends_with("/gz"));
    assert_eq!(entries[0]["response"]["status"], 200);
    let (_, _, body) = get(&daemon.url(&format!("/environments/{id}/har")), &[]);
    let har: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(har["log"]["entries"].as_array().unwrap().len(), 2);
    let bad = encode("http.status >=");
    let (status, _, body) = get(&daemon.url(&format!("/environments/{id}/har?q={bad}")), &[]);
    assert_eq!(status, 400);
    let refused: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refused["position"]["column"], 15, "{refused:#}");

    // JSON Lines of a query, asked for in the URL (a link cannot set Accept).
    let (status, headers, body) = get(
        &daemon.url(&format!(
            "/environments/{id}/events?follow=false&format=ndjson&q={q}"
        )),
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/x-ndjson")
    );
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, vec![(*gz).clone()]);

    // The list's rows: one per event, gathered in batches, in order.
    let (status, headers, body) = get(
        &daemon.url(&format!(
            "/environments/{id}/events?follow=false&view=row&batch_ms=100"
        )),
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-type"),
        Some("application/x-ndjson")
    );
    let rows: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let logged = daemon.events(&id);
    assert!(rows.len() >= events.len() && rows.len() <= logged.len());
    for (row, event) in rows.iter().zip(&logged) {
        assert_eq!(row["seq"], event["seq"]);
        assert_eq!(row["type"], event["type"]);
    }
    let gz_row = rows.iter().find(|r| r["seq"] == gz["seq"]).unwrap();
    assert_eq!(gz_row["what"], "GET /gz");
    assert_eq!(gz_row["edge"], "client->web");
    assert_eq!(gz_row["st"], 200);
    assert_eq!(
        (&gz_row["wf"], &gz_row["wv"]),
        (&json!("http.path"), &json!("/gz"))
    );
    assert_eq!(gz_row["call"], true);
    assert!(gz_row.get("err").is_none());

    // Another site's page gets nothing, the page included.
    let (status, _, _) = get(&daemon.url("/"), &["Origin: http://evil.example"]);
    assert_eq!(status, 403);
    let (status, _, _) = get(&daemon.url("/"), &["Host: evil.example"]);
    assert_eq!(status, 421);
    let (status, _, _) = get(&daemon.url("/"), &["Sec-Fetch-Site: cross-site"]);
    assert_eq!(status, 403);
}

#[test]
fn tapmesh_up_serves_the_web_view_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("gz.yaml");
    std::fs::write(&spec, GZ).unwrap();
    let mut up = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .arg("up")
        .arg(&spec)
        .arg("--dir")
        .arg(dir.path().join("run"))
        .args(["--for", "20s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(up.stderr.take().unwrap());
    let mut url = None;
    let mut said = Vec::new();
    for _ in 0..10 {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(u) = line.trim().strip_prefix("web view: ") {
            url = Some(u.to_string());
            break;
        }
        said.push(line);
    }
    let url = url.unwrap_or_else(|| panic!("no web view line in {said:?}"));
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    let (status, _, page) = get(&url, &[]);
    assert_eq!(status, 200);
    assert!(page.contains("/ui/app.js"));
    let (_, _, listed) = get(&format!("{url}environments"), &[]);
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed[0]["name"], "gz");
    let id = listed[0]["id"].as_str().unwrap();
    wait_until("gz up", Duration::from_secs(60), || {
        let (_, _, d) = get(&format!("{url}environments/{id}"), &[]);
        serde_json::from_str::<Value>(&d).unwrap()["state"] == "up"
    });
    let (_, _, d) = get(&format!("{url}environments/{id}"), &[]);
    let described: Value = serde_json::from_str(&d).unwrap();
    assert_eq!(described["services"]["web"]["state"], "ready");
    assert_eq!(described["topology"]["edges"][0]["target"], "web");
    // Only reads here: no environment is started through up's web view.
    let (status, _, _) = get(
        &format!("{url}environments"),
        &["Origin: http://evil.example"],
    );
    assert_eq!(status, 403);
    // Stopped as Ctrl-C would: every service goes with it.
    Command::new("kill")
        .args(["-TERM", &up.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(up.wait().unwrap().success(), "{rest}");

    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .arg("up")
        .arg(&spec)
        .arg("--dir")
        .arg(dir.path().join("run2"))
        .args(["--for", "1s", "--no-web"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("web view"), "{stderr}");
}
