//! The web view: one page (`GET /`) that shows an environment live, and
//! the few routes it needs beyond the API's: one event by seq with its
//! bodies decompressed, and a HAR export of a query.
//!
//! The page is plain HTML, CSS and JavaScript modules under `web/`
//! (`app.js` the list and the filter, `map.js` the map and the services,
//! `detail.js` the detail panel, `dom.js` what they share, `worker.js` the
//! stream reader), compiled into
//! the binary with `include_str!`: no CDN, no network at run time, and no
//! Node toolchain to build tapmesh. It reads the same event stream every
//! client reads (`/environments/{id}/events`, NDJSON, resumed with
//! `since=` after a drop) in a Web Worker, so parsing never runs on the
//! thread that draws. Every answer here carries a Content-Security-Policy
//! that allows only the page's own scripts: whatever a captured request
//! contains, the page shows it as text (it never builds HTML from event
//! data), and the policy would refuse an inline script even if it did.

use std::collections::VecDeque;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use tapmesh_protocols::content::DecodedContent;

use super::stream::query_error;
use super::{error, not_found, Registry};
use crate::events::{BodyEncoding, Event, Payload, Shorthands};
use crate::spec::{Launch, Spec};

const INDEX_HTML: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const DOM_JS: &str = include_str!("web/dom.js");
const MAP_JS: &str = include_str!("web/map.js");
const DETAIL_JS: &str = include_str!("web/detail.js");
const WORKER_JS: &str = include_str!("web/worker.js");
const APP_CSS: &str = include_str!("web/app.css");

/// Only the page's own files: no inline script or style attribute, no
/// other origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The most decompressed bytes a body's view holds.
const DECODED_BODY_LIMIT: usize = 4 << 20;

/// The most HAR entries one export holds (the newest matches): a HAR is
/// built whole, so this bounds its memory.
pub const HAR_MAX_ENTRIES: usize = 20_000;

pub(super) fn routes() -> Router<Registry> {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route("/ui/{file}", get(ui_file))
        .route("/environments/{id}/events/{seq}", get(one_event))
        .route("/environments/{id}/har", get(har))
}

/// The page's files, by name.
const UI_FILES: [(&str, &str, &str); 6] = [
    ("app.js", APP_JS, "text/javascript"),
    ("dom.js", DOM_JS, "text/javascript"),
    ("map.js", MAP_JS, "text/javascript"),
    ("detail.js", DETAIL_JS, "text/javascript"),
    ("worker.js", WORKER_JS, "text/javascript"),
    ("app.css", APP_CSS, "text/css"),
];

async fn ui_file(Path(file): Path<String>) -> Response {
    match UI_FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, body, content_type)) => asset(body, content_type),
        None => error(StatusCode::NOT_FOUND, format!("no file {file:?}")),
    }
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// What the map draws before any traffic: the spec's services and its
/// egress edges (the `~test` node appears with its first call).
pub fn topology(spec: &Spec) -> Value {
    let services: Vec<Value> = spec
        .services
        .values()
        .map(|s| {
            let kind = match &s.launch {
                Launch::Process { .. } => "process",
                Launch::Script { .. } => "script",
                Launch::Cargo { .. } => "cargo",
                Launch::External => "external",
                Launch::Managed(m) => m.type_name(),
            };
            let ingresses: Vec<Value> = s
                .ingresses
                .iter()
                .map(|(name, i)| json!({"name": name, "protocol": i.protocol.as_str()}))
                .collect();
            json!({"name": s.name, "type": kind, "job": s.job, "ingresses": ingresses})
        })
        .collect();
    let edges: Vec<Value> = spec
        .services
        .values()
        .flat_map(|s| {
            s.egresses.iter().map(move |(name, e)| {
                let protocol = spec
                    .services
                    .get(&e.service)
                    .and_then(|t| t.ingresses.get(&e.ingress))
                    .map(|i| i.protocol.as_str());
                json!({
                    "source": s.name,
                    "egress": name,
                    "target": e.service,
                    "ingress": e.ingress,
                    "protocol": protocol,
                })
            })
        })
        .collect();
    json!({"services": services, "edges": edges})
}

/// `GET /environments/{id}/events/{seq}`: the event, and its HTTP bodies
/// with their `Content-Encoding` undone (`null` where there is none).
async fn one_event(
    State(registry): State<Registry>,
    Path((id, seq)): Path<(String, u64)>,
) -> Response {
    let Some(env) = registry.get(&id) else {
        return not_found(&id);
    };
    let log = env.log.clone();
    let found = tokio::task::spawn_blocking(move || log.get(seq)).await;
    let event = match found {
        Ok(Ok(Some(event))) => event,
        Ok(Ok(None)) => return error(StatusCode::NOT_FOUND, format!("no event {seq}")),
        Ok(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let bodies = match &event.payload {
        Payload::Request(r) => json!({
            "request": body_view(r.decoded_request_body(DECODED_BODY_LIMIT)),
            "response": body_view(r.decoded_response_body(DECODED_BODY_LIMIT)),
        }),
        _ => json!({"request": null, "response": null}),
    };
    // The event as the log writes it, spliced in rather than parsed back.
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(b"{\"event\":");
    event.write_json(&mut body);
    body.extend_from_slice(b",\"bodies\":");
    serde_json::to_writer(&mut body, &bodies).expect("a JSON value always serialises");
    body.push(b'}');
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn body_view(decoded: Result<Option<DecodedContent>, String>) -> Value {
    match decoded {
        Ok(None) => Value::Null,
        Ok(Some(d)) => {
            let (text, encoding) = BodyEncoding::encode(&d.data);
            let (text, base64) = match encoding {
                BodyEncoding::Utf8 => (Some(text), None),
                BodyEncoding::Base64 => (None, Some(text)),
            };
            json!({"codings": d.codings, "text": text, "base64": base64, "truncated": d.truncated})
        }
        Err(e) => json!({"error": e}),
    }
}

/// `?q=QUERY`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct HarQuery {
    q: Option<String>,
}

/// `GET /environments/{id}/har?q=`: the HTTP exchanges the query keeps,
/// as HAR 1.2 (the newest [`HAR_MAX_ENTRIES`] of them).
async fn har(
    State(registry): State<Registry>,
    Path(id): Path<String>,
    Query(query): Query<HarQuery>,
) -> Response {
    let Some(env) = registry.get(&id) else {
        return not_found(&id);
    };
    let shorthands = Shorthands {
        types: vec!["request.completed".to_string()],
        ..Shorthands::default()
    };
    // Errors are placed in the text the user wrote.
    let filter = match shorthands.filter(query.q.as_deref(), None) {
        Ok(filter) => filter,
        Err(e) => return query_error(&e),
    };
    let mut subscription = env
        .log
        .subscribe(1, filter)
        .with_max_lag(u64::MAX)
        .until(env.log.last_seq() + 1);
    let mut kept: VecDeque<Arc<Event>> = VecDeque::new();
    while let Some(event) = subscription.recv().await {
        if kept.len() == HAR_MAX_ENTRIES {
            kept.pop_front();
        }
        kept.push_back(event);
    }
    let mut response = Json(crate::inspect::to_har(kept.iter().map(|e| &**e))).into_response();
    let name = format!("attachment; filename=\"{}.har\"", safe_name(&env.name));
    if let Ok(value) = HeaderValue::from_str(&name) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
