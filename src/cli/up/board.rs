//! The table `tapmesh up` shows while an environment starts: one row per
//! service with its state (a build's units compiled of its total), its
//! restarts, its endpoints once known, and what it waits on. Made from the
//! environment's events alone; drawing it is `view`'s job.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::events::{BuildProgress, Event, EventKind, LifecycleState, Payload, ServiceState};
use crate::spec::{Condition, Spec};

/// Where the start is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Phase {
    Starting,
    Up,
    /// Down before it was up (a build or a service failed, or a stop).
    DidNotStart(String),
}

#[derive(Debug, Default)]
struct Row {
    state: ServiceState,
    /// Its process has started (a `started` condition holds).
    spawned: bool,
    build: Option<BuildProgress>,
    restarts: u32,
    reason: Option<String>,
    /// (ingress, address, observed address).
    endpoints: Vec<(String, String, Option<String>)>,
}

pub(super) struct Board {
    environment: String,
    /// Start order, as rows are shown.
    order: Vec<String>,
    rows: BTreeMap<String, Row>,
    dependencies: BTreeMap<String, Vec<(String, Condition)>>,
    phase: Phase,
}

impl Board {
    pub fn new(spec: &Spec) -> Self {
        let order = crate::graph::start_order(spec);
        Self {
            environment: spec.name.clone(),
            rows: order.iter().map(|n| (n.clone(), Row::default())).collect(),
            dependencies: order
                .iter()
                .map(|n| (n.clone(), crate::graph::dependencies(spec, n)))
                .collect(),
            order,
            phase: Phase::Starting,
        }
    }

    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Folds in one event; whether the table changed.
    pub fn apply(&mut self, event: &Event) -> bool {
        let Payload::Lifecycle(info) = &event.payload else {
            return false;
        };
        match event.kind {
            EventKind::EnvironmentUp => {
                self.phase = Phase::Up;
                if let Some(endpoints) = info.endpoints.as_ref() {
                    self.set_endpoints(endpoints);
                }
                return true;
            }
            EventKind::EnvironmentDown if self.phase == Phase::Starting => {
                let reason = info.reason.clone().unwrap_or_default();
                self.phase = Phase::DidNotStart(reason);
                return true;
            }
            _ => {}
        }
        let Some(row) = event.service.as_deref().and_then(|s| self.rows.get_mut(s)) else {
            return false;
        };
        if event.kind == EventKind::HealthCheckFailed {
            return false;
        }
        if let LifecycleState::Service(state) = &info.state {
            row.state = *state;
        }
        match event.kind {
            EventKind::ServiceStarting if info.pid.is_some() => row.spawned = true,
            EventKind::ServiceRestarting if info.restarts.is_none() => row.restarts += 1,
            EventKind::BuildProgress if info.build.is_some() => row.build = info.build.clone(),
            _ => {}
        }
        if let Some(restarts) = info.restarts {
            row.restarts = restarts;
        }
        row.reason = info.reason.clone();
        true
    }

    /// `environment.up`'s endpoints: `{service: {ingress: {address, observed}}}`.
    fn set_endpoints(&mut self, endpoints: &serde_json::Value) {
        let Some(services) = endpoints.as_object() else {
            return;
        };
        for (service, ingresses) in services {
            let Some(row) = self.rows.get_mut(service) else {
                continue;
            };
            row.endpoints = ingresses
                .as_object()
                .into_iter()
                .flatten()
                .map(|(ingress, e)| {
                    let address = e["address"].as_str().unwrap_or("?").to_string();
                    let observed = e["observed"].as_str().map(str::to_string);
                    (ingress.clone(), address, observed)
                })
                .collect();
        }
    }

    /// The header, then the column names, then a line per service (and per
    /// further ingress), each cut to `width` columns; at most `height`
    /// lines in all.
    pub fn lines(&self, width: usize, height: usize, elapsed: Duration) -> Vec<String> {
        let mut table = vec![[
            "SERVICE".to_string(),
            "STATE".to_string(),
            "RESTARTS".to_string(),
            "ENDPOINT".to_string(),
            "OBSERVED".to_string(),
            "NOTE".to_string(),
        ]];
        for name in &self.order {
            let row = &self.rows[name];
            let mut endpoints = row.endpoints.iter();
            let first = endpoints.next();
            table.push([
                name.clone(),
                state_text(row),
                row.restarts.to_string(),
                first.map_or_else(String::new, endpoint_text),
                first.map_or_else(String::new, observed_text),
                self.note(name, row),
            ]);
            for more in endpoints {
                let blank = String::new;
                let (address, observed) = (endpoint_text(more), observed_text(more));
                table.push([blank(), blank(), blank(), address, observed, blank()]);
            }
        }
        let mut lines = vec![self.header(elapsed)];
        lines.extend(columns(&table));
        if lines.len() > height.max(3) {
            let keep = height.max(3) - 1;
            let more = lines.len() - keep;
            lines.truncate(keep);
            lines.push(format!("  … and {more} more lines"));
        }
        lines.into_iter().map(|l| cut(l, width)).collect()
    }

    fn header(&self, elapsed: Duration) -> String {
        let name = &self.environment;
        match &self.phase {
            Phase::Starting => format!("{name}: starting ({} s)", elapsed.as_secs()),
            Phase::Up => format!("{name}: up after {:.1} s", elapsed.as_secs_f64()),
            Phase::DidNotStart(_) => format!("{name}: did not start"),
        }
    }

    /// What a service waits on, or why it is in its state.
    fn note(&self, name: &str, row: &Row) -> String {
        match row.state {
            ServiceState::Waiting => {
                let unmet: Vec<String> = self.dependencies[name]
                    .iter()
                    .filter_map(|(dependency, condition)| {
                        let on = self.rows.get(dependency)?;
                        (!meets(on, *condition)).then(|| match condition {
                            Condition::Ready => format!("{dependency} ({})", on.state),
                            other => {
                                format!("{dependency} ({}; to be {})", on.state, other.as_str())
                            }
                        })
                    })
                    .collect();
                if !unmet.is_empty() {
                    format!("waits for {}", unmet.join(", "))
                } else if self
                    .rows
                    .values()
                    .any(|r| r.state == ServiceState::Building)
                {
                    "waits for the builds".to_string()
                } else {
                    row.reason.clone().unwrap_or_default()
                }
            }
            ServiceState::Building => row
                .build
                .as_ref()
                .and_then(|b| b.current.as_deref())
                .map(|c| format!("compiled {c}"))
                .unwrap_or_default(),
            // Its reason is its command line: the endpoint says more.
            ServiceState::Starting | ServiceState::Ready => String::new(),
            _ => row.reason.clone().unwrap_or_default(),
        }
    }
}

/// A dependency's condition holds for a service in `row`'s state.
fn meets(row: &Row, condition: Condition) -> bool {
    match condition {
        Condition::Started => row.spawned,
        Condition::Ready => matches!(row.state, ServiceState::Ready | ServiceState::Completed),
        Condition::Completed => row.state == ServiceState::Completed,
    }
}

fn state_text(row: &Row) -> String {
    match (row.state, &row.build) {
        (ServiceState::Building, Some(b)) => match b.total {
            Some(total) => format!("building {}/{total}", b.compiled),
            None => format!("building {}/?", b.compiled),
        },
        (state, _) => state.to_string(),
    }
}

fn endpoint_text((ingress, address, _): &(String, String, Option<String>)) -> String {
    if ingress == "default" {
        address.clone()
    } else {
        format!("{ingress}: {address}")
    }
}

fn observed_text((_, _, observed): &(String, String, Option<String>)) -> String {
    observed.clone().unwrap_or_else(|| "-".to_string())
}

/// Rows as aligned columns, two spaces apart, indented by two; the last
/// column is not padded.
fn columns<const N: usize>(table: &[[String; N]]) -> Vec<String> {
    let mut widths = [0usize; N];
    for row in table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    table
        .iter()
        .map(|row| {
            let mut line = String::from(" ");
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                line.push(' ');
                line.push_str(cell);
                if i + 1 < N {
                    line.extend(std::iter::repeat_n(' ', w - cell.chars().count() + 1));
                }
            }
            line.trim_end().to_string()
        })
        .collect()
}

/// `line` cut to `width` columns (characters), with `…` where it was cut.
fn cut(line: String, width: usize) -> String {
    if line.chars().count() <= width {
        return line;
    }
    let mut cut: String = line.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixtures::event;
    use serde_json::json;

    fn board() -> Board {
        let spec = Spec::parse(
            r#"
name: shop
services:
  api:
    type: cargo
    package: api
    ingresses: { default: { protocol: http }, admin: { protocol: http } }
  db: { type: script, script: 'exec sleep 30', ingresses: { default: { protocol: tcp } } }
  web:
    type: script
    script: 'exec sleep 30'
    egresses: { api: { service: api } }
    depends_on: { db: started }
"#,
        )
        .unwrap();
        Board::new(&spec)
    }

    fn lifecycle(seq: u64, kind: &str, service: &str, lifecycle: serde_json::Value) -> Event {
        event(
            json!({"seq": seq, "type": kind, "timestamp": "2026-12-03T10:00:00Z",
            "environment": "shop", "service": service, "lifecycle": lifecycle}),
        )
    }

    #[test]
    fn rows_show_builds_waits_and_endpoints() {
        let mut b = board();
        let wide = |b: &Board| b.lines(200, 50, Duration::from_secs(3)).join("\n");
        assert!(b.apply(&lifecycle(
            1,
            "service.starting",
            "api",
            json!({"state": "building"})
        )));
        assert!(b.apply(&lifecycle(2, "build.progress", "api",
            json!({"state": "building", "build": {"compiled": 45, "total": 120, "current": "serde"}}))));
        let text = wide(&b);
        assert!(text.starts_with("shop: starting (3 s)\n"), "{text}");
        assert!(text.contains("api      building 45/120  0"), "{text}");
        assert!(text.contains("compiled serde"), "{text}");
        assert!(text.contains("db       waiting"), "{text}");
        assert!(text.contains("waits for the builds"), "{text}");
        assert!(
            text.contains("waits for api (building), db (waiting; to be started)"),
            "{text}"
        );

        b.apply(&lifecycle(3, "build.progress", "api",
            json!({"state": "waiting", "reason": "built in 3.0 s", "build": {"compiled": 120, "total": 120}})));
        b.apply(&lifecycle(
            4,
            "service.starting",
            "db",
            json!({"state": "starting", "pid": 7}),
        ));
        b.apply(&lifecycle(
            5,
            "service.restarting",
            "api",
            json!({"state": "restarting", "restarts": 2, "reason": "api exited with status 3"}),
        ));
        let text = wide(&b);
        assert!(text.contains("api      restarting"), "{text}");
        assert!(text.contains("  2  "), "{text}");
        assert!(text.contains("api exited with status 3"), "{text}");
        assert!(
            text.contains("waits for api (restarting)\n")
                || text.ends_with("waits for api (restarting)"),
            "{text}"
        );

        let up = event(
            json!({"seq": 6, "type": "environment.up", "timestamp": "2026-12-03T10:00:00Z",
            "environment": "shop", "lifecycle": {"state": "up", "endpoints": {
                "api": {"admin": {"address": "127.0.0.1:2", "observed": "127.0.0.1:4"},
                        "default": {"address": "127.0.0.1:1", "observed": "127.0.0.1:3"}}}}}),
        );
        assert!(b.apply(&up));
        assert_eq!(b.phase(), &Phase::Up);
        let text = wide(&b);
        assert!(text.starts_with("shop: up after 3.0 s"), "{text}");
        assert!(text.contains("127.0.0.1:1         127.0.0.1:3"), "{text}");
        assert!(text.contains("admin: 127.0.0.1:2  127.0.0.1:4"), "{text}");
    }

    #[test]
    fn lines_fit_the_terminal() {
        let b = board();
        let lines = b.lines(20, 3, Duration::ZERO);
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 20), "{lines:#?}");
        assert!(lines[2].starts_with("  … and"), "{lines:#?}");
    }
}
