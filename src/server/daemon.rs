//! `tapmesh serve`: environments run by the daemon. `POST /environments`
//! validates a spec and starts it in the background; `DELETE` stops it and
//! keeps its events and summary in its directory. Each environment may
//! have a time to live, and the daemon may stop itself once idle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{error, routes, HostedEnvironment, Registry, RunState};
use crate::environment::{Environment, Outcome, PreparedEnvironment};
use crate::orchestrate::{default_cache_dir, default_state_dir};
use crate::spec::Spec;

/// How the daemon runs environments.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// Environments' directories go here.
    pub state_dir: PathBuf,
    /// `cargo` services are built here.
    pub cache_dir: PathBuf,
    /// Relative paths in a posted spec are taken from here unless the
    /// request names a `base_dir`.
    pub base_dir: PathBuf,
    /// Every environment's time to live unless its request says otherwise.
    pub default_ttl: Option<Duration>,
    /// Stop the daemon after this long with no environment running and no
    /// request.
    pub idle_timeout: Option<Duration>,
    /// How many stopped environments stay listed (their events readable)
    /// before the oldest are forgotten. Their files stay on disk.
    pub keep_stopped: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            state_dir: default_state_dir(),
            cache_dir: default_cache_dir(),
            base_dir: std::env::current_dir().unwrap_or_else(|_| ".".into()),
            default_ttl: None,
            idle_timeout: None,
            keep_stopped: 32,
        }
    }
}

/// An environment's id and whether its task has finished.
type RunningTask = (String, watch::Receiver<bool>);

/// The daemon: the registry of environments and what runs them.
#[derive(Clone)]
pub struct Daemon {
    registry: Registry,
    config: Arc<DaemonConfig>,
    /// Stops every environment and then the daemon.
    shutdown: CancellationToken,
    /// Running environments' tasks, to await on shutdown.
    running: Arc<std::sync::Mutex<Vec<RunningTask>>>,
    /// When the last request arrived (ms since the Unix epoch).
    last_request_ms: Arc<AtomicI64>,
}

impl Daemon {
    pub fn new(config: DaemonConfig) -> Self {
        Self {
            registry: Registry::new(),
            config: Arc::new(config),
            shutdown: CancellationToken::new(),
            running: Arc::default(),
            last_request_ms: Arc::new(AtomicI64::new(now_ms())),
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Cancelled when the daemon is to stop (idle, or [`Daemon::stop`]).
    pub fn stopping(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Asks the daemon to stop every environment and exit.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// Every route: the read-only ones plus `POST /environments`,
    /// `DELETE /environments/{id}` and `POST
    /// /environments/{id}/services/{name}/restart|stop|start`.
    pub fn router(&self) -> Router {
        let daemon = self.clone();
        let touch = self.last_request_ms.clone();
        let writes = Router::new()
            .route("/environments", post(create_environment))
            .route(
                "/environments/{id}",
                axum::routing::delete(delete_environment),
            )
            .route(
                "/environments/{id}/services/{service}/{action}",
                post(super::control::control_service),
            )
            .with_state(daemon);
        routes()
            .with_state(self.registry.clone())
            .merge(writes)
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    touch.store(now_ms(), Ordering::Relaxed);
                    next.run(request)
                },
            ))
            .layer(axum::middleware::from_fn(super::guard::refuse_web_pages))
    }

    /// Resolves when the daemon has been idle for its `idle_timeout`: no
    /// environment running and no request. Never without a timeout.
    pub async fn idle(&self) {
        let Some(timeout) = self.config.idle_timeout else {
            return std::future::pending().await;
        };
        let timeout_ms = timeout.as_millis() as i64;
        loop {
            tokio::time::sleep(Duration::from_millis(200).min(timeout)).await;
            let busy = self
                .registry
                .list()
                .iter()
                .any(|e| e.status().state.is_running());
            if busy {
                self.last_request_ms.store(now_ms(), Ordering::Relaxed);
                continue;
            }
            if now_ms() - self.last_request_ms.load(Ordering::Relaxed) >= timeout_ms {
                return;
            }
        }
    }

    /// Stops every running environment gracefully and waits for them.
    pub async fn stop_all(&self) {
        self.shutdown.cancel();
        let running: Vec<_> = std::mem::take(&mut *self.running.lock().expect("running lock"));
        for (id, mut done) in running {
            if done.wait_for(|d| *d).await.is_err() {
                tracing::warn!(%id, "an environment's task ended without saying so");
            }
        }
    }

    /// Validates `spec` and starts it in the background; the environment
    /// is listed (state `starting`) as soon as this returns.
    pub fn launch(&self, spec: Spec, ttl: Option<Duration>) -> Result<HostedEnvironment, String> {
        let prepared = Environment::builder(spec)
            .state_dir(&self.config.state_dir)
            .cache_dir(&self.config.cache_dir)
            .prepare()
            .map_err(|e| e.to_string())?;
        let hosted = HostedEnvironment::run_by_daemon(
            prepared.id().to_string(),
            prepared.spec().name.clone(),
            prepared.log().clone(),
            prepared.dir().to_path_buf(),
        )
        .with_spec(prepared.spec());
        let ttl = ttl.or(self.config.default_ttl);
        hosted.update(|s| {
            s.expires_at =
                ttl.and_then(|t| chrono::Duration::from_std(t).ok().map(|t| s.created_at + t));
        });
        self.registry.insert(hosted.clone());
        let (done_tx, done_rx) = watch::channel(false);
        self.running
            .lock()
            .expect("running lock")
            .push((hosted.id.clone(), done_rx));
        let stop = self.shutdown.child_token();
        hosted.update(|s| s.stop = Some(stop.clone()));
        tokio::spawn(run(prepared, hosted.clone(), stop, ttl, done_tx));
        self.forget_old_stopped();
        Ok(hosted)
    }

    /// Keeps at most `keep_stopped` stopped environments listed.
    fn forget_old_stopped(&self) {
        let mut stopped: Vec<_> = self
            .registry
            .list()
            .into_iter()
            .filter(|e| !e.status().state.is_running())
            .collect();
        stopped.sort_by_key(|e| e.status().created_at);
        let excess = stopped.len().saturating_sub(self.config.keep_stopped);
        for env in stopped.into_iter().take(excess) {
            self.registry.remove(&env.id);
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs one environment from start to down: until DELETE (or the daemon
/// stopping), its TTL, or a required service failing. Then keeps its
/// summary and closes its log, which ends its event streams.
async fn run(
    prepared: PreparedEnvironment,
    hosted: HostedEnvironment,
    stop: CancellationToken,
    ttl: Option<Duration>,
    done: watch::Sender<bool>,
) {
    let expiry = async {
        match ttl {
            Some(ttl) => tokio::time::sleep(ttl).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expiry);
    let started = tokio::select! {
        started = prepared.start() => Some(started),
        _ = stop.cancelled() => None,
        _ = &mut expiry => {
            hosted.update(|s| s.state = RunState::Expired);
            None
        }
    };
    let final_state = match started {
        None => {
            // Dropping the start stopped whatever had started.
            hosted.update(|s| {
                if s.state != RunState::Expired {
                    s.state = RunState::Down;
                }
            });
            None
        }
        Some(Err(e)) => {
            let detail = match &e {
                crate::environment::Error::Start { error, .. } => json!({
                    "service": error.service,
                    "message": error.message,
                    "log_tail": error.log_tail,
                }),
                other => json!({ "message": other.to_string() }),
            };
            hosted.update(|s| s.error = Some(detail));
            Some(RunState::Failed)
        }
        Some(Ok(environment)) => {
            let (control, mut requests) = tokio::sync::mpsc::unbounded_channel();
            hosted.update(|s| {
                s.control = Some(control);
                s.faults = Some(environment.fault_handles());
            });
            let ended = async {
                tokio::select! {
                    _ = stop.cancelled() => (Outcome::Stopped, "deleted".to_string(), RunState::Down),
                    _ = &mut expiry => (
                        Outcome::Expired,
                        format!("its ttl of {} ran out", humantime::format_duration(ttl.unwrap_or_default())),
                        RunState::Expired,
                    ),
                    error = environment.failed() => {
                        hosted.update(|s| s.error = Some(json!({
                            "service": error.service,
                            "message": error.message,
                            "log_tail": error.log_tail,
                        })));
                        (Outcome::Failed, error.report(), RunState::Failed)
                    }
                }
            };
            let (outcome, reason, state) =
                super::control::serve_requests(&environment, &mut requests, ended).await;
            hosted.update(|s| {
                s.state = RunState::Stopping;
                s.control = None;
                s.faults = None;
            });
            if let Err(e) = environment.down_because(outcome, Some(reason)).await {
                tracing::warn!(id = %hosted.id, "keeping the environment's files: {e}");
            }
            Some(state)
        }
    };
    let summary = hosted
        .dir
        .as_ref()
        .and_then(|dir| std::fs::read(dir.join("summary.json")).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    hosted.update(|s| {
        if let Some(state) = final_state {
            s.state = state;
        }
        s.summary = summary;
        s.stop = None;
    });
    hosted.log.close();
    let _ = done.send(true);
}

/// `?ttl=10m&base_dir=/abs/path&wait=true&only=a,b`.
#[derive(Debug, Deserialize)]
struct CreateQuery {
    ttl: Option<String>,
    /// Services to start (comma-separated), with what they depend on.
    only: Option<String>,
    base_dir: Option<PathBuf>,
    #[serde(default)]
    wait: bool,
}

/// `POST /environments`: a spec (YAML or JSON) in the body.
async fn create_environment(
    State(daemon): State<Daemon>,
    query: Result<Query<CreateQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if daemon.shutdown.is_cancelled() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the daemon is stopping");
    }
    // The content type was checked by the guard (`guard::refuse_web_pages`),
    // which every route of the daemon goes through.
    if body.iter().all(u8::is_ascii_whitespace) {
        return error(
            StatusCode::BAD_REQUEST,
            "the body is empty: send the spec (YAML or JSON)",
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the spec is not UTF-8 text");
    };
    let ttl = match query.ttl.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(ttl)) if !ttl.is_zero() => Some(ttl),
        Some(Ok(_)) => return error(StatusCode::BAD_REQUEST, "ttl must be more than zero"),
        Some(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "ttl {:?}: {e} (write e.g. 90s or 10m)",
                    query.ttl.unwrap_or_default()
                ),
            )
        }
    };
    let base_dir = match query.base_dir {
        Some(dir) if !dir.is_absolute() => {
            return error(StatusCode::BAD_REQUEST, "base_dir must be an absolute path")
        }
        Some(dir) if !dir.is_dir() => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("base_dir {} is not a directory", dir.display()),
            )
        }
        Some(dir) => dir,
        None => daemon.config.base_dir.clone(),
    };
    let only: Vec<&str> = query
        .only
        .as_deref()
        .map(|o| {
            o.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let spec = Spec::parse_confined(text, &base_dir).and_then(|spec| {
        if only.is_empty() {
            Ok(spec)
        } else {
            spec.only(&only)
        }
    });
    let spec = match spec {
        Ok(spec) => spec,
        Err(errors) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({
                    "error": format!("the spec has {} problem{}", errors.0.len(), if errors.0.len() == 1 { "" } else { "s" }),
                    "problems": errors.0,
                })),
            )
                .into_response()
        }
    };
    let hosted = match daemon.launch(spec, ttl) {
        Ok(hosted) => hosted,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let mut status = StatusCode::CREATED;
    if query.wait {
        // Until it is up, or has failed.
        let mut events = hosted.log.subscribe(
            1,
            crate::events::EventFilter::types(["environment.up", "environment.down"]),
        );
        let first = events.recv().await;
        let done = daemon
            .running
            .lock()
            .expect("running lock")
            .iter()
            .find(|(i, _)| *i == hosted.id)
            .map(|(_, done)| done.clone());
        // Not up: answer with the run's verdict (failed, and why), which
        // is set once the start has returned, after `environment.down`.
        if first.is_some_and(|e| e.kind == crate::events::EventKind::EnvironmentDown) {
            if let Some(mut done) = done {
                let _ = done.wait_for(|finished| *finished).await;
            }
        }
        // The status follows the same events: let it catch up.
        for _ in 0..100 {
            if hosted.status().state != RunState::Starting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if hosted.status().state != RunState::Up {
            status = StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    let location = format!("/environments/{}", hosted.id);
    (
        status,
        [(header::LOCATION, location)],
        Json(hosted.describe()),
    )
        .into_response()
}

/// `DELETE /environments/{id}`: stops it (if running), waits until every
/// process is gone, forgets it, and answers with its summary.
async fn delete_environment(State(daemon): State<Daemon>, Path(id): Path<String>) -> Response {
    let Some(hosted) = daemon.registry.get(&id) else {
        return error(StatusCode::NOT_FOUND, format!("no environment {id:?}"));
    };
    let stop = hosted.status().stop;
    if let Some(stop) = stop {
        stop.cancel();
    }
    let done = daemon
        .running
        .lock()
        .expect("running lock")
        .iter()
        .find(|(i, _)| *i == hosted.id)
        .map(|(_, done)| done.clone());
    if let Some(mut done) = done {
        let _ = done.wait_for(|d| *d).await;
    }
    daemon
        .running
        .lock()
        .expect("running lock")
        .retain(|(i, _)| *i != hosted.id);
    daemon.registry.remove(&hosted.id);
    Json(hosted.describe()).into_response()
}
