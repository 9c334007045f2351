//! `tapmesh up`'s lines: lifecycle as it happens, the endpoints once up,
//! then one line per traffic event (`inspect::one_line`).

use crate::events::{Event, EventKind, LifecycleState, Payload, ServiceState};

/// The line (or lines) for `event`; `None` for a service's output
/// without `--logs`.
pub(super) fn line(event: &Event, environment: &str, logs: bool) -> Option<String> {
    let service = event.service.as_deref().unwrap_or("");
    let text = match (&event.kind, &event.payload) {
        (EventKind::ServiceLog, Payload::Log(l)) => {
            if !logs {
                return None;
            }
            format!("  {service:>12} | {}", l.line)
        }
        (EventKind::EnvironmentUp, Payload::Lifecycle(info)) => {
            let mut text = format!("environment {environment} is up\n");
            if let Some(endpoints) = info.endpoints.as_ref().and_then(|e| e.as_object()) {
                for (service, ingresses) in endpoints {
                    for (ingress, e) in ingresses.as_object().into_iter().flatten() {
                        text.push_str(&format!(
                            "  {service:>12} {ingress:<8} {}  (observed via {})\n",
                            e["address"].as_str().unwrap_or("?"),
                            e["observed"].as_str().unwrap_or("-"),
                        ));
                    }
                }
            }
            text.trim_end().to_string()
        }
        (EventKind::BuildProgress, Payload::Lifecycle(info))
            if info.state == LifecycleState::Service(ServiceState::Building) =>
        {
            let mut text = format!("{:>14} {service:>12}", event.kind.as_str());
            if let Some(build) = &info.build {
                let total = build.total.map_or("?".to_string(), |t| t.to_string());
                text.push_str(&format!(" compiled {}/{total}", build.compiled));
                if let Some(current) = &build.current {
                    text.push_str(&format!(" ({current})"));
                }
            }
            text
        }
        (kind, Payload::Lifecycle(info)) => {
            let reason = info.reason.as_deref().unwrap_or("");
            let mut text = format!("{:>14} {service:>12} {reason}", kind.as_str());
            for waiting in &info.waiting {
                text.push_str(&format!("\n{:>27} {waiting}", ""));
            }
            for line in &info.log_tail {
                text.push_str(&format!("\n{:>27} | {line}", ""));
            }
            text.trim_end().to_string()
        }
        _ => crate::inspect::one_line(event),
    };
    Some(text)
}

/// While the table shows the start, the lines that still say something
/// above it: what the table cannot (a failure's log tail, a restart's
/// reason, a service's output with `--logs`, traffic already flowing).
pub(super) fn beside_the_table(event: &Event, environment: &str, logs: bool) -> Option<String> {
    match event.kind {
        EventKind::ServiceFailed | EventKind::ServiceRestarting | EventKind::ServiceLog => {
            line(event, environment, logs)
        }
        _ if matches!(event.payload, Payload::Lifecycle(_)) => None,
        _ => line(event, environment, logs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::fixtures::event;
    use serde_json::json;

    fn lifecycle(kind: &str, lifecycle: serde_json::Value) -> Event {
        event(
            json!({"seq": 1, "type": kind, "timestamp": "2026-12-03T10:00:00Z",
            "environment": "shop", "service": "api", "lifecycle": lifecycle}),
        )
    }

    #[test]
    fn build_progress_and_failures() {
        let progress = lifecycle(
            "build.progress",
            json!({"state": "building", "build": {"compiled": 3, "total": 9, "current": "serde"}}),
        );
        assert_eq!(
            line(&progress, "shop", false).unwrap(),
            "build.progress          api compiled 3/9 (serde)"
        );
        assert_eq!(beside_the_table(&progress, "shop", false), None);
        let built = lifecycle(
            "build.progress",
            json!({"state": "waiting", "reason": "built in 2.0 s"}),
        );
        assert_eq!(
            line(&built, "shop", false).unwrap(),
            "build.progress          api built in 2.0 s"
        );
        let failed = lifecycle(
            "service.failed",
            json!({"state": "failed", "reason": "api exited with status 3", "log_tail": ["boom"]}),
        );
        let text = beside_the_table(&failed, "shop", false).unwrap();
        assert!(text.ends_with("| boom"), "{text}");
    }
}
