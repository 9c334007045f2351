//! The Rust API for tests: bring an environment up from a spec, reach its
//! services through their observing proxies, wait for events, tear it down.
//!
//! ```no_run
//! # async fn example() -> Result<(), tapmesh::Error> {
//! use std::time::Duration;
//! use tapmesh::{Environment, Spec};
//!
//! let spec = Spec::from_path("examples/shop/shop.yaml".as_ref())?;
//! let env = Environment::up(spec).await?;
//! let front = env.endpoint("front")?; // through the `~test` proxy: observed
//! // … drive `front` …
//! let call = env
//!     .wait_for(|e| e.grpc_call().is_some_and(|c| c.method == "Reserve"), Duration::from_secs(10))
//!     .await?;
//! println!("{:?}", call.grpc_call().unwrap().response_body_decoded);
//! env.down().await?; // or drop it: every process is killed
//! # Ok(()) }
//! ```
//!
//! This is the layer both `tapmesh up` and the daemon run environments
//! through: it gives each one an id and a directory under the user's state
//! directory, keeps its events there as JSON Lines, and writes a
//! `summary.json` beside them however the environment ends.

mod expect;
mod fault;
mod service_status;
mod summary;
mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use service_status::ServiceStatus;
use summary::LiveSummary;
pub use summary::{Outcome, Summary, SummaryContext};

use crate::events::{Event, EventLog, EventLogConfig, EventSink, WaitError};
use crate::orchestrate::{
    self, default_cache_dir, default_state_dir, Endpoint, EnvironmentError, EnvironmentOptions,
    ServiceState,
};
pub use crate::orchestrate::{
    clean_up_after_crashes, CleanedUp, Control, ControlError, RedeployError,
};
use crate::spec::{Spec, SpecErrors};
pub use expect::Expectation;
pub use fault::{Fault, FaultGuard};
pub use watch::WatchReport;

/// What can go wrong bringing an environment up or using it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec is invalid; nothing was started.
    #[error("{}", spec_problems(.0))]
    Spec(#[from] SpecErrors),
    /// A service did not build, start or become ready (or failed later);
    /// everything started was stopped.
    #[error("environment {environment} did not start: {}", .error.report())]
    Start {
        environment: String,
        error: EnvironmentError,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// `endpoint(name)` of a service (or ingress) the spec does not have.
    #[error("{0}")]
    NoEndpoint(String),
    /// `wait_for` saw no matching event in time.
    #[error("no matching event in {environment} within {waited:?} ({seen} events so far; the last: {last})")]
    Timeout {
        environment: String,
        waited: Duration,
        seen: u64,
        last: String,
    },
    /// The event log closed while waiting (the environment went down).
    #[error("the event log of {0} closed before a matching event arrived")]
    Closed(String),
    /// A restart, stop or start of one service was not done.
    #[error("{0}")]
    Control(#[from] ControlError),
    /// An edited spec or changed sources were not (all) applied.
    #[error("{0}")]
    Redeploy(#[from] RedeployError),
    /// A query that cannot run (with its position).
    #[error("{0}")]
    Query(#[from] crate::events::QueryError),
    /// An expectation about the events did not hold (`expect`,
    /// `wait_for_q`): what was expected, then the explanation.
    #[error("{0}")]
    Expectation(String),
    /// A fault that cannot be added or removed (no such edge, a name
    /// taken, an action the edge cannot do).
    #[error("{0}")]
    Fault(String),
}

fn spec_problems(errors: &SpecErrors) -> String {
    let n = errors.0.len();
    format!(
        "the spec has {n} problem{}:\n{errors}",
        if n == 1 { "" } else { "s" }
    )
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// How to bring an environment up: where its files go, and what to call it.
/// [`Environment::up`] uses the defaults.
#[derive(Debug, Clone)]
pub struct EnvironmentBuilder {
    spec: Spec,
    id: Option<String>,
    dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    cache_dir: Option<PathBuf>,
    stall_after: Duration,
    only: Vec<String>,
}

impl EnvironmentBuilder {
    /// Start only these services and what they depend on (through egresses
    /// and `depends_on`, at any depth). An unknown name is a spec error.
    pub fn only<I, S>(mut self, services: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only = services.into_iter().map(Into::into).collect();
        self
    }

    /// Its id (default: the spec's name and six random hex digits).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Its directory exactly (default: `<state dir>/<id>`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Where environments' directories go (default: `$XDG_STATE_HOME/tapmesh`,
    /// else `~/.local/state/tapmesh`).
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Where `cargo` services are built and cached (default:
    /// `$XDG_CACHE_HOME/tapmesh`, else `~/.cache/tapmesh`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// `progress.stall` after this long with no service changing state.
    pub fn stall_after(mut self, after: Duration) -> Self {
        self.stall_after = after;
        self
    }

    /// Creates the environment's directory and event log without starting
    /// anything, so its events can be followed while it starts. First, what
    /// a tapmesh that died left running under the state directory is
    /// killed and logged (see [`clean_up_after_crashes`]).
    pub fn prepare(mut self) -> Result<PreparedEnvironment, Error> {
        if !self.only.is_empty() {
            self.spec = self.spec.only(&self.only)?;
        }
        // Absolute: services run in the spec's directory, not ours.
        let absolute = |dir: PathBuf| {
            std::path::absolute(&dir).map_err(io_error(format!("resolving {}", dir.display())))
        };
        let state_dir = absolute(self.state_dir.unwrap_or_else(default_state_dir))?;
        let cache_dir = absolute(self.cache_dir.unwrap_or_else(default_cache_dir))?;
        let own_dir = self.dir.map(absolute).transpose()?;
        for cleaned in clean_up_after_crashes(&state_dir) {
            tracing::warn!("{cleaned}");
        }
        let (id, dir) = match (self.id, own_dir) {
            (id, Some(dir)) => (id.unwrap_or_else(|| new_id(&self.spec.name)), dir),
            (Some(id), None) => {
                let dir = state_dir.join(&id);
                (id, dir)
            }
            (None, None) => fresh_id_and_dir(&self.spec.name, &state_dir),
        };
        std::fs::create_dir_all(&dir).map_err(io_error(format!("creating {}", dir.display())))?;
        let events_path = dir.join("events.jsonl");
        let log = EventLog::new(
            EventLogConfig::new(self.spec.name.as_str()).sink(EventSink::File(events_path.clone())),
        )
        .map_err(io_error(format!("opening {}", events_path.display())))?;
        Ok(PreparedEnvironment {
            summary: LiveSummary::follow(&log),
            options: EnvironmentOptions {
                dir: dir.clone(),
                cache_dir,
                stall_after: self.stall_after,
                state_dir: Some(state_dir),
            },
            spec: self.spec,
            id,
            dir,
            log,
        })
    }

    /// Prepares and starts it: returns once every service is ready.
    pub async fn up(self) -> Result<Environment, Error> {
        self.prepare()?.start().await
    }
}

/// `<name>-<6 hex digits>`, from the clock and the process: unique enough
/// for ids, and [`fresh_id_and_dir`] checks the directory is new.
fn new_id(name: &str) -> String {
    use sha2::Digest;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hash = sha2::Sha256::new();
    hash.update(nanos.to_le_bytes());
    hash.update(std::process::id().to_le_bytes());
    hash.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let digest = hash.finalize();
    format!("{name}-{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2])
}

fn fresh_id_and_dir(name: &str, state_dir: &Path) -> (String, PathBuf) {
    loop {
        let id = new_id(name);
        let dir = state_dir.join(&id);
        if !dir.exists() {
            return (id, dir);
        }
    }
}

/// An environment whose directory and event log exist, not started yet.
pub struct PreparedEnvironment {
    spec: Spec,
    id: String,
    dir: PathBuf,
    log: EventLog,
    summary: LiveSummary,
    options: EnvironmentOptions,
}

impl PreparedEnvironment {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log(&self) -> &EventLog {
        &self.log
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// Starts every service; returns once all are ready. If it fails, or
    /// this future is dropped first, everything started is stopped and the
    /// summary says so.
    pub async fn start(self) -> Result<Environment, Error> {
        let started_at = Utc::now();
        let mut pending = SummaryOnDrop {
            log: self.log.clone(),
            summary: self.summary.clone(),
            id: self.id.clone(),
            dir: self.dir.clone(),
            started_at,
            outcome: Some((Outcome::Stopped, "stopped while starting".to_string())),
        };
        match orchestrate::Orchestration::start(&self.spec, self.log.clone(), self.options).await {
            Ok(running) => {
                pending.outcome = None;
                Ok(Environment {
                    id: self.id,
                    name: self.spec.name,
                    log: self.log,
                    summary: self.summary,
                    dir: self.dir,
                    started_at,
                    running: Some(running),
                    explained: Default::default(),
                })
            }
            Err(error) => {
                pending.outcome = Some((Outcome::Failed, error.report()));
                drop(pending);
                Err(Error::Start {
                    environment: self.spec.name,
                    error,
                })
            }
        }
    }
}

/// Writes the summary of an environment that ended before it was up.
struct SummaryOnDrop {
    log: EventLog,
    summary: LiveSummary,
    id: String,
    dir: PathBuf,
    started_at: DateTime<Utc>,
    outcome: Option<(Outcome, String)>,
}

impl Drop for SummaryOnDrop {
    fn drop(&mut self) {
        if let Some((outcome, reason)) = self.outcome.take() {
            let cx = SummaryContext {
                id: &self.id,
                dir: &self.dir,
                started_at: self.started_at,
                outcome,
                reason: Some(reason),
            };
            if let Err(e) = keep(&self.log, &self.summary, cx) {
                tracing::warn!(dir = %self.dir.display(), "could not write the summary: {e}");
            }
        }
    }
}

/// Flushes the events file and writes `summary.json`.
fn keep(log: &EventLog, live: &LiveSummary, cx: SummaryContext<'_>) -> Result<Summary, Error> {
    log.flush().map_err(io_error("writing events.jsonl"))?;
    let summary = live.summary(log, cx);
    summary.write().map_err(io_error(format!(
        "writing {}/summary.json",
        summary.dir.display()
    )))?;
    Ok(summary)
}

/// A running environment. Dropping it kills every process it started and
/// writes its summary; [`Environment::down`] stops them gracefully.
pub struct Environment {
    id: String,
    name: String,
    log: EventLog,
    summary: LiveSummary,
    dir: PathBuf,
    started_at: DateTime<Utc>,
    running: Option<orchestrate::Orchestration>,
    /// An expectation's failure has shown the explanation already: a
    /// panic that follows need not print it again.
    explained: std::sync::atomic::AtomicBool,
}

impl Environment {
    /// Brings `spec` up with the defaults: a new directory under the user's
    /// state directory, builds cached in the user's cache directory.
    pub async fn up(spec: Spec) -> Result<Environment, Error> {
        Self::builder(spec).up().await
    }

    /// Brings `spec` up with other directories or an id of your choosing.
    pub fn builder(spec: Spec) -> EnvironmentBuilder {
        EnvironmentBuilder {
            spec,
            id: None,
            dir: None,
            state_dir: None,
            cache_dir: None,
            stall_after: Duration::from_secs(10),
            only: Vec::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The spec's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its events (`events.jsonl`), logs (`logs/`) and, once down,
    /// `summary.json` are kept.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its event log, to subscribe to or read from.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    fn running(&self) -> &orchestrate::Orchestration {
        self.running.as_ref().expect("running until down or drop")
    }

    /// Where a test reaches `service`'s default ingress: through the
    /// `~test` node's proxy when observing, so the test's own calls are
    /// events too.
    pub fn endpoint(&self, service: &str) -> Result<SocketAddr, Error> {
        self.endpoint_of(service, "default")
    }

    /// The same for a named ingress.
    pub fn endpoint_of(&self, service: &str, ingress: &str) -> Result<SocketAddr, Error> {
        let endpoints = self.running().endpoints();
        let Some(ingresses) = endpoints.get(service) else {
            let known: Vec<&str> = endpoints.keys().map(String::as_str).collect();
            return Err(Error::NoEndpoint(format!(
                "{} has no service {service:?} with an ingress (those with one: {})",
                self.name,
                known.join(", ")
            )));
        };
        let Some(endpoint) = ingresses.get(ingress) else {
            let known: Vec<&str> = ingresses.keys().map(String::as_str).collect();
            return Err(Error::NoEndpoint(format!(
                "{service} has no ingress {ingress:?} (it has: {})",
                known.join(", ")
            )));
        };
        Ok(endpoint.observed.unwrap_or(endpoint.address))
    }

    /// Every service's ingresses: where each listens, and where it is
    /// reached observed.
    pub fn endpoints(&self) -> &BTreeMap<String, BTreeMap<String, Endpoint>> {
        self.running().endpoints()
    }

    /// Each service's state now.
    pub fn service_states(&self) -> BTreeMap<String, ServiceState> {
        self.running().service_states()
    }

    /// Restarts one service while the rest runs, returning once it is
    /// ready again (a job: completed). It keeps its address and proxies,
    /// so its callers reconnect to it; its dependents are not restarted.
    /// Shows as `service.restarting`, `service.starting`, `service.ready`.
    pub async fn restart(&self, service: &str) -> Result<ServiceState, Error> {
        Ok(self.running().control(service, Control::Restart).await?)
    }

    /// Stops one service (`service.stopped`) until [`Environment::start`];
    /// the rest keeps running and its callers see it refuse connections.
    pub async fn stop_service(&self, service: &str) -> Result<ServiceState, Error> {
        Ok(self.running().control(service, Control::Stop).await?)
    }

    /// Starts a stopped, failed or completed service again (a job runs
    /// again), returning once it is ready or completed.
    pub async fn start(&self, service: &str) -> Result<ServiceState, Error> {
        Ok(self.running().control(service, Control::Start).await?)
    }

    /// Applies an edited `spec` to the running environment: the services
    /// whose settings it changes (and those named in `changed`, with why:
    /// their sources changed) are rebuilt if `cargo` and restarted with
    /// their new commands, one by one, each back to ready before the next;
    /// nothing else stops. An edit that changes the environment's shape
    /// (services, ingresses, egresses) is refused untouched. Logs one
    /// `environment.redeployed`; returns what was redeployed and why.
    pub async fn redeploy(
        &self,
        spec: Spec,
        changed: BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, Error> {
        Ok(self.running().redeploy(spec, changed).await?)
    }

    /// The process groups of the services running now.
    pub fn process_groups(&self) -> Vec<i32> {
        self.running().process_groups()
    }

    /// Every event so far, in seq order (older ones read back from the
    /// events file when no longer in memory).
    pub fn events(&self) -> Vec<Arc<Event>> {
        self.log
            .since(1)
            .unwrap_or_else(|e| panic!("reading {}'s events back: {e}", self.name))
    }

    /// The first event, already logged or yet to come, that `predicate`
    /// accepts; an error naming what was seen if none does within `timeout`.
    pub async fn wait_for<F>(&self, predicate: F, timeout: Duration) -> Result<Arc<Event>, Error>
    where
        F: FnMut(&Event) -> bool,
    {
        match self.log.wait_for(predicate, timeout).await {
            Ok(event) => Ok(event),
            Err(WaitError::Timeout(waited)) => {
                let last = self
                    .log
                    .since(self.log.last_seq())
                    .ok()
                    .and_then(|e| e.last().cloned())
                    .map_or_else(|| "none".to_string(), |e| crate::inspect::one_line(&e));
                Err(Error::Timeout {
                    environment: self.name.clone(),
                    waited,
                    seen: self.log.last_seq(),
                    last,
                })
            }
            Err(WaitError::Closed) => Err(Error::Closed(self.name.clone())),
        }
    }

    /// Resolves when a required service has failed for good.
    pub async fn failed(&self) -> EnvironmentError {
        self.running().failed().await
    }

    /// Stops every service in reverse start order, then writes the summary.
    pub async fn down(self) -> Result<Summary, Error> {
        self.down_because(Outcome::Stopped, None).await
    }

    /// [`Environment::down`], recording why in the summary.
    pub async fn down_because(
        mut self,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Result<Summary, Error> {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
        keep(
            &self.log,
            &self.summary,
            SummaryContext {
                id: &self.id,
                dir: &self.dir,
                started_at: self.started_at,
                outcome,
                reason,
            },
        )
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        self.explain_panic();
        // Kills every process group and logs `environment.down`.
        drop(running);
        let cx = SummaryContext {
            id: &self.id,
            dir: &self.dir,
            started_at: self.started_at,
            outcome: Outcome::Dropped,
            reason: Some("dropped without down(): its processes were killed".into()),
        };
        if let Err(e) = keep(&self.log, &self.summary, cx) {
            tracing::warn!(dir = %self.dir.display(), "could not write the summary: {e}");
        }
    }
}
