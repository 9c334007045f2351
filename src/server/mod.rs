//! The daemon's HTTP API (`tapmesh serve`), on axum.
//!
//! Environments are registered by whoever runs them (the orchestrator, or a
//! test) under an id; the API serves their events as JSON, NDJSON or SSE.

mod stream;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub use stream::{event_stream, StreamQuery, STREAM_MAX_LAG};

use crate::events::EventLog;

/// One environment as the API sees it.
#[derive(Clone)]
pub struct HostedEnvironment {
    pub id: String,
    pub name: String,
    pub log: EventLog,
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

    pub fn get(&self, id: &str) -> Option<HostedEnvironment> {
        self.inner.read().expect("registry lock").get(id).cloned()
    }

    fn list(&self) -> Vec<HostedEnvironment> {
        self.inner
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }
}

/// The API's routes over `registry`.
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/environments", get(list_environments))
        .route("/environments/{id}/events", get(environment_events))
        .with_state(registry)
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

async fn list_environments(State(registry): State<Registry>) -> Json<serde_json::Value> {
    let envs: Vec<_> = registry
        .list()
        .into_iter()
        .map(|e| json!({"id": e.id, "name": e.name, "last_seq": e.log.last_seq()}))
        .collect();
    Json(json!(envs))
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
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no environment {id}")})),
        )
            .into_response(),
    }
}
