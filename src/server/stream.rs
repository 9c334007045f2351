//! An environment's events as a live HTTP stream: Server-Sent Events (with
//! `Last-Event-ID` resume) or NDJSON, replaying from a seq, then following.
//!
//! Each stream is a [`Subscription`]: a cursor into the log, not a queue,
//! so a client that stops reading costs the publisher nothing. Its TCP
//! window fills, the body stops being polled, and when it reads again past
//! its allowed lag it skips ahead with an `events.dropped` saying how many
//! events it missed (which `since` can still fetch).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;
use serde::Deserialize;

use crate::events::{Event, EventFilter, EventLog, QueryError, Shorthands, Subscription};

/// `?q=QUERY&type=a,b&source=…&target=…&sql=TEXT&since=SEQ`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    /// A query (`http.status >= 500`): see `crate::events::Query`.
    pub q: Option<String>,
    /// Comma-separated types (`request.completed`, `connection.*`).
    #[serde(rename = "type")]
    pub types: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    /// PostgreSQL statements whose SQL contains this text (any case).
    pub sql: Option<String>,
    /// Only events after this seq.
    pub since: Option<u64>,
    /// `false`: what has been logged so far, then the stream ends
    /// (default: keep following live events).
    pub follow: Option<bool>,
    /// `ndjson`: JSON Lines whatever `Accept` says (a download link
    /// cannot set headers).
    pub format: Option<String>,
    /// Milliseconds to gather events before sending them (at most 1000):
    /// for a reader that takes events in bulk (the web view), so a busy
    /// environment costs a few writes and wake-ups a second rather than
    /// one per event or two.
    pub batch_ms: Option<u64>,
    /// `row`: each event as the web view's list row (see `row.rs`), in
    /// NDJSON.
    pub view: Option<String>,
}

impl StreamQuery {
    /// The filter the parameters stand for: `q` and the shorthands (each
    /// a clause of the same query).
    pub fn filter(&self) -> Result<EventFilter, QueryError> {
        let shorthands = Shorthands {
            types: self
                .types
                .as_deref()
                .map(|t| {
                    t.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            source: self.source.clone(),
            target: self.target.clone(),
            sql: self.sql.clone(),
            ..Shorthands::default()
        };
        // `since` starts the subscription instead (and `Last-Event-ID`
        // may override it).
        shorthands.filter(self.q.as_deref(), None)
    }
}

/// `400` for a query that cannot run: `{"error": "…", "position":
/// {"line", "column"}}`, before any event is read.
pub fn query_error(error: &QueryError) -> Response {
    let body = serde_json::json!({
        "error": error.to_string(),
        "position": {"line": error.line, "column": error.column},
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}

/// How many events a stream may fall behind before it skips ahead.
pub const STREAM_MAX_LAG: u64 = 65_536;

/// The stream response for `log`: NDJSON if the client accepts
/// `application/x-ndjson`, else SSE. A `Last-Event-ID` header (SSE resume)
/// takes precedence over `since`.
pub fn event_stream(
    log: &EventLog,
    query: &StreamQuery,
    headers: &HeaderMap,
    client: &str,
) -> Response {
    let last_event_id = match headers
        .get("last-event-id")
        .map(|v| v.to_str().map(str::parse::<u64>))
    {
        None => None,
        Some(Ok(Ok(seq))) => Some(seq),
        Some(_) => {
            return (
                StatusCode::BAD_REQUEST,
                "Last-Event-ID must be an event's seq\n",
            )
                .into_response()
        }
    };
    let filter = match query.filter() {
        Ok(filter) => filter,
        Err(e) => return query_error(&e),
    };
    let from = last_event_id.or(query.since).map_or(1, |seq| seq + 1);
    let ndjson = query.format.as_deref() == Some("ndjson")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("application/x-ndjson"));
    let mut subscription = log
        .subscribe(from, filter)
        .labeled(client)
        .with_max_lag(STREAM_MAX_LAG);
    if query.follow == Some(false) {
        subscription = subscription.until(log.last_seq() + 1);
    }
    let batch = query
        .batch_ms
        .filter(|&ms| ms > 0)
        .map(|ms| Duration::from_millis(ms.min(1000)));
    if query.view.as_deref() == Some("row") {
        let body = Body::from_stream(chunks(subscription, write_row_line, None, batch));
        return ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    }
    if ndjson {
        let body = Body::from_stream(chunks(subscription, write_ndjson, None, batch));
        return ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response();
    }
    let body = Body::from_stream(chunks(subscription, write_sse, Some(SSE_KEEP_ALIVE), batch));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// Events a stream sends before it lets the daemon's other tasks run. With
/// dozens of readers replaying history at once, a request such as
/// `/health` waits for at most this many events of each.
pub(super) const EVENTS_PER_TURN: usize = 16;

/// A chunk holds at most `EVENTS_PER_TURN` events and about this many bytes.
pub(super) const CHUNK_BYTES: usize = 64 << 10;

/// A batching stream's chunk (see `StreamQuery::batch_ms`) holds at most
/// this many events and about this many bytes.
const BATCH_EVENTS: usize = 8192;
/// Fewer events than this ready at once: a batching reader is at the live
/// end of the log, and gathers for its batch's time.
const BATCH_LIVE: usize = 256;
const BATCH_BYTES: usize = 4 << 20;

/// An idle SSE stream sends a comment this often, so proxies and clients
/// see the connection is alive.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);
const SSE_KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

fn write_row_line(event: &Event, out: &mut Vec<u8>) {
    super::row::write_row(event, out);
    out.push(b'\n');
}

fn write_ndjson(event: &Event, out: &mut Vec<u8>) {
    event.write_json(out);
    out.push(b'\n');
}

/// One SSE event: `id` is the seq (what `Last-Event-ID` resumes from),
/// `event` the type, `data` the event's JSON (one line: JSON strings
/// escape newlines).
fn write_sse(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(itoa::Buffer::new().format(event.seq).as_bytes());
    out.extend_from_slice(b"\nevent: ");
    out.extend_from_slice(event.kind.as_str().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    event.write_json(out);
    out.extend_from_slice(b"\n\n");
}

/// The subscription as chunks of text: what is ready now, up to
/// `EVENTS_PER_TURN` events, then a yield to the scheduler. The body is
/// polled only as the client's socket takes what was sent, so a reader
/// that stops reading stops the reading of the log too; one that goes
/// away drops it.
fn chunks(
    subscription: Subscription,
    write: fn(&Event, &mut Vec<u8>),
    keep_alive: Option<&'static [u8]>,
    batch: Option<Duration>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    stream::unfold(subscription, move |mut sub| async move {
        let first = match keep_alive {
            None => sub.recv().await?,
            Some(comment) => match tokio::time::timeout(KEEP_ALIVE_EVERY, sub.recv()).await {
                Ok(event) => event?,
                Err(_) => return Some((Ok(Bytes::from_static(comment)), sub)),
            },
        };
        let (max_events, max_bytes) = match batch {
            Some(_) => (BATCH_EVENTS, BATCH_BYTES),
            None => (EVENTS_PER_TURN, CHUNK_BYTES),
        };
        let mut chunk = Vec::with_capacity(4096);
        write(&first, &mut chunk);
        let (mut n, mut gathered) = (1, batch.is_none());
        loop {
            while n < max_events && chunk.len() < max_bytes {
                let Some(event) = sub.try_recv_in_memory() else {
                    break;
                };
                write(&event, &mut chunk);
                n += 1;
            }
            // A batching reader that has caught up sleeps rather than
            // waits on the log, so appends meanwhile wake nobody; then it
            // takes what came. One replaying history (many events ready)
            // never sleeps.
            match batch {
                Some(pause) if !gathered && n < BATCH_LIVE => {
                    tokio::time::sleep(pause).await;
                    gathered = true;
                }
                _ => break,
            }
        }
        tokio::task::yield_now().await;
        Some((Ok(Bytes::from(chunk)), sub))
    })
}
