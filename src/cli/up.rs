//! `tapmesh up SPEC`: run an environment in the foreground. Services'
//! states and endpoints as they start, then one line per traffic event;
//! Ctrl-C or SIGTERM stops everything in reverse order.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::environment::{clean_up_after_crashes, Environment, Outcome};
use crate::events::{EventFilter, EventKind, EventLog, Payload};
use crate::orchestrate::default_state_dir;
use crate::spec::Spec;

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
}

pub fn run(args: UpArgs) -> Result<bool> {
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
    eprintln!("tapmesh up {name}: events in {}", events_path.display());

    let runtime = tokio::runtime::Runtime::new()?;
    let ok = runtime.block_on(async {
        let printer = tokio::spawn(print_events(log.clone(), args.logs));
        let outcome = tokio::select! {
            started = prepared.start() => Some(started),
            signal = wait_for_stop_signal() => {
                eprintln!("tapmesh: {signal} while starting; stopping");
                None
            }
        };
        let ok = match outcome {
            None => true,
            Some(Err(error)) => {
                eprintln!("tapmesh: {error}");
                false
            }
            Some(Ok(environment)) => {
                let stop_after = async {
                    match args.r#for {
                        Some(d) => tokio::time::sleep(d).await,
                        None => std::future::pending().await,
                    }
                };
                let (ok, outcome, reason) = tokio::select! {
                    signal = wait_for_stop_signal() => {
                        eprintln!("tapmesh: {signal}; stopping {name}");
                        (true, Outcome::Stopped, Some(signal.to_string()))
                    }
                    _ = stop_after => (true, Outcome::Stopped, Some("--for elapsed".to_string())),
                    error = environment.failed() => {
                        eprintln!("tapmesh: {name} stopped: {}", error.report());
                        (false, Outcome::Failed, Some(error.report()))
                    }
                };
                if let Err(e) = environment.down_because(outcome, reason).await {
                    eprintln!("tapmesh: {e}");
                }
                ok
            }
        };
        // Let the printer catch up with the last events.
        tokio::time::sleep(Duration::from_millis(100)).await;
        printer.abort();
        ok
    });
    let flushed = log.flush();
    drop(runtime);
    flushed.context("writing the events file")?;
    eprintln!("tapmesh: events kept in {}", events_path.display());
    Ok(ok)
}

/// Lifecycle as it happens, the endpoints once up, then one line per
/// traffic event.
async fn print_events(log: EventLog, logs: bool) {
    let mut events = log.subscribe(1, EventFilter::all());
    let mut out = std::io::stdout();
    while let Some(event) = events.recv().await {
        let service = event.service.as_deref().unwrap_or("");
        let line = match (&event.kind, &event.payload) {
            (EventKind::ServiceLog, Payload::Log(l)) => {
                if !logs {
                    continue;
                }
                format!("  {service:>12} | {}", l.line)
            }
            (EventKind::EnvironmentUp, Payload::Lifecycle(info)) => {
                let mut text = format!("environment {} is up\n", log.environment());
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
            (kind, Payload::Lifecycle(info)) => {
                let reason = info.reason.as_deref().unwrap_or("");
                let mut text = format!("{:>14} {service:>12} {reason}", kind.as_str());
                for waiting in &info.waiting {
                    text.push_str(&format!("\n{:>27} {waiting}", ""));
                }
                for line in &info.log_tail {
                    text.push_str(&format!("\n{:>27} | {line}", ""));
                }
                text
            }
            _ => crate::inspect::one_line(&event),
        };
        let _ = writeln!(out, "{line}");
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
