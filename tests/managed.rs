//! Managed servers (`type: postgres | redis | kafka`) run by a real
//! environment: real PostgreSQL, Redis and librdkafka's mock cluster,
//! reached by real clients (psql, redis-cli, kcat) through the wiring's
//! URLs and the edges' proxies.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tapmesh::events::{Event, EventKind, Payload, ServiceState};
use tapmesh::{Environment, Spec};

const PG_PASSWORD: &str = "pg-Secret-7f3a";
const REDIS_PASSWORD: &str = "redis-Secret-91c2";

fn builder(spec: &str, state: &Path) -> tapmesh::EnvironmentBuilder {
    let spec = Spec::parse_in(spec, state).unwrap_or_else(|e| panic!("{e}"));
    Environment::builder(spec)
        .state_dir(state)
        .stall_after(Duration::from_secs(60))
}

fn lines(events: &[Arc<Event>], service: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::ServiceLog && e.service.as_deref() == Some(service))
        .filter_map(|e| match &e.payload {
            Payload::Log(l) => Some(l.line.clone()),
            _ => None,
        })
        .collect()
}

/// Every file under `dir` (links not followed), for a grep.
fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files(&entry.path(), out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_redis_and_kafka_run_wired_probed_observed_and_stopped_cleanly() {
    let state = tempfile::tempdir().unwrap();
    let sql = state.path().join("sql");
    std::fs::create_dir_all(&sql).unwrap();
    std::fs::write(
        sql.join("01-schema.sql"),
        "CREATE TABLE items (sku text PRIMARY KEY, stock int NOT NULL);\n",
    )
    .unwrap();
    std::fs::write(
        sql.join("02-seed.sql"),
        "INSERT INTO items VALUES ('A-7', 3), ('B-2', 0), ('C-9', 12);\n",
    )
    .unwrap();
    let out = state.path().join("out");
    let spec = format!(
        r#"
name: managed
services:
  db:
    type: postgres
    database: shop
    user: shop
    password: {PG_PASSWORD}
    init: sql
  cache:
    type: redis
    password: {REDIS_PASSWORD}
    config: ["maxmemory 16mb", "maxmemory-policy allkeys-lru"]
  broker:
    type: kafka
    engine: mock
    topics: [{{ name: orders, partitions: 3 }}, payments]
  app:
    type: script
    job: true
    egresses: {{ db: db, cache: cache, broker: broker }}
    script: |
      set -e
      psql "$DB_URL" -X -q -t -A -c "SELECT sum(stock) FROM items" > {out}.sum
      redis-cli --no-auth-warning -u "$CACHE_URL" SET greeting hello > {out}.set
      redis-cli --no-auth-warning -u "$CACHE_URL" CONFIG GET maxmemory > {out}.maxmemory
      kcat -b "$BROKER_BROKERS" -L -J > {out}.metadata
      echo "order-1" | kcat -b "$BROKER_BROKERS" -t orders -p 2 -P
      kcat -b "$BROKER_BROKERS" -t orders -p 2 -o beginning -c 1 -e -C > {out}.consumed
      echo "$BROKER_BROKERS" > {out}.brokers
"#,
        out = out.display()
    );
    let env = builder(&spec, state.path())
        .up()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    env.wait_for(
        |e| e.kind == EventKind::ServiceCompleted && e.service.as_deref() == Some("app"),
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}: {:#?}", lines(&env.events(), "app")));

    // The init files ran, in order, in the database the spec names.
    let read = |ext: &str| std::fs::read_to_string(format!("{}.{ext}", out.display())).unwrap();
    assert_eq!(read("sum").trim(), "15");
    assert_eq!(read("set").trim(), "OK");
    assert_eq!(
        read("maxmemory").lines().collect::<Vec<_>>(),
        ["maxmemory", "16777216"]
    );
    let metadata: serde_json::Value = serde_json::from_str(&read("metadata")).unwrap();
    let partitions = |name: &str| {
        metadata["topics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["topic"] == name)
            .map(|t| t["partitions"].as_array().unwrap().len())
    };
    assert_eq!(partitions("orders"), Some(3), "{metadata}");
    assert_eq!(partitions("payments"), Some(1), "{metadata}");
    assert_eq!(read("consumed").trim(), "order-1");

    // The wiring pointed at the edges' proxies: each client's traffic is an
    // event on its edge.
    let events = env.events();
    let query = events
        .iter()
        .filter_map(|e| e.query())
        .find(|q| q.sql == "SELECT sum(stock) FROM items")
        .unwrap_or_else(|| panic!("no query event: {events:#?}"));
    assert_eq!(&*query.source, "app");
    assert_eq!(&*query.target, "db");
    assert_eq!(query.database.as_deref(), Some("shop"));
    assert_eq!(query.user.as_deref(), Some("shop"));
    assert_eq!(query.command.as_deref(), Some("SELECT"));
    assert_eq!(query.rows, Some(1));
    // redis-cli -u authenticates with the URL's credentials (redacted),
    // then its SET is decoded on app → cache.
    let redis: Vec<_> = events.iter().filter_map(|e| e.redis_command()).collect();
    let auth = redis
        .iter()
        .find(|c| c.command == "AUTH")
        .unwrap_or_else(|| panic!("no AUTH on app → cache: {redis:#?}"));
    assert_eq!(auth.args, ["default", "[redacted]"]);
    let set = redis
        .iter()
        .find(|c| c.command == "SET")
        .unwrap_or_else(|| panic!("no SET on app → cache: {redis:#?}"));
    assert_eq!((&*set.source, &*set.target), ("app", "cache"));
    assert_eq!(set.args, ["greeting", "hello"]);
    assert_eq!(set.reply.as_ref().map(|r| r.value.as_str()), Some("\"OK\""));
    let brokers: std::net::SocketAddr = read("brokers").trim().parse().unwrap();
    assert_ne!(
        brokers,
        env.endpoints()["broker"]["default"].address,
        "BROKER_BROKERS is the broker itself, not its edge's proxy"
    );
    for (api, name) in [(3, "Metadata"), (0, "Produce"), (1, "Fetch")] {
        assert!(
            events.iter().any(|e| e
                .kafka_request()
                .is_some_and(|k| &*k.source == "app" && k.api_key == api)),
            "no {name} request from app on its edge: {events:#?}"
        );
    }
    let states = env.service_states();
    for server in ["db", "cache", "broker"] {
        assert_eq!(states[server], ServiceState::Ready, "{server}: {states:?}");
    }

    // A fresh data directory inside the environment's, the server's own
    // (its files owned by the unprivileged user when tapmesh is root).
    let pgdata = env.dir().join("data/db/pgdata");
    assert!(pgdata.join("PG_VERSION").is_file(), "{}", pgdata.display());
    if unsafe { libc::geteuid() } == 0 {
        use std::os::unix::fs::MetadataExt;
        let owner = std::fs::metadata(pgdata.join("PG_VERSION")).unwrap().uid();
        assert_ne!(owner, 0, "PostgreSQL's files are root's");
    }
    assert!(
        !pgdata.parent().unwrap().join(".pwfile").exists(),
        "initdb's password file outlived it"
    );

    let dir = env.dir().to_path_buf();
    let started = std::time::Instant::now();
    env.down().await.unwrap();
    // A clean stop, not the SIGKILL at the end of the grace period.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "down took {:?}",
        started.elapsed()
    );
    let log = std::fs::read_to_string(dir.join("logs/db.log")).unwrap();
    assert!(log.contains("database system is shut down"), "{log}");

    // No password in anything tapmesh wrote (events, logs).
    let mut written = Vec::new();
    files(&dir, &mut written);
    assert!(written.iter().any(|p| p.ends_with("events.jsonl")));
    for path in written {
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in [PG_PASSWORD, REDIS_PASSWORD] {
            assert!(!text.contains(secret), "{secret} in {}", path.display());
        }
    }
}

#[test]
fn a_missing_server_is_refused_before_anything_starts_saying_what_to_install() {
    let errors = Spec::parse(
        r#"
name: missing
services:
  old:
    type: postgres
    version: 8
  broker:
    type: kafka
    engine: real
"#,
    )
    .unwrap_err()
    .0;
    let at = |path: &str| {
        errors
            .iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("nothing at {path}: {errors:?}"))
            .message
            .clone()
    };
    let old = at("services.old.type");
    assert!(old.starts_with("PostgreSQL 8 is not installed"), "{old}");
    assert!(old.contains("apt-get install postgresql-8"), "{old}");
    assert_eq!(
        at("services.broker.engine"),
        "unknown engine \"real\" (tansu or mock)"
    );
}

#[test]
fn managed_settings_are_checked_with_their_paths() {
    let errors = Spec::parse(
        r#"
name: bad
services:
  db:
    type: postgres
    database: "shop; drop"
    command: [postgres]
    topics: [x]
  cache:
    type: redis
    ingresses: { default: {} }
  app:
    command: [app]
    password: hunter2
"#,
    )
    .unwrap_err()
    .0;
    let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
    for path in [
        "services.db.database",
        "services.db.command",
        "services.db.topics",
        "services.cache.ingresses",
        "services.app.password",
    ] {
        assert!(paths.contains(&path), "{path} not in {errors:?}");
    }
}

/// `cargo test` builds the binary beside the test; `engine: mock` runs it.
#[test]
fn the_mock_engine_runs_tapmesh_kafka_mock() {
    let status = Command::new(env!("CARGO_BIN_EXE_tapmesh"))
        .args(["kafka-mock", "--help"])
        .output()
        .unwrap();
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("NAME:PARTITIONS"));
}
