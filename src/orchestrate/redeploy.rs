//! An edited spec (or changed sources) applied to a running environment:
//! only the services it changes are rebuilt and restarted, each with its
//! new commands; the event log, the proxies and every other service keep
//! running.
//!
//! An edit that changes the environment's shape (services added or
//! removed, ingresses, egresses, observation) would need new ports and
//! proxies; it is refused with what it changes, and nothing is touched.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::sync::watch;

use super::control::{Control, Request};
use super::dependencies::Progress;
use super::plan::{self, Inputs};
use super::ports::Ports;
use super::runner::{info, Shared};
use super::{environment_event, ControlError, Orchestration};
use crate::events::{EventKind, LifecycleInfo, LifecycleState, ServiceState};
use crate::graph::Graph;
use crate::spec::{Launch, Spec};

/// What the first plan was made from, kept to plan one service again.
pub(super) struct Replan {
    pub spec: Spec,
    pub graph: Graph,
    pub order: Vec<String>,
    pub ports: Ports,
    pub proxies: BTreeMap<String, SocketAddr>,
    pub executables: BTreeMap<String, PathBuf>,
    pub dir: PathBuf,
    pub cache_dir: PathBuf,
    pub shared: Shared,
}

/// Why a redeploy was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedeployError {
    /// The edit changes more than services' commands; nothing was touched.
    #[error("not applied, restart the environment for it: {0}")]
    Shape(String),
    /// A `cargo` service did not build; nothing was restarted.
    #[error("not applied: {0}")]
    Build(String),
    #[error("{service}: {error}")]
    Service {
        service: String,
        error: ControlError,
    },
}

impl Orchestration {
    /// Applies `spec` (the running one, edited) and restarts the services
    /// it changes, plus those in `changed` (service → why: its sources, a
    /// watched path), rebuilding `cargo` ones first. Returns each service
    /// redeployed with why, in start order; logs one
    /// `environment.redeployed` saying so.
    pub async fn redeploy(
        &self,
        spec: Spec,
        changed: BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, RedeployError> {
        let mut replan = self.replan.lock().await;
        check_shape(&replan.spec, &spec).map_err(RedeployError::Shape)?;
        let why = what_changed(&replan.spec, &spec, changed);
        let chosen: Vec<String> = replan
            .order
            .iter()
            .filter(|name| why.contains_key(*name) && !spec.services[*name].is_external())
            .cloned()
            .collect();
        if chosen.is_empty() {
            replan.spec = spec;
            return Ok(Vec::new());
        }
        let built = plan::build(&spec, &chosen, &self.log, &replan.cache_dir)
            .await
            .map_err(|e| RedeployError::Build(e.report()))?;
        replan.executables.extend(built);
        replan.spec = spec;
        let mut done = Vec::new();
        for name in &chosen {
            let reason = why[name].clone();
            let inputs = Inputs {
                spec: &replan.spec,
                graph: &replan.graph,
                order: &replan.order,
                proxies: &replan.proxies,
                executables: &replan.executables,
                dir: &replan.dir,
                shared: &replan.shared,
            };
            let redeploy =
                plan::replan(&inputs, &replan.ports, name, reason.clone()).map_err(|message| {
                    RedeployError::Service {
                        service: name.clone(),
                        error: ControlError::Failed(message),
                    }
                })?;
            let handle = &self.services[name];
            let mut progress = handle.progress.clone();
            progress.borrow_and_update();
            handle
                .control
                .send(Request::Redeploy(Box::new(redeploy)))
                .map_err(|_| RedeployError::Service {
                    service: name.clone(),
                    error: ControlError::Stopping,
                })?;
            settle(progress, Control::Restart, name)
                .await
                .map_err(|error| RedeployError::Service {
                    service: name.clone(),
                    error,
                })?;
            done.push((name.clone(), reason));
        }
        let said: Vec<String> = done.iter().map(|(s, why)| format!("{s}: {why}")).collect();
        environment_event(
            &self.log,
            EventKind::EnvironmentRedeployed,
            LifecycleInfo {
                reason: Some(format!("redeployed {}", said.join("; "))),
                redeployed: done.iter().map(|(s, _)| s.clone()).collect(),
                ..info(LifecycleState::Up)
            },
        );
        Ok(done)
    }
}

/// Waits for a request sent after `progress` was last seen to play out:
/// ready (a job: completed) for a start or restart, stopped for a stop.
pub(super) async fn settle(
    mut progress: watch::Receiver<Progress>,
    asked: Control,
    service: &str,
) -> Result<ServiceState, ControlError> {
    loop {
        if progress.changed().await.is_err() {
            return Err(ControlError::Stopping);
        }
        let state = progress.borrow_and_update().state;
        let done = match asked {
            Control::Stop => state.is_final(),
            Control::Restart | Control::Start => matches!(
                state,
                ServiceState::Ready | ServiceState::Completed | ServiceState::Failed
            ),
        };
        if done {
            return match state {
                ServiceState::Failed => Err(ControlError::Failed(format!(
                    "{service} failed (its service.failed event says why)"
                ))),
                state => Ok(state),
            };
        }
    }
}

/// Every way `new` differs from `old` beyond services' own settings.
fn check_shape(old: &Spec, new: &Spec) -> Result<(), String> {
    let mut problems = Vec::new();
    if old.observe != new.observe || old.capture_limit != new.capture_limit {
        problems.push("observe or capture_limit changed".to_string());
    }
    if old.redact != new.redact {
        problems.push("redact changed".to_string());
    }
    for name in old
        .services
        .keys()
        .filter(|n| !new.services.contains_key(*n))
    {
        problems.push(format!("service {name} removed"));
    }
    for (name, service) in &new.services {
        let Some(before) = old.services.get(name) else {
            problems.push(format!("service {name} added"));
            continue;
        };
        if before.ingresses.keys().ne(service.ingresses.keys())
            || before
                .ingresses
                .iter()
                .zip(&service.ingresses)
                .any(|((_, a), (_, b))| {
                    a.protocol != b.protocol || a.proto != b.proto || a.address != b.address
                })
        {
            problems.push(format!("{name}'s ingresses changed"));
        }
        if before.egresses != service.egresses {
            problems.push(format!("{name}'s egresses changed"));
        }
        if before.is_external() != service.is_external()
            || matches!(before.launch, Launch::Managed(_))
                != matches!(service.launch, Launch::Managed(_))
        {
            problems.push(format!("{name}'s type changed"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The services to restart, with why: those whose spec entry changed,
/// those that call a managed server whose settings changed (their
/// `DB_URL` & co. change with it), and those `changed` names.
fn what_changed(
    old: &Spec,
    new: &Spec,
    mut changed: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    for (name, service) in &new.services {
        if old.services[name] != *service {
            changed
                .entry(name.clone())
                .or_insert_with(|| "its spec changed".to_string());
        }
    }
    for (name, service) in &new.services {
        for egress in service.egresses.values() {
            let target = &egress.service;
            if matches!(new.services[target].launch, Launch::Managed(_))
                && old.services[target].launch != new.services[target].launch
            {
                changed
                    .entry(name.clone())
                    .or_insert_with(|| format!("its wiring to {target} changed"));
            }
        }
    }
    changed
}
