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
    if query.follow == Some(false) {
        return replay(log, from, query.filter(), ndjson);
    }
    let subscription = log
        .subscribe(from, query.filter())
        .labeled(client)
        .with_max_lag(STREAM_MAX_LAG);
    if ndjson {
        let lines = stream::unfold(subscription, |mut sub| async move {
            let event = sub.recv().await?;
            let mut line = Vec::with_capacity(1024);
            event.write_json(&mut line);
            line.push(b'\n');
            Some((Ok::<_, Infallible>(Bytes::from(line)), sub))
        });
        return (
            [(header::CONTENT_TYPE, "application/x-ndjson")],
            Body::from_stream(lines),
        )
            .into_response();
    }
    Sse::new(sse_events(subscription))
        .keep_alive(KeepAlive::default())
        .into_response()
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
        Some((Ok(sse), sub))
    })
}

/// Everything logged from `from` up to now that `filter` keeps, as one
/// finite response.
fn replay(log: &EventLog, from: u64, filter: EventFilter, ndjson: bool) -> Response {
    let events = match log.since(from) {
        Ok(events) => events,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the events back: {e}\n"),
            )
                .into_response()
        }
    };
    let mut body = Vec::new();
    for event in events.iter().filter(|e| filter.matches(e)) {
        if ndjson {
            event.write_json(&mut body);
            body.push(b'\n');
        } else {
            body.extend_from_slice(
                format!("id: {}\nevent: {}\ndata: ", event.seq, event.kind.as_str()).as_bytes(),
            );
            event.write_json(&mut body);
            body.extend_from_slice(b"\n\n");
        }
    }
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "text/event-stream"
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
