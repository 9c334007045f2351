//! Which events a reader wants: one filter for every surface (the daemon's
//! `?type=&source=&target=`, `tapmesh events|traffic|export`'s flags, the
//! log's subscriptions).

use super::{Event, Payload};

/// Selects events by type, edge, seq and protocol outcome: every condition
/// set must hold, and an empty filter selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Event types to keep: an exact type (`connection.closed`), or a family
    /// written as its prefix with `.*` (`connection.*`). Empty keeps all.
    pub types: Vec<String>,
    /// Keep only traffic events whose edge starts at this service; `*`
    /// keeps every event that has an edge.
    pub source: Option<String>,
    /// Keep only traffic events whose edge ends at this service; `*` as
    /// for `source`.
    pub target: Option<String>,
    /// Keep only HTTP exchanges whose response has this status class.
    pub status: Option<StatusClass>,
    /// Keep only gRPC calls with this status, by name (`NOT_FOUND`, any
    /// case) or number (`5`).
    pub grpc_status: Option<String>,
    /// Keep only Kafka requests of this API, by name (`Produce`, any case)
    /// or key (`0`).
    pub kafka_api: Option<String>,
    /// Keep only PostgreSQL statements whose SQL contains this text, in
    /// any case (`orders`, `UPDATE`, `RETURNING`).
    pub sql: Option<String>,
    /// Keep only events after this seq.
    pub since: Option<u64>,
}

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

impl EventFilter {
    /// A filter that keeps every event.
    pub fn all() -> Self {
        Self::default()
    }

    /// A filter that keeps the given types (exact, or `family.*`).
    pub fn types<I, S>(types: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            types: types.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Parses an edge, `api->db` (either side may be `*`), into its
    /// `(source, target)`.
    pub fn parse_edge(text: &str) -> Result<(String, String), String> {
        let (source, target) = text
            .split_once("->")
            .ok_or_else(|| format!("{text:?} is not an edge: write SOURCE->TARGET"))?;
        Ok((source.trim().to_string(), target.trim().to_string()))
    }

    pub fn matches(&self, event: &Event) -> bool {
        self.since.is_none_or(|since| event.seq > since)
            && self.type_matches(event.type_name())
            && side_matches(self.source.as_deref(), event.source())
            && side_matches(self.target.as_deref(), event.target())
            && self.outcome_matches(&event.payload)
    }

    fn type_matches(&self, kind: &str) -> bool {
        self.types.is_empty()
            || self.types.iter().any(|t| match t.strip_suffix(".*") {
                Some(family) => kind
                    .strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with('.')),
                None => t == kind,
            })
    }

    /// The protocol conditions: each one set keeps only its protocol's
    /// events.
    fn outcome_matches(&self, payload: &Payload) -> bool {
        if let Some(StatusClass(class)) = self.status {
            let Payload::Request(r) = payload else {
                return false;
            };
            if r.status_code.is_none_or(|s| s / 100 != class) {
                return false;
            }
        }
        if let Some(wanted) = &self.grpc_status {
            let Payload::GrpcCall(g) = payload else {
                return false;
            };
            let name = g.grpc_status_name.as_deref().unwrap_or_default();
            if !named_or_numbered(wanted, name, g.grpc_status.map(i64::from)) {
                return false;
            }
        }
        if let Some(wanted) = &self.sql {
            let Payload::Query(q) = payload else {
                return false;
            };
            if !contains_ignoring_case(&q.sql, wanted) {
                return false;
            }
        }
        if let Some(wanted) = &self.kafka_api {
            let Payload::KafkaRequest(k) = payload else {
                return false;
            };
            let name = k.api_name.as_deref().unwrap_or_default();
            if !named_or_numbered(wanted, name, Some(k.api_key.into())) {
                return false;
            }
        }
        true
    }
}

fn contains_ignoring_case(text: &str, wanted: &str) -> bool {
    let wanted = wanted.as_bytes();
    wanted.is_empty()
        || text
            .as_bytes()
            .windows(wanted.len())
            .any(|w| w.eq_ignore_ascii_case(wanted))
}

/// `wanted` is `name` (in any case) or `number`.
fn named_or_numbered(wanted: &str, name: &str, number: Option<i64>) -> bool {
    wanted.eq_ignore_ascii_case(name) || number.is_some_and(|n| wanted == n.to_string())
}

fn side_matches(wanted: Option<&str>, side: Option<&str>) -> bool {
    match wanted {
        None => true,
        Some("*") => side.is_some(),
        Some(wanted) => side == Some(wanted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{fixtures, ConnectionInfo, EventKind, Payload};
    use serde_json::json;

    fn http(seq: u64, source: &str, target: &str, status: u64) -> Event {
        fixtures::event(
            json!({"seq": seq, "type": "request.completed", "timestamp": "2026-11-23T00:00:00Z",
               "environment": "e", "request": {"source": source, "target": target, "status_code": status}}),
        )
    }

    /// As `tapmesh events --edge` sets it.
    fn on_edge(text: &str) -> EventFilter {
        let (source, target) = EventFilter::parse_edge(text).unwrap();
        EventFilter {
            source: Some(source),
            target: Some(target),
            ..EventFilter::default()
        }
    }

    fn event(kind: EventKind, source: &str, target: &str) -> Event {
        Event {
            seq: 1,
            kind,
            timestamp: chrono::Utc::now(),
            environment: "env".into(),
            service: None,
            payload: Payload::Connection(ConnectionInfo {
                id: 1,
                source: source.into(),
                target: target.into(),
                ingress: "default".into(),
                client_addr: "127.0.0.1:1".into(),
                bytes_in: 0,
                bytes_out: 0,
                duration_ms: 0.0,
                error: None,
            }),
        }
    }

    #[test]
    fn empty_filter_keeps_everything() {
        assert!(EventFilter::all().matches(&event(EventKind::ConnectionOpened, "a", "b")));
    }

    #[test]
    fn exact_and_family_types() {
        let opened = event(EventKind::ConnectionOpened, "a", "b");
        let closed = event(EventKind::ConnectionClosed, "a", "b");
        let exact = EventFilter::types(["connection.closed"]);
        assert!(!exact.matches(&opened));
        assert!(exact.matches(&closed));
        let family = EventFilter::types(["connection.*"]);
        assert!(family.matches(&opened) && family.matches(&closed));
        // A family matches whole dotted segments only.
        assert!(!EventFilter::types(["conn.*"]).matches(&opened));
    }

    #[test]
    fn edge_filters() {
        let e = event(EventKind::ConnectionOpened, "orders", "inventory");
        let mut f = EventFilter::all();
        f.source = Some("orders".into());
        assert!(f.matches(&e));
        f.target = Some("payments".into());
        assert!(!f.matches(&e));
    }

    #[test]
    fn edges_statuses_and_types_combine() {
        let events = [
            http(1, "api", "db", 200),
            http(2, "api", "db", 503),
            http(3, "web", "api", 404),
            fixtures::event(
                json!({"seq": 4, "type": "grpc.call.completed", "environment": "e",
                   "grpc_call": {"source": "api", "target": "inv", "grpc_status": 5, "grpc_status_name": "NOT_FOUND"}}),
            ),
            fixtures::event(
                json!({"seq": 5, "type": "kafka.request.completed", "environment": "e",
                   "kafka_request": {"source": "api", "target": "kafka", "api_key": 0, "api_name": "Produce"}}),
            ),
        ];
        let seqs = |q: &EventFilter| -> Vec<u64> {
            events
                .iter()
                .filter(|e| q.matches(e))
                .map(|e| e.seq)
                .collect()
        };
        let edge = on_edge("api->db");
        assert_eq!(seqs(&edge), [1, 2]);
        let to_any = on_edge("api->*");
        assert_eq!(seqs(&to_any), [1, 2, 4, 5]);
        let errors = EventFilter {
            status: Some("5xx".parse().unwrap()),
            ..EventFilter::default()
        };
        assert_eq!(seqs(&errors), [2]);
        let grpc = EventFilter {
            grpc_status: Some("not_found".into()),
            ..EventFilter::default()
        };
        assert_eq!(seqs(&grpc), [4]);
        let grpc_by_code = EventFilter {
            grpc_status: Some("5".into()),
            ..EventFilter::default()
        };
        assert_eq!(seqs(&grpc_by_code), [4]);
        let kafka = EventFilter {
            kafka_api: Some("produce".into()),
            ..EventFilter::default()
        };
        assert_eq!(seqs(&kafka), [5]);
        let family = EventFilter {
            types: vec!["request.*".into()],
            since: Some(1),
            ..EventFilter::default()
        };
        assert_eq!(seqs(&family), [2, 3]);
        assert!("6xx".parse::<StatusClass>().is_err());
        assert!(EventFilter::parse_edge("api").is_err());
    }

    /// Conditions on the edge, on the type and on protocol outcomes
    /// together, over traffic, lifecycle and unknown events.
    #[test]
    fn combinations_over_every_kind_of_event() {
        let events = [
            http(1, "api", "db", 200),
            fixtures::event(json!({"seq": 2, "type": "service.ready", "service": "db",
                "lifecycle": {"state": "ready"}})),
            fixtures::event(json!({"seq": 3, "type": "mysql.query.completed",
                "statement": {"source": "api", "target": "db", "sql": "select 1"}})),
            fixtures::event(
                json!({"seq": 4, "type": "fault.injected", "fault": {"edge": "api->db"}}),
            ),
            fixtures::event(json!({"seq": 5, "type": "connection.opened",
                "connection": {"source": "web", "target": "api"}})),
            http(6, "web", "api", 502),
        ];
        let seqs = |f: EventFilter| -> Vec<u64> {
            events
                .iter()
                .filter(|e| f.matches(e))
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(seqs(EventFilter::all()), [1, 2, 3, 4, 5, 6]);
        // `*` on both sides: every event with an edge, a newer
        // protocol's included; none without one.
        assert_eq!(seqs(on_edge("*->*")), [1, 3, 5, 6]);
        assert_eq!(seqs(on_edge("*->api")), [5, 6]);
        // The daemon's `?source=` alone.
        let from_api = EventFilter {
            source: Some("api".into()),
            ..EventFilter::default()
        };
        assert_eq!(seqs(from_api.clone()), [1, 3]);
        // Unknown types by name, exact or by family.
        assert_eq!(seqs(EventFilter::types(["fault.injected"])), [4]);
        assert_eq!(seqs(EventFilter::types(["mysql.*", "service.*"])), [2, 3]);
        assert_eq!(
            seqs(EventFilter {
                types: vec!["mysql.*".into()],
                ..from_api.clone()
            }),
            [3]
        );
        // A protocol condition keeps only its protocol's events.
        let server_errors = EventFilter {
            status: Some(StatusClass(5)),
            ..EventFilter::default()
        };
        assert_eq!(seqs(server_errors.clone()), [6]);
        assert_eq!(
            seqs(EventFilter {
                target: Some("api".into()),
                since: Some(5),
                ..server_errors.clone()
            }),
            [6]
        );
        assert!(seqs(EventFilter {
            source: Some("api".into()),
            ..server_errors
        })
        .is_empty());
        assert!(seqs(EventFilter {
            grpc_status: Some("OK".into()),
            kafka_api: Some("Produce".into()),
            ..EventFilter::default()
        })
        .is_empty());
        assert_eq!(
            seqs(EventFilter {
                since: Some(3),
                ..EventFilter::types(["connection.*", "fault.*"])
            }),
            [4, 5]
        );
    }

    #[test]
    fn sql_keeps_statements_containing_the_text_in_any_case() {
        let query = |sql: &str| {
            fixtures::event(json!({"seq": 1, "type": "postgres.query.completed",
                "timestamp": "2026-11-23T00:00:00Z", "environment": "e",
                "query": {"source": "orders", "target": "db", "sql": sql}}))
        };
        let update = EventFilter {
            sql: Some("update orders".into()),
            ..EventFilter::default()
        };
        assert!(update.matches(&query("UPDATE orders SET status = 'placed' WHERE id = $1")));
        assert!(!update.matches(&query("SELECT * FROM orders")));
        assert!(!update.matches(&http(1, "orders", "db", 200)));
    }
}
