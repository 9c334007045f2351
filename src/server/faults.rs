//! `GET|POST|DELETE /environments/{id}/faults`: an up environment's faults,
//! in Toxiproxy's JSON (`type`, `stream`, `toxicity`, `attributes`) plus
//! `edge`, `match`, `first` and `every`.
//!
//! - `GET` → `{"orders->inventory": [fault, …], …}`, every observed edge.
//! - `POST {"edge": "orders->inventory", "type": "latency", …}` → `201`
//!   with the fault as it now is; `400` with every problem and its path,
//!   `404` for an edge the environment does not have, `409` for a name the
//!   edge already has.
//! - `DELETE ?edge=E&name=N` removes that fault; without `name`, every
//!   fault of the edge; without `edge`, every fault → `{"removed": N}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{error, not_found, Registry};
use crate::proxy::fault::EdgeFaults;
use crate::spec::read_fault;

type Edges = BTreeMap<String, Arc<EdgeFaults>>;

/// The environment's edges, if it is up.
fn edges(registry: &Registry, id: &str) -> Result<Edges, Box<Response>> {
    let Some(env) = registry.get(id) else {
        return Err(Box::new(not_found(id)));
    };
    env.status().faults.ok_or_else(|| {
        Box::new(error(
            StatusCode::CONFLICT,
            format!("environment {id:?} is not up: faults act on a running environment's edges"),
        ))
    })
}

pub(super) async fn list(State(registry): State<Registry>, Path(id): Path<String>) -> Response {
    match edges(&registry, &id) {
        Ok(edges) => {
            let listed: BTreeMap<&String, Vec<crate::spec::FaultSpec>> =
                edges.iter().map(|(edge, f)| (edge, f.list())).collect();
            Json(json!(listed)).into_response()
        }
        Err(response) => *response,
    }
}

pub(super) async fn add(
    State(registry): State<Registry>,
    Path(id): Path<String>,
    body: Result<Json<Value>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let edges = match edges(&registry, &id) {
        Ok(edges) => edges,
        Err(response) => return *response,
    };
    let mut fault = match body {
        Ok(Json(Value::Object(fault))) => fault,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body must be a JSON object: a fault with its `edge`",
            )
        }
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body must be a JSON fault: {e}"),
            )
        }
    };
    let Some(Value::String(edge)) = fault.remove("edge") else {
        return error(
            StatusCode::BAD_REQUEST,
            "edge: required, the edge's name (`orders->inventory`)",
        );
    };
    let Some(faults) = edges.get(&edge) else {
        let known: Vec<&str> = edges.keys().map(String::as_str).collect();
        return error(
            StatusCode::NOT_FOUND,
            format!(
                "no observed edge {edge:?} (the edges: {})",
                known.join(", ")
            ),
        );
    };
    let spec = match read_fault(&Value::Object(fault)) {
        Ok(spec) => spec,
        Err(problems) => {
            let problems: Vec<Value> = problems
                .into_iter()
                .map(|(path, message)| json!({"path": path, "message": message}))
                .collect();
            let summary = problems
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p["path"].as_str().unwrap_or(""),
                        p["message"].as_str().unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("the fault is not valid: {summary}"), "problems": problems})),
            )
                .into_response();
        }
    };
    let mut shown = serde_json::to_value(&spec).unwrap_or_default();
    shown["edge"] = json!(edge);
    match faults.add(spec) {
        Ok(()) => (StatusCode::CREATED, Json(shown)).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct Remove {
    edge: Option<String>,
    name: Option<String>,
}

pub(super) async fn remove(
    State(registry): State<Registry>,
    Path(id): Path<String>,
    Query(asked): Query<Remove>,
) -> Response {
    let edges = match edges(&registry, &id) {
        Ok(edges) => edges,
        Err(response) => return *response,
    };
    let removed = match (&asked.edge, &asked.name) {
        (None, Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "name: give the fault's edge too (`?edge=…&name=…`)",
            )
        }
        (None, None) => edges.values().map(|f| f.clear()).sum(),
        (Some(edge), name) => {
            let Some(faults) = edges.get(edge) else {
                return error(StatusCode::NOT_FOUND, format!("no observed edge {edge:?}"));
            };
            match name {
                None => faults.clear(),
                Some(name) if faults.remove(name) => 1,
                Some(name) => {
                    return error(
                        StatusCode::NOT_FOUND,
                        format!("edge {edge} has no fault named {name:?}"),
                    )
                }
            }
        }
    };
    Json(json!({"removed": removed})).into_response()
}
