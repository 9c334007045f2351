//! Running the servers tapmesh manages (`type: postgres | redis | kafka`)
//! through the same runner as every service: their setup is a `prestart`
//! (initdb), their first data an `init` (databases, SQL files, topics),
//! and the server itself the service's process, so each step is logged,
//! timed out and reported like a user's own.
//!
//! Each gets a fresh data directory, `<env>/data/<service>`, made anew at
//! every start. PostgreSQL refuses to run as root: when tapmesh is root it
//! runs initdb and the server as an unprivileged user (Debian's `postgres`,
//! else a `tapmesh` system user it creates) that owns that directory.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::process::{Launchable, RunAs};
use super::runner::PreparedHook;
use crate::spec::{
    find_postgres, find_psql, find_redis, find_tansu, find_tapmesh, Hook, HookRun, Kafka,
    KafkaEngine, Managed, Postgres, Redis,
};

/// Initdb, a database and its SQL files, topics: each may take this long.
const SETUP_TIMEOUT: Duration = Duration::from_secs(300);

/// What runs a managed server: its process and the hooks around it.
pub(super) struct ServerCommands {
    pub launch: Launchable,
    pub prestart: Option<PreparedHook>,
    pub init: Option<PreparedHook>,
}

/// Where and how: its port, its data directory, the spec's directory
/// (relative `init` paths), and the environment its commands get.
pub(super) struct Setting<'a> {
    pub port: u16,
    pub data_dir: &'a Path,
    pub base_dir: &'a Path,
    pub env: BTreeMap<String, String>,
    /// The user's own `init` hook (redis), run after tapmesh's setup.
    pub user_init: Option<&'a PreparedHook>,
}

pub(super) fn commands(managed: &Managed, at: Setting<'_>) -> Result<ServerCommands, String> {
    fresh_dir(at.data_dir)?;
    match managed {
        Managed::Postgres(pg) => match postgres_user()? {
            None => postgres(pg, &at, None),
            Some(user) => {
                let data_dir = reachable_dir(at.data_dir, user)?;
                postgres(
                    pg,
                    &Setting {
                        data_dir: &data_dir,
                        ..at
                    },
                    Some(user),
                )
            }
        },
        Managed::Redis(redis) => self::redis(redis, &at),
        Managed::Kafka(kafka) => self::kafka(kafka, &at),
    }
}

fn fresh_dir(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("removing the old {}: {e}", dir.display())),
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

fn launchable(argv: Vec<String>, at: &Setting<'_>, run_as: Option<RunAs>) -> Launchable {
    Launchable {
        argv,
        env: at.env.clone(),
        dir: at.data_dir.to_path_buf(),
        run_as,
        stdin: None,
    }
}

fn hook(launch: Launchable) -> PreparedHook {
    PreparedHook {
        hook: Hook {
            run: HookRun::Command(launch.argv.clone()),
            timeout: SETUP_TIMEOUT,
        },
        launch,
    }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn postgres(
    pg: &Postgres,
    at: &Setting<'_>,
    run_as: Option<RunAs>,
) -> Result<ServerCommands, String> {
    let install = find_postgres(pg.version.as_deref())?;
    let pgdata = at.data_dir.join("pgdata");
    // initdb reads the password from a file, which lives only while it
    // runs: the password comes on standard input (never in a command
    // line), and the shell, as the server's user, writes and removes it.
    let pwfile = at.data_dir.join(".pwfile");
    let initdb = vec![
        "sh".into(),
        "-c".into(),
        r#"umask 077; cat > "$PWFILE" || exit 1; "$0" "$@"; status=$?; rm -f "$PWFILE"; exit $status"#
            .into(),
        s(&install.bin.join("initdb")),
        "--pgdata".into(),
        s(&pgdata),
        "--username".into(),
        pg.user.clone(),
        format!("--pwfile={}", s(&pwfile)),
        "--auth-host=scram-sha-256".into(),
        "--auth-local=scram-sha-256".into(),
        "--encoding=UTF8".into(),
        "--no-sync".into(),
    ];
    let mut prestart = launchable(initdb, at, run_as);
    prestart.env.insert("PWFILE".into(), s(&pwfile));
    prestart.stdin = Some(format!("{}\n", pg.password));
    let server = vec![
        s(&install.bin.join("postgres")),
        "-D".into(),
        s(&pgdata),
        "-p".into(),
        at.port.to_string(),
        "-h".into(),
        "127.0.0.1".into(),
        // No Unix socket: the port is the only way in, so every client
        // goes through the edge's proxy.
        "-k".into(),
        String::new(),
        // A throwaway development database: durability buys nothing.
        "-c".into(),
        "fsync=off".into(),
        "-c".into(),
        "synchronous_commit=off".into(),
        "-c".into(),
        "full_page_writes=off".into(),
    ];
    let init = postgres_init(pg, &install, at)?;
    Ok(ServerCommands {
        launch: launchable(server, at, run_as),
        prestart: Some(hook(prestart)),
        init,
    })
}

/// `CREATE DATABASE` (unless it is `postgres`) and the SQL files, each with
/// `psql` stopping at its first error.
fn postgres_init(
    pg: &Postgres,
    install: &crate::spec::PostgresInstall,
    at: &Setting<'_>,
) -> Result<Option<PreparedHook>, String> {
    let files = sql_files(&pg.init, at.base_dir)?;
    if pg.database == "postgres" && files.is_empty() {
        return Ok(None);
    }
    let psql = r#""$PSQL" -X -q -v ON_ERROR_STOP=1"#;
    let create = if pg.database == "postgres" {
        String::new()
    } else {
        // Through the maintenance database: the new one does not exist yet.
        format!(
            r#"{psql} -d postgres -c 'CREATE DATABASE "{}"' || exit 1; "#,
            pg.database
        )
    };
    let script =
        format!(r#"{create}for f in "$@"; do echo "init: $f"; {psql} -f "$f" || exit 1; done"#);
    let mut argv = vec!["sh".into(), "-c".into(), script, "init".into()];
    argv.extend(files.iter().map(|f| s(f)));
    let mut launch = launchable(argv, at, None);
    // Paths inside the files (`\i`, `\copy`) are the spec's, like the files'.
    launch.dir = at.base_dir.to_path_buf();
    launch.env.extend([
        ("PSQL".to_string(), s(&find_psql(install)?)),
        ("PGHOST".into(), "127.0.0.1".into()),
        ("PGPORT".into(), at.port.to_string()),
        ("PGUSER".into(), pg.user.clone()),
        ("PGPASSWORD".into(), pg.password.clone()),
        ("PGDATABASE".into(), pg.database.clone()),
    ]);
    Ok(Some(hook(launch)))
}

/// Each path as a file, a directory as its `*.sql` files in name order.
fn sql_files(paths: &[PathBuf], base: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        let full = base.join(path);
        if full.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(&full)
                .map_err(|e| format!("init: reading {}: {e}", full.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sql") && p.is_file())
                .collect();
            inside.sort();
            files.extend(inside);
        } else if full.is_file() {
            files.push(full);
        } else {
            return Err(format!(
                "init: {} is not a file or directory",
                full.display()
            ));
        }
    }
    Ok(files)
}

/// The unprivileged user PostgreSQL runs as when tapmesh is root (it
/// refuses root); none otherwise.
fn postgres_user() -> Result<Option<RunAs>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    if let Some(user) = RunAs::named("postgres") {
        return Ok(Some(user));
    }
    let status = std::process::Command::new("useradd")
        .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
        .args(["--shell", "/usr/sbin/nologin", "tapmesh"])
        .status();
    RunAs::named("tapmesh").map(Some).ok_or_else(|| {
        format!("PostgreSQL refuses to run as root, and there is no postgres user; creating a tapmesh user failed ({status:?})")
    })
}

/// A data directory `user` owns and can reach: `dir` itself, or, when a
/// directory above it is closed to others (root's home, where the state
/// directory lives by default), one under the system's temporary
/// directory that `dir` then links to (and that goes with it at down,
/// see [`remove_linked`]).
fn reachable_dir(dir: &Path, user: RunAs) -> Result<PathBuf, String> {
    let closed = dir
        .ancestors()
        .skip(1)
        .filter_map(|a| std::fs::metadata(a).ok())
        .any(|meta| meta.permissions().mode() & 0o001 == 0);
    let real = if closed {
        let env = dir
            .parent()
            .and_then(Path::parent)
            .and_then(Path::file_name)
            .unwrap_or_default();
        let name = dir.file_name().unwrap_or_default();
        let outside = std::env::temp_dir()
            .join("tapmesh-data")
            .join(env)
            .join(name);
        fresh_dir(&outside)?;
        std::fs::remove_dir(dir).map_err(|e| format!("removing {}: {e}", dir.display()))?;
        std::os::unix::fs::symlink(&outside, dir)
            .map_err(|e| format!("linking {} to {}: {e}", dir.display(), outside.display()))?;
        outside
    } else {
        dir.to_path_buf()
    };
    std::os::unix::fs::chown(&real, Some(user.uid), Some(user.gid))
        .map_err(|e| format!("handing {} to uid {}: {e}", real.display(), user.uid))?;
    Ok(real)
}

/// Removes the data directories that `<env>/data` links to (see
/// [`reachable_dir`]); the links stay, saying where the data was.
pub(super) fn remove_linked(env_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(env_dir.join("data")) else {
        return;
    };
    for entry in entries.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            if let Err(e) = std::fs::remove_dir_all(&target) {
                tracing::warn!(dir = %target.display(), "could not remove a data directory: {e}");
            }
        }
    }
}

fn redis(redis: &Redis, at: &Setting<'_>) -> Result<ServerCommands, String> {
    let server = find_redis()?;
    // The configuration goes on its standard input (`redis-server -`): the
    // password is never in a file or a command line.
    let mut conf = format!(
        "port {}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndaemonize no\ndir {}\n",
        at.port,
        s(at.data_dir)
    );
    if let Some(password) = &redis.password {
        conf.push_str(&format!(
            "requirepass \"{}\"\n",
            password.replace('"', "\\\"")
        ));
    }
    for line in &redis.config {
        conf.push_str(line);
        conf.push('\n');
    }
    let mut launch = launchable(vec![s(&server), "-".into()], at, None);
    launch.stdin = Some(conf);
    Ok(ServerCommands {
        launch,
        prestart: None,
        init: at.user_init.map(|h| PreparedHook {
            hook: h.hook.clone(),
            launch: h.launch.clone(),
        }),
    })
}

fn kafka(kafka: &Kafka, at: &Setting<'_>) -> Result<ServerCommands, String> {
    match kafka.engine {
        KafkaEngine::Mock => {
            let mut argv = vec![
                s(&find_tapmesh()?),
                "kafka-mock".into(),
                "--port".into(),
                at.port.to_string(),
            ];
            for topic in &kafka.topics {
                argv.push("--topic".into());
                argv.push(format!("{}:{}", topic.name, topic.partitions));
            }
            Ok(ServerCommands {
                launch: launchable(argv, at, None),
                prestart: None,
                init: None,
            })
        }
        KafkaEngine::Tansu => {
            let tansu = s(&find_tansu()?);
            let url = format!("tcp://127.0.0.1:{}", at.port);
            let argv = vec![
                tansu.clone(),
                "broker".into(),
                "--listener-url".into(),
                url.clone(),
                "--advertised-listener-url".into(),
                url.clone(),
                "--storage-engine".into(),
                "memory://tansu/".into(),
            ];
            // Topic names were checked to be plain (letters, digits, - _ .).
            let creates: Vec<String> = kafka
                .topics
                .iter()
                .map(|t| {
                    format!(
                        "\"$TANSU\" topic create --broker {url} --partitions {} {} || exit 1",
                        t.partitions, t.name
                    )
                })
                .collect();
            let init = (!creates.is_empty()).then(|| {
                let mut launch =
                    launchable(vec!["sh".into(), "-c".into(), creates.join("\n")], at, None);
                launch.env.insert("TANSU".into(), tansu);
                hook(launch)
            });
            Ok(ServerCommands {
                launch: launchable(argv, at, None),
                prestart: None,
                init,
            })
        }
    }
}
