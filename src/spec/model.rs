//! The spec's types once parsed, defaulted and validated.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::managed::Managed;

/// A whole environment: `name`, `observe`, `capture_limit`, `redact` and
/// services.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub name: String,
    /// A proxy on every egress edge (default true).
    pub observe: bool,
    /// Body bytes captured per body (default 64 KiB).
    pub capture_limit: usize,
    /// What is redacted from events (`redact:`; on by default).
    pub redact: crate::redact::RedactConfig,
    pub services: BTreeMap<String, Service>,
    /// The directory relative paths in the spec are resolved against (the
    /// spec file's directory, or the current one for a spec from a string).
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    pub name: String,
    pub launch: Launch,
    /// Extra environment variables (`${VAR}` expanded at start).
    pub env: BTreeMap<String, String>,
    /// The working directory (default: the spec's directory).
    pub dir: Option<PathBuf>,
    pub ingresses: BTreeMap<String, Ingress>,
    pub egresses: BTreeMap<String, Egress>,
    pub restart: RestartPolicy,
    /// Probing on after it is ready.
    pub liveness: Liveness,
    /// Files and directories whose content, when it changes under
    /// `tapmesh up --watch`, restarts it (relative to the spec's
    /// directory).
    pub watch: Vec<PathBuf>,
    /// Its failure does not stop the environment.
    pub optional: bool,
    /// Between SIGTERM and SIGKILL at shutdown (default 5 s).
    pub stop_grace: Duration,
    /// Runs to completion: exit 0 is `service.completed`, not a failure.
    pub job: bool,
    /// Services to wait for beyond its egresses' targets, and for what.
    pub depends_on: BTreeMap<String, Condition>,
    /// Runs before the service starts, with its full wiring.
    pub prestart: Option<Hook>,
    /// Runs once it is ready, before anything that depends on it starts.
    pub init: Option<Hook>,
}

impl Service {
    /// Not started by tapmesh (`type: external`).
    pub fn is_external(&self) -> bool {
        matches!(self.launch, Launch::External)
    }

    /// What it waits for before it starts: each egress's target `ready`,
    /// and each `depends_on` entry as it says (which wins for a service
    /// named in both).
    pub fn dependencies(&self) -> BTreeMap<&str, Condition> {
        let mut all: BTreeMap<&str, Condition> = self
            .egresses
            .values()
            .map(|e| (e.service.as_str(), Condition::Ready))
            .collect();
        for (name, condition) in &self.depends_on {
            all.insert(name, *condition);
        }
        all
    }
}

/// What a dependent waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// Its process was started (for a service with nothing to wait on).
    Started,
    /// Its readiness probe passed and its `init` hook ran (the default).
    Ready,
    /// A job that exited 0.
    Completed,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Ready => "ready",
            Self::Completed => "completed",
        }
    }
}

/// A command run at one point of a service's life (`prestart`, `init`).
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub run: HookRun,
    /// It fails the service if still running after this (default 5 min).
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HookRun {
    /// An argv, `${VAR}` and `$VAR` expanded.
    Command(Vec<String>),
    /// `sh -c script`: the shell expands variables from the wiring.
    Script(String),
}

/// How a service is started.
#[derive(Debug, Clone, PartialEq)]
pub enum Launch {
    /// `command` (argv) plus `args`.
    Process { command: Vec<String> },
    /// `sh -c script`.
    Script { script: String },
    /// A binary or example of a Cargo package, built once and cached.
    Cargo {
        package: PathBuf,
        target: CargoTarget,
        args: Vec<String>,
    },
    /// Something tapmesh does not start (a shared staging database): each
    /// ingress has an `address`; it is probed and its edges observed.
    External,
    /// A server tapmesh runs and sets up itself (`postgres`, `redis`,
    /// `kafka`), with a fresh data directory and a protocol probe.
    Managed(Managed),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CargoTarget {
    /// The package's only (or default) binary.
    Default,
    Bin(String),
    Example(String),
}

/// What an ingress carries: the decoder its edges' proxies use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Tcp,
    Http,
    Grpc,
    Kafka,
    Postgres,
    Redis,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Http => "http",
            Self::Grpc => "grpc",
            Self::Kafka => "kafka",
            Self::Postgres => "postgres",
            Self::Redis => "redis",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ingress {
    pub protocol: Protocol,
    pub ready: ReadyCheck,
    /// `.proto` files and descriptor sets that decode its gRPC calls.
    pub proto: ProtoSources,
    /// Where an external service's ingress listens (`host:port`).
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProtoSources {
    pub files: Vec<PathBuf>,
    pub include: Vec<PathBuf>,
    pub descriptor_sets: Vec<PathBuf>,
}

/// How tapmesh tells an ingress is ready.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadyCheck {
    pub probe: ReadyProbe,
    /// Between attempts (default 100 ms).
    pub interval: Duration,
    /// Give up (the service failed to start) after this long (default 60 s).
    pub timeout: Duration,
}

impl Default for ReadyCheck {
    fn default() -> Self {
        Self {
            probe: ReadyProbe::Tcp,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ReadyProbe {
    /// A TCP connect succeeds.
    Tcp,
    /// `GET path` answers 2xx or 3xx.
    Http { path: String },
    /// `grpc.health.v1.Health/Check` says SERVING.
    Grpc,
    /// A line of the service's output matches.
    Log { pattern: String },
    /// A PostgreSQL login to the `postgres` database reaches ReadyForQuery
    /// (a managed server's probe).
    Postgres { user: String, password: String },
    /// `PING` answers `PONG` (after `AUTH` if there is a password).
    Redis { password: Option<String> },
    /// `ApiVersions` and `Metadata` answer, with a broker.
    Kafka,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartPolicy {
    /// Restarts after an unexpected exit (default 0: a required service's
    /// first exit stops the environment).
    pub max_restarts: u32,
    /// The first wait before a restart; doubles each time (default 500 ms).
    pub backoff: Duration,
    /// Up this long, a service's restart count and backoff start over
    /// (default 30 s).
    pub healthy_after: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 0,
            backoff: Duration::from_millis(500),
            healthy_after: Duration::from_secs(30),
        }
    }
}

/// Once ready, a service's readiness probe keeps running: this many
/// failures in a row (each a `health.check_failed`) and it is stopped and
/// restarted under its restart policy, as if it had exited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Liveness {
    /// `liveness: false` turns it off.
    pub enabled: bool,
    /// Between probes (default 2 s).
    pub interval: Duration,
    /// Failures in a row that restart it (default 3).
    pub failures: u32,
}

impl Default for Liveness {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(2),
            failures: 3,
        }
    }
}

/// An egress: where a service's calls go.
#[derive(Debug, Clone, PartialEq)]
pub struct Egress {
    pub service: String,
    /// The target's ingress (default `default`).
    pub ingress: String,
    /// Faults on this edge from the start (see [`super::FaultSpec`]).
    pub faults: Vec<super::FaultSpec>,
}

/// The upper-cased form a name takes in environment variables
/// (`order-db` → `ORDER_DB`).
pub fn env_name(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}
