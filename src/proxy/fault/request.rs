//! Request faults: which request a fault picks, and what it does to it.
//!
//! A request is matched before it is forwarded, so only what the request
//! says is known: its fields are put in a `request.completed` event with
//! no response, and the fault's `match` runs on that (response fields are
//! absent, so a clause on them never holds). Building that event costs a
//! copy of the head's fields, paid only on edges that have request faults.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tapmesh_protocols::http1::{RequestHead, Response, Verdict};

use super::{Dice, FaultSet, Rule};
use crate::events::{BodyEncoding, Event, EventKind, HeaderMap, Payload, RequestInfo};
use crate::spec::{Abort, FaultAction, Phase};

/// A fault that acted on a request, carried to that request's event.
pub(crate) struct FaultMark {
    pub rule: Arc<Rule>,
    /// What it did, in a sentence (`answered 503 instead of forwarding`).
    pub detail: String,
}

/// One connection's view of its edge's request faults.
pub(crate) struct RequestFaults {
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    pub connection: u64,
    pub dice: Dice,
}

impl RequestFaults {
    /// The verdict on an HTTP/1 request, and the fault behind it.
    pub fn decide_http1(
        &mut self,
        set: &FaultSet,
        head: &RequestHead<'_>,
    ) -> (Verdict, Option<FaultMark>) {
        let mut event = None;
        for rule in set.rules.iter() {
            let verdict = match &rule.spec.action {
                FaultAction::Delay {
                    delay,
                    on: Phase::Request,
                } => Verdict::Delay(*delay),
                FaultAction::Delay {
                    delay,
                    on: Phase::Response,
                } => Verdict::DelayResponse(*delay),
                FaultAction::Abort(Abort::Http { http_status, body }) => {
                    Verdict::Respond(Response {
                        status: *http_status,
                        headers: vec![
                            ("content-type".into(), "text/plain; charset=utf-8".into()),
                            ("x-tapmesh-fault".into(), rule.spec.name.clone()),
                        ],
                        body: Bytes::from(body.clone().into_bytes()),
                    })
                }
                FaultAction::Drop {} => Verdict::Close,
                // gRPC and Kafka aborts never apply to an HTTP/1 request.
                _ => continue,
            };
            if let Some(query) = &rule.query {
                let event = event.get_or_insert_with(|| self.http1_event(head));
                if !query.matches(event) {
                    continue;
                }
            }
            if !self.selects(rule) {
                continue;
            }
            let detail = describe(&verdict, head);
            return (
                verdict,
                Some(FaultMark {
                    rule: rule.clone(),
                    detail,
                }),
            );
        }
        (Verdict::Pass, None)
    }

    /// Counts a match, then applies `first`, `every` and `toxicity`.
    fn selects(&mut self, rule: &Rule) -> bool {
        let n = rule.matched.fetch_add(1, Ordering::Relaxed) + 1;
        if rule.spec.first.is_some_and(|first| n > first) {
            return false;
        }
        if rule.spec.every.is_some_and(|every| n % every != 0) {
            return false;
        }
        self.dice.chance(rule.spec.toxicity)
    }

    fn http1_event(&self, head: &RequestHead<'_>) -> Event {
        let headers = head.headers.clone();
        Event {
            seq: 0,
            kind: EventKind::RequestCompleted,
            timestamp: chrono::Utc::now(),
            environment: Arc::from(""),
            service: None,
            payload: Payload::Request(RequestInfo {
                connection: self.connection,
                source: self.source.clone(),
                target: self.target.clone(),
                ingress: self.ingress.clone(),
                version: head.version.to_string(),
                method: head.method.to_string(),
                path: head.path.to_string(),
                status_code: None,
                latency_ms: None,
                request_size: 0,
                response_size: 0,
                request_headers: HeaderMap::from_block(headers),
                response_headers: HeaderMap::default(),
                request_trailers: HeaderMap::default(),
                response_trailers: HeaderMap::default(),
                request_body: String::new(),
                request_body_encoding: BodyEncoding::Utf8,
                request_body_truncated: false,
                response_body: String::new(),
                response_body_encoding: BodyEncoding::Utf8,
                response_body_truncated: false,
                warnings: Vec::new(),
                error: None,
                fault: None,
            }),
        }
    }
}

fn describe(verdict: &Verdict, head: &RequestHead<'_>) -> String {
    let what = format!("{} {}", head.method, head.path);
    match verdict {
        Verdict::Pass => format!("passed {what}"),
        Verdict::Delay(d) => format!(
            "held {what} {} before forwarding it",
            humantime::format_duration(*d)
        ),
        Verdict::DelayResponse(d) => format!(
            "held the response to {what} {}",
            humantime::format_duration(*d)
        ),
        Verdict::Respond(r) => {
            format!("answered {what} with {} instead of forwarding it", r.status)
        }
        Verdict::Close => format!("closed the connection at {what}"),
    }
}
