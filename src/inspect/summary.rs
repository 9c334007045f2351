//! Per-edge traffic summaries (`tapmesh traffic`).

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

/// One summary per edge, sorted by edge.
pub fn summarize(events: &[Value]) -> Vec<EdgeSummary> {
    #[derive(Default)]
    struct Acc {
        calls: u64,
        errors: u64,
        latencies: Vec<f64>,
        bytes_in: u64,
        bytes_out: u64,
        connections: u64,
    }
    let mut edges: BTreeMap<(String, String), Acc> = BTreeMap::new();
    for event in events {
        let kind = event["type"].as_str().unwrap_or_default();
        let Some(p) = payload(event) else { continue };
        let (Some(source), Some(target)) = (p["source"].as_str(), p["target"].as_str()) else {
            continue;
        };
        let acc = edges
            .entry((source.to_string(), target.to_string()))
            .or_default();
        let failed = match kind {
            "request.completed" => p["status_code"].as_u64().is_none_or(|s| s >= 500),
            "grpc.call.completed" => p["grpc_status"].as_u64() != Some(0),
            "kafka.request.completed" => p["error_code"].as_i64().is_some_and(|c| c != 0),
            "connection.opened" => {
                acc.connections += 1;
                continue;
            }
            _ => continue,
        };
        acc.calls += 1;
        acc.errors += u64::from(failed || p.get("error").is_some_and(|e| !e.is_null()));
        if let Some(ms) = p["latency_ms"].as_f64() {
            acc.latencies.push(ms);
        }
        acc.bytes_in += p["request_size"].as_u64().unwrap_or_default();
        acc.bytes_out += p["response_size"].as_u64().unwrap_or_default();
    }
    edges
        .into_iter()
        .map(|((source, target), mut acc)| {
            acc.latencies.sort_by(f64::total_cmp);
            let pct = |q: f64| percentile(&acc.latencies, q);
            EdgeSummary {
                source,
                target,
                calls: acc.calls,
                errors: acc.errors,
                p50_ms: pct(0.50),
                p95_ms: pct(0.95),
                p99_ms: pct(0.99),
                bytes_in: acc.bytes_in,
                bytes_out: acc.bytes_out,
                connections: acc.connections,
            }
        })
        .collect()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
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
}
