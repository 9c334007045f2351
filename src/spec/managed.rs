//! The servers tapmesh knows how to run (`type: postgres`, `redis`,
//! `kafka`): their settings, and where their programs are installed.
//!
//! Finding the programs is part of validation, so a spec that names a
//! server this machine lacks is refused before anything starts, with the
//! package to install.

use std::path::{Path, PathBuf};

/// A managed server and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum Managed {
    Postgres(Postgres),
    Redis(Redis),
    Kafka(Kafka),
}

impl Managed {
    /// The `type` it is written as, and the protocol of its ingress.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Redis(_) => "redis",
            Self::Kafka(_) => "kafka",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Postgres {
    /// The major version (`15`) where several are installed; default the
    /// newest.
    pub version: Option<String>,
    /// Created at start unless it is `postgres` (default `postgres`).
    pub database: String,
    /// The superuser initdb creates (default `postgres`).
    pub user: String,
    /// Its password, checked with SCRAM (default `postgres`).
    pub password: String,
    /// SQL files run once, in order, with `psql` before dependents start
    /// (a directory stands for its `*.sql` files in name order).
    pub init: Vec<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redis {
    /// `requirepass`; none by default.
    pub password: Option<String>,
    /// Lines of `redis.conf` (`maxmemory 64mb`), passed as arguments.
    pub config: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Kafka {
    pub engine: KafkaEngine,
    /// Created before dependents start.
    pub topics: Vec<Topic>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaEngine {
    /// `tansu`, a Kafka-compatible broker (the default).
    Tansu,
    /// librdkafka's in-memory mock cluster, run by `tapmesh kafka-mock`:
    /// nothing to install, starts at once, loses everything at stop.
    Mock,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: String,
    /// Default 1.
    pub partitions: u32,
}

impl Managed {
    /// What an egress to it is given beyond `_HOST`/`_PORT`/`_HOSTPORT`:
    /// the variable's suffix and its value for the address `hostport`.
    pub fn egress_variable(&self, hostport: &str) -> (&'static str, String) {
        match self {
            Self::Postgres(pg) => (
                "URL",
                format!(
                    "postgres://{}:{}@{hostport}/{}",
                    userinfo(&pg.user),
                    userinfo(&pg.password),
                    pg.database
                ),
            ),
            Self::Redis(redis) => (
                "URL",
                match &redis.password {
                    // `default`: the user a `requirepass` password belongs to
                    // (Redis 6 and later), which every client sends as given.
                    Some(password) => format!("redis://default:{}@{hostport}", userinfo(password)),
                    None => format!("redis://{hostport}"),
                },
            ),
            Self::Kafka(_) => ("BROKERS", hostport.to_string()),
        }
    }
}

/// `s` percent-encoded for a URL's user or password.
fn userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where Debian's packages put each PostgreSQL major version.
const POSTGRES_ROOT: &str = "/usr/lib/postgresql";

/// A PostgreSQL installation: the directory with `initdb`, `postgres` and
/// `psql`, and its major version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresInstall {
    pub version: String,
    pub bin: PathBuf,
}

/// The installation to use: `version` if given, else the newest under
/// Debian's layout, else `initdb` and `postgres` found on `PATH`.
pub fn find_postgres(version: Option<&str>) -> Result<PostgresInstall, String> {
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir(POSTGRES_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").is_file().then_some((major, bin))
        })
        .collect();
    installed.sort();
    let versions = || {
        installed
            .iter()
            .map(|(v, _)| v.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match version {
        Some(wanted) => installed
            .iter()
            .find(|(v, _)| v.to_string() == wanted)
            .map(|(v, bin)| PostgresInstall {
                version: v.to_string(),
                bin: bin.clone(),
            })
            .ok_or_else(|| {
                let found = if installed.is_empty() {
                    "none is".to_string()
                } else {
                    format!("{} installed", versions())
                };
                format!(
                    "PostgreSQL {wanted} is not installed ({found}): install it with `apt-get install postgresql-{wanted}`"
                )
            }),
        None => match installed.last() {
            Some((v, bin)) => Ok(PostgresInstall {
                version: v.to_string(),
                bin: bin.clone(),
            }),
            None => match (on_path("initdb"), on_path("postgres")) {
                (Some(initdb), Some(_)) => Ok(PostgresInstall {
                    version: "unknown".into(),
                    bin: initdb.parent().map(Path::to_path_buf).unwrap_or_default(),
                }),
                _ => Err(
                    "PostgreSQL is not installed: install it with `apt-get install postgresql` (Debian, Ubuntu), or put initdb and postgres on PATH"
                        .into(),
                ),
            },
        },
    }
}

/// `psql` beside the server, else on `PATH`.
pub fn find_psql(install: &PostgresInstall) -> Result<PathBuf, String> {
    let beside = install.bin.join("psql");
    if beside.is_file() {
        return Ok(beside);
    }
    on_path("psql").ok_or_else(|| {
        "psql runs the init files and is not installed: install it with `apt-get install postgresql-client`".into()
    })
}

pub fn find_redis() -> Result<PathBuf, String> {
    on_path("redis-server").ok_or_else(|| {
        "redis-server is not installed: install it with `apt-get install redis-server` (Debian, Ubuntu)".into()
    })
}

pub fn find_tansu() -> Result<PathBuf, String> {
    on_path("tansu")
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let cargo = PathBuf::from(home).join(".cargo/bin/tansu");
            cargo.is_file().then_some(cargo)
        })
        .ok_or_else(|| {
            "the tansu broker is not installed: install it with `cargo install tansu --locked --features dynostore` (about 12 minutes), or set `engine: mock` for librdkafka's mock cluster".into()
        })
}

/// The `tapmesh` executable, which runs the mock Kafka engine: the running
/// program if it is tapmesh; else `$TAPMESH_BIN`; else one beside it or a
/// directory up (a test binary in `target/debug/deps`); else on `PATH`.
pub fn find_tapmesh() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("TAPMESH_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().ok();
    if let Some(exe) = &exe {
        if exe.file_name().is_some_and(|n| n == "tapmesh") {
            return Ok(exe.clone());
        }
        let beside = exe
            .parent()
            .map(|dir| [dir.join("tapmesh"), dir.join("../tapmesh")]);
        if let Some(found) = beside.into_iter().flatten().find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    on_path("tapmesh").ok_or_else(|| {
        "engine: mock runs `tapmesh kafka-mock`, and no tapmesh executable was found: set TAPMESH_BIN to it".into()
    })
}

/// `program` in a directory of `PATH`.
pub fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// What this machine lacks to run `managed`, if anything.
pub fn missing(managed: &Managed) -> Option<String> {
    let found = match managed {
        Managed::Postgres(pg) => find_postgres(pg.version.as_deref()).and_then(|install| {
            // psql creates the database and runs the init files.
            if pg.init.is_empty() && pg.database == "postgres" {
                Ok(())
            } else {
                find_psql(&install).map(drop)
            }
        }),
        Managed::Redis(_) => find_redis().map(drop),
        Managed::Kafka(Kafka {
            engine: KafkaEngine::Tansu,
            ..
        }) => find_tansu().map(drop),
        Managed::Kafka(Kafka {
            engine: KafkaEngine::Mock,
            ..
        }) => find_tapmesh().map(drop),
    };
    found.err()
}
