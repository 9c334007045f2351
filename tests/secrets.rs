//! No password from a PostgreSQL or Redis authentication survives into
//! anything tapmesh produces: an environment run by the daemon, whose job
//! logs into its database (SCRAM, and once with a wrong password) and its
//! cache (`AUTH`, `HELLO 3 AUTH`, and `CONFIG GET requirepass`, whose reply
//! carries the password in clear), is read back every way a user can (the
//! event stream as SSE and NDJSON, `tapmesh export` to HAR and JSON Lines,
//! every file in the daemon's state directory) and grepped for both
//! passwords.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::daemon::Daemon;

const PG_PASSWORD: &str = "pgpw-Hq8-not-anywhere";
const REDIS_PASSWORD: &str = "rdpw-Tz2-not-anywhere";

fn assert_clean(what: &str, text: &str) {
    for secret in [PG_PASSWORD, REDIS_PASSWORD] {
        assert!(!text.contains(secret), "{secret} is in {what}");
    }
}

#[test]
fn no_authentication_secret_reaches_events_streams_exports_or_files() {
    let daemon = Daemon::start(&[]);
    let spec = format!(
        r#"
name: secrets
services:
  db:
    type: postgres
    user: shop
    password: {PG_PASSWORD}
  cache:
    type: redis
    password: {REDIS_PASSWORD}
  app:
    type: script
    job: true
    egresses: {{ db: db, cache: cache }}
    script: |
      set -e
      psql "$DB_URL" -X -q -c "SELECT current_user"
      # The passwords from the wiring, so that this script holds none.
      pg=${{DB_URL#postgres://shop:}}; pg=${{pg%%@*}}
      rd=${{CACHE_URL#redis://default:}}; rd=${{rd%%@*}}
      PGPASSWORD="wrong-$pg" psql -X -q -h "$DB_HOST" -p "$DB_PORT" -U shop -c "SELECT 1" postgres && exit 9
      redis-cli --no-auth-warning -u "$CACHE_URL" SET greeting hello
      redis-cli -h "$CACHE_HOST" -p "$CACHE_PORT" HELLO 3 AUTH default "$rd"
      # Its reply holds the password: not printed to the log (a service.log).
      redis-cli --no-auth-warning -u "$CACHE_URL" CONFIG GET requirepass > /dev/null
      echo finished
"#
    );
    let (status, created) = daemon.call(
        "POST",
        "/environments?wait=true",
        Some(("application/yaml", &spec)),
    );
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = daemon.events(&id);
        let done = events
            .iter()
            .any(|e| e["type"] == "service.completed" && e["service"] == "app");
        if done {
            break events;
        }
        let failed = events
            .iter()
            .find(|e| e["type"] == "service.failed" && e["service"] == "app");
        assert!(failed.is_none(), "{failed:#?}");
        assert!(
            Instant::now() < deadline,
            "the job did not finish: {events:#?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // What was observed: the logins and commands, secrets redacted.
    let commands: Vec<&serde_json::Value> = common::of_type(&events, "redis.command.completed")
        .into_iter()
        .map(|e| &e["command"])
        .collect();
    let hello = commands
        .iter()
        .find(|c| c["command"] == "HELLO")
        .expect("the HELLO");
    assert_eq!(
        hello["args"],
        serde_json::json!(["3", "AUTH", "default", "[redacted]"])
    );
    let config = commands
        .iter()
        .find(|c| c["command"] == "CONFIG GET")
        .expect("the CONFIG GET");
    assert_eq!(config["args"], serde_json::json!(["requirepass"]));
    assert!(
        config["reply"]["value"]
            .as_str()
            .unwrap()
            .contains("[redacted]"),
        "{config:#}"
    );
    let queries = common::of_type(&events, "postgres.query.completed");
    assert!(queries
        .iter()
        .any(|q| q["query"]["sql"] == "SELECT current_user"));

    // Every way to read them back.
    let base = daemon.url(&format!("/environments/{id}"));
    let ndjson = common::curl(&[
        "-H",
        "accept: application/x-ndjson",
        &format!("{base}/events?follow=false"),
    ]);
    assert!(ndjson.contains("SELECT current_user"));
    assert_clean("the NDJSON stream", &ndjson);
    let sse = common::curl(&[
        "-H",
        "accept: text/event-stream",
        &format!("{base}/events?follow=false"),
    ]);
    assert!(sse.contains("event: redis.command.completed"), "{sse}");
    assert_clean("the SSE stream", &sse);

    let out = tempfile::tempdir().unwrap();
    let (har, jsonl) = (out.path().join("all.har"), out.path().join("all.jsonl"));
    let export = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .arg("export")
        .arg(&base)
        .arg("--har")
        .arg(&har)
        .arg("--jsonl")
        .arg(&jsonl)
        .output()
        .unwrap();
    assert!(export.status.success(), "{export:?}");
    for path in [&har, &jsonl] {
        assert_clean(
            &path.display().to_string(),
            &std::fs::read_to_string(path).unwrap(),
        );
    }
    assert!(std::fs::read_to_string(&jsonl)
        .unwrap()
        .contains("CONFIG GET"));

    // And after down, everything the daemon and the environment wrote.
    let (status, _) = daemon.call("DELETE", &format!("/environments/{id}"), None);
    assert_eq!(status, 200);
    let mut written = Vec::new();
    common::files(daemon.state_dir.path(), &mut written);
    assert!(
        written.iter().any(|p| p.ends_with("events.jsonl")),
        "{written:#?}"
    );
    for path in written {
        let bytes = std::fs::read(&path).unwrap();
        assert_clean(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
        );
    }
}
