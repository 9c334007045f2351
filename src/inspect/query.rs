//! Which events a reader wants (`tapmesh events` filters).

use serde_json::Value;

use super::{edge, payload};

/// An HTTP status class: `2xx` … `5xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusClass(pub u16);

impl std::str::FromStr for StatusClass {
    type Err = String;

    /// `5xx`, `4XX` or `5`.
    fn from_str(s: &str) -> Result<Self, String> {
        let digit = s.trim().trim_end_matches(['x', 'X']);
        match digit.parse::<u16>() {
            Ok(d) if (1..=5).contains(&d) => Ok(Self(d)),
            _ => Err(format!("{s:?} is not a status class (1xx … 5xx)")),
        }
    }
}

/// A conjunction of conditions; an empty query keeps everything.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Exact types or `family.*`; empty keeps all.
    pub types: Vec<String>,
    /// `(source, target)`; `*` on either side matches any.
    pub edge: Option<(String, String)>,
    /// HTTP responses of this class (keeps only `request.completed`).
    pub status: Option<StatusClass>,
    /// gRPC status by name (`NOT_FOUND`) or number (keeps only gRPC calls).
    pub grpc_status: Option<String>,
    /// Kafka API by name (`Produce`) or key (keeps only Kafka requests).
    pub kafka_api: Option<String>,
    /// Only events after this seq.
    pub since: Option<u64>,
}

impl Query {
    /// Parses `--edge api->db` (either side may be `*`).
    pub fn parse_edge(text: &str) -> Result<(String, String), String> {
        let (source, target) = text
            .split_once("->")
            .ok_or_else(|| format!("{text:?} is not an edge: write SOURCE->TARGET"))?;
        Ok((source.trim().to_string(), target.trim().to_string()))
    }

    pub fn matches(&self, event: &Value) -> bool {
        let kind = event["type"].as_str().unwrap_or_default();
        if !self.types.is_empty()
            && !self.types.iter().any(|t| match t.strip_suffix(".*") {
                Some(family) => kind
                    .strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with('.')),
                None => t == kind,
            })
        {
            return false;
        }
        if let Some(since) = self.since {
            if event["seq"].as_u64().is_none_or(|seq| seq <= since) {
                return false;
            }
        }
        if let Some((source, target)) = &self.edge {
            let Some((s, t)) = edge(event) else {
                return false;
            };
            if (source != "*" && *source != s) || (target != "*" && *target != t) {
                return false;
            }
        }
        let p = payload(event);
        if let Some(StatusClass(class)) = self.status {
            let status = (kind == "request.completed")
                .then(|| p.and_then(|p| p["status_code"].as_u64()))
                .flatten();
            if status.is_none_or(|s| s / 100 != u64::from(class)) {
                return false;
            }
        }
        if let Some(wanted) = &self.grpc_status {
            let Some(p) = p.filter(|_| kind == "grpc.call.completed") else {
                return false;
            };
            let name = p["grpc_status_name"].as_str().unwrap_or_default();
            let code = p["grpc_status"].as_u64().map(|c| c.to_string());
            if !wanted.eq_ignore_ascii_case(name) && code.as_deref() != Some(wanted.as_str()) {
                return false;
            }
        }
        if let Some(wanted) = &self.kafka_api {
            let Some(p) = p.filter(|_| kind == "kafka.request.completed") else {
                return false;
            };
            let name = p["api_name"].as_str().unwrap_or_default();
            let key = p["api_key"].as_u64().map(|k| k.to_string());
            if !wanted.eq_ignore_ascii_case(name) && key.as_deref() != Some(wanted.as_str()) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn http(seq: u64, source: &str, target: &str, status: u64) -> Value {
        json!({"seq": seq, "type": "request.completed", "timestamp": "2026-11-23T00:00:00Z",
               "environment": "e", "request": {"source": source, "target": target, "status_code": status}})
    }

    #[test]
    fn edges_statuses_and_types_combine() {
        let events = [
            http(1, "api", "db", 200),
            http(2, "api", "db", 503),
            http(3, "web", "api", 404),
            json!({"seq": 4, "type": "grpc.call.completed", "timestamp": "t", "environment": "e",
                   "grpc_call": {"source": "api", "target": "inv", "grpc_status": 5, "grpc_status_name": "NOT_FOUND"}}),
            json!({"seq": 5, "type": "kafka.request.completed", "timestamp": "t", "environment": "e",
                   "kafka_request": {"source": "api", "target": "kafka", "api_key": 0, "api_name": "Produce"}}),
        ];
        let seqs = |q: &Query| -> Vec<u64> {
            events
                .iter()
                .filter(|e| q.matches(e))
                .map(|e| e["seq"].as_u64().unwrap())
                .collect()
        };
        let edge = Query {
            edge: Some(Query::parse_edge("api->db").unwrap()),
            ..Query::default()
        };
        assert_eq!(seqs(&edge), [1, 2]);
        let to_any = Query {
            edge: Some(Query::parse_edge("api->*").unwrap()),
            ..Query::default()
        };
        assert_eq!(seqs(&to_any), [1, 2, 4, 5]);
        let errors = Query {
            status: Some("5xx".parse().unwrap()),
            ..Query::default()
        };
        assert_eq!(seqs(&errors), [2]);
        let grpc = Query {
            grpc_status: Some("not_found".into()),
            ..Query::default()
        };
        assert_eq!(seqs(&grpc), [4]);
        let grpc_by_code = Query {
            grpc_status: Some("5".into()),
            ..Query::default()
        };
        assert_eq!(seqs(&grpc_by_code), [4]);
        let kafka = Query {
            kafka_api: Some("produce".into()),
            ..Query::default()
        };
        assert_eq!(seqs(&kafka), [5]);
        let family = Query {
            types: vec!["request.*".into()],
            since: Some(1),
            ..Query::default()
        };
        assert_eq!(seqs(&family), [2, 3]);
        assert!("6xx".parse::<StatusClass>().is_err());
        assert!(Query::parse_edge("api").is_err());
    }
}
