//! `tapmesh up SPEC`: run an environment in the foreground. A table of
//! the services while they start (plain lines when stdout is not a
//! terminal), then one line per traffic event (`view`); Ctrl-C, SIGTERM or
//! stdout's reader going away stops everything in reverse order.
//! tapmesh's own log goes to `<dir>/tapmesh.log` (stderr with `-v`).

mod board;
mod lines;
mod term;
mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::logging;
use crate::environment::{
    clean_up_after_crashes, Environment, Outcome, PreparedEnvironment, WatchReport,
};
use crate::orchestrate::default_state_dir;
use crate::server::{self, HostedEnvironment, Registry};
use crate::spec::Spec;
use view::View;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The spec file (YAML or JSON).
    spec: PathBuf,
    /// Where to keep the environment's events and logs (default: a new
    /// directory under $XDG_STATE_HOME/tapmesh, else ~/.local/state/tapmesh).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also print every line the services write.
    #[arg(long)]
    logs: bool,
    /// Stop by itself after this long (e.g. 30s); default: run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    r#for: Option<Duration>,
    /// Start only these services (comma-separated) and what they depend on.
    #[arg(long, value_delimiter = ',', value_name = "SERVICE,…")]
    only: Vec<String>,
    /// tapmesh's own log lines on stderr (default: in the environment's
    /// directory, tapmesh.log).
    #[arg(short, long)]
    verbose: bool,
    /// Redeploy on change: an edit to the spec file, a `cargo` service's
    /// sources or a service's `watch:` paths rebuilds and restarts only
    /// the services it concerns; the rest, the proxies and the event log
    /// keep running.
    #[arg(long)]
    watch: bool,
    /// Where the web view listens (default: a free port on 127.0.0.1).
    #[arg(long, value_name = "ADDR", conflicts_with = "no_web")]
    web: Option<SocketAddr>,
    /// No web view.
    #[arg(long)]
    no_web: bool,
}

impl UpArgs {
    pub fn verbose(&self) -> bool {
        self.verbose
    }
}

pub fn run(args: UpArgs) -> Result<bool> {
    let result = run_held(args);
    // Lines held for a log file that never opened (the spec was refused,
    // the directory could not be made) are not lost.
    logging::release();
    result
}

fn run_held(args: UpArgs) -> Result<bool> {
    let spec = Spec::from_path(&args.spec).and_then(|spec| {
        if args.only.is_empty() {
            Ok(spec)
        } else {
            spec.only(&args.only)
        }
    });
    let spec = match spec {
        Ok(spec) => spec,
        Err(errors) => {
            eprintln!(
                "{}: not started, {} problem{}:",
                args.spec.display(),
                errors.0.len(),
                if errors.0.len() == 1 { "" } else { "s" }
            );
            eprintln!("{errors}");
            return Ok(false);
        }
    };
    // Said here, on the terminal, rather than in the log lines `prepare`
    // would write for them.
    for cleaned in clean_up_after_crashes(&default_state_dir()) {
        eprintln!("tapmesh: {cleaned}");
    }
    let mut builder = Environment::builder(spec);
    if let Some(dir) = &args.dir {
        builder = builder.dir(dir);
    }
    let prepared = builder.prepare()?;
    let name = prepared.spec().name.clone();
    let log = prepared.log().clone();
    let events_path = prepared.dir().join("events.jsonl");
    let mut said = format!("tapmesh up {name}: events in {}", events_path.display());
    if !args.verbose {
        let log_path = prepared.dir().join("tapmesh.log");
        match logging::to_file(&log_path) {
            Ok(()) => said.push_str(&format!(", tapmesh's log in {}", log_path.display())),
            Err(e) => {
                eprintln!("tapmesh: cannot write {}: {e}", log_path.display());
                logging::release();
            }
        }
    }
    eprintln!("{said}");

    let runtime = tokio::runtime::Runtime::new()?;
    let mut web_hosted = None;
    if !args.no_web {
        let addr = args.web.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        // Inside the runtime: the hosted environment follows the log's
        // lifecycle events on a task of its own.
        let _inside = runtime.enter();
        let hosted = HostedEnvironment::observed(prepared.id(), &name, log.clone())
            .with_dir(prepared.dir())
            .with_spec(prepared.spec());
        web_hosted = Some(hosted.clone());
        let bound = runtime.block_on(start_web(addr, hosted))?;
        eprintln!("web view: http://{bound}/");
    }
    let view = View::start(prepared.spec(), &log, args.logs)?;
    let sayer = view.sayer();
    if !args.verbose {
        logging::relay_warnings(Some(Box::new(move |line| sayer.note(line))));
    } else if view.is_live() {
        logging::relay_lines(Some(Box::new(move |line| sayer.log(line))));
    }
    let watch = args.watch.then(|| (args.spec.clone(), args.only.clone()));
    let ok = runtime.block_on(drive(prepared, &view, args.r#for, watch, web_hosted));
    logging::relay_warnings(None);
    logging::relay_lines(None);
    view.finish();
    let flushed = log.flush();
    drop(runtime);
    flushed.context("writing the events file")?;
    eprintln!("tapmesh: events kept in {}", events_path.display());
    Ok(ok)
}

/// Serves the web view (and the read-only API) of this one environment
/// on `addr` until the runtime stops; the address it listens on.
async fn start_web(addr: SocketAddr, hosted: HostedEnvironment) -> Result<SocketAddr> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the web view shows every captured request and body to anyone who reaches {addr}");
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("web view: listening on {addr}"))?;
    let bound = listener.local_addr()?;
    let registry = Registry::new();
    registry.insert(hosted);
    tokio::spawn(server::serve(
        listener,
        server::router(registry),
        std::future::pending(),
    ));
    Ok(bound)
}

/// Starts the environment and runs it until a stop is asked for (or
/// `stop_after` passes), or a required service fails; whether it ended
/// as asked.
async fn drive(
    prepared: PreparedEnvironment,
    view: &View,
    stop_after: Option<Duration>,
    watch: Option<(PathBuf, Vec<String>)>,
    web: Option<HostedEnvironment>,
) -> bool {
    let name = prepared.spec().name.clone();
    let closed = view.closed();
    let started = tokio::select! {
        started = prepared.start() => started,
        why = stop_requested(&closed) => {
            view.note(format!("{why} while starting; stopping"));
            return true;
        }
    };
    let environment = match started {
        Ok(environment) => environment,
        Err(error) => {
            view.note(error.to_string());
            return false;
        }
    };
    // The web view's address takes `tapmesh fault` while it runs.
    if let Some(web) = &web {
        web.set_faults(Some(environment.fault_handles()));
    }
    let stop_after = async {
        match stop_after {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let watching = async {
        match &watch {
            Some((path, only)) => {
                view.note(format!(
                    "watching {} and the services' sources",
                    path.display()
                ));
                environment
                    .watch(path, only, |report| view.note(said(report)))
                    .await
            }
            None => std::future::pending().await,
        }
    };
    let (ok, outcome, reason) = tokio::select! {
        _ = watching => unreachable!("a watch runs until dropped"),
        why = stop_requested(&closed) => {
            view.note(format!("{why}; stopping {name}"));
            (true, Outcome::Stopped, Some(why.to_string()))
        }
        _ = stop_after => (true, Outcome::Stopped, Some("--for elapsed".to_string())),
        error = environment.failed() => {
            view.note(format!("{name} stopped: {}", error.report()));
            (false, Outcome::Failed, Some(error.report()))
        }
    };
    if let Some(web) = &web {
        web.set_faults(None);
    }
    if let Err(e) = environment.down_because(outcome, reason).await {
        view.note(e.to_string());
    }
    ok
}

/// A line for what `--watch` did.
fn said(report: WatchReport) -> String {
    match report {
        WatchReport::Redeployed(done) => {
            let what: Vec<String> = done.iter().map(|(s, why)| format!("{s} ({why})")).collect();
            format!("redeployed {}", what.join(", "))
        }
        WatchReport::NothingToRedeploy => "the spec changed; no service's commands did".into(),
        WatchReport::Invalid(problems) => {
            format!("the edited spec is invalid; nothing changed:\n{problems}")
        }
        WatchReport::NotApplied(why) => format!("the change was {why}"),
    }
}

/// Ctrl-C, SIGTERM, or stdout's reader gone: which.
async fn stop_requested(output_closed: &CancellationToken) -> &'static str {
    tokio::select! {
        signal = wait_for_stop_signal() => signal,
        _ = output_closed.cancelled() => "its output closed",
    }
}

/// Resolves on Ctrl-C or SIGTERM, naming which.
pub(crate) async fn wait_for_stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}
