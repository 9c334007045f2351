//! A PostgreSQL server of a test's own and the clients that reach it,
//! shared by the tests that drive real clients through `tapmesh proxy
//! --protocol postgres`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The password every test client authenticates with (SCRAM-SHA-256): it
/// must appear in no event.
pub const PASSWORD: &str = "pw-Zq7-never-in-events";

/// A PostgreSQL server of the test's own on 127.0.0.1, its data in a
/// temporary directory, run as the `postgres` user when the test runs as
/// root (the server refuses root).
pub struct PgServer {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

pub fn pg_bin(name: &str) -> PathBuf {
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
pub fn postgres_user() -> Option<(u32, u32)> {
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
pub fn as_postgres(program: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(program);
    if let Some((uid, gid)) = postgres_user() {
        c.uid(uid).gid(gid);
    }
    c
}

impl PgServer {
    pub fn start() -> Self {
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
        let port = super::free_port_below_ephemeral();
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

pub fn client(program: &str, proxy: SocketAddr) -> Command {
    let mut c = Command::new(program);
    c.env("PGPASSWORD", PASSWORD)
        .env("PGSSLMODE", "disable")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", proxy.port().to_string())
        .env("PGUSER", "tapmesh")
        .env("PGDATABASE", "postgres");
    c
}

pub fn run(mut command: Command) -> Output {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?}: {out:?}");
    out
}

pub fn queries(events: &[Value]) -> Vec<&Value> {
    super::of_type(events, "postgres.query.completed")
        .into_iter()
        .map(|e| &e["query"])
        .collect()
}

pub fn find<'a>(queries: &[&'a Value], sql: &str) -> &'a Value {
    queries
        .iter()
        .find(|q| q["sql"].as_str().is_some_and(|s| s.trim() == sql))
        .unwrap_or_else(|| panic!("no query {sql:?} in {queries:#?}"))
}

/// The queries of one connection, in the order they were logged (which
/// is the order the server answered them).
pub fn on_connection<'a>(queries: &[&'a Value], connection: &Value) -> Vec<&'a Value> {
    queries
        .iter()
        .copied()
        .filter(|q| &q["connection"] == connection)
        .collect()
}

/// Checks that no event holds the password and none is a `decode.error`.
pub fn assert_clean(events: &[Value]) {
    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(!text.contains(PASSWORD), "the password reached an event");
    assert!(
        super::of_type(events, "decode.error").is_empty(),
        "{events:#?}"
    );
}

/// `tapmesh proxy --protocol postgres` in front of `server`, its edge
/// `source → db`.
pub fn observe(server: &PgServer, source: &str) -> super::ProxyProcess {
    super::ProxyProcess::start(
        server.addr,
        &[
            "--protocol",
            "postgres",
            "--source",
            source,
            "--target-name",
            "db",
        ],
    )
}
