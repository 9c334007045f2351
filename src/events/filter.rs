//! Which events a subscriber wants.

use super::Event;

/// Selects events by type and by edge. An empty filter selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Event types to keep: an exact type (`connection.closed`), or a family
    /// written as its prefix with `.*` (`connection.*`). Empty keeps all.
    pub types: Vec<String>,
    /// Keep only traffic events whose edge starts at this service.
    pub source: Option<String>,
    /// Keep only traffic events whose edge ends at this service.
    pub target: Option<String>,
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

    pub fn matches(&self, event: &Event) -> bool {
        let kind = event.kind.as_str();
        let type_ok = self.types.is_empty()
            || self.types.iter().any(|t| match t.strip_suffix(".*") {
                Some(family) => kind
                    .strip_prefix(family)
                    .is_some_and(|rest| rest.starts_with('.')),
                None => t == kind,
            });
        type_ok
            && self
                .source
                .as_deref()
                .is_none_or(|s| event.source() == Some(s))
            && self
                .target
                .as_deref()
                .is_none_or(|t| event.target() == Some(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ConnectionInfo, EventKind, Payload};

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
}
