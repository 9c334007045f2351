//! `tapmesh serve`: the daemon. Environments are posted to it as specs,
//! run in the background, and served over HTTP (see `server`).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::environment::clean_up_after_crashes;
use crate::server::{self, Daemon, DaemonConfig};

/// The daemon's port when `--listen` is not given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7411";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the API listens. Port 0 picks a free one (printed on stdout).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Environments' directories (events, logs, summary) go here (default:
    /// $XDG_STATE_HOME/tapmesh, else ~/.local/state/tapmesh).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Builds of `cargo` services are cached here (default:
    /// $XDG_CACHE_HOME/tapmesh, else ~/.cache/tapmesh).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Every environment's time to live unless its POST says `?ttl=`.
    #[arg(long, value_parser = humantime::parse_duration)]
    ttl: Option<Duration>,
    /// Exit after this long with no environment running and no request.
    #[arg(long, value_parser = humantime::parse_duration)]
    idle_timeout: Option<Duration>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    if !args.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %args.listen,
            "the API starts processes on request and has no authentication: anyone who reaches {} can run commands as you",
            args.listen
        );
    }
    let mut config = DaemonConfig {
        default_ttl: args.ttl,
        idle_timeout: args.idle_timeout,
        ..DaemonConfig::default()
    };
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    if let Some(dir) = args.cache_dir {
        config.cache_dir = dir;
    }
    for cleaned in clean_up_after_crashes(&config.state_dir) {
        eprintln!("tapmesh serve: {cleaned}");
    }
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let daemon = Daemon::new(config);
        let stopping = daemon.stopping();
        let server = tokio::spawn(server::serve(
            listener,
            daemon.router(),
            stopping.clone().cancelled_owned(),
        ));
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "tapmesh serve: listening on http://{addr}")?;
            out.flush()?;
        }
        tokio::select! {
            signal = super::up::wait_for_stop_signal() => {
                eprintln!("tapmesh serve: {signal}; stopping every environment");
            }
            _ = daemon.idle() => {
                eprintln!("tapmesh serve: idle; stopping");
            }
        }
        daemon.stop_all().await;
        // Streams of stopped environments end by themselves; give slow
        // readers a moment, then go.
        if tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .is_err()
        {
            tracing::warn!("some API connections were still open at exit");
        }
        Ok(())
    })
}
