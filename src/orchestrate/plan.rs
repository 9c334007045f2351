//! From a validated spec and its reserved addresses to what runs: each
//! service's wiring, command lines (its own and its hooks'), readiness
//! probe and dependencies, the endpoints a test reaches, and the builds of
//! `cargo` services.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::control::Request;
use super::dependencies::{Dependency, Progress};
use super::ports::Ports;
use super::process::Launchable;
use super::runner::{info, PreparedHook, Probe, Runner, Shared};
use super::wiring::Wiring;
use super::{cargo_build, managed, Endpoint, EnvironmentError};
use crate::events::{
    BuildProgress, EventDraft, EventKind, EventLog, LifecycleInfo, Payload, ServiceState,
};
use crate::graph::{self, Graph, TEST_NODE};
use crate::spec::{env_name, expand, Hook, HookRun, Launch, Service, Spec};

/// The services' runners, in start order, each one's progress, and where
/// to send it requests.
pub(super) struct Plan {
    pub runners: Vec<Runner>,
    pub progress: BTreeMap<String, watch::Receiver<Progress>>,
    pub controls: BTreeMap<String, mpsc::UnboundedSender<Request>>,
}

/// Where each ingress is reached: directly, and through its `~test` proxy.
pub(super) fn endpoints(
    ports: &Ports,
    graph: &Graph,
    proxies: &BTreeMap<String, SocketAddr>,
) -> BTreeMap<String, BTreeMap<String, Endpoint>> {
    let mut endpoints: BTreeMap<String, BTreeMap<String, Endpoint>> = BTreeMap::new();
    for ((service, ingress), address) in &ports.ingress {
        let key = (TEST_NODE.to_string(), graph::test_egress(service, ingress));
        let observed = graph
            .egress_targets
            .get(&key)
            .and_then(|node| proxies.get(node))
            .copied();
        endpoints.entry(service.clone()).or_default().insert(
            ingress.clone(),
            Endpoint {
                address: *address,
                observed,
            },
        );
    }
    endpoints
}

/// Builds every `cargo` service, before anything runs, so a compile error
/// stops nothing. Their executables by service.
pub(super) async fn build(
    spec: &Spec,
    order: &[String],
    log: &EventLog,
    cache_dir: &Path,
) -> Result<BTreeMap<String, PathBuf>, EnvironmentError> {
    let mut executables = BTreeMap::new();
    for name in order {
        let Launch::Cargo {
            package, target, ..
        } = &spec.services[name].launch
        else {
            continue;
        };
        let package = spec.base_dir.join(package);
        let service: Arc<str> = Arc::from(name.as_str());
        let lifecycle = |kind, info| {
            let mut draft = EventDraft::now(kind, Payload::Lifecycle(info));
            draft.service = Some(service.clone());
            log.append(draft);
        };
        lifecycle(
            EventKind::ServiceStarting,
            LifecycleInfo {
                reason: Some(format!("building {} with cargo", package.display())),
                ..info(ServiceState::Building)
            },
        );
        let started = Instant::now();
        let (built, last) = reporting_progress(
            |progress| cargo_build::build(&package, target, cache_dir, progress),
            |build| lifecycle(EventKind::BuildProgress, build_progress(build)),
        )
        .await;
        let (exe, outcome) =
            built.map_err(|e| EnvironmentError::new(Some(name), format!("{name}: {e}")))?;
        // The last one: built (or found built), waiting for its turn.
        let reason = match outcome {
            cargo_build::BuildOutcome::Built => {
                format!("built in {:.1} s", started.elapsed().as_secs_f64())
            }
            cargo_build::BuildOutcome::Cached => "built before from these sources".to_string(),
        };
        lifecycle(
            EventKind::BuildProgress,
            LifecycleInfo {
                reason: Some(reason),
                build: last,
                ..info(ServiceState::Waiting)
            },
        );
        tracing::info!(service = %name, executable = %exe.display(), ?outcome, "cargo service built");
        executables.insert(name.clone(), exe);
    }
    Ok(executables)
}

/// How often a build's progress is logged at most.
const BUILD_PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// Runs `build`, handing `emit` its progress at most every
/// [`BUILD_PROGRESS_EVERY`] (the latest at each tick, so a 300-crate
/// build is not 300 events); what it returned, and the last progress it
/// made once done (emitted here only if the build failed after it).
async fn reporting_progress<F, T>(
    build: impl FnOnce(Box<dyn FnMut(&BuildProgress) + Send>) -> F,
    mut emit: impl FnMut(&BuildProgress),
) -> (Result<T, String>, Option<BuildProgress>)
where
    F: std::future::Future<Output = Result<T, String>>,
{
    let (tx, mut latest) = watch::channel(None::<BuildProgress>);
    let building = build(Box::new(move |p: &BuildProgress| {
        tx.send_replace(Some(p.clone()));
    }));
    tokio::pin!(building);
    let mut tick = tokio::time::interval(BUILD_PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut emitted: Option<BuildProgress> = None;
    let result = loop {
        tokio::select! {
            result = &mut building => break result,
            _ = tick.tick() => {
                let now = latest.borrow_and_update().clone();
                if let Some(progress) = now.as_ref().filter(|_| now != emitted) {
                    emit(progress);
                    emitted = now;
                }
            }
        }
    };
    let last = latest.borrow().clone();
    if let Some(progress) = last.as_ref().filter(|_| result.is_err() && last != emitted) {
        emit(progress);
    }
    (result, last)
}

fn build_progress(build: &BuildProgress) -> LifecycleInfo {
    let total = build.total.map_or("?".to_string(), |t| t.to_string());
    LifecycleInfo {
        reason: Some(format!("compiled {} of {total}", build.compiled)),
        build: Some(build.clone()),
        ..info(ServiceState::Building)
    }
}

/// What the plan is made from.
pub(super) struct Inputs<'a> {
    pub spec: &'a Spec,
    pub graph: &'a Graph,
    pub order: &'a [String],
    pub proxies: &'a BTreeMap<String, SocketAddr>,
    pub executables: &'a BTreeMap<String, PathBuf>,
    /// The environment's directory.
    pub dir: &'a Path,
    pub shared: &'a Shared,
}

/// Every service's runner. One that cannot be launched (an address that
/// does not resolve, a scratch directory that cannot be made) fails the
/// start before any runner exists, or those already spawned would run on
/// with no one to stop them.
pub(super) fn plan(inputs: Inputs<'_>, ports: &mut Ports) -> Result<Plan, EnvironmentError> {
    let Inputs { spec, order, .. } = inputs;
    let mut senders = BTreeMap::new();
    let mut progress = BTreeMap::new();
    for name in order {
        let (tx, rx) = watch::channel(Progress::default());
        senders.insert(name.clone(), tx);
        progress.insert(name.clone(), rx);
    }
    let mut runners = Vec::new();
    let mut controls = BTreeMap::new();
    for name in order {
        let service = &spec.services[name];
        let fail = |e: String| EnvironmentError::new(Some(name), format!("{name}: {e}"));
        let wiring = wiring(&inputs, ports, name, service).map_err(fail)?;
        let (launch, prestart, init) =
            commands(spec, service, &wiring, inputs.executables.get(name)).map_err(fail)?;
        let depends_on = graph::dependencies(spec, name)
            .into_iter()
            .map(|(dependency, condition)| Dependency {
                calls: service.egresses.values().any(|e| e.service == dependency),
                progress: progress[&dependency].clone(),
                name: dependency,
                condition,
            })
            .collect();
        let (control_tx, control) = mpsc::unbounded_channel();
        controls.insert(name.clone(), control_tx);
        runners.push(Runner {
            name: Arc::from(name.as_str()),
            service: service.clone(),
            launch,
            prestart,
            init,
            probe: probe(service, ports, name),
            depends_on,
            reserved: ports.reserved.remove(name).unwrap_or_default(),
            log_file: inputs.dir.join("logs").join(format!("{name}.log")),
            shared: inputs.shared.clone(),
            progress: senders
                .remove(name)
                .expect("a progress channel per service"),
            stop: CancellationToken::new(),
            control,
            redeploying: None,
        });
    }
    Ok(Plan {
        runners,
        progress,
        controls,
    })
}

/// What a running service is given to run from now on: its spec entry
/// and the commands made from it (the same wiring: redeploys keep ports
/// and proxies).
pub(super) struct Redeploy {
    pub service: Service,
    pub launch: Option<Launchable>,
    pub prestart: Option<PreparedHook>,
    pub init: Option<PreparedHook>,
    pub probe: Option<Probe>,
    /// Why, for its `service.restarting`.
    pub why: String,
}

/// One service planned again from an edited spec (its ingresses and
/// egresses unchanged, so the ports and proxies the first plan reserved
/// still hold).
pub(super) fn replan(
    inputs: &Inputs<'_>,
    ports: &Ports,
    name: &str,
    why: String,
) -> Result<Redeploy, String> {
    let service = &inputs.spec.services[name];
    let wiring = wiring(inputs, ports, name, service)?;
    let (launch, prestart, init) =
        commands(inputs.spec, service, &wiring, inputs.executables.get(name))?;
    Ok(Redeploy {
        service: service.clone(),
        launch,
        prestart,
        init,
        probe: probe(service, ports, name),
        why,
    })
}

fn wiring(
    inputs: &Inputs<'_>,
    ports: &Ports,
    name: &str,
    service: &Service,
) -> Result<Wiring, String> {
    let temp_dir = inputs.dir.join("tmp").join(name);
    if !service.is_external() {
        std::fs::create_dir_all(&temp_dir)
            .map_err(|e| format!("creating {}: {e}", temp_dir.display()))?;
    }
    let key = |s: &str, i: &str| (s.to_string(), i.to_string());
    let egresses: BTreeMap<String, SocketAddr> = service
        .egresses
        .iter()
        .map(|(egress, e)| {
            let node = &inputs.graph.egress_targets[&key(name, egress)];
            let addr = inputs
                .proxies
                .get(node)
                .copied()
                .unwrap_or_else(|| ports.ingress[&key(&e.service, &e.ingress)]);
            (egress.clone(), addr)
        })
        .collect();
    Ok(Wiring {
        ingresses: service
            .ingresses
            .keys()
            .map(|i| (i.clone(), ports.ingress[&key(name, i)]))
            .collect(),
        extra: managed_variables(inputs, service, &egresses),
        egresses,
        temp_dir,
        env_dir: inputs.dir.to_path_buf(),
    })
}

/// `DB_URL`, `BROKER_BROKERS`…: for each egress to a managed server, its
/// ready-made address (through the edge's proxy when observed).
fn managed_variables(
    inputs: &Inputs<'_>,
    service: &Service,
    egresses: &BTreeMap<String, SocketAddr>,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for (egress, e) in &service.egresses {
        if let Launch::Managed(target) = &inputs.spec.services[&e.service].launch {
            let (suffix, value) = target.egress_variable(&egresses[egress].to_string());
            vars.insert(format!("{}_{suffix}", env_name(egress)), value);
        }
    }
    vars
}

/// Readiness: the default ingress (else the first) decides.
fn probe(service: &Service, ports: &Ports, name: &str) -> Option<Probe> {
    let (ingress, def) = service
        .ingresses
        .get_key_value("default")
        .or_else(|| service.ingresses.iter().next())?;
    Some(Probe {
        probe: def.ready.probe.clone(),
        addr: ports.ingress[&(name.to_string(), ingress.clone())],
        interval: def.ready.interval,
        timeout: def.ready.timeout,
    })
}

type Commands = (
    Option<Launchable>,
    Option<PreparedHook>,
    Option<PreparedHook>,
);

/// The service's command line and its hooks', with its environment: the
/// wiring, then its own `env` (whose values may use the wiring and
/// tapmesh's environment); in argv, `$VAR` looks in its `env`, then the
/// wiring, then tapmesh's environment. Scripts go to `sh -c` as written.
fn commands(
    spec: &Spec,
    service: &Service,
    wiring: &Wiring,
    executable: Option<&PathBuf>,
) -> Result<Commands, String> {
    if service.is_external() {
        return Ok((None, None, None));
    }
    let wired = wiring.env();
    let from_process = |name: &str| std::env::var(name).ok();
    let mut own = BTreeMap::new();
    for (key, value) in &service.env {
        let value = expand(value, |n| wired.get(n).cloned().or_else(|| from_process(n)))?;
        own.insert(key.clone(), value);
    }
    let lookup = |n: &str| {
        own.get(n)
            .or_else(|| wired.get(n))
            .cloned()
            .or_else(|| from_process(n))
    };
    let expand_all = |args: &[String]| -> Result<Vec<String>, String> {
        args.iter().map(|a| expand(a, lookup)).collect()
    };
    let argv: Vec<String> = match &service.launch {
        Launch::Process { command } => expand_all(command)?,
        Launch::Script { script } => vec!["sh".into(), "-c".into(), script.clone()],
        Launch::Cargo { args, .. } => {
            let exe = executable.ok_or("not built")?;
            let mut argv = vec![exe.to_string_lossy().into_owned()];
            argv.extend(expand_all(args)?);
            argv
        }
        Launch::External => unreachable!("handled above"),
        // Its command line is tapmesh's, made below.
        Launch::Managed(_) => Vec::new(),
    };
    let mut env = wired.clone();
    env.extend(own.clone());
    let dir = service
        .dir
        .as_ref()
        .map_or_else(|| spec.base_dir.clone(), |d| spec.base_dir.join(d));
    let launchable = |argv: Vec<String>| Launchable {
        argv,
        env: env.clone(),
        dir: dir.clone(),
        run_as: None,
        stdin: None,
    };
    let hook = |hook: &Option<Hook>| -> Result<Option<PreparedHook>, String> {
        let Some(hook) = hook else { return Ok(None) };
        let argv = match &hook.run {
            HookRun::Command(argv) => expand_all(argv)?,
            HookRun::Script(script) => vec!["sh".into(), "-c".into(), script.clone()],
        };
        Ok(Some(PreparedHook {
            hook: hook.clone(),
            launch: launchable(argv),
        }))
    };
    let prestart = hook(&service.prestart)?;
    let init = hook(&service.init)?;
    if let Launch::Managed(managed) = &service.launch {
        let port = wiring
            .ingresses
            .get("default")
            .ok_or("a managed server without its ingress")?
            .port();
        let data_dir = wiring.env_dir.join("data").join(&service.name);
        let server = managed::commands(
            managed,
            managed::Setting {
                port,
                data_dir: &data_dir,
                base_dir: &spec.base_dir,
                env,
                user_init: init.as_ref(),
            },
        )?;
        return Ok((Some(server.launch), server.prestart, server.init));
    }
    Ok((Some(launchable(argv)), prestart, init))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build that finishes 300 units one after another, then fails or
    /// succeeds.
    async fn fake_build(
        mut progress: Box<dyn FnMut(&BuildProgress) + Send>,
        ok: bool,
    ) -> Result<&'static str, String> {
        for compiled in 1..=300 {
            progress(&BuildProgress {
                compiled,
                total: Some(300),
                current: None,
            });
            if compiled % 30 == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if ok {
            Ok("built")
        } else {
            Err("cargo build failed".into())
        }
    }

    #[tokio::test]
    async fn a_build_reports_a_few_progress_events_and_its_last_progress() {
        let mut emitted = Vec::new();
        let (result, last) =
            reporting_progress(|p| fake_build(p, true), |p| emitted.push(p.compiled)).await;
        assert_eq!(result, Ok("built"));
        assert_eq!(last.map(|p| p.compiled), Some(300));
        // Throttled: far fewer events than units, each newer than the last.
        assert!(emitted.len() < 300 / 10, "{emitted:?}");
        assert!(emitted.windows(2).all(|w| w[0] < w[1]), "{emitted:?}");

        // A failed build's last progress is emitted before the error.
        let mut emitted = Vec::new();
        let (result, _) =
            reporting_progress(|p| fake_build(p, false), |p| emitted.push(p.compiled)).await;
        assert!(result.is_err());
        assert_eq!(emitted.last(), Some(&300), "{emitted:?}");
    }
}
