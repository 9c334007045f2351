//! Per-edge traffic summaries (`tapmesh traffic`, `summary.json`): one
//! [`EdgeStats`] per edge, fed a call at a time, in bounded memory.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::payload;

/// Calls across one edge, whatever their protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeSummary {
    pub source: String,
    pub target: String,
    /// HTTP exchanges, gRPC calls and Kafka requests.
    pub calls: u64,
    /// HTTP 5xx or no response, gRPC status other than OK, Kafka error code
    /// other than 0, or a call cut off.
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Body bytes each way (client → target, target → client).
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections: u64,
}

/// One call, as the summary counts it.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    pub failed: bool,
    pub latency_ms: Option<f64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Every edge's running figures.
#[derive(Debug, Default, Clone)]
pub struct EdgeStats {
    /// By source, then target: looked up with borrowed names, so an edge's
    /// names are allocated once, not per call.
    edges: BTreeMap<String, BTreeMap<String, Acc>>,
}

#[derive(Debug, Default, Clone)]
struct Acc {
    calls: u64,
    errors: u64,
    latencies: Latencies,
    bytes_in: u64,
    bytes_out: u64,
    connections: u64,
}

impl EdgeStats {
    fn edge(&mut self, source: &str, target: &str) -> &mut Acc {
        if !self.edges.contains_key(source) {
            self.edges.insert(source.to_string(), BTreeMap::new());
        }
        let targets = self.edges.get_mut(source).expect("just inserted");
        if !targets.contains_key(target) {
            targets.insert(target.to_string(), Acc::default());
        }
        targets.get_mut(target).expect("just inserted")
    }

    pub fn add_connection(&mut self, source: &str, target: &str) {
        self.edge(source, target).connections += 1;
    }

    pub fn add_call(&mut self, source: &str, target: &str, call: Call) {
        let acc = self.edge(source, target);
        acc.calls += 1;
        acc.errors += u64::from(call.failed);
        if let Some(ms) = call.latency_ms {
            acc.latencies.add(ms);
        }
        acc.bytes_in += call.bytes_in;
        acc.bytes_out += call.bytes_out;
    }

    /// One summary per edge, sorted by edge.
    pub fn summaries(&self) -> Vec<EdgeSummary> {
        self.edges
            .iter()
            .flat_map(|(source, targets)| {
                targets
                    .iter()
                    .map(move |(target, acc)| (source, target, acc))
            })
            .map(|(source, target, acc)| {
                let [p50_ms, p95_ms, p99_ms] = acc.latencies.percentiles([0.50, 0.95, 0.99]);
                EdgeSummary {
                    source: source.clone(),
                    target: target.clone(),
                    calls: acc.calls,
                    errors: acc.errors,
                    p50_ms,
                    p95_ms,
                    p99_ms,
                    bytes_in: acc.bytes_in,
                    bytes_out: acc.bytes_out,
                    connections: acc.connections,
                }
            })
            .collect()
    }
}

/// Samples kept exactly per edge; past them, percentiles come from buckets.
const EXACT_SAMPLES: usize = 10_000;
/// Bucket width: a bucket spans values within 1% of each other, so a
/// percentile read from one is within 0.5% of the true value.
const GAMMA: f64 = 1.01;

/// Latencies for percentiles in bounded memory: every sample while there
/// are few (exact nearest-rank percentiles), then a histogram of
/// logarithmic buckets (at most a few thousand, whatever the count).
#[derive(Debug, Clone)]
enum Latencies {
    Exact(Vec<f64>),
    Buckets { counts: BTreeMap<i32, u64>, n: u64 },
}

impl Default for Latencies {
    fn default() -> Self {
        Self::Exact(Vec::new())
    }
}

fn bucket(ms: f64) -> i32 {
    if ms <= 1e-6 {
        i32::MIN
    } else {
        (ms.ln() / GAMMA.ln()).ceil() as i32
    }
}

/// The value a bucket stands for: the middle of its range, in relative terms.
fn bucket_value(index: i32) -> f64 {
    if index == i32::MIN {
        0.0
    } else {
        2.0 * GAMMA.powi(index) / (GAMMA + 1.0)
    }
}

impl Latencies {
    fn add(&mut self, ms: f64) {
        match self {
            Self::Exact(samples) if samples.len() < EXACT_SAMPLES => samples.push(ms),
            Self::Exact(samples) => {
                let mut counts = BTreeMap::new();
                for &s in samples.iter().chain([&ms]) {
                    *counts.entry(bucket(s)).or_insert(0) += 1;
                }
                *self = Self::Buckets {
                    counts,
                    n: EXACT_SAMPLES as u64 + 1,
                };
            }
            Self::Buckets { counts, n } => {
                *counts.entry(bucket(ms)).or_insert(0) += 1;
                *n += 1;
            }
        }
    }

    /// Nearest-rank percentiles.
    fn percentiles<const N: usize>(&self, qs: [f64; N]) -> [Option<f64>; N] {
        let rank = |q: f64, n: u64| ((q * n as f64).ceil() as u64).clamp(1, n);
        match self {
            Self::Exact(samples) if samples.is_empty() => [None; N],
            Self::Exact(samples) => {
                let mut sorted = samples.clone();
                sorted.sort_by(f64::total_cmp);
                qs.map(|q| Some(sorted[rank(q, sorted.len() as u64) as usize - 1]))
            }
            Self::Buckets { counts, n } => qs.map(|q| {
                let want = rank(q, *n);
                let mut seen = 0;
                counts.iter().find_map(|(&index, &count)| {
                    seen += count;
                    (seen >= want).then(|| bucket_value(index))
                })
            }),
        }
    }
}

/// How one traffic event counts, read from its JSON.
fn call_of(kind: &str, p: &Value) -> Option<Call> {
    let failed = match kind {
        "request.completed" => p["status_code"].as_u64().is_none_or(|s| s >= 500),
        "grpc.call.completed" => p["grpc_status"].as_u64() != Some(0),
        "kafka.request.completed" => p["error_code"].as_i64().is_some_and(|c| c != 0),
        _ => return None,
    };
    Some(Call {
        failed: failed || p.get("error").is_some_and(|e| !e.is_null()),
        latency_ms: p["latency_ms"].as_f64(),
        bytes_in: p["request_size"].as_u64().unwrap_or_default(),
        bytes_out: p["response_size"].as_u64().unwrap_or_default(),
    })
}

/// One summary per edge, sorted by edge.
pub fn summarize(events: &[Value]) -> Vec<EdgeSummary> {
    let mut stats = EdgeStats::default();
    for event in events {
        let kind = event["type"].as_str().unwrap_or_default();
        let Some(p) = payload(event) else { continue };
        let (Some(source), Some(target)) = (p["source"].as_str(), p["target"].as_str()) else {
            continue;
        };
        if kind == "connection.opened" {
            stats.add_connection(source, target);
        } else if let Some(call) = call_of(kind, p) {
            stats.add_call(source, target, call);
        }
    }
    stats.summaries()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentiles_errors_and_bytes_per_edge() {
        let mut events = vec![json!({"type": "connection.opened",
            "connection": {"source": "a", "target": "b"}})];
        for i in 1..=100u64 {
            events.push(
                json!({"type": "request.completed", "request": {"source": "a", "target": "b",
                "status_code": if i % 10 == 0 { 503 } else { 200 }, "latency_ms": i as f64,
                "request_size": 1, "response_size": 10}}),
            );
        }
        events.push(
            json!({"type": "grpc.call.completed", "grpc_call": {"source": "a", "target": "c",
            "grpc_status": 5, "latency_ms": 2.0, "request_size": 7, "response_size": 0}}),
        );
        let s = summarize(&events);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].calls, s[0].errors, s[0].connections), (100, 10, 1));
        assert_eq!(
            (s[0].p50_ms, s[0].p95_ms, s[0].p99_ms),
            (Some(50.0), Some(95.0), Some(99.0))
        );
        assert_eq!((s[0].bytes_in, s[0].bytes_out), (100, 1000));
        assert_eq!((s[1].target.as_str(), s[1].calls, s[1].errors), ("c", 1, 1));
    }

    #[test]
    fn many_latencies_fold_into_buckets_within_half_a_percent() {
        let mut exact = Vec::new();
        let mut latencies = Latencies::default();
        // 200,000 samples from 0.05 ms to about 2 s, in a scrambled order.
        for i in 0..200_000u64 {
            let ms = 0.05 + ((i * 7_919) % 200_000) as f64 * 0.01;
            exact.push(ms);
            latencies.add(ms);
        }
        let Latencies::Buckets { counts, n } = &latencies else {
            panic!("still exact after 200,000 samples");
        };
        assert_eq!(*n, 200_000);
        assert!(counts.len() < 2_000, "{} buckets", counts.len());
        exact.sort_by(f64::total_cmp);
        let got = latencies.percentiles([0.5, 0.95, 0.99, 1.0]);
        for (q, got) in [0.5, 0.95, 0.99, 1.0].into_iter().zip(got) {
            let want = exact[((q * 200_000.0_f64).ceil() as usize).clamp(1, 200_000) - 1];
            let got = got.unwrap();
            assert!(
                (got - want).abs() <= want * 0.005 + 1e-9,
                "p{q}: {got} vs exact {want}"
            );
        }
    }
}
