//! The `tapmesh` command line.

mod inspect;
mod proxy;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Run local environments of services and observe every call between them.
#[derive(Debug, Parser)]
#[command(name = "tapmesh", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Observe one edge: relay connections from --listen to --target and
    /// write what crosses it as JSON Lines events.
    Proxy(proxy::ProxyArgs),
    /// Print events from an events file, filtered, as a table or JSON.
    Events(inspect::EventsArgs),
    /// Summarise traffic per edge (calls, errors, latency percentiles, bytes).
    Traffic(inspect::TrafficArgs),
    /// Export events: HTTP exchanges as HAR 1.2, or JSON Lines.
    Export(inspect::ExportArgs),
}

/// Parses the command line, runs the command and turns its result into the
/// process's exit code. Logs go to stderr (`RUST_LOG` sets the level).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // Reporting a failed log write goes through eprintln!, which panics
        // when stderr is closed; a proxy must outlive whoever read its logs.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let result = match cli.command {
        Command::Proxy(args) => proxy::run(args),
        Command::Events(args) => inspect::events(args),
        Command::Traffic(args) => inspect::traffic(args),
        Command::Export(args) => inspect::export(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tapmesh: {e:#}");
            ExitCode::FAILURE
        }
    }
}
