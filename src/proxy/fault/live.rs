//! One connection's faults while it relays: the edge's current set, the
//! toxicity draws made for this connection, the HTTP/1 request gate, and
//! what the gate decided that the other direction must act on (responses to
//! inject, responses to hold, marks for the decoder's exchanges).
//!
//! Owned by the relay's observer, which both directions already share
//! mutably, so none of this needs a lock.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tapmesh_protocols::http1::{RequestGate, Segment, Verdict};
use tokio::time::Sleep;

use super::shape::Deadline;
use super::{Dice, EdgeFaults, FaultMark, FaultSet, RequestFaults, Rule, Shaper, Watcher};
use crate::spec::Stream;

/// Marks kept for requests whose exchange has not completed: beyond this
/// the decoder has stopped pairing (it allows 1,024 requests in flight), so
/// they are dropped rather than kept without bound.
const MAX_MARKS: usize = 1100;

/// What the relay is told to do to a client→target chunk.
pub(crate) enum Op {
    Write(Bytes),
    Wait(Instant),
    Close,
}

pub(crate) struct LiveFaults {
    pub set: Arc<FaultSet>,
    edge: Arc<EdgeFaults>,
    /// The edge's generation `set` is from (`None` before the first look).
    generation_seen: Option<u64>,
    watcher: Arc<Watcher>,
    /// The waker registered with `watcher` (a task's waker stays the same,
    /// so this is registered once).
    waker: Option<Waker>,
    drawn: Vec<(u64, bool)>,
    dice: Dice,
    requests: RequestFaults,
    http: bool,
    /// Created when the edge first has request faults while the connection
    /// is between messages; kept for the connection's life after that.
    gate: Option<RequestGate>,
    segments: Vec<Segment>,
    /// One per request the gate saw, in order: the fault that acted on it.
    marks: VecDeque<Option<FaultMark>>,
    seen: u64,
    /// Request indexes of `Respond` verdicts not yet turned into injections.
    responds: VecDeque<u64>,
    /// Request indexes of `DelayResponse` verdicts, with the hold.
    pending_holds: VecDeque<(u64, Duration)>,
    /// Responses held: (the request's index, how long).
    pub response_holds: VecDeque<(u64, Duration)>,
    /// Responses to write to the client once this many exchanges completed.
    pub inject: VecDeque<(Bytes, u64)>,
    /// Responses decided on but not yet injectable: the decoder has not
    /// seen the request they answer (it must, before it sees them).
    staged: Vec<(Bytes, u64)>,
    /// HTTP exchanges the decoder has completed.
    pub exchanges: u64,
    /// Connection faults that newly apply, to be reported.
    pub applied: Vec<Arc<Rule>>,
    deadline: Option<(Deadline, Pin<Box<Sleep>>)>,
}

impl LiveFaults {
    /// `http`: the edge speaks HTTP, so its requests may be gated.
    pub fn new(edge: Arc<EdgeFaults>, requests: RequestFaults, http: bool) -> Self {
        let dice = Dice::new(requests.connection);
        Self {
            set: Arc::default(),
            watcher: edge.watch(),
            edge,
            generation_seen: None,
            waker: None,
            drawn: Vec::new(),
            dice,
            requests,
            http,
            gate: None,
            segments: Vec::new(),
            marks: VecDeque::new(),
            seen: 0,
            responds: VecDeque::new(),
            pending_holds: VecDeque::new(),
            response_holds: VecDeque::new(),
            inject: VecDeque::new(),
            staged: Vec::new(),
            exchanges: 0,
            applied: Vec::new(),
            deadline: None,
        }
    }

    /// Whether the edge's faults changed since the last call (or this is
    /// the first), `self.set` then updated. No lock on the way: one atomic
    /// load, and a waker comparison.
    pub fn poll_changed(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.watcher.register(cx.waker());
            self.waker = Some(cx.waker().clone());
        }
        // Read after registering: a change from here on wakes the task.
        let generation = self.edge.generation();
        if self.generation_seen == Some(generation) {
            return false;
        }
        self.generation_seen = Some(generation);
        self.set = self.edge.current();
        true
    }

    /// The shapers for both directions under the current set, and the
    /// deadline they set (the earlier one).
    pub fn shapers(&mut self) -> (Option<Shaper>, Option<Shaper>) {
        let set = self.set.clone();
        let mut build = |stream| {
            Shaper::build(
                &set,
                stream,
                &mut self.drawn,
                &mut self.dice,
                &mut self.applied,
            )
        };
        let (up, down) = (build(Stream::Upstream), build(Stream::Downstream));
        let deadline = [&up, &down]
            .into_iter()
            .filter_map(|s| s.as_ref().and_then(|s| s.deadline))
            .min_by_key(|d| d.at);
        self.deadline = deadline.map(|d| (d, Box::pin(tokio::time::sleep_until(d.at.into()))));
        (up, down)
    }

    /// A connection fault's clock ran out: reset (true) or close.
    pub fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Option<bool> {
        let (deadline, sleep) = self.deadline.as_mut()?;
        sleep.as_mut().poll(cx).is_ready().then_some(deadline.reset)
    }

    /// Nothing to do per chunk: no faults, no gate, nothing pending.
    pub fn is_quiet(&self) -> bool {
        self.set.is_empty()
            && self.gate.is_none()
            && self.response_holds.is_empty()
            && self.pending_holds.is_empty()
    }

    /// Whether requests may be gated: the edge has request faults. The
    /// gate starts only where the client is between requests (`idle`).
    pub fn wants_gate(&mut self, idle: bool) -> bool {
        if self.gate.is_none() && self.http && idle && self.set.has_request_faults() {
            self.gate = Some(RequestGate::new(64 * 1024));
        }
        self.gate.is_some()
    }

    /// Cuts a client chunk into what to do with it.
    pub fn gate_chunk(&mut self, chunk: &Bytes, ops: &mut VecDeque<Op>) {
        let Some(gate) = self.gate.as_mut() else {
            ops.push_back(Op::Write(chunk.clone()));
            return;
        };
        let set = self.set.clone();
        let (requests, marks, seen, responds, pending_holds) = (
            &mut self.requests,
            &mut self.marks,
            &mut self.seen,
            &mut self.responds,
            &mut self.pending_holds,
        );
        let mut decide = |head: &tapmesh_protocols::http1::RequestHead<'_>| {
            let (verdict, mark) = requests.decide_http1(&set, head);
            let index = *seen;
            *seen += 1;
            match &verdict {
                Verdict::Respond(_) => responds.push_back(index),
                Verdict::DelayResponse(d) => pending_holds.push_back((index, *d)),
                _ => {}
            }
            if marks.len() >= MAX_MARKS {
                marks.clear();
            }
            marks.push_back(mark);
            verdict
        };
        gate.feed(chunk, &mut decide, &mut self.segments);
        let now = Instant::now();
        for segment in self.segments.drain(..) {
            match segment {
                Segment::Forward(bytes) => ops.push_back(Op::Write(bytes)),
                Segment::Swallow(_) => {}
                Segment::Wait(d) => ops.push_back(Op::Wait(now + d)),
                Segment::DelayResponse(_) => {
                    if let Some(hold) = self.pending_holds.pop_front() {
                        self.response_holds.push_back(hold);
                    }
                }
                Segment::Respond { bytes, .. } => {
                    let index = self.responds.pop_front().unwrap_or(0);
                    self.staged.push((bytes, index));
                }
                Segment::Close => ops.push_back(Op::Close),
            }
        }
    }

    /// The decoder has seen the client's chunk: the responses to its
    /// requests may go.
    pub fn requests_seen(&mut self) {
        self.inject.extend(self.staged.drain(..));
    }

    /// An HTTP exchange completed: the fault that acted on it, if any.
    pub fn exchange_done(&mut self) -> Option<FaultMark> {
        self.exchanges += 1;
        self.marks.pop_front().flatten()
    }

    /// The response to inject now, if the exchanges before it are done (or
    /// nothing is counting them any more).
    pub fn take_injection(&mut self, decoding: bool) -> Option<Bytes> {
        let &(_, after) = self.inject.front()?;
        (!decoding || self.exchanges >= after).then(|| self.inject.pop_front().map(|(b, _)| b))?
    }

    /// How long to hold a response chunk that starts now, if its request
    /// asked for it.
    pub fn response_hold(&mut self) -> Option<Duration> {
        let &(index, hold) = self.response_holds.front()?;
        (self.exchanges >= index).then(|| {
            self.response_holds.pop_front();
            hold
        })
    }
}
