//! PostgreSQL through `tapmesh proxy --protocol postgres`: a real server
//! (Debian's PostgreSQL), real clients (`psql`, `pgbench -M prepared`), and
//! every statement checked field by field in the events. The password the
//! clients authenticate with (SCRAM-SHA-256) appears nowhere in them.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::ProxyProcess;
use serde_json::Value;

const PASSWORD: &str = "pw-Zq7-never-in-events";

/// A PostgreSQL server of the test's own on 127.0.0.1, its data in a
/// temporary directory, run as the `postgres` user when the test runs as
/// root (the server refuses root).
struct PgServer {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    let bin = versions
        .last()
        .map(|v| v.join("bin").join(name))
        .filter(|p| p.exists());
    bin.unwrap_or_else(|| {
        panic!("PostgreSQL's {name} is missing: apt-get install postgresql (scripts/test.sh does)")
    })
}

/// The `postgres` user's uid and gid when the test runs as root (the
/// server refuses root); `None` otherwise.
fn postgres_user() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    // SAFETY: getpwnam's result is read at once, before any other call.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    assert!(
        !entry.is_null(),
        "no postgres user: apt-get install postgresql (scripts/test.sh does)"
    );
    Some(unsafe { ((*entry).pw_uid, (*entry).pw_gid) })
}

/// `program` as the `postgres` user if we are root: no `runuser` between,
/// so signals and exits reach the test directly.
fn as_postgres(program: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    if let Some((uid, gid)) = postgres_user() {
        c.uid(uid).gid(gid);
    }
    c
}

/// A free port below the kernel's ephemeral range: one taken with
/// `bind(0)` and let go may be reused by an outgoing connection (or sit in
/// TIME_WAIT) before the server binds it.
fn free_port() -> u16 {
    use std::hash::BuildHasher;
    let random = std::hash::RandomState::new();
    (0..200u64)
        .map(|i| 20_000 + (random.hash_one(i) % 12_000) as u16)
        .find(|&p| TcpListener::bind(("127.0.0.1", p)).is_ok())
        .expect("a free port below 32000")
}

impl PgServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = postgres_user() {
            for path in [dir.path(), pwfile.as_path()] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
            }
        }
        let out = as_postgres(&pg_bin("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "tapmesh",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        let port = free_port();
        let child = as_postgres(&pg_bin("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut server = Self {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("postgres exited with {status} before listening on {addr}");
            }
            assert!(Instant::now() < deadline, "postgres did not listen");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

fn client(program: &str, proxy: SocketAddr) -> Command {
    let mut c = Command::new(program);
    c.env("PGPASSWORD", PASSWORD)
        .env("PGSSLMODE", "disable")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", proxy.port().to_string())
        .env("PGUSER", "tapmesh")
        .env("PGDATABASE", "postgres");
    c
}

fn run(mut command: Command) -> Output {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {out:?}");
    out
}

fn queries(events: &[Value]) -> Vec<&Value> {
    common::of_type(events, "postgres.query.completed")
        .into_iter()
        .map(|e| &e["query"])
        .collect()
}

fn find<'a>(queries: &[&'a Value], sql: &str) -> &'a Value {
    queries
        .iter()
        .find(|q| q["sql"].as_str().is_some_and(|s| s.trim() == sql))
        .unwrap_or_else(|| panic!("no query {sql:?} in {queries:#?}"))
}

#[test]
fn psql_statements_errors_and_transactions_field_by_field() {
    let server = PgServer::start();
    let proxy = ProxyProcess::start(
        server.addr,
        &[
            "--protocol",
            "postgres",
            "--source",
            "api",
            "--target-name",
            "db",
        ],
    );
    let mut psql = client("psql", proxy.addr);
    psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=0"]).args([
        "-c",
        "CREATE TABLE stock (sku text PRIMARY KEY, qty int)",
        "-c",
        "INSERT INTO stock VALUES ('A-7', 3), ('B-1', 5)",
        "-c",
        "SELECT sku, qty FROM stock ORDER BY sku",
        "-c",
        "BEGIN; UPDATE stock SET qty = qty - 1 WHERE sku = 'A-7'; COMMIT",
        "-c",
        "SELECT 1/0",
    ]);
    let out = psql.output().unwrap();
    // psql exits 1 after the failed statement; the others ran.
    assert!(String::from_utf8_lossy(&out.stderr).contains("division by zero"));
    let events = proxy.stop();
    let all = queries(&events);

    let create = find(&all, "CREATE TABLE stock (sku text PRIMARY KEY, qty int)");
    assert_eq!(create["source"], "api");
    assert_eq!(create["target"], "db");
    assert_eq!(create["database"], "postgres");
    assert_eq!(create["user"], "tapmesh");
    assert_eq!(create["protocol"], "simple");
    assert_eq!(create["command"], "CREATE TABLE");
    assert_eq!(create["error"], Value::Null);
    assert_eq!(create["transaction"], "idle");

    let insert = find(&all, "INSERT INTO stock VALUES ('A-7', 3), ('B-1', 5)");
    assert_eq!(
        (insert["command"].as_str(), insert["rows"].as_u64()),
        (Some("INSERT"), Some(2))
    );
    let select = find(&all, "SELECT sku, qty FROM stock ORDER BY sku");
    assert_eq!(
        (select["command"].as_str(), select["rows"].as_u64()),
        (Some("SELECT"), Some(2))
    );
    assert!(select["response_size"].as_u64().unwrap() > 0);
    assert!(select["latency_ms"].as_f64().unwrap() >= 0.0);

    // One Query message of three statements: three events, in order, each
    // with the transaction state after it.
    let begin = find(&all, "BEGIN");
    let update = find(&all, "UPDATE stock SET qty = qty - 1 WHERE sku = 'A-7'");
    let commit = find(&all, "COMMIT");
    assert_eq!(begin["command"], "BEGIN");
    assert_eq!(
        (update["command"].as_str(), update["rows"].as_u64()),
        (Some("UPDATE"), Some(1))
    );
    assert_eq!(commit["command"], "COMMIT");
    assert_eq!(commit["transaction"], "idle");

    let failed = find(&all, "SELECT 1/0");
    assert_eq!(failed["command"], Value::Null);
    assert_eq!(failed["error"]["severity"], "ERROR");
    assert_eq!(failed["error"]["code"], "22012");
    assert_eq!(failed["error"]["message"], "division by zero");

    // Nothing of the SCRAM exchange's secret was kept.
    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(!text.contains(PASSWORD));
    assert!(
        common::of_type(&events, "decode.error").is_empty(),
        "{events:#?}"
    );
}

#[test]
fn pgbench_prepared_statements_with_their_parameters() {
    let server = PgServer::start();
    // Its tables, created directly (not observed).
    let mut init = client("pgbench", server.addr);
    init.args(["-i", "-q", "-s", "1"]);
    run(init);
    let proxy = ProxyProcess::start(server.addr, &["--protocol", "postgres"]);
    let mut bench = client("pgbench", proxy.addr);
    bench.args(["-M", "prepared", "-S", "-t", "20", "-n"]);
    run(bench);
    let events = proxy.stop();
    let selects: Vec<&Value> = queries(&events)
        .into_iter()
        .filter(|q| {
            q["sql"]
                .as_str()
                .is_some_and(|s| s.contains("FROM pgbench_accounts WHERE aid"))
        })
        .collect();
    assert_eq!(selects.len(), 20, "{selects:#?}");
    for q in &selects {
        assert_eq!(q["protocol"], "extended");
        assert_eq!(q["command"], "SELECT");
        assert_eq!(q["rows"], 1);
        // Named once by Parse, executed by name: the text is recovered.
        assert!(
            q["statement"].as_str().is_some_and(|s| !s.is_empty()),
            "{q}"
        );
        let aid = q["params"][0].as_str().and_then(|s| s.parse::<u64>().ok());
        assert!(aid.is_some_and(|a| (1..=100_000).contains(&a)), "{q}");
    }
    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(!text.contains(PASSWORD));
}
