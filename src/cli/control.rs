//! `tapmesh restart|stop|start ENV SERVICE`: one service of an environment
//! the daemon runs, changed while the rest runs (the daemon's
//! `POST /environments/{id}/services/{name}/…`). Answers once it has
//! played out: the service ready again, stopped, or failed.

use anyhow::{bail, Result};
use clap::Args;

use super::serve::DEFAULT_LISTEN;
use super::source::{block_on, post_json, resolve, EventSource};
use crate::environment::Control;

#[derive(Debug, Args)]
pub struct ControlArgs {
    /// The environment: `http://127.0.0.1:7411/environments/ID`, the
    /// daemon's address when it runs one environment, or an id on the
    /// daemon at 127.0.0.1:7411.
    #[arg(value_name = "ENV")]
    environment: String,
    /// The service, by its name in the spec.
    service: String,
}

pub fn run(asked: Control, args: ControlArgs) -> Result<bool> {
    let (authority, environment) = where_is(&args.environment)?;
    let answer = block_on(async {
        let id = resolve(&authority, environment.as_deref()).await?;
        let path = format!(
            "/environments/{id}/services/{}/{}",
            args.service,
            asked.as_str()
        );
        post_json(&authority, &path)
            .await
            .map_err(|e| anyhow::anyhow!("{} {}: {e}", asked.as_str(), args.service))
    })?;
    println!(
        "{} {}: {}",
        asked.as_str(),
        args.service,
        answer["state"].as_str().unwrap_or("?")
    );
    Ok(true)
}

/// The daemon's `host:port` and the environment's id, if named.
pub(super) fn where_is(text: &str) -> Result<(String, Option<String>)> {
    if !text.contains("://") {
        if text.contains('/') {
            bail!("{text:?}: write an environment's id or its http:// address");
        }
        return Ok((DEFAULT_LISTEN.to_string(), Some(text.to_string())));
    }
    match EventSource::parse(text).map_err(anyhow::Error::msg)? {
        EventSource::Daemon {
            authority,
            environment,
        } => Ok((authority, environment)),
        EventSource::File(_) => bail!("{text:?} is not a daemon's address"),
    }
}
