//! Faults from a test: `env.fault("orders->inventory", Fault::abort_http(503).first(2))`
//! adds one for as long as the returned guard lives.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Environment, Error};
use crate::proxy::fault::EdgeFaults;
use crate::spec::{read_fault, FaultSpec};

/// A fault to add, built as Toxiproxy's JSON is written (see
/// [`crate::spec::FaultSpec`] for every type and attribute).
#[derive(Debug, Clone)]
pub struct Fault {
    value: Value,
}

impl Fault {
    /// Any fault, as its JSON (`{"type": "latency", "attributes": {…}}`).
    pub fn from_json(value: Value) -> Self {
        Self { value }
    }

    fn of(kind: &str, attributes: Value) -> Self {
        Self::from_json(json!({"type": kind, "attributes": attributes}))
    }

    /// Each chunk target → client held this long.
    pub fn latency(latency: Duration) -> Self {
        Self::of("latency", json!({"latency": latency.as_millis() as u64}))
    }

    /// At most `kb_per_s` KB/s target → client.
    pub fn bandwidth(kb_per_s: u64) -> Self {
        Self::of("bandwidth", json!({"rate": kb_per_s}))
    }

    /// Connections reset after `after`.
    pub fn reset_peer(after: Duration) -> Self {
        Self::of("reset_peer", json!({"timeout": after.as_millis() as u64}))
    }

    /// The edge refuses new connections and resets open ones.
    pub fn down() -> Self {
        Self::from_json(json!({"type": "down"}))
    }

    /// Matching HTTP requests answered with `status` instead of forwarded.
    pub fn abort_http(status: u16) -> Self {
        Self::of("abort", json!({"http_status": status}))
    }

    /// Matching gRPC calls failed with `code` (trailers-only). Not built
    /// yet: adding it is refused until request faults act on HTTP/2.
    pub fn abort_grpc(code: u32) -> Self {
        Self::of("abort", json!({"grpc_status": code}))
    }

    /// Matching requests held this long before they are forwarded.
    pub fn delay(delay: Duration) -> Self {
        Self::of("delay", json!({"delay": delay.as_millis() as u64}))
    }

    /// The connection closed at a matching request.
    pub fn drop_connection() -> Self {
        Self::from_json(json!({"type": "drop"}))
    }

    fn set(mut self, key: &str, value: Value) -> Self {
        self.value[key] = value;
        self
    }

    /// Its name on the edge (default: its type).
    pub fn named(self, name: &str) -> Self {
        self.set("name", json!(name))
    }

    /// Only requests this query matches.
    pub fn matching(self, query: &str) -> Self {
        self.set("match", json!(query))
    }

    /// Only the first `n` matching requests.
    pub fn first(self, n: u64) -> Self {
        self.set("first", json!(n))
    }

    /// Only every `n`th matching request.
    pub fn every(self, n: u64) -> Self {
        self.set("every", json!(n))
    }

    /// The chance it applies (per connection, or per request).
    pub fn toxicity(self, p: f64) -> Self {
        self.set("toxicity", json!(p))
    }

    /// Client → target instead of target → client (connection faults).
    pub fn upstream(self) -> Self {
        self.set("stream", json!("upstream"))
    }

    /// One more attribute (`with("jitter", 10)`).
    pub fn with(mut self, attribute: &str, value: impl Into<Value>) -> Self {
        self.value["attributes"][attribute] = value.into();
        self
    }

    /// Checked, with every problem named.
    pub fn spec(&self) -> Result<FaultSpec, Error> {
        read_fault(&self.value).map_err(|problems| {
            let what: Vec<String> = problems
                .iter()
                .map(|(path, message)| {
                    if path.is_empty() {
                        message.clone()
                    } else {
                        format!("{path}: {message}")
                    }
                })
                .collect();
            Error::Fault(format!("the fault is not valid: {}", what.join("; ")))
        })
    }
}

/// Removes its fault when dropped.
#[must_use = "the fault is removed when the guard is dropped"]
pub struct FaultGuard {
    edge: Arc<EdgeFaults>,
    name: String,
}

impl FaultGuard {
    /// The fault's name on its edge.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for FaultGuard {
    fn drop(&mut self) {
        self.edge.remove(&self.name);
    }
}

impl Environment {
    /// The faults of `edge` (`orders->inventory`).
    pub fn edge_faults(&self, edge: &str) -> Result<&Arc<EdgeFaults>, Error> {
        let faults = self.running().faults();
        faults.get(edge).ok_or_else(|| {
            let known: Vec<&str> = faults.keys().map(String::as_str).collect();
            Error::Fault(format!(
                "{} has no observed edge {edge:?} (its edges: {})",
                self.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    /// Adds a fault to `edge` until the guard is dropped.
    pub async fn fault(&self, edge: &str, fault: Fault) -> Result<FaultGuard, Error> {
        let spec = fault.spec()?;
        let faults = self.edge_faults(edge)?;
        let name = spec.name.clone();
        faults.add(spec).map_err(Error::Fault)?;
        Ok(FaultGuard {
            edge: faults.clone(),
            name,
        })
    }

    /// Every observed edge's faults, to change while the environment runs
    /// (the daemon's `/faults` routes hold these).
    pub fn fault_handles(&self) -> std::collections::BTreeMap<String, Arc<EdgeFaults>> {
        self.running().faults().clone()
    }

    /// Every edge's faults now.
    pub fn faults(&self) -> Vec<(String, Vec<FaultSpec>)> {
        self.running()
            .faults()
            .iter()
            .map(|(edge, faults)| (edge.clone(), faults.list()))
            .collect()
    }
}
