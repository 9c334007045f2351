//! The daemon's HTTP API (`tapmesh serve`), on axum.
//!
//! Environments are either run by the daemon itself (`POST /environments`,
//! see [`daemon`]) or registered by whoever runs them (a test) under an id;
//! the API serves their state, their services' logs and their events as
//! JSON, NDJSON or SSE.

mod control;
pub mod daemon;
mod faults;
mod guard;
mod logs;
mod row;
mod status;
mod stream;
mod testing;
pub mod web;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub use daemon::{Daemon, DaemonConfig};
pub use status::{EnvironmentStatus, RunState, ServiceStatus};
pub use stream::{event_stream, StreamQuery, STREAM_MAX_LAG};

use crate::events::{EventFilter, EventLog};

/// One environment as the API sees it. Cheap to clone.
#[derive(Clone)]
pub struct HostedEnvironment {
    pub id: String,
    pub name: String,
    pub log: EventLog,
    /// Where its files are (`events.jsonl`, `logs/`, `summary.json`).
    pub dir: Option<PathBuf>,
    /// The spec's services and edges, for the web view's map.
    topology: Option<Arc<serde_json::Value>>,
    status: Arc<Mutex<EnvironmentStatus>>,
}

impl HostedEnvironment {
    /// An environment run elsewhere whose events the API serves; its state
    /// is whatever its lifecycle events say.
    pub fn observed(id: impl Into<String>, name: impl Into<String>, log: EventLog) -> Self {
        let hosted = Self {
            id: id.into(),
            name: name.into(),
            log,
            dir: None,
            topology: None,
            status: Arc::default(),
        };
        hosted.track_lifecycle();
        hosted
    }

    /// Where its files are, for the commands explanations suggest.
    pub fn with_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// The spec it runs: the web view draws its services and edges before
    /// any traffic.
    pub fn with_spec(mut self, spec: &crate::spec::Spec) -> Self {
        self.topology = Some(Arc::new(web::topology(spec)));
        self
    }

    pub(crate) fn run_by_daemon(id: String, name: String, log: EventLog, dir: PathBuf) -> Self {
        let hosted = Self {
            id,
            name,
            log,
            dir: Some(dir),
            topology: None,
            status: Arc::default(),
        };
        hosted.track_lifecycle();
        hosted
    }

    /// A snapshot of its state.
    pub fn status(&self) -> EnvironmentStatus {
        self.status.lock().expect("status lock").clone()
    }

    /// The running environment's edges, whose faults the API changes
    /// (`None` once it is down).
    pub fn set_faults(
        &self,
        faults: Option<std::collections::BTreeMap<String, Arc<crate::proxy::fault::EdgeFaults>>>,
    ) {
        self.update(|s| s.faults = faults);
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut EnvironmentStatus)) {
        f(&mut self.status.lock().expect("status lock"));
    }

    /// Keeps each service's state (and the endpoints, once up) from the
    /// lifecycle events, as they arrive: the daemon answers
    /// `GET /environments/{id}` without asking the orchestrator.
    fn track_lifecycle(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut events = self
            .log
            .subscribe(1, EventFilter::types(status::LIFECYCLE_TYPES))
            .with_max_lag(u64::MAX)
            .unthrottled();
        let status = Arc::downgrade(&self.status);
        runtime.spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(status) = status.upgrade() else {
                    return;
                };
                status.lock().expect("status lock").apply(&event);
            }
        });
    }

    fn describe(&self) -> serde_json::Value {
        let status = self.status();
        json!({
            "id": self.id,
            "name": self.name,
            "state": status.state,
            "dir": self.dir,
            "created_at": status.created_at,
            "expires_at": status.expires_at,
            "last_seq": self.log.last_seq(),
            "services": status.services,
            "endpoints": status.endpoints,
            "error": status.error,
            "summary": status.summary,
            "topology": self.topology.as_deref(),
        })
    }
}

/// The environments the daemon serves, by id.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<BTreeMap<String, HostedEnvironment>>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&self, env: HostedEnvironment) {
        self.inner
            .write()
            .expect("registry lock")
            .insert(env.id.clone(), env);
    }

    pub fn remove(&self, id: &str) -> Option<HostedEnvironment> {
        self.inner.write().expect("registry lock").remove(id)
    }

    /// By id, or by name when exactly one environment has that name.
    pub fn get(&self, id_or_name: &str) -> Option<HostedEnvironment> {
        let envs = self.inner.read().expect("registry lock");
        if let Some(env) = envs.get(id_or_name) {
            return Some(env.clone());
        }
        let mut named = envs.values().filter(|e| e.name == id_or_name);
        match (named.next(), named.next()) {
            (Some(env), None) => Some(env.clone()),
            _ => None,
        }
    }

    pub fn list(&self) -> Vec<HostedEnvironment> {
        self.inner
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }
}

/// The read-only routes over `registry`: health, listing, one
/// environment, its log and its events. [`Daemon::router`] adds the rest.
pub fn router(registry: Registry) -> Router {
    routes()
        .with_state(registry)
        .layer(axum::middleware::from_fn(guard::refuse_web_pages))
}

fn routes() -> Router<Registry> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/environments", get(list_environments))
        .route("/environments/{id}", get(get_environment))
        .route("/environments/{id}/events", get(environment_events))
        .route("/environments/{id}/log", get(logs::environment_log))
        .route("/environments/{id}/notes", post(testing::add_note))
        .route(
            "/environments/{id}/faults",
            get(faults::list).post(faults::add).delete(faults::remove),
        )
        .route("/environments/{id}/explain", get(testing::explain))
        .merge(web::routes())
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// `{"error": …}` with `status`.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

fn not_found(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("no environment {id:?}"))
}

async fn list_environments(State(registry): State<Registry>) -> Json<serde_json::Value> {
    let envs: Vec<_> = registry
        .list()
        .into_iter()
        .map(|e| {
            let status = e.status();
            json!({
                "id": e.id,
                "name": e.name,
                "state": status.state,
                "created_at": status.created_at,
                "expires_at": status.expires_at,
                "last_seq": e.log.last_seq(),
            })
        })
        .collect();
    Json(json!(envs))
}

async fn get_environment(State(registry): State<Registry>, Path(id): Path<String>) -> Response {
    match registry.get(&id) {
        Some(env) => Json(env.describe()).into_response(),
        None => not_found(&id),
    }
}

async fn environment_events(
    State(registry): State<Registry>,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match registry.get(&id) {
        Some(env) => event_stream(&env.log, &query, &headers, &format!("http {peer}")),
        None => not_found(&id),
    }
}
