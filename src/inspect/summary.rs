//! Per-edge traffic summaries (`tapmesh traffic`, `summary.json`): one
//! [`EdgeStats`] per edge, fed an event at a time, in bounded memory.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::events::{Event, EventKind, Payload};

/// Calls across one edge, whatever their protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeSummary {
    pub source: String,
    pub target: String,
    /// HTTP exchanges, gRPC calls and Kafka requests.
    pub calls: u64,
    /// HTTP 5xx or no response, gRPC status other than OK, Kafka error code
    /// other than 0, or a call cut off; not counting failures a fault
    /// injected (those are in `faults`).
    pub errors: u64,
    /// Faults that acted on the edge (`fault.injected` events).
    pub faults: u64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Body bytes each way (client → target, target → client).
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections: u64,
    /// Its slowest statements (SQL) and commands (Redis), slowest first,
    /// at most [`SLOWEST`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub slowest: Vec<SlowCall>,
}

/// Statements kept per edge as its slowest.
pub const SLOWEST: usize = 5;
/// A slow statement's text is cut here.
const SLOW_TEXT: usize = 160;

/// One of an edge's slowest statements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowCall {
    pub seq: u64,
    pub latency_ms: f64,
    /// The statement (its first characters).
    pub what: String,
}

/// A Redis command as a slow-list entry: its name and arguments.
fn redis_line(c: &crate::events::RedisCommandInfo) -> String {
    std::iter::once(c.command.as_str())
        .chain(c.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One call, as the summary counts it.
#[derive(Debug, Clone, Copy)]
struct Call {
    failed: bool,
    latency_ms: Option<f64>,
    bytes_in: u64,
    bytes_out: u64,
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
    faults: u64,
    latencies: Latencies,
    bytes_in: u64,
    bytes_out: u64,
    connections: u64,
    slowest: Vec<SlowCall>,
}

impl Acc {
    /// Keeps `what` among the slowest if it is; its text is made only then.
    fn consider(&mut self, seq: u64, latency_ms: f64, what: impl FnOnce() -> String) {
        let full = self.slowest.len() == SLOWEST;
        if full
            && self
                .slowest
                .last()
                .is_some_and(|s| s.latency_ms >= latency_ms)
        {
            return;
        }
        if full {
            self.slowest.pop();
        }
        let what: String = what().chars().take(SLOW_TEXT).collect();
        let at = self.slowest.partition_point(|s| s.latency_ms >= latency_ms);
        self.slowest.insert(
            at,
            SlowCall {
                seq,
                latency_ms,
                what,
            },
        );
    }
}

/// Whether a call went wrong: an HTTP 5xx or an exchange without a
/// response, a gRPC call not OK, a Kafka error code, a SQL or Redis error.
/// The one rule for the summary's error counts and explanations.
pub(crate) fn call_failed(payload: &Payload) -> bool {
    match payload {
        Payload::Request(r) => r.status_code.is_none_or(|s| s >= 500) || r.error.is_some(),
        Payload::GrpcCall(c) => c.grpc_status != Some(0) || c.error.is_some(),
        Payload::KafkaRequest(k) => k.error_code.is_some_and(|c| c != 0),
        Payload::Query(q) => q.error.is_some(),
        Payload::RedisCommand(c) => c.error.is_some(),
        _ => false,
    }
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

    /// Folds in one event: a `connection.opened` counts a connection on
    /// its edge; an HTTP exchange, a gRPC call or a Kafka request counts a
    /// call; other events count nothing.
    pub fn add(&mut self, event: &Event) {
        match &event.payload {
            Payload::Connection(c) if event.kind == EventKind::ConnectionOpened => {
                self.edge(&c.source, &c.target).connections += 1;
            }
            Payload::Fault(f) => self.edge(&f.source, &f.target).faults += 1,
            Payload::Request(r) => self.add_call(
                &r.source,
                &r.target,
                Call {
                    // A failure a fault made is not the system's own.
                    failed: call_failed(&event.payload) && r.fault.is_none(),
                    latency_ms: r.latency_ms,
                    bytes_in: r.request_size,
                    bytes_out: r.response_size,
                },
            ),
            Payload::GrpcCall(c) => self.add_call(
                &c.source,
                &c.target,
                Call {
                    failed: call_failed(&event.payload),
                    latency_ms: c.latency_ms,
                    bytes_in: c.request_size,
                    bytes_out: c.response_size,
                },
            ),
            Payload::KafkaRequest(k) => self.add_call(
                &k.source,
                &k.target,
                Call {
                    failed: call_failed(&event.payload),
                    latency_ms: k.latency_ms,
                    bytes_in: k.request_size,
                    bytes_out: k.response_size.unwrap_or_default(),
                },
            ),
            Payload::Query(q) => {
                self.add_call(
                    &q.source,
                    &q.target,
                    Call {
                        failed: call_failed(&event.payload),
                        latency_ms: Some(q.latency_ms),
                        bytes_in: q.request_size,
                        bytes_out: q.response_size,
                    },
                );
                self.edge(&q.source, &q.target)
                    .consider(event.seq, q.latency_ms, || q.sql.clone());
            }
            Payload::RedisCommand(c) => {
                self.add_call(
                    &c.source,
                    &c.target,
                    Call {
                        failed: call_failed(&event.payload),
                        latency_ms: c.latency_ms,
                        bytes_in: c.request_size,
                        bytes_out: c.response_size,
                    },
                );
                if let Some(ms) = c.latency_ms {
                    self.edge(&c.source, &c.target)
                        .consider(event.seq, ms, || redis_line(c));
                }
            }
            _ => {}
        }
    }

    fn add_call(&mut self, source: &str, target: &str, call: Call) {
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
                    faults: acc.faults,
                    p50_ms,
                    p95_ms,
                    p99_ms,
                    bytes_in: acc.bytes_in,
                    bytes_out: acc.bytes_out,
                    connections: acc.connections,
                    slowest: acc.slowest.clone(),
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

/// One summary per edge, sorted by edge: the fold the live summary of an
/// environment keeps (see [`EdgeStats::add`]), over `events`.
pub fn summarize(events: &[Event]) -> Vec<EdgeSummary> {
    let mut stats = EdgeStats::default();
    for event in events {
        stats.add(event);
    }
    stats.summaries()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixtures::event;
    use serde_json::json;

    #[test]
    fn percentiles_errors_and_bytes_per_edge() {
        let mut events = vec![event(json!({"type": "connection.opened",
            "connection": {"source": "a", "target": "b"}}))];
        for i in 1..=100u64 {
            events.push(event(
                json!({"type": "request.completed", "request": {"source": "a", "target": "b",
                "status_code": if i % 10 == 0 { 503 } else { 200 }, "latency_ms": i as f64,
                "request_size": 1, "response_size": 10}}),
            ));
        }
        events.push(event(
            json!({"type": "grpc.call.completed", "grpc_call": {"source": "a", "target": "c",
            "grpc_status": 5, "latency_ms": 2.0, "request_size": 7, "response_size": 0}}),
        ));
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

    #[test]
    fn an_edge_keeps_its_slowest_statements_slowest_first() {
        let mut stats = EdgeStats::default();
        for (seq, ms) in [
            (1u64, 3.0),
            (2, 9.0),
            (3, 1.0),
            (4, 7.0),
            (5, 2.0),
            (6, 8.0),
            (7, 0.5),
        ] {
            stats.add(&event(
                json!({"seq": seq, "type": "postgres.query.completed",
                "query": {"source": "orders", "target": "db", "sql": format!("SELECT {seq}"),
                          "latency_ms": ms}}),
            ));
        }
        let slowest = &stats.summaries()[0].slowest;
        let got: Vec<(u64, f64, &str)> = slowest
            .iter()
            .map(|s| (s.seq, s.latency_ms, s.what.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (2, 9.0, "SELECT 2"),
                (6, 8.0, "SELECT 6"),
                (4, 7.0, "SELECT 4"),
                (1, 3.0, "SELECT 1"),
                (5, 2.0, "SELECT 5"),
            ]
        );
    }
}
