//! Where `tapmesh events|traffic|export` read events: a JSON Lines file,
//! or a daemon's environment (`http://127.0.0.1:7411/environments/ID`, or
//! just the daemon's address when it runs one environment).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header;
use serde_json::Value;

use crate::events::Event;
use crate::inspect;

/// A file or a daemon environment.
#[derive(Debug, Clone)]
pub(crate) enum EventSource {
    File(PathBuf),
    Daemon {
        /// `host:port`.
        authority: String,
        /// The environment's id (or unique name); `None`: the only one.
        environment: Option<String>,
    },
}

impl EventSource {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let Some(rest) = text.strip_prefix("http://") else {
            if text.starts_with("https://") {
                return Err("the daemon speaks plain http://".into());
            }
            return Ok(Self::File(PathBuf::from(text)));
        };
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err(format!("{text:?} names no host"));
        }
        let path = path.trim_end_matches('/');
        let environment = match path.split('/').collect::<Vec<_>>().as_slice() {
            [""] => None,
            ["environments", id] if !id.is_empty() => Some(id.to_string()),
            _ => {
                return Err(format!(
                    "{text:?}: write the daemon's address, or its /environments/ID"
                ))
            }
        };
        Ok(Self::Daemon {
            authority: authority.to_string(),
            environment,
        })
    }

    /// What to call it in messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Daemon {
                authority,
                environment,
            } => format!(
                "http://{authority}/environments/{}",
                environment.as_deref().unwrap_or("")
            ),
        }
    }

    /// Every event so far (a file's complete lines; a daemon's log up to now).
    pub(crate) fn read_all(&self) -> Result<Vec<Event>> {
        match self {
            Self::File(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                inspect::parse_jsonl(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            }
            Self::Daemon {
                authority,
                environment,
            } => block_on(async {
                let id = resolve(authority, environment.as_deref()).await?;
                let mut events = Vec::new();
                stream_lines(
                    authority,
                    &format!("/environments/{id}/events?follow=false"),
                    |e| {
                        events.push(e);
                        Ok(())
                    },
                )
                .await?;
                Ok(events)
            }),
        }
    }

    /// Follows a daemon environment's events after `since`, live, until
    /// the environment goes down or `each` fails.
    pub(crate) fn follow_daemon(
        authority: &str,
        environment: Option<&str>,
        since: u64,
        each: impl FnMut(Event) -> Result<()>,
    ) -> Result<()> {
        block_on(async {
            let id = resolve(authority, environment).await?;
            stream_lines(
                authority,
                &format!("/environments/{id}/events?since={since}"),
                each,
            )
            .await
        })
    }
}

pub(crate) fn block_on<T>(future: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(future)
}

/// The environment's id: the one given, or the daemon's only one.
pub(crate) async fn resolve(authority: &str, environment: Option<&str>) -> Result<String> {
    if let Some(id) = environment {
        return Ok(id.to_string());
    }
    let mut listing = Vec::new();
    stream_body(authority, "/environments", |chunk| {
        listing.extend_from_slice(&chunk);
        Ok(())
    })
    .await?;
    let envs: Vec<Value> = serde_json::from_slice(&listing)
        .with_context(|| format!("http://{authority}/environments did not answer a list"))?;
    match envs.as_slice() {
        [one] => Ok(one["id"].as_str().unwrap_or_default().to_string()),
        [] => bail!("the daemon at {authority} runs no environment"),
        many => bail!(
            "the daemon at {authority} runs {} environments; name one: {}",
            many.len(),
            many.iter()
                .map(|e| format!(
                    "http://{authority}/environments/{}",
                    e["id"].as_str().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// GETs `path` as NDJSON and hands each event to `each`.
async fn stream_lines(
    authority: &str,
    path: &str,
    mut each: impl FnMut(Event) -> Result<()>,
) -> Result<()> {
    let mut pending: Vec<u8> = Vec::new();
    stream_body(authority, path, |chunk| {
        pending.extend_from_slice(&chunk);
        let complete = pending
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let lines: Vec<u8> = pending.drain(..complete).collect();
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            each(serde_json::from_slice(line).context("the daemon sent an unreadable event")?)?;
        }
        Ok(())
    })
    .await
}

/// GETs `path` and hands the body to `each` chunk by chunk; a status other
/// than 200 is an error carrying the daemon's message.
async fn stream_body(
    authority: &str,
    path: &str,
    mut each: impl FnMut(Bytes) -> Result<()>,
) -> Result<()> {
    let mut sender = connect(authority).await?;
    let request = hyper::Request::get(path)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/x-ndjson")
        .body(Empty::<Bytes>::new())?;
    let mut response = sender.send_request(request).await?;
    let status = response.status();
    if status != hyper::StatusCode::OK {
        let body = response.into_body().collect().await?.to_bytes();
        bail!(
            "http://{authority}{path}: {status}: {}",
            daemon_message(&body)
        );
    }
    while let Some(frame) = response.body_mut().frame().await {
        if let Ok(data) = frame?.into_data() {
            each(data)?;
        }
    }
    Ok(())
}

/// POSTs an empty JSON object to `path` (the daemon takes state changes
/// only as JSON) and returns the JSON answer; a status other than 200 is
/// an error carrying the daemon's message.
pub(crate) async fn post_json(authority: &str, path: &str) -> Result<Value> {
    let mut sender = connect(authority).await?;
    let request = hyper::Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::from_static(b"{}")))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if status != hyper::StatusCode::OK {
        bail!("{status}: {}", daemon_message(&body));
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("http://{authority}{path} answered no JSON"))
}

/// Sends `method path` with a JSON body (or none) and returns the JSON
/// answer; a status outside 2xx is an error carrying the daemon's message.
pub(crate) async fn send_json(
    authority: &str,
    method: hyper::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value> {
    let mut sender = connect(authority).await?;
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, authority);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let response = sender
        .send_request(request.body(http_body_util::Full::new(bytes))?)
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!("{status}: {}", daemon_message(&body));
    }
    serde_json::from_slice(&body)
        .with_context(|| format!("http://{authority}{path} answered no JSON"))
}

/// The daemon's `{"error": …}`, or the body as text.
fn daemon_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

async fn connect<B>(authority: &str) -> Result<hyper::client::conn::http1::SendRequest<B>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(authority),
    )
    .await
    .map_err(|_| anyhow::anyhow!("connecting to {authority} timed out"))?
    .with_context(|| {
        format!("connecting to the daemon at {authority} (is `tapmesh serve` running?)")
    })?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}
