//! An environment's lifecycle: ports (`ports`), proxies (`proxies`),
//! builds and wiring (`plan`), then one runner per service (`runner`, with
//! its hooks in `hooks`) that waits for what it depends on, starts,
//! becomes ready, restarts or completes; stall reports (`stall`); and
//! shutdown in reverse order.
//!
//! Every service leads its own session with a parent-death signal, a
//! guardian process kills what is left of those sessions if tapmesh dies,
//! and a crash record lets the next tapmesh clean up if both died (see
//! `custody`), so no process outlives the environment.

pub mod cargo_build;
mod control;
mod crash_record;
mod custody;
mod dependencies;
mod exit;
mod external;
mod guardian;
mod hooks;
mod managed;
mod options;
mod plan;
mod ports;
mod probes;
mod process;
mod procfs;
mod proxies;
mod readiness;
mod redeploy;
mod runner;
mod stall;
mod stop;
pub mod wiring;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::events::ServiceState;
use crate::events::{EventDraft, EventKind, EventLog, LifecycleInfo, LifecycleState, Payload};
use crate::graph;
use crate::spec::Spec;
pub use control::Control;
use control::Request;
pub use crash_record::{clean_up_after_crashes, CleanedUp};
use custody::Custody;
use dependencies::Progress;
pub use options::{default_cache_dir, default_state_dir, EnvironmentError, EnvironmentOptions};
use plan::{Inputs, Plan};
use ports::Ports;
pub use process::LOG_TAIL_LINES;
use proxies::Proxies;
pub use redeploy::RedeployError;
use runner::{info, Shared};

/// The addresses of one ingress.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Endpoint {
    /// Where the service listens.
    pub address: SocketAddr,
    /// Where the `~test` node reaches it through its proxy (observe on).
    pub observed: Option<SocketAddr>,
}

/// The processes and proxies of a started environment. Dropping it kills
/// every process it started; [`Orchestration::shutdown`] stops them
/// gracefully, in reverse order.
pub struct Orchestration {
    log: EventLog,
    endpoints: BTreeMap<String, BTreeMap<String, Endpoint>>,
    start_order: Vec<String>,
    services: BTreeMap<String, ServiceHandle>,
    proxies: Proxies,
    custody: Custody,
    failure: watch::Receiver<Option<EnvironmentError>>,
    stall_monitor: JoinHandle<()>,
    dir: PathBuf,
    /// `environment.down` was logged (by a graceful shutdown).
    down_logged: bool,
    /// What one service is planned again from; one redeploy at a time.
    replan: tokio::sync::Mutex<redeploy::Replan>,
}

struct ServiceHandle {
    progress: watch::Receiver<Progress>,
    stop: CancellationToken,
    task: JoinHandle<()>,
    control: mpsc::UnboundedSender<Request>,
    external: bool,
}

/// Why a restart, stop or start was not done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("no service named {0:?}")]
    NoSuchService(String),
    #[error("{0} is external: tapmesh does not start or stop it")]
    External(String),
    #[error("{0}")]
    Failed(String),
    #[error("the environment is stopping")]
    Stopping,
}

fn did_not_start(error: &EnvironmentError) -> LifecycleInfo {
    LifecycleInfo {
        reason: Some(format!("did not start: {}", error.message)),
        ..info(LifecycleState::Down)
    }
}

fn environment_event(log: &EventLog, kind: EventKind, info: LifecycleInfo) {
    log.append(EventDraft::now(kind, Payload::Lifecycle(info)));
}

impl Orchestration {
    /// Starts `spec`: reserves ports, starts the proxies (observe on),
    /// builds `cargo` services, then starts every service once what it
    /// depends on is ready (or started, or completed). Returns once every
    /// required service is ready and every required job has completed, or
    /// with the first required service's failure (everything started then
    /// stopped).
    pub async fn start(
        spec: &Spec,
        log: EventLog,
        options: EnvironmentOptions,
    ) -> Result<Orchestration, EnvironmentError> {
        let mut running = match Self::launch(spec, log.clone(), options).await {
            Ok(running) => running,
            Err(error) => {
                // A build error, a schema that does not compile, an address
                // that does not resolve: nothing ran, and readers waiting
                // for `environment.up` learn it will not come.
                environment_event(&log, EventKind::EnvironmentDown, did_not_start(&error));
                return Err(error);
            }
        };
        running.until_up(spec).await?;
        Ok(running)
    }

    /// Everything up to the runners started.
    async fn launch(
        spec: &Spec,
        log: EventLog,
        options: EnvironmentOptions,
    ) -> Result<Orchestration, EnvironmentError> {
        let logs_dir = options.dir.join("logs");
        std::fs::create_dir_all(&logs_dir).map_err(|e| {
            EnvironmentError::new(None, format!("creating {}: {e}", logs_dir.display()))
        })?;
        let graph = graph::build(spec);
        let order = graph::start_order(spec);
        let mut ports = Ports::reserve(spec).await?;
        let proxies = Proxies::start(spec, &graph, &ports, &log)?;
        let endpoints = plan::endpoints(&ports, &graph, &proxies.addrs);
        let executables = plan::build(spec, &order, &log, &options.cache_dir).await?;
        let custody = Custody::new(options.state_dir.as_deref(), &spec.name, &options.dir);
        let (failure_tx, failure) = watch::channel(None);
        let shared = Shared {
            log: log.clone(),
            custody: custody.clone(),
            failure: failure_tx,
            last_change: Arc::new(Mutex::new(Instant::now())),
        };
        let inputs = Inputs {
            spec,
            graph: &graph,
            order: &order,
            proxies: &proxies.addrs,
            executables: &executables,
            dir: &options.dir,
            shared: &shared,
        };
        let Plan {
            runners,
            progress,
            mut controls,
        } = plan::plan(inputs, &mut ports)?;
        let proxies_addrs = proxies.addrs.clone();
        let services = runners
            .into_iter()
            .map(|runner| {
                let name = runner.name.to_string();
                let handle = ServiceHandle {
                    progress: progress[&name].clone(),
                    stop: runner.stop.clone(),
                    external: runner.launch.is_none(),
                    control: controls
                        .remove(&name)
                        .expect("a control channel per service"),
                    task: tokio::spawn(runner.run()),
                };
                (name, handle)
            })
            .collect();
        let stall_monitor = tokio::spawn(stall::watch_for_stalls(
            spec.clone(),
            progress,
            shared.last_change.clone(),
            log.clone(),
            options.stall_after,
        ));
        Ok(Orchestration {
            log,
            endpoints,
            start_order: order.clone(),
            services,
            proxies,
            custody,
            failure,
            stall_monitor,
            dir: options.dir.clone(),
            down_logged: false,
            replan: tokio::sync::Mutex::new(redeploy::Replan {
                spec: spec.clone(),
                graph,
                order,
                ports,
                proxies: proxies_addrs,
                executables,
                dir: options.dir.clone(),
                cache_dir: options.cache_dir.clone(),
                shared,
            }),
        })
    }

    /// Up once every required service is ready and every required job has
    /// completed (an optional one may have failed), or down with the first
    /// failure.
    async fn until_up(&mut self, spec: &Spec) -> Result<(), EnvironmentError> {
        loop {
            let failed = self.failure.borrow().clone();
            if let Some(error) = failed {
                self.stop_all().await;
                environment_event(&self.log, EventKind::EnvironmentDown, did_not_start(&error));
                self.down_logged = true;
                return Err(error);
            }
            let settled = spec.services.iter().all(|(name, service)| {
                let state = self.services[name].progress.borrow().state;
                let done = if service.job {
                    ServiceState::Completed
                } else {
                    ServiceState::Ready
                };
                state == done
                    || (service.optional
                        && matches!(state, ServiceState::Failed | ServiceState::Stopped))
            });
            if settled {
                break;
            }
            let mut failure = self.failure.clone();
            tokio::select! {
                _ = failure.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        environment_event(
            &self.log,
            EventKind::EnvironmentUp,
            LifecycleInfo {
                endpoints: Some(serde_json::to_value(&self.endpoints).unwrap_or_default()),
                ..info(LifecycleState::Up)
            },
        );
        Ok(())
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
    /// Each observed edge's faults, by edge name (`orders->inventory`).
    pub fn faults(&self) -> &BTreeMap<String, std::sync::Arc<crate::proxy::fault::EdgeFaults>> {
        &self.proxies.faults
    }

    pub fn endpoints(&self) -> &BTreeMap<String, BTreeMap<String, Endpoint>> {
        &self.endpoints
    }

    /// Each service's state now.
    pub fn service_states(&self) -> BTreeMap<String, ServiceState> {
        self.services
            .iter()
            .map(|(n, s)| (n.clone(), s.progress.borrow().state))
            .collect()
    }

    /// Restarts, stops or starts one service while the rest runs; returns
    /// its state once the request has played out (ready, stopped,
    /// completed or failed). It keeps its ports and proxies; nothing that
    /// depends on it is restarted.
    pub async fn control(
        &self,
        service: &str,
        asked: Control,
    ) -> Result<ServiceState, ControlError> {
        let handle = self
            .services
            .get(service)
            .ok_or_else(|| ControlError::NoSuchService(service.to_string()))?;
        if handle.external {
            return Err(ControlError::External(service.to_string()));
        }
        let mut progress = handle.progress.clone();
        let now = progress.borrow_and_update().state;
        let parked = matches!(
            now,
            ServiceState::Stopped | ServiceState::Failed | ServiceState::Completed
        );
        // Nothing to do, and nothing would change to say it was done.
        if (asked == Control::Stop && parked) || (asked == Control::Start && !parked) {
            return Ok(now);
        }
        handle
            .control
            .send(Request::Control(asked))
            .map_err(|_| ControlError::Stopping)?;
        redeploy::settle(progress, asked, service).await
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
        environment_event(
            &self.log,
            EventKind::EnvironmentDown,
            info(LifecycleState::Down),
        );
        self.down_logged = true;
    }

    async fn stop_all(&mut self) {
        for name in self.start_order.iter().rev() {
            if let Some(service) = self.services.get_mut(name) {
                service.stop.cancel();
                let _ = (&mut service.task).await;
            }
        }
        self.stall_monitor.abort();
        self.proxies.stop().await;
        self.remove_scratch();
    }

    /// `TAPMESH_TEMP_DIR`s go with the environment, and data directories
    /// kept outside it.
    fn remove_scratch(&self) {
        managed::remove_linked(&self.dir);
        let tmp = self.dir.join("tmp");
        if let Err(e) = std::fs::remove_dir_all(&tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %tmp.display(), "could not remove the scratch directories: {e}");
            }
        }
    }
}

impl Drop for Orchestration {
    fn drop(&mut self) {
        // Not shut down gracefully: no process may outlive the environment.
        let killed = self.custody.kill_all();
        self.custody.close();
        if !self.down_logged {
            environment_event(
                &self.log,
                EventKind::EnvironmentDown,
                LifecycleInfo {
                    reason: Some(format!(
                        "dropped without a shutdown: {killed} service session{} killed",
                        if killed == 1 { "" } else { "s" }
                    )),
                    ..info(LifecycleState::Down)
                },
            );
            self.remove_scratch();
        }
        for service in self.services.values() {
            service.stop.cancel();
        }
        self.stall_monitor.abort();
    }
}
