//! The `cargo` service type: build a package's binary or example once,
//! cached by a hash of its sources, then run the executable.
//!
//! Builds use their own target directory under the cache, so they never
//! wait on (or for) the lock of a build the user has running.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};

use crate::spec::CargoTarget;

/// Whether the executable was built now or found built for these sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    Built,
    Cached,
}

/// Builds (or finds) `target` of the package in `package_dir`; returns the
/// executable. Concurrent calls for one package are serialized by the
/// caller (see `Builds` in the supervisor).
pub async fn build(
    package_dir: &Path,
    target: &CargoTarget,
    cache_dir: &Path,
) -> Result<(PathBuf, BuildOutcome), String> {
    let manifest = package_dir.join("Cargo.toml");
    if !manifest.exists() {
        return Err(format!("no Cargo.toml in {}", package_dir.display()));
    }
    let hash =
        source_hash(package_dir).map_err(|e| format!("reading {}: {e}", package_dir.display()))?;
    let name = match target {
        CargoTarget::Default => "default".to_string(),
        CargoTarget::Bin(b) => format!("bin-{b}"),
        CargoTarget::Example(e) => format!("example-{e}"),
    };
    let cached = cache_dir.join("bin").join(format!("{name}-{hash}"));
    if cached.exists() {
        return Ok((cached, BuildOutcome::Cached));
    }
    let target_dir = cache_dir.join("target");
    let mut command =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format=json-render-diagnostics");
    match target {
        CargoTarget::Default => {}
        CargoTarget::Bin(b) => {
            command.args(["--bin", b]);
        }
        CargoTarget::Example(e) => {
            command.args(["--example", e]);
        }
    }
    let output = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("running cargo: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return Err(format!(
            "cargo build failed ({}):\n{}",
            output.status,
            tail.join("\n")
        ));
    }
    let executable = executable_from_messages(&output.stdout, target)
        .ok_or_else(|| "cargo build produced no executable for that target".to_string())?;
    std::fs::create_dir_all(cached.parent().expect("a bin dir")).map_err(|e| e.to_string())?;
    // A copy (not the target dir's file), so a later build of other sources
    // cannot change what this hash names.
    // Its own partial file: environments started at once (tests, the
    // daemon) may build and cache the same service together.
    static PARTIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let partial = cached.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        PARTIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::copy(&executable, &partial)
        .map_err(|e| format!("caching {}: {e}", executable.display()))?;
    std::fs::rename(&partial, &cached).map_err(|e| e.to_string())?;
    Ok((cached, BuildOutcome::Built))
}

/// The executable cargo reported for the wanted target.
fn executable_from_messages(stdout: &[u8], target: &CargoTarget) -> Option<PathBuf> {
    let mut found = None;
    for line in stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(executable) = message["executable"].as_str() else {
            continue;
        };
        let kinds = &message["target"]["kind"];
        let name = message["target"]["name"].as_str().unwrap_or("");
        let kind_is = |k: &str| kinds.as_array().is_some_and(|a| a.iter().any(|x| x == k));
        let wanted = match target {
            CargoTarget::Default => kind_is("bin"),
            CargoTarget::Bin(b) => kind_is("bin") && name == b,
            CargoTarget::Example(e) => kind_is("example") && name == e,
        };
        if wanted {
            found = Some(PathBuf::from(executable));
        }
    }
    found
}

/// A hash of every file of the package but `target/` and dot-directories,
/// by relative path and content.
fn source_hash(dir: &Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for relative in files {
        hasher.update(relative.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(dir.join(&relative))?);
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(12).map(|b| format!("{b:02x}")).collect())
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect(root, &path, out)?;
        } else {
            out.push(path.strip_prefix(root).expect("under root").to_path_buf());
        }
    }
    Ok(())
}
