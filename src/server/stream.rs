//! An environment's events as a live HTTP stream: Server-Sent Events (with
//! `Last-Event-ID` resume) or NDJSON, replaying from a seq, then following.
//!
//! Each stream is a [`Subscription`]: a cursor into the log, not a queue,
//! so a client that stops reading costs the publisher nothing. Its TCP
//! window fills, the body stops being polled, and when it reads again past
//! its allowed lag it skips ahead with an `events.dropped` saying how many
//! events it missed (which `since` can still fetch).

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;
use serde::Deserialize;

use crate::events::{EventFilter, EventLog, Subscription};

/// `?type=a,b&source=…&target=…&since=SEQ`.
#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    /// Comma-separated types (`request.completed`, `connection.*`).
    #[serde(rename = "type")]
    pub types: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    /// Only events after this seq.
    pub since: Option<u64>,
    /// `false`: what has been logged so far, then the stream ends
    /// (default: keep following live events).
    pub follow: Option<bool>,
}

impl StreamQuery {
    fn filter(&self) -> EventFilter {
        EventFilter {
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
        }
    }
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
    let from = last_event_id.or(query.since).map_or(1, |seq| seq + 1);
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    let mut subscription = log
        .subscribe(from, query.filter())
        .labeled(client)
        .with_max_lag(STREAM_MAX_LAG);
    if query.follow == Some(false) {
        subscription = subscription.until(log.last_seq() + 1);
    }
    if ndjson {
        return (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            Body::from_stream(ndjson_chunks(subscription)),
        )
            .into_response();
    }
    Sse::new(sse_events(subscription))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// A chunk holds what is ready now, up to about this many bytes: one
/// write per batch rather than per event, and no more than this held for
/// a reader that does not take it.
const CHUNK_BYTES: usize = 64 << 10;

/// The subscription as NDJSON chunks. The body is polled only as the
/// client's socket takes what was sent, so a reader that stops reading
/// stops the reading of the log too; one that goes away drops it.
fn ndjson_chunks(
    subscription: Subscription,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    stream::unfold(subscription, |mut sub| async move {
        let first = sub.recv().await?;
        let mut chunk = Vec::with_capacity(4096);
        first.write_json(&mut chunk);
        chunk.push(b'\n');
        while chunk.len() < CHUNK_BYTES {
            let Some(event) = sub.try_recv_in_memory() else {
                break;
            };
            event.write_json(&mut chunk);
            chunk.push(b'\n');
        }
        // A reader that takes everything at once must still let the
        // daemon's other requests run: this counts against the task's
        // budget, which yields to the scheduler when it runs out.
        tokio::task::consume_budget().await;
        Some((Ok(Bytes::from(chunk)), sub))
    })
}

fn sse_events(
    subscription: Subscription,
) -> impl futures_util::Stream<Item = Result<SseEvent, Infallible>> {
    stream::unfold(subscription, |mut sub| async move {
        let event = sub.recv().await?;
        let mut data = Vec::with_capacity(1024);
        event.write_json(&mut data);
        let data = String::from_utf8(data).expect("JSON is UTF-8");
        let sse = SseEvent::default()
            .id(event.seq.to_string())
            .event(event.kind.as_str())
            .data(data);
        tokio::task::consume_budget().await;
        Some((Ok(sse), sub))
    })
}
