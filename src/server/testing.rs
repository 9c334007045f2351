//! The routes test APIs use beside the event stream: `POST
//! /environments/{id}/notes` (a `test.note` event: a step of the test on
//! the timeline) and `GET /environments/{id}/explain?q=` (why an
//! expectation failed, the text every test API prints).

use std::path::PathBuf;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::{error, not_found, stream::query_error, Registry};
use crate::events::{EventDraft, EventKind, NoteInfo, Payload};

#[derive(Debug, Deserialize)]
pub(super) struct Note {
    text: String,
}

/// `201 {"seq": N}`.
pub(super) async fn add_note(
    State(registry): State<Registry>,
    Path(id): Path<String>,
    body: Result<Json<Note>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(env) = registry.get(&id) else {
        return not_found(&id);
    };
    let note = match body {
        Ok(Json(note)) => note,
        Err(e) => {
            let message = format!("the body must be JSON {{\"text\": \"…\"}}: {e}");
            return error(StatusCode::BAD_REQUEST, message);
        }
    };
    if env.log.is_closed() {
        return error(StatusCode::CONFLICT, format!("environment {id:?} is down"));
    }
    let payload = Payload::Note(NoteInfo { text: note.text });
    let seq = env
        .log
        .append(EventDraft::now(EventKind::TestNote, payload));
    (StatusCode::CREATED, Json(json!({"seq": seq}))).into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct ExplainQuery {
    q: Option<String>,
}

/// `{"matching": N, "text": "…"}`; `400` for a query that cannot run.
pub(super) async fn explain(
    State(registry): State<Registry>,
    Path(id): Path<String>,
    Query(params): Query<ExplainQuery>,
) -> Response {
    let Some(env) = registry.get(&id) else {
        return not_found(&id);
    };
    let query = match params.q.as_deref().map(crate::events::Query::parse) {
        None => None,
        Some(Ok(query)) => Some(query),
        Some(Err(e)) => return query_error(&e),
    };
    let file = env.dir.clone().map_or_else(
        || PathBuf::from(format!("{id}/events.jsonl")),
        |dir| dir.join("events.jsonl"),
    );
    // Reading back history older than the memory window is file I/O.
    let explained = tokio::task::spawn_blocking(move || {
        let events = env.log.since(1)?;
        Ok::<_, std::io::Error>(crate::inspect::explain(&events, query.as_ref(), &file))
    })
    .await;
    match explained {
        Ok(Ok(e)) => Json(json!({"matching": e.matching, "text": e.text})).into_response(),
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading events: {e}"),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
