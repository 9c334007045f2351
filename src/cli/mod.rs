//! The `tapmesh` command line.

mod control;
mod fault;
mod inspect;
mod kafka_mock;
mod logging;
mod proxy;
mod serve;
mod source;
mod up;
mod validate;

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
    /// Run the environment a spec describes, observing every edge, until
    /// Ctrl-C.
    Up(up::UpArgs),
    /// Run the daemon: environments posted to its HTTP API as specs, their
    /// events served as SSE and NDJSON.
    Serve(serve::ServeArgs),
    /// Check a spec: every problem, each with its path; exit status 1 if any.
    Validate(validate::ValidateArgs),
    /// Print events from an events file or the daemon, filtered, as a
    /// table or JSON.
    Events(inspect::EventsArgs),
    /// Summarise traffic per edge (calls, errors, latency percentiles, bytes).
    Traffic(inspect::TrafficArgs),
    /// Export events: HTTP exchanges as HAR 1.2, or JSON Lines.
    Export(inspect::ExportArgs),
    /// Restart one service of an environment the daemon runs, while the
    /// rest runs; answers once it is ready again.
    Restart(control::ControlArgs),
    /// Stop one service of an environment the daemon runs (until started).
    Stop(control::ControlArgs),
    /// Start a stopped, failed or completed service of an environment the
    /// daemon runs (a job runs again).
    Start(control::ControlArgs),
    /// Faults on an environment's edges: add, list, clear.
    Fault(fault::FaultArgs),
    /// Run librdkafka's mock Kafka cluster on a port (what a `kafka`
    /// service with `engine: mock` runs).
    KafkaMock(kafka_mock::KafkaMockArgs),
}

/// Parses the command line, runs the command and turns its result into the
/// process's exit code. Logs go to stderr (`RUST_LOG` sets the level),
/// but `up`'s (see [`logging`]).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `up` shows the environment on the terminal; its log goes to a file.
    logging::init(matches!(&cli.command, Command::Up(args) if !args.verbose()));
    let result = match cli.command {
        Command::Up(args) => exit_status(up::run(args)),
        Command::Serve(args) => serve::run(args),
        Command::Validate(args) => exit_status(validate::run(args)),
        Command::Proxy(args) => proxy::run(args),
        Command::Events(args) => inspect::events(args),
        Command::Traffic(args) => inspect::traffic(args),
        Command::Export(args) => inspect::export(args),
        Command::KafkaMock(args) => kafka_mock::run(args),
        Command::Restart(args) => {
            exit_status(control::run(crate::environment::Control::Restart, args))
        }
        Command::Stop(args) => exit_status(control::run(crate::environment::Control::Stop, args)),
        Command::Start(args) => exit_status(control::run(crate::environment::Control::Start, args)),
        Command::Fault(args) => exit_status(fault::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Unsuccessful>() => ExitCode::FAILURE,
        // The reader went away (`tapmesh events … | head`): nothing to say.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tapmesh: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A command that already said what went wrong and only needs exit status 1.
#[derive(Debug, thiserror::Error)]
#[error("unsuccessful")]
struct Unsuccessful;

fn exit_status(result: anyhow::Result<bool>) -> anyhow::Result<()> {
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(Unsuccessful.into()),
        Err(e) => Err(e),
    }
}
