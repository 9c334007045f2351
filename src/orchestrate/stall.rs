//! `progress.stall`: when no service has changed state for a while and
//! some are not ready, who waits on whom.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::dependencies::Progress;
use super::runner::info;
use crate::events::ServiceState;
use crate::events::{EventDraft, EventKind, EventLog, LifecycleInfo, LifecycleState, Payload};
use crate::graph;
use crate::spec::{Condition, Spec};

pub(super) async fn watch_for_stalls(
    spec: Spec,
    states: BTreeMap<String, watch::Receiver<Progress>>,
    last_change: Arc<Mutex<Instant>>,
    log: EventLog,
    after: Duration,
) {
    let mut reported_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let changed = *last_change.lock().expect("last change lock");
        let now: BTreeMap<&String, Progress> =
            states.iter().map(|(n, s)| (n, *s.borrow())).collect();
        if now
            .values()
            .all(|p| p.state == ServiceState::Ready || p.state.is_final())
        {
            continue;
        }
        if changed.elapsed() < after
            || reported_at.is_some_and(|r| r >= changed && r.elapsed() < after)
        {
            continue;
        }
        let waiting = who_waits(&spec, &now);
        let stalled = LifecycleInfo {
            reason: Some(format!(
                "nothing changed for {}",
                humantime::format_duration(Duration::from_secs(changed.elapsed().as_secs()))
            )),
            waiting,
            ..info(LifecycleState::Stalled)
        };
        log.append(EventDraft::now(
            EventKind::ProgressStall,
            Payload::Lifecycle(stalled),
        ));
        reported_at = Some(Instant::now());
    }
}

/// One sentence per service that is not ready: what it waits on, or what
/// it is doing.
fn who_waits(spec: &Spec, now: &BTreeMap<&String, Progress>) -> Vec<String> {
    let mut waiting = Vec::new();
    for (name, progress) in now {
        match progress.state {
            ServiceState::Waiting => {
                let on: Vec<String> = graph::dependencies(spec, name)
                    .into_iter()
                    .filter(|(d, c)| {
                        now.get(d)
                            .is_none_or(|p| !matches!(p.meets(*c), Some(true)))
                    })
                    .map(|(d, c)| {
                        let state = now.get(&d).map_or("unknown", |p| p.state.as_str());
                        match c {
                            Condition::Ready => format!("{d} ({state})"),
                            other => format!("{d} ({state}; waits for {})", other.as_str()),
                        }
                    })
                    .collect();
                waiting.push(format!("{name} waits on {}", on.join(", ")));
            }
            ServiceState::Starting | ServiceState::Restarting | ServiceState::Building => {
                waiting.push(format!("{name} is {} and not ready yet", progress.state));
            }
            _ => {}
        }
    }
    waiting
}
