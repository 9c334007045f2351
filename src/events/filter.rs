//! Which events a reader wants: one filter for every surface (the daemon's
//! `?type=&source=&target=`, `tapmesh events|traffic|export`'s flags, the
//! log's subscriptions).

use super::query::{Query, QueryError};
use super::Event;

/// Selects events: by type (the log's own subscribers' cheap prefilter), by
/// seq, and by a [`Query`]; every condition set must hold, and an empty
/// filter selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Event types to keep: an exact type (`connection.closed`), or a family
    /// written as its prefix with `.*` (`connection.*`). Empty keeps all.
    pub types: Vec<String>,
    /// Keep only events after this seq.
    pub since: Option<u64>,
    /// Keep only events the query holds for.
    pub query: Option<Query>,
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

    /// A filter that keeps the events `query` holds for.
    pub fn query(query: Query) -> Self {
        Self {
            query: Some(query),
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
            && type_matches(&self.types, event.type_name())
            && self.query.as_ref().is_none_or(|q| q.matches(event))
    }
}

fn type_matches(types: &[String], kind: &str) -> bool {
    types.is_empty()
        || types.iter().any(|t| match t.strip_suffix(".*") {
            Some(family) => kind
                .strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('.')),
            None => t == kind,
        })
}

/// The reading commands' flags and the daemon's parameters that predate
/// the query language (`--type`, `--edge`, `--status`, `--grpc-status`,
/// `--kafka-api`, `--sql`): each is written as a query clause, so a flag
/// and the query it stands for select exactly the same events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shorthands {
    /// Exact types or `family.*`; any of them.
    pub types: Vec<String>,
    /// The edge's source; `*` for any event that has an edge.
    pub source: Option<String>,
    /// The edge's target; `*` as for `source`.
    pub target: Option<String>,
    /// HTTP exchanges whose response has this status class.
    pub status: Option<StatusClass>,
    /// gRPC calls with this status, by name (`NOT_FOUND`, any case) or
    /// number (`5`).
    pub grpc_status: Option<String>,
    /// Kafka requests of this API, by name (`Produce`, any case) or key.
    pub kafka_api: Option<String>,
    /// PostgreSQL statements whose SQL contains this text, in any case.
    pub sql: Option<String>,
}

impl Shorthands {
    /// The query clauses these stand for, one per flag set.
    pub fn clauses(&self) -> Vec<String> {
        let mut clauses = Vec::new();
        if !self.types.is_empty() {
            let any: Vec<String> = self
                .types
                .iter()
                .map(|t| match t.strip_suffix(".*") {
                    Some(family) => format!("type.startsWith({})", quote(&format!("{family}."))),
                    None => format!("type == {}", quote(t)),
                })
                .collect();
            clauses.push(any.join(" || "));
        }
        for (name, side) in [("source", &self.source), ("target", &self.target)] {
            match side.as_deref() {
                None => {}
                Some("*") => clauses.push(format!("{name} != \"\"")),
                Some(side) => clauses.push(format!("{name} == {}", quote(side))),
            }
        }
        if let Some(StatusClass(class)) = self.status {
            let low = class * 100;
            clauses.push(format!(
                "http.status >= {low} && http.status < {}",
                low + 100
            ));
        }
        if let Some(wanted) = &self.grpc_status {
            clauses.push(match wanted.parse::<u32>() {
                Ok(code) => format!("grpc.status == {code}"),
                Err(_) => format!("grpc.code == {}", quote(&wanted.to_ascii_uppercase())),
            });
        }
        if let Some(wanted) = &self.kafka_api {
            clauses.push(match wanted.parse::<i16>() {
                Ok(key) => format!("kafka.api_key == {key}"),
                Err(_) => format!("kafka.api.matches({})", quote(&any_case(wanted, true))),
            });
        }
        if let Some(wanted) = &self.sql {
            clauses.push(format!(
                "sql.text.matches({})",
                quote(&any_case(wanted, false))
            ));
        }
        clauses
    }

    /// These and `query` (the `-q` or `?q=` text), joined: the filter that
    /// selects what they all hold for, after `since`.
    pub fn filter(
        &self,
        query: Option<&str>,
        since: Option<u64>,
    ) -> Result<EventFilter, QueryError> {
        let clauses = self.clauses().into_iter().chain(query.map(str::to_string));
        Ok(EventFilter {
            query: Query::all(clauses)?,
            since,
            ..EventFilter::default()
        })
    }
}

/// `text` as a CEL string literal (JSON's escapes are CEL's).
fn quote(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// A regex matching `text` in any case: the whole of it, or anywhere.
fn any_case(text: &str, whole: bool) -> String {
    let escaped = regex::escape(text);
    if whole {
        format!("(?i)^{escaped}$")
    } else {
        format!("(?i){escaped}")
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
        flags(Shorthands {
            source: Some(source),
            target: Some(target),
            ..Shorthands::default()
        })
    }

    /// The filter flags compile to.
    fn flags(flags: Shorthands) -> EventFilter {
        flags.filter(None, None).unwrap()
    }

    fn since(since: u64, flags: Shorthands) -> EventFilter {
        flags.filter(None, Some(since)).unwrap()
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
        let mut f = Shorthands {
            source: Some("orders".into()),
            ..Shorthands::default()
        };
        assert!(flags(f.clone()).matches(&e));
        f.target = Some("payments".into());
        assert!(!flags(f).matches(&e));
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
        let errors = flags(Shorthands {
            status: Some("5xx".parse().unwrap()),
            ..Shorthands::default()
        });
        assert_eq!(seqs(&errors), [2]);
        let grpc = flags(Shorthands {
            grpc_status: Some("not_found".into()),
            ..Shorthands::default()
        });
        assert_eq!(seqs(&grpc), [4]);
        let grpc_by_code = flags(Shorthands {
            grpc_status: Some("5".into()),
            ..Shorthands::default()
        });
        assert_eq!(seqs(&grpc_by_code), [4]);
        let kafka = flags(Shorthands {
            kafka_api: Some("produce".into()),
            ..Shorthands::default()
        });
        assert_eq!(seqs(&kafka), [5]);
        let family = since(
            1,
            Shorthands {
                types: vec!["request.*".into()],
                ..Shorthands::default()
            },
        );
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
                json!({"seq": 4, "type": "chaos.injected", "chaos": {"edge": "api->db"}}),
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
        let from_api = Shorthands {
            source: Some("api".into()),
            ..Shorthands::default()
        };
        assert_eq!(seqs(flags(from_api.clone())), [1, 3]);
        // Unknown types by name, exact or by family, as the log's own
        // prefilter and as the flag.
        assert_eq!(seqs(EventFilter::types(["chaos.injected"])), [4]);
        assert_eq!(seqs(EventFilter::types(["mysql.*", "service.*"])), [2, 3]);
        let types = |t: &[&str]| Shorthands {
            types: t.iter().map(|t| t.to_string()).collect(),
            ..Shorthands::default()
        };
        assert_eq!(seqs(flags(types(&["mysql.*", "service.*"]))), [2, 3]);
        assert_eq!(
            seqs(flags(Shorthands {
                types: vec!["mysql.*".into()],
                ..from_api.clone()
            })),
            [3]
        );
        // A protocol condition keeps only its protocol's events.
        let server_errors = Shorthands {
            status: Some(StatusClass(5)),
            ..Shorthands::default()
        };
        assert_eq!(seqs(flags(server_errors.clone())), [6]);
        assert_eq!(
            seqs(since(
                5,
                Shorthands {
                    target: Some("api".into()),
                    ..server_errors.clone()
                }
            )),
            [6]
        );
        assert!(seqs(flags(Shorthands {
            source: Some("api".into()),
            ..server_errors
        }))
        .is_empty());
        assert!(seqs(flags(Shorthands {
            grpc_status: Some("OK".into()),
            kafka_api: Some("Produce".into()),
            ..Shorthands::default()
        }))
        .is_empty());
        assert_eq!(seqs(since(3, types(&["connection.*", "chaos.*"]))), [4, 5]);
    }

    /// Each flag is a query clause, and the query written by hand selects
    /// the same events.
    #[test]
    fn flags_are_the_queries_they_stand_for() {
        let set = Shorthands {
            types: vec!["request.*".into(), "grpc.call.completed".into()],
            source: Some("api".into()),
            target: Some("*".into()),
            status: Some(StatusClass(5)),
            grpc_status: Some("not_found".into()),
            kafka_api: Some("Produce".into()),
            sql: Some("a.b".into()),
        };
        assert_eq!(
            set.clauses(),
            [
                r#"type.startsWith("request.") || type == "grpc.call.completed""#,
                r#"source == "api""#,
                r#"target != """#,
                "http.status >= 500 && http.status < 600",
                r#"grpc.code == "NOT_FOUND""#,
                r#"kafka.api.matches("(?i)^Produce$")"#,
                r#"sql.text.matches("(?i)a\\.b")"#,
            ]
        );
        let by_hand = Shorthands::default()
            .filter(Some("http.status >= 500 && http.status < 600"), None)
            .unwrap();
        let by_flag = flags(Shorthands {
            status: Some(StatusClass(5)),
            ..Shorthands::default()
        });
        assert_eq!(by_hand, by_flag);
    }

    #[test]
    fn sql_keeps_statements_containing_the_text_in_any_case() {
        let query = |sql: &str| {
            fixtures::event(json!({"seq": 1, "type": "postgres.query.completed",
                "timestamp": "2026-11-23T00:00:00Z", "environment": "e",
                "query": {"source": "orders", "target": "db", "sql": sql}}))
        };
        let update = flags(Shorthands {
            sql: Some("update orders".into()),
            ..Shorthands::default()
        });
        assert!(update.matches(&query("UPDATE orders SET status = 'placed' WHERE id = $1")));
        assert!(!update.matches(&query("SELECT * FROM orders")));
        assert!(!update.matches(&http(1, "orders", "db", 200)));
    }
}
