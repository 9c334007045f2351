//! `GET /environments/{id}/log`: the services' output as text, streamed.
//!
//! One service's log is its file, sent as it is read (or, for `tail=N`,
//! read backwards from its end). Every service's lines together come from
//! the `service.log` events: streamed from a subscription, or for `tail=N`
//! the newest ones found in memory. Nothing is built whole, and a client
//! that goes away stops the reading.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;
use serde::Deserialize;

use super::stream::{CHUNK_BYTES, EVENTS_PER_TURN};
use super::{error, not_found, Registry};
use crate::events::{Event, EventFilter, EventLog, Payload};

/// The most lines `tail` returns.
const MAX_TAIL: usize = 100_000;
/// The most bytes a tail of a log file returns (lines can be long).
const MAX_TAIL_BYTES: u64 = 16 << 20;
/// Bytes read at a time going backwards through a log file.
const BLOCK: u64 = 64 << 10;

/// `?service=NAME&tail=N`.
#[derive(Debug, Deserialize)]
pub(super) struct LogQuery {
    service: Option<String>,
    tail: Option<usize>,
}

/// One service's log file, or every service's lines interleaved in the
/// order they were written (`service | line`).
pub(super) async fn environment_log(
    State(registry): State<Registry>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<LogQuery>,
) -> Response {
    let Some(env) = registry.get(&id) else {
        return not_found(&id);
    };
    if let Some(service) = &query.service {
        if service.contains(['/', '\\']) || service.starts_with('.') {
            return error(StatusCode::BAD_REQUEST, "service must be a service's name");
        }
    }
    let tail = query.tail.map(|n| n.min(MAX_TAIL));
    let body = match (&query.service, &env.dir) {
        (Some(service), Some(dir)) => {
            let path = dir.join("logs").join(format!("{service}.log"));
            match log_file(path, tail).await {
                Ok(body) => body,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return error(
                        StatusCode::NOT_FOUND,
                        format!("{id} has no log for a service {service:?}"),
                    )
                }
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
        (service, _) => from_events(&env.log, service.clone(), tail).await,
    };
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

async fn log_file(path: PathBuf, tail: Option<usize>) -> std::io::Result<Body> {
    match tail {
        Some(n) => {
            let bytes = tokio::task::spawn_blocking(move || tail_of_file(&path, n))
                .await
                .map_err(std::io::Error::other)??;
            Ok(Body::from(bytes))
        }
        None => {
            let file = tokio::fs::File::open(&path).await?;
            Ok(Body::from_stream(tokio_util::io::ReaderStream::new(file)))
        }
    }
}

/// The last `n` lines of the file (each with its newline), read backwards
/// a block at a time: the cost is the tail's, not the file's.
fn tail_of_file(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if n == 0 || len == 0 {
        return Ok(Vec::new());
    }
    // A last line without its newline still counts as a line.
    let mut last = [0u8];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    let wanted = if last[0] == b'\n' { n + 1 } else { n };
    let mut start = len;
    let mut newlines = 0;
    let mut block = vec![0u8; BLOCK as usize];
    'back: while start > 0 && len - start < MAX_TAIL_BYTES {
        let size = start.min(BLOCK);
        start -= size;
        let block = &mut block[..size as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(block)?;
        for (i, &byte) in block.iter().enumerate().rev() {
            if byte == b'\n' {
                newlines += 1;
                if newlines == wanted {
                    start += i as u64 + 1;
                    break 'back;
                }
            }
        }
    }
    let start = start.max(len.saturating_sub(MAX_TAIL_BYTES));
    let mut out = Vec::with_capacity((len - start) as usize);
    file.seek(SeekFrom::Start(start))?;
    file.take(len - start).read_to_end(&mut out)?;
    Ok(out)
}

/// The `service | line` (or, for one service, `line`) text of a
/// `service.log` event that `only` keeps.
fn log_line(event: &Event, only: Option<&str>) -> Option<String> {
    let (Some(name), Payload::Log(line)) = (event.service.as_deref(), &event.payload) else {
        return None;
    };
    match only {
        Some(only) if only != name => None,
        Some(_) => Some(format!("{}\n", line.line)),
        None => Some(format!("{name} | {}\n", line.line)),
    }
}

async fn from_events(log: &EventLog, service: Option<String>, tail: Option<usize>) -> Body {
    let end = log.last_seq() + 1;
    let subscription = log
        .subscribe(1, EventFilter::types(["service.log"]))
        .until(end)
        .with_max_lag(u64::MAX);
    let Some(n) = tail else {
        let chunks = stream::unfold(subscription, move |mut sub| {
            let service = service.clone();
            async move {
                // Waits for one line, then takes what is ready now.
                let mut chunk = String::new();
                while chunk.is_empty() {
                    let event = sub.recv().await?;
                    chunk.extend(log_line(&event, service.as_deref()));
                }
                for _ in 1..EVENTS_PER_TURN {
                    if chunk.len() >= CHUNK_BYTES {
                        break;
                    }
                    let Some(event) = sub.try_recv_in_memory() else {
                        break;
                    };
                    chunk.extend(log_line(&event, service.as_deref()));
                }
                tokio::task::yield_now().await;
                Some((Ok::<_, Infallible>(Bytes::from(chunk)), sub))
            }
        });
        return Body::from_stream(chunks);
    };
    let only = service.as_deref();
    let (recent, whole) = log.recent_in_memory(n, |e| log_line(e, only).is_some());
    let lines: Vec<Arc<Event>> = if recent.len() == n || whole {
        recent
    } else {
        // Memory holds too few: go through the history, keeping n.
        let mut sub = subscription;
        let mut kept = VecDeque::with_capacity(n);
        while let Some(event) = sub.recv().await {
            if log_line(&event, only).is_some() {
                if kept.len() == n {
                    kept.pop_front();
                }
                kept.push_back(event);
            }
        }
        kept.into()
    };
    let text: String = lines.iter().filter_map(|e| log_line(e, only)).collect();
    Body::from(text)
}
