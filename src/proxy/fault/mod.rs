//! Faults at run time: what an edge has now, and how a connection follows it.
//!
//! Each edge has one [`EdgeFaults`], shared by its listeners and every
//! connection through them. Changing it publishes a new [`FaultSet`] and
//! bumps a generation; each open connection is woken (its relay task's
//! waker is registered once) and, on its next poll, sees the generation
//! moved and takes the new set. A connection on an edge without faults
//! pays one atomic load and a waker comparison per poll, no lock and no
//! allocation; splice stays splice. A change reaches open connections too
//! (a pooled client's connection is the one a test needs to fail).

mod live;
mod request;
mod shape;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::Waker;

use tokio::sync::watch;

use crate::events::Query;
use crate::spec::{FaultAction, FaultSpec, Stream};

pub(crate) use live::{LiveFaults, Op};
pub(crate) use request::{FaultMark, RequestFaults};
pub(crate) use shape::{Shaper, Step};

/// The faults of one edge. Cheap to share; see the module docs.
pub struct EdgeFaults {
    /// The set now; the listener waits on it for `down`.
    tx: watch::Sender<Arc<FaultSet>>,
    /// Bumped on every change, after the set is in place.
    generation: AtomicU64,
    /// Open connections' wakers, woken on every change.
    watchers: Mutex<Vec<Weak<Watcher>>>,
    /// Serialises changes, so two concurrent adds cannot both pass the
    /// unique-name check.
    change: Mutex<()>,
}

/// Where one connection's relay task is woken from.
#[derive(Default)]
pub(crate) struct Watcher {
    waker: Mutex<Option<Waker>>,
}

impl Watcher {
    pub fn register(&self, waker: &Waker) {
        *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(waker.clone());
    }
}

/// The faults an edge has at one moment.
#[derive(Default)]
pub struct FaultSet {
    pub(crate) rules: Vec<Arc<Rule>>,
}

/// One fault, compiled.
pub(crate) struct Rule {
    pub spec: FaultSpec,
    /// Its `match`, compiled once.
    pub query: Option<Query>,
    /// Matching requests seen so far (for `first` and `every`).
    pub matched: AtomicU64,
    /// Stable for the rule's life: connections remember their toxicity
    /// draw by it.
    pub id: u64,
}

static NEXT_RULE: AtomicU64 = AtomicU64::new(1);

impl Rule {
    fn new(spec: FaultSpec) -> Result<Self, String> {
        let query = match &spec.when {
            Some(text) => Some(Query::parse(text).map_err(|e| format!("match: {e}"))?),
            None => None,
        };
        Ok(Self {
            spec,
            query,
            matched: AtomicU64::new(0),
            id: NEXT_RULE.fetch_add(1, Ordering::Relaxed),
        })
    }
}

impl FaultSet {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether the edge is `down`.
    pub fn is_down(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.spec.action, FaultAction::Down {}))
    }

    pub(crate) fn has_request_faults(&self) -> bool {
        self.rules.iter().any(|r| r.spec.action.is_request_fault())
    }

    /// The connection faults acting on one direction.
    pub(crate) fn connection_rules(&self, stream: Stream) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.iter().filter(move |r| {
            !r.spec.action.is_request_fault()
                && !matches!(r.spec.action, FaultAction::Down {})
                && r.spec.stream == stream
        })
    }
}

impl std::fmt::Debug for EdgeFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.list()).finish()
    }
}

impl Default for EdgeFaults {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(Arc::new(FaultSet::default())),
            generation: AtomicU64::new(0),
            watchers: Mutex::new(Vec::new()),
            change: Mutex::new(()),
        }
    }
}

impl EdgeFaults {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The faults now.
    pub fn current(&self) -> Arc<FaultSet> {
        self.tx.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<FaultSet>> {
        self.tx.subscribe()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A connection to wake on every change (until it is dropped).
    pub(crate) fn watch(&self) -> Arc<Watcher> {
        let watcher = Arc::new(Watcher::default());
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        if watchers.len() >= 64 && watchers.len().is_power_of_two() {
            watchers.retain(|w| w.strong_count() > 0);
        }
        watchers.push(Arc::downgrade(&watcher));
        watcher
    }

    /// Puts `set` in place, then wakes every connection to look at it.
    fn publish(&self, set: FaultSet) {
        self.tx.send_replace(Arc::new(set));
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        watchers.retain(|w| match w.upgrade() {
            Some(watcher) => {
                if let Some(waker) = watcher
                    .waker
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                {
                    waker.wake_by_ref();
                }
                true
            }
            None => false,
        });
    }

    /// The faults as written, in the order they were added.
    pub fn list(&self) -> Vec<FaultSpec> {
        self.current()
            .rules
            .iter()
            .map(|r| r.spec.clone())
            .collect()
    }

    /// Adds a fault. Its name must be new on this edge.
    pub fn add(&self, spec: FaultSpec) -> Result<(), String> {
        not_built_yet(&spec)?;
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.current();
        if now.rules.iter().any(|r| r.spec.name == spec.name) {
            return Err(format!(
                "this edge already has a fault named {:?}: remove it first or give the new one another `name`",
                spec.name
            ));
        }
        let mut rules = now.rules.clone();
        rules.push(Arc::new(Rule::new(spec)?));
        self.publish(FaultSet { rules });
        Ok(())
    }

    /// Removes the fault named `name`; whether there was one.
    pub fn remove(&self, name: &str) -> bool {
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.current();
        let rules: Vec<_> = now
            .rules
            .iter()
            .filter(|r| r.spec.name != name)
            .cloned()
            .collect();
        let removed = rules.len() != now.rules.len();
        if removed {
            self.publish(FaultSet { rules });
        }
        removed
    }

    /// Removes every fault; how many there were.
    pub fn clear(&self) -> usize {
        let _change = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.current().rules.len();
        if n > 0 {
            self.publish(FaultSet::default());
        }
        n
    }
}

/// Refuses what would be accepted and then do nothing: request faults
/// act on HTTP/1.x requests only so far, so an abort that answers with a
/// gRPC status or a Kafka error code has nothing to act on yet.
pub fn not_built_yet(spec: &FaultSpec) -> Result<(), String> {
    use crate::spec::Abort;
    match &spec.action {
        FaultAction::Abort(Abort::Grpc { .. }) => Err(
            "an abort with a gRPC status is not built yet: request faults act on HTTP/1.x requests so far (gRPC runs over HTTP/2); use a connection fault (reset_peer, down, latency …) on a gRPC edge".into(),
        ),
        FaultAction::Abort(Abort::Kafka { .. }) => Err(
            "an abort with a Kafka error code is not built yet; use a connection fault (reset_peer, down, latency …) on a Kafka edge".into(),
        ),
        _ => Ok(()),
    }
}

/// A small, fast generator for toxicity draws, jitter and slice sizes: a
/// fault's randomness needs no cryptographic quality, only independence
/// between connections (seeded from the connection's id and the clock).
pub(crate) struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self((seed ^ nanos).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// xorshift64*.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p >= 1.0 || (p > 0.0 && ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p)
    }

    /// Uniform in `[-spread, spread]`.
    pub fn spread(&mut self, spread: u64) -> i64 {
        if spread == 0 {
            return 0;
        }
        (self.next() % (2 * spread + 1)) as i64 - spread as i64
    }
}

#[cfg(test)]
mod tests;
