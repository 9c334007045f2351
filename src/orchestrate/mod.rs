//! An environment's lifecycle: ports, proxies, wiring, starting services in
//! egress order once their targets are ready, readiness probes, restarts,
//! optional services, and shutdown in reverse order.
//!
//! Every service leads its own session with a parent-death signal, a
//! guardian process kills what is left of those sessions if tapmesh dies,
//! and a crash record lets the next tapmesh clean up if both died (see
//! `custody`), so no process outlives the environment.

pub mod cargo_build;
mod crash_record;
mod custody;
mod guardian;
mod process;
mod procfs;
mod readiness;
mod stop;
pub mod wiring;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::events::{EventDraft, EventKind, EventLog, LifecycleInfo, Payload};
use crate::graph::{self, TEST_NODE};
use crate::proxy::{Proxy, ProxyConfig};
use crate::spec::{Launch, Protocol, ReadyProbe, Service, Spec};
pub use crash_record::{clean_up_after_crashes, CleanedUp};
use custody::Custody;
pub use process::LOG_TAIL_LINES;
use process::{Launchable, LogTail};
use wiring::{expand, Wiring};

/// Where an environment keeps its files, and how patient it is.
#[derive(Debug, Clone)]
pub struct EnvironmentOptions {
    /// Logs (`logs/<service>.log`) go here.
    pub dir: PathBuf,
    /// Built `cargo` services are cached here (shared by environments).
    pub cache_dir: PathBuf,
    /// `progress.stall` after this long with no service changing state.
    pub stall_after: Duration,
    /// Where the crash record goes (see [`clean_up_after_crashes`]); none
    /// without one.
    pub state_dir: Option<PathBuf>,
}

impl EnvironmentOptions {
    /// `dir` for the environment, the user's cache for builds.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            cache_dir: default_cache_dir(),
            stall_after: Duration::from_secs(10),
            state_dir: Some(default_state_dir()),
        }
    }
}

/// `$XDG_CACHE_HOME/tapmesh`, else `~/.cache/tapmesh`.
pub fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tapmesh")
}

/// `$XDG_STATE_HOME/tapmesh`, else `~/.local/state/tapmesh`.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("tapmesh")
}

/// Why an environment could not start, or stopped.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EnvironmentError {
    /// The service at the root of it, if one.
    pub service: Option<String>,
    pub message: String,
    /// That service's last log lines.
    pub log_tail: Vec<String>,
}

impl EnvironmentError {
    fn new(service: Option<&str>, message: impl Into<String>) -> Self {
        Self {
            service: service.map(str::to_string),
            message: message.into(),
            log_tail: Vec::new(),
        }
    }

    /// The message with the log tail below it, for a terminal.
    pub fn report(&self) -> String {
        let mut out = self.message.clone();
        if !self.log_tail.is_empty() {
            out.push_str("\n--- last lines of its log ---");
            for line in &self.log_tail {
                out.push_str("\n  ");
                out.push_str(line);
            }
        }
        out
    }
}

/// A service's state as others see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Waiting,
    Building,
    Starting,
    Ready,
    Restarting,
    Failed,
    Stopped,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Building => "building",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

/// The addresses of one ingress.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Endpoint {
    /// Where the service listens.
    pub address: SocketAddr,
    /// Where the `~test` node reaches it through its proxy (observe on).
    pub observed: Option<SocketAddr>,
}

/// A running environment. Dropping it kills every process it started; call
/// [`Environment::shutdown`] to stop them gracefully, in reverse order.
pub struct Environment {
    name: String,
    log: EventLog,
    endpoints: BTreeMap<String, BTreeMap<String, Endpoint>>,
    start_order: Vec<String>,
    runners: BTreeMap<String, Runner>,
    proxies_cancel: CancellationToken,
    proxies: Vec<JoinHandle<()>>,
    custody: Custody,
    failure: watch::Receiver<Option<EnvironmentError>>,
    stall_monitor: JoinHandle<()>,
    dir: PathBuf,
    /// `environment.down` was logged (by a graceful shutdown).
    down_logged: bool,
}

struct Runner {
    state: watch::Receiver<ServiceState>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Everything a service's runner task needs.
struct RunnerContext {
    name: Arc<str>,
    service: Service,
    launchable: Launchable,
    probe: Option<(ReadyProbe, SocketAddr, Duration, Duration)>,
    depends_on: Vec<(String, watch::Receiver<ServiceState>)>,
    reserved: Vec<TcpListener>,
    log: EventLog,
    log_file: PathBuf,
    custody: Custody,
    state: watch::Sender<ServiceState>,
    failure: watch::Sender<Option<EnvironmentError>>,
    stop: CancellationToken,
    last_change: Arc<Mutex<Instant>>,
}

fn lifecycle(log: &EventLog, kind: EventKind, service: Option<&str>, info: LifecycleInfo) {
    let mut draft = EventDraft::now(kind, Payload::Lifecycle(info));
    draft.service = service.map(Arc::from);
    log.append(draft);
}

fn info(state: &str) -> LifecycleInfo {
    LifecycleInfo {
        state: state.to_string(),
        ..LifecycleInfo::default()
    }
}

/// A free port for a service, held until the service starts. Taken below
/// the kernel's ephemeral range when it can be: a service binds its port
/// only after the reservation is let go, and in that window any outgoing
/// connection (a proxy's to its target, say) or `bind(0)` in the machine
/// could be given an ephemeral port, but never one below the range.
fn reserve_port() -> std::io::Result<TcpListener> {
    const LOWEST: u16 = 20_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral_start > LOWEST + 1_000 {
        // Random per call and per process (std's hasher keys are), so
        // environments starting at once do not try the same ports.
        use std::hash::BuildHasher;
        let random = std::hash::RandomState::new();
        let span = u64::from(ephemeral_start - LOWEST);
        for attempt in 0..64u64 {
            let port = LOWEST + (random.hash_one(attempt) % span) as u16;
            if let Ok(listener) = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))) {
                return Ok(listener);
            }
        }
    }
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
}

impl Environment {
    /// Starts `spec`: reserves ports, starts the proxies (observe on),
    /// builds `cargo` services, then starts every service once its egress
    /// targets are ready. Returns once every service is ready, or the
    /// first required service's failure (with everything started stopped).
    pub async fn start(
        spec: &Spec,
        log: EventLog,
        options: EnvironmentOptions,
    ) -> Result<Environment, EnvironmentError> {
        let logs_dir = options.dir.join("logs");
        std::fs::create_dir_all(&logs_dir).map_err(|e| {
            EnvironmentError::new(None, format!("creating {}: {e}", logs_dir.display()))
        })?;
        let graph = graph::build(spec);
        let order = graph::start_order(spec);
        let io_error =
            |what: &str, e: std::io::Error| EnvironmentError::new(None, format!("{what}: {e}"));

        // Ports: one listener per ingress, held until its service starts.
        let mut reserved: BTreeMap<String, Vec<TcpListener>> = BTreeMap::new();
        let mut ingress_addrs: BTreeMap<(String, String), SocketAddr> = BTreeMap::new();
        for (name, service) in &spec.services {
            for ingress in service.ingresses.keys() {
                let listener = reserve_port().map_err(|e| io_error("reserving a port", e))?;
                let addr = listener
                    .local_addr()
                    .map_err(|e| io_error("reserving a port", e))?;
                ingress_addrs.insert((name.clone(), ingress.clone()), addr);
                reserved.entry(name.clone()).or_default().push(listener);
            }
        }

        // Proxies, listening before anything starts.
        let proxies_cancel = CancellationToken::new();
        // Whoever drops this future before it returns (a signal, a DELETE
        // while starting) must not leave proxies listening.
        let proxies_guard = proxies_cancel.clone().drop_guard();
        let mut proxies = Vec::new();
        let mut proxy_addrs: BTreeMap<String, SocketAddr> = BTreeMap::new();
        for proxy in graph.proxies.values() {
            let target = ingress_addrs[&(proxy.target.clone(), proxy.ingress.clone())];
            let config = proxy_config(spec, proxy, target)?;
            let listener = reserve_port().map_err(|e| io_error("binding a proxy", e))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| io_error("binding a proxy", e))?;
            let addr = listener
                .local_addr()
                .map_err(|e| io_error("binding a proxy", e))?;
            let running = Proxy::from_listener(listener, config, log.clone())
                .map_err(|e| io_error("starting a proxy", e))?;
            proxies.push(tokio::spawn(running.run(proxies_cancel.clone())));
            proxy_addrs.insert(proxy.name.clone(), addr);
        }

        let mut endpoints: BTreeMap<String, BTreeMap<String, Endpoint>> = BTreeMap::new();
        for ((service, ingress), address) in &ingress_addrs {
            let egress = if ingress == "default" {
                service.clone()
            } else {
                format!("{service}-{ingress}")
            };
            let observed = graph
                .egress_targets
                .get(&(TEST_NODE.to_string(), egress))
                .and_then(|node| proxy_addrs.get(node))
                .copied();
            endpoints.entry(service.clone()).or_default().insert(
                ingress.clone(),
                Endpoint {
                    address: *address,
                    observed,
                },
            );
        }

        // Builds, before anything runs, so a compile error stops nothing.
        let mut executables: BTreeMap<String, PathBuf> = BTreeMap::new();
        for name in &order {
            let service = &spec.services[name];
            if let Launch::Cargo {
                package, target, ..
            } = &service.launch
            {
                let package = spec.base_dir.join(package);
                lifecycle(
                    &log,
                    EventKind::ServiceStarting,
                    Some(name),
                    LifecycleInfo {
                        reason: Some(format!("building {} with cargo", package.display())),
                        ..info("building")
                    },
                );
                let (exe, outcome) = cargo_build::build(&package, target, &options.cache_dir)
                    .await
                    .map_err(|e| {
                        proxies_cancel.cancel();
                        EnvironmentError::new(Some(name), format!("{name}: {e}"))
                    })?;
                tracing::info!(service = %name, executable = %exe.display(), ?outcome, "cargo service built");
                executables.insert(name.clone(), exe);
            }
        }

        let custody = Custody::new(options.state_dir.as_deref(), &spec.name, &options.dir);
        let (failure_tx, failure_rx) = watch::channel(None);
        let last_change = Arc::new(Mutex::new(Instant::now()));
        let mut states: BTreeMap<String, watch::Receiver<ServiceState>> = BTreeMap::new();
        let mut senders: BTreeMap<String, watch::Sender<ServiceState>> = BTreeMap::new();
        for name in &order {
            let (tx, rx) = watch::channel(ServiceState::Waiting);
            states.insert(name.clone(), rx);
            senders.insert(name.clone(), tx);
        }

        // Every service's context first: one that cannot be launched (an
        // unknown `${VAR}`) must fail the start before any runner exists,
        // or the runners already spawned would run on with no one to stop them.
        let mut contexts = Vec::new();
        for name in &order {
            let service = spec.services[name].clone();
            let wiring = Wiring {
                ingresses: service
                    .ingresses
                    .keys()
                    .map(|i| (i.clone(), ingress_addrs[&(name.clone(), i.clone())]))
                    .collect(),
                egresses: service
                    .egresses
                    .iter()
                    .map(|(egress, e)| {
                        let node = &graph.egress_targets[&(name.clone(), egress.clone())];
                        let addr = proxy_addrs.get(node).copied().unwrap_or_else(|| {
                            ingress_addrs[&(e.service.clone(), e.ingress.clone())]
                        });
                        (egress.clone(), addr)
                    })
                    .collect(),
            };
            let launchable =
                launchable(spec, &service, &wiring, executables.get(name)).map_err(|e| {
                    proxies_cancel.cancel();
                    EnvironmentError::new(Some(name), format!("{name}: {e}"))
                })?;
            // Readiness: the default ingress (else the first) decides.
            let probe = service
                .ingresses
                .get("default")
                .map(|i| ("default", i))
                .or_else(|| {
                    service
                        .ingresses
                        .iter()
                        .next()
                        .map(|(n, i)| (n.as_str(), i))
                })
                .map(|(ingress, i)| {
                    (
                        i.ready.probe.clone(),
                        ingress_addrs[&(name.clone(), ingress.to_string())],
                        i.ready.interval,
                        i.ready.timeout,
                    )
                });
            let depends_on = graph::dependencies(spec, name)
                .into_iter()
                .map(|d| {
                    let rx = states[&d].clone();
                    (d, rx)
                })
                .collect();
            let stop = CancellationToken::new();
            let context = RunnerContext {
                name: Arc::from(name.as_str()),
                service,
                launchable,
                probe,
                depends_on,
                reserved: reserved.remove(name).unwrap_or_default(),
                log: log.clone(),
                log_file: logs_dir.join(format!("{name}.log")),
                custody: custody.clone(),
                state: senders.remove(name).expect("a state per service"),
                failure: failure_tx.clone(),
                stop: stop.clone(),
                last_change: last_change.clone(),
            };
            contexts.push((name.clone(), stop, context));
        }
        let runners = contexts
            .into_iter()
            .map(|(name, stop, context)| {
                let runner = Runner {
                    state: states[&name].clone(),
                    stop,
                    task: tokio::spawn(run_service(context)),
                };
                (name, runner)
            })
            .collect();

        let stall_monitor = tokio::spawn(watch_for_stalls(
            spec.clone(),
            states.clone(),
            last_change,
            log.clone(),
            options.stall_after,
        ));
        let mut environment = Environment {
            name: spec.name.clone(),
            log,
            endpoints,
            start_order: order,
            runners,
            proxies_cancel,
            proxies,
            custody,
            failure: failure_rx,
            stall_monitor,
            dir: options.dir.clone(),
            down_logged: false,
        };
        // From here the environment's own Drop cancels the proxies.
        proxies_guard.disarm();

        // Up once every required service is ready (an optional one may have
        // failed), or down with the first failure.
        let required: Vec<(String, bool)> = spec
            .services
            .iter()
            .map(|(n, s)| (n.clone(), s.optional))
            .collect();
        loop {
            let failed = environment.failure.borrow().clone();
            if let Some(error) = failed {
                environment.stop_all().await;
                lifecycle(
                    &environment.log,
                    EventKind::EnvironmentDown,
                    None,
                    LifecycleInfo {
                        reason: Some(format!("did not start: {}", error.message)),
                        ..info("down")
                    },
                );
                environment.down_logged = true;
                return Err(error);
            }
            let settled = required.iter().all(|(name, optional)| {
                let state = *states[name].borrow();
                state == ServiceState::Ready
                    || (*optional && matches!(state, ServiceState::Failed | ServiceState::Stopped))
            });
            if settled {
                break;
            }
            let mut failure = environment.failure.clone();
            tokio::select! {
                _ = failure.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let endpoints = serde_json::to_value(&environment.endpoints).unwrap_or_default();
        lifecycle(
            &environment.log,
            EventKind::EnvironmentUp,
            None,
            LifecycleInfo {
                endpoints: Some(endpoints),
                ..info("up")
            },
        );
        Ok(environment)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The environment's event log.
    pub fn log(&self) -> &EventLog {
        &self.log
    }

    /// Where the environment keeps its logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every service's ingresses.
    pub fn endpoints(&self) -> &BTreeMap<String, BTreeMap<String, Endpoint>> {
        &self.endpoints
    }

    /// Where a test reaches `service`'s default ingress: through its
    /// `~test` proxy when observing (so the traffic is seen), else directly.
    pub fn endpoint(&self, service: &str) -> Option<SocketAddr> {
        let ingress = self.endpoints.get(service)?.get("default")?;
        Some(ingress.observed.unwrap_or(ingress.address))
    }

    /// Each service's state now.
    pub fn service_states(&self) -> BTreeMap<String, ServiceState> {
        self.runners
            .iter()
            .map(|(n, r)| (n.clone(), *r.state.borrow()))
            .collect()
    }

    /// The process groups of the services running now (each leads a
    /// session of the same id).
    pub fn process_groups(&self) -> Vec<i32> {
        self.custody.all()
    }

    /// Resolves when a required service has failed for good (the
    /// environment should then be shut down).
    pub async fn failed(&self) -> EnvironmentError {
        let mut failure = self.failure.clone();
        loop {
            if let Some(error) = failure.borrow_and_update().clone() {
                return error;
            }
            if failure.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Stops every service in reverse start order (SIGTERM to its session,
    /// SIGKILL at its grace period), then the proxies.
    pub async fn shutdown(mut self) {
        self.stop_all().await;
        lifecycle(&self.log, EventKind::EnvironmentDown, None, info("down"));
        self.down_logged = true;
    }

    async fn stop_all(&mut self) {
        for name in self.start_order.iter().rev() {
            if let Some(runner) = self.runners.get_mut(name) {
                runner.stop.cancel();
                let _ = (&mut runner.task).await;
            }
        }
        self.stall_monitor.abort();
        self.proxies_cancel.cancel();
        for proxy in self.proxies.drain(..) {
            let _ = proxy.await;
        }
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        // Not shut down gracefully: no process may outlive the environment.
        let killed = self.custody.kill_all();
        self.custody.close();
        if !self.down_logged {
            lifecycle(
                &self.log,
                EventKind::EnvironmentDown,
                None,
                LifecycleInfo {
                    reason: Some(format!(
                        "dropped without a shutdown: {killed} service session{} killed",
                        if killed == 1 { "" } else { "s" }
                    )),
                    ..info("down")
                },
            );
        }
        for runner in self.runners.values() {
            runner.stop.cancel();
        }
        self.proxies_cancel.cancel();
        self.stall_monitor.abort();
    }
}

fn proxy_config(
    spec: &Spec,
    proxy: &graph::ProxyNode,
    target: SocketAddr,
) -> Result<ProxyConfig, EnvironmentError> {
    let source = proxy.source.as_str();
    let name = proxy.target.as_str();
    let mut config = match proxy.protocol {
        Protocol::Tcp => ProxyConfig::tcp(source, name, target),
        Protocol::Http | Protocol::Grpc => {
            let mut registry = tapmesh_protocols::grpc::SchemaRegistry::new();
            let resolve = |p: &PathBuf| spec.base_dir.join(p);
            for set in &proxy.proto.descriptor_sets {
                let bytes = std::fs::read(resolve(set)).map_err(|e| {
                    EnvironmentError::new(
                        Some(name),
                        format!("reading {}: {e}", resolve(set).display()),
                    )
                })?;
                registry.add_descriptor_set(&bytes).map_err(|e| {
                    EnvironmentError::new(Some(name), format!("{}: {e}", set.display()))
                })?;
            }
            if !proxy.proto.files.is_empty() {
                let files: Vec<PathBuf> = proxy.proto.files.iter().map(resolve).collect();
                let mut includes: Vec<PathBuf> = proxy.proto.include.iter().map(resolve).collect();
                if includes.is_empty() {
                    includes = files
                        .iter()
                        .filter_map(|f| f.parent().map(Path::to_path_buf))
                        .collect();
                }
                registry.add_proto_files(&files, &includes).map_err(|e| {
                    EnvironmentError::new(
                        Some(name),
                        format!("compiling the .proto files of {name}: {e}"),
                    )
                })?;
            }
            ProxyConfig::http(source, name, target, proxy.capture_limit).with_grpc(registry, true)
        }
        Protocol::Kafka => ProxyConfig::kafka(source, name, target, proxy.capture_limit),
    };
    config.ingress = proxy.ingress.as_str().into();
    Ok(config)
}

fn launchable(
    spec: &Spec,
    service: &Service,
    wiring: &Wiring,
    executable: Option<&PathBuf>,
) -> Result<Launchable, String> {
    let mut vars = wiring.env();
    let mut env = vars.clone();
    for (key, value) in &service.env {
        let value = expand(value, &vars)?;
        env.insert(key.clone(), value.clone());
        vars.insert(key.clone(), value);
    }
    let argv: Vec<String> = match &service.launch {
        Launch::Process { command } => command
            .iter()
            .map(|a| expand(a, &vars))
            .collect::<Result<_, _>>()?,
        Launch::Script { script } => vec!["sh".into(), "-c".into(), expand(script, &vars)?],
        Launch::Cargo { args, .. } => {
            let exe = executable.ok_or("not built")?;
            let mut argv = vec![exe.to_string_lossy().into_owned()];
            for a in args {
                argv.push(expand(a, &vars)?);
            }
            argv
        }
    };
    let dir = service
        .dir
        .as_ref()
        .map_or_else(|| spec.base_dir.clone(), |d| spec.base_dir.join(d));
    Ok(Launchable { argv, env, dir })
}

/// One service from waiting on its egress targets to stopped.
async fn run_service(mut cx: RunnerContext) {
    let name = cx.name.clone();
    let set_state = |cx: &RunnerContext, state: ServiceState| {
        cx.state.send_replace(state);
        *cx.last_change.lock().expect("last change lock") = Instant::now();
    };

    // Wait for every egress target to be ready.
    for (dependency, state) in &mut cx.depends_on {
        loop {
            let now = *state.borrow_and_update();
            match now {
                ServiceState::Ready => break,
                ServiceState::Failed | ServiceState::Stopped => {
                    let reason = format!(
                        "{name} was not started: {dependency}, which it calls, {}",
                        now.as_str()
                    );
                    lifecycle(
                        &cx.log,
                        EventKind::ServiceFailed,
                        Some(&name),
                        LifecycleInfo {
                            reason: Some(reason.clone()),
                            ..info("failed")
                        },
                    );
                    set_state(&cx, ServiceState::Failed);
                    if !cx.service.optional {
                        cx.failure.send_if_modified(|f| {
                            if f.is_none() {
                                *f = Some(EnvironmentError::new(Some(&name), reason));
                                true
                            } else {
                                false
                            }
                        });
                    }
                    return;
                }
                _ => {}
            }
            tokio::select! {
                _ = cx.stop.cancelled() => {
                    set_state(&cx, ServiceState::Stopped);
                    return;
                }
                changed = state.changed() => if changed.is_err() { return },
            }
        }
    }

    let policy = cx.service.restart;
    let mut restarts: u32 = 0;
    let mut ever_ready = false;
    loop {
        set_state(
            &cx,
            if restarts == 0 {
                ServiceState::Starting
            } else {
                ServiceState::Restarting
            },
        );
        let tail = LogTail::default();
        let pattern = match &cx.probe {
            Some((ReadyProbe::Log { pattern }, ..)) => regex::Regex::new(pattern).ok(),
            _ => None,
        };
        let (matched_tx, mut matched_rx) = watch::channel(false);
        let started = Instant::now();
        // The reserved ports are let go only now, just before the service
        // binds them.
        let (mut child, readers) = match process::spawn(
            &mut cx.reserved,
            &name,
            &cx.launchable,
            &cx.log_file,
            &cx.log,
            &tail,
            pattern,
            matched_tx,
            cx.custody.guardian_fd(),
        ) {
            Ok(spawned) => spawned,
            Err(e) => {
                fail(
                    &cx,
                    &name,
                    format!("{name} could not start: {e}"),
                    restarts,
                    &tail,
                );
                set_state(&cx, ServiceState::Failed);
                return;
            }
        };
        let pid = child.id().unwrap_or_default() as i32;
        cx.custody.adopt(&name, pid);
        lifecycle(
            &cx.log,
            EventKind::ServiceStarting,
            Some(&name),
            LifecycleInfo {
                pid: Some(pid as u32),
                restarts: (restarts > 0).then_some(restarts),
                reason: Some(cx.launchable.argv.join(" ")),
                ..info("starting")
            },
        );

        // Ready: the probe passes (or, with nothing to probe, it is still
        // running a moment after it started: one that dies on start, say on
        // a bad config, must not count as up even for an instant, or the
        // environment could report `up` between its crashes).
        let readiness = async {
            let Some((probe, addr, interval, timeout)) = &cx.probe else {
                tokio::time::sleep(UNPROBED_SETTLE).await;
                return Ok(());
            };
            let deadline = Instant::now() + *timeout;
            loop {
                let outcome = match probe {
                    ReadyProbe::Log { pattern } => {
                        if *matched_rx.borrow_and_update() {
                            Ok(())
                        } else {
                            Err(format!("no output line matched /{pattern}/ yet"))
                        }
                    }
                    other => readiness::probe_once(other, *addr).await,
                };
                let last_error = match outcome {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                };
                if Instant::now() >= deadline {
                    return Err(format!(
                        "not ready after {} (last probe: {last_error})",
                        humantime::format_duration(*timeout)
                    ));
                }
                tokio::time::sleep(*interval).await;
            }
        };
        let exit = tokio::select! {
            _ = cx.stop.cancelled() => None,
            status = child.wait() => Some(status),
            ready = readiness => {
                match ready {
                    Ok(()) => {
                        ever_ready = true;
                        set_state(&cx, ServiceState::Ready);
                        lifecycle(&cx.log, EventKind::ServiceReady, Some(&name), LifecycleInfo {
                            pid: Some(pid as u32),
                            reason: Some(format!("ready after {} ms", started.elapsed().as_millis())),
                            ..info("ready")
                        });
                        tokio::select! {
                            _ = cx.stop.cancelled() => None,
                            status = child.wait() => Some(status),
                        }
                    }
                    Err(reason) => {
                        // A readiness timeout fails the service for good.
                        stop::stop_child(&mut child, pid, cx.service.stop_grace).await;
                        cx.custody.release(&name, pid);
                        fail(&cx, &name, format!("{name} {reason}"), restarts, &tail);
                        set_state(&cx, ServiceState::Failed);
                        return;
                    }
                }
            }
        };
        let Some(status) = exit else {
            // Asked to stop.
            let status = stop::stop_child(&mut child, pid, cx.service.stop_grace).await;
            cx.custody.release(&name, pid);
            set_state(&cx, ServiceState::Stopped);
            let (exit_code, signal) = status.as_ref().map(stop::exit_fields).unwrap_or_default();
            lifecycle(
                &cx.log,
                EventKind::ServiceStopped,
                Some(&name),
                LifecycleInfo {
                    pid: Some(pid as u32),
                    reason: status
                        .as_ref()
                        .map(|s| format!("{name} {}", stop::describe_exit(s))),
                    exit_code,
                    signal,
                    ..info("stopped")
                },
            );
            return;
        };
        // It exited on its own: whatever it left in its session goes too,
        // and its last words are read before anyone reports on it.
        cx.custody.release(&name, pid);
        readers.finish(Duration::from_secs(1)).await;
        let how = match &status {
            Ok(s) => stop::describe_exit(s),
            Err(e) => format!("could not be waited for: {e}"),
        };
        let (exit_code, signal) = status.as_ref().map(stop::exit_fields).unwrap_or_default();
        // A healthy spell wipes the slate.
        if ever_ready && started.elapsed() >= policy.healthy_after {
            restarts = 0;
        }
        if restarts < policy.max_restarts {
            restarts += 1;
            let backoff = policy
                .backoff
                .saturating_mul(1u32 << (restarts - 1).min(16))
                .min(Duration::from_secs(30));
            lifecycle(
                &cx.log,
                EventKind::ServiceRestarting,
                Some(&name),
                LifecycleInfo {
                    reason: Some(format!(
                        "{name} {how}; restart {restarts} of {} in {}",
                        policy.max_restarts,
                        humantime::format_duration(backoff)
                    )),
                    exit_code,
                    signal,
                    restarts: Some(restarts),
                    ..info("restarting")
                },
            );
            set_state(&cx, ServiceState::Restarting);
            tokio::select! {
                _ = cx.stop.cancelled() => {
                    set_state(&cx, ServiceState::Stopped);
                    return;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            continue;
        }
        let after = if policy.max_restarts > 0 {
            format!(" (after {restarts} restarts)")
        } else {
            String::new()
        };
        let mut error_info = LifecycleInfo {
            reason: Some(format!("{name} {how}{after}")),
            exit_code,
            signal,
            restarts: Some(restarts),
            log_tail: tail.lines(),
            ..info("failed")
        };
        error_info.pid = Some(pid as u32);
        let reason = error_info.reason.clone().unwrap_or_default();
        lifecycle(&cx.log, EventKind::ServiceFailed, Some(&name), error_info);
        set_state(&cx, ServiceState::Failed);
        if !cx.service.optional {
            cx.failure.send_if_modified(|f| {
                if f.is_none() {
                    *f = Some(EnvironmentError {
                        service: Some(name.to_string()),
                        message: reason,
                        log_tail: tail.lines(),
                    });
                    true
                } else {
                    false
                }
            });
        }
        return;
    }
}

/// Publishes `service.failed` and, for a required service, the
/// environment's failure.
fn fail(cx: &RunnerContext, name: &str, reason: String, restarts: u32, tail: &LogTail) {
    lifecycle(
        &cx.log,
        EventKind::ServiceFailed,
        Some(name),
        LifecycleInfo {
            reason: Some(reason.clone()),
            restarts: Some(restarts),
            log_tail: tail.lines(),
            ..info("failed")
        },
    );
    if !cx.service.optional {
        cx.failure.send_if_modified(|f| {
            if f.is_none() {
                *f = Some(EnvironmentError {
                    service: Some(name.to_string()),
                    message: reason,
                    log_tail: tail.lines(),
                });
                true
            } else {
                false
            }
        });
    }
}

/// How long a service with nothing to probe must run before it counts as ready.
const UNPROBED_SETTLE: Duration = Duration::from_millis(250);

/// Publishes `progress.stall` when no service has changed state for
/// `after` while some are not ready, naming who waits on whom.
async fn watch_for_stalls(
    spec: Spec,
    states: BTreeMap<String, watch::Receiver<ServiceState>>,
    last_change: Arc<Mutex<Instant>>,
    log: EventLog,
    after: Duration,
) {
    let mut reported_at: Option<Instant> = None;
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let changed = *last_change.lock().expect("last change lock");
        let now: BTreeMap<&String, ServiceState> =
            states.iter().map(|(n, s)| (n, *s.borrow())).collect();
        if now.values().all(|s| {
            matches!(
                s,
                ServiceState::Ready | ServiceState::Failed | ServiceState::Stopped
            )
        }) {
            continue;
        }
        if changed.elapsed() < after
            || reported_at.is_some_and(|r| r >= changed && r.elapsed() < after)
        {
            continue;
        }
        let mut waiting = Vec::new();
        for (name, state) in &now {
            match state {
                ServiceState::Waiting => {
                    let on: Vec<String> = graph::dependencies(&spec, name)
                        .into_iter()
                        .filter(|d| now.get(d) != Some(&ServiceState::Ready))
                        .map(|d| format!("{d} ({})", now.get(&d).map_or("unknown", |s| s.as_str())))
                        .collect();
                    waiting.push(format!("{name} waits on {}", on.join(", ")));
                }
                ServiceState::Starting | ServiceState::Restarting | ServiceState::Building => {
                    waiting.push(format!("{name} is {} and not ready yet", state.as_str()));
                }
                _ => {}
            }
        }
        lifecycle(
            &log,
            EventKind::ProgressStall,
            None,
            LifecycleInfo {
                reason: Some(format!(
                    "nothing changed for {}",
                    humantime::format_duration(Duration::from_secs(changed.elapsed().as_secs()))
                )),
                waiting,
                ..info("stalled")
            },
        );
        reported_at = Some(Instant::now());
    }
}
