//! Where an environment keeps its files, how patient it is, and how it
//! says it could not start.

use std::path::PathBuf;
use std::time::Duration;

/// Where an environment keeps its files, and how patient it is.
#[derive(Debug, Clone)]
pub struct EnvironmentOptions {
    /// Logs (`logs/<service>.log`) and scratch directories (`tmp/<service>`)
    /// go here.
    pub dir: PathBuf,
    /// Built `cargo` services are cached here (shared by environments).
    pub cache_dir: PathBuf,
    /// `progress.stall` after this long with no service changing state.
    pub stall_after: Duration,
    /// Where the crash record goes (see `clean_up_after_crashes`); none
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
    pub(crate) fn new(service: Option<&str>, message: impl Into<String>) -> Self {
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
