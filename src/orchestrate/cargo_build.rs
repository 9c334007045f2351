//! The `cargo` service type: build a package's binary or example once,
//! cached by a hash of its workspace's sources (every member, the
//! workspace's `Cargo.toml` and `Cargo.lock`: a change to a sibling crate
//! it depends on, or to a locked version, must rebuild it), then run the
//! executable.
//!
//! Builds use their own target directory under the cache, so they never
//! wait on (or for) the lock of a build the user has running.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::events::BuildProgress;
use crate::spec::CargoTarget;

mod progress;

use progress::Tracker;

/// Whether the executable was built now or found built for these sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    Built,
    Cached,
}

/// Builds (or finds) `target` of the package in `package_dir`; returns the
/// executable. Builds sharing `cache_dir` at once (several environments)
/// wait for each other on cargo's lock of the target directory. While it
/// builds, `progress` hears of every unit cargo finishes (and of the total
/// once cargo's progress bar has told it); a cached build says nothing.
pub async fn build(
    package_dir: &Path,
    target: &CargoTarget,
    cache_dir: &Path,
    progress: impl FnMut(&BuildProgress) + Send,
) -> Result<(PathBuf, BuildOutcome), String> {
    let manifest = package_dir.join("Cargo.toml");
    if !manifest.exists() {
        return Err(format!("no Cargo.toml in {}", package_dir.display()));
    }
    let workspace = workspace_root(&manifest).await?;
    let hash =
        source_hash(&workspace).map_err(|e| format!("reading {}: {e}", workspace.display()))?;
    let name = match target {
        CargoTarget::Default => "default".to_string(),
        CargoTarget::Bin(b) => format!("bin-{b}"),
        CargoTarget::Example(e) => format!("example-{e}"),
    };
    let cached = cache_dir.join("bin").join(format!("{name}-{hash}"));
    if cached.exists() {
        return Ok((cached, BuildOutcome::Cached));
    }
    let executable = cargo_build(&manifest, &cache_dir.join("target"), target, progress)
        .await?
        .ok_or_else(|| "cargo build produced no executable for that target".to_string())?;
    // Hashed again: the build may have written the workspace's Cargo.lock,
    // and the next start must find this executable under what it hashes.
    let hash =
        source_hash(&workspace).map_err(|e| format!("reading {}: {e}", workspace.display()))?;
    let cached = cache_dir.join("bin").join(format!("{name}-{hash}"));
    cache(&executable, &cached)?;
    Ok((cached, BuildOutcome::Built))
}

/// Copies `executable` to `cached`: a copy (not the target dir's file), so
/// a later build of other sources cannot change what the hash names.
fn cache(executable: &Path, cached: &Path) -> Result<(), String> {
    std::fs::create_dir_all(cached.parent().expect("a bin dir")).map_err(|e| e.to_string())?;
    // Its own partial file: environments started at once (tests, the
    // daemon) may build and cache the same service together.
    static PARTIALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let partial = cached.with_extension(format!(
        "partial-{}-{}",
        std::process::id(),
        PARTIALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::copy(executable, &partial)
        .map_err(|e| format!("caching {}: {e}", executable.display()))?;
    std::fs::rename(&partial, cached).map_err(|e| e.to_string())
}

/// Runs `cargo build` of `target`, telling `progress` of each unit cargo
/// finishes; the executable it reported for the target, or the last lines
/// of what it said when it failed.
async fn cargo_build(
    manifest: &Path,
    target_dir: &Path,
    target: &CargoTarget,
    mut progress: impl FnMut(&BuildProgress) + Send,
) -> Result<Option<PathBuf>, String> {
    let mut command =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .arg("--message-format=json-render-diagnostics")
        // Its progress bar on a pipe too: the only place cargo says how
        // many units the build has.
        .env("CARGO_TERM_PROGRESS_WHEN", "always")
        .env("CARGO_TERM_PROGRESS_WIDTH", "200");
    match target {
        CargoTarget::Default => {}
        CargoTarget::Bin(b) => {
            command.args(["--bin", b]);
        }
        CargoTarget::Example(e) => {
            command.args(["--example", e]);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = {
        let _forking = super::process::forking();
        command.spawn()
    }
    .map_err(|e| format!("running cargo: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let mut messages = BufReader::new(stdout).split(b'\n');
    let mut tracker = Tracker::default();
    let mut executable = None;
    let mut buf = vec![0u8; 8 << 10];
    let (mut stdout_open, mut stderr_open) = (true, true);
    while stdout_open || stderr_open {
        let changed = tokio::select! {
            line = messages.next_segment(), if stdout_open => match line {
                Ok(Some(line)) => match serde_json::from_slice::<serde_json::Value>(&line) {
                    Ok(message) => {
                        if let Some(exe) = wanted_executable(&message, target) {
                            executable = Some(exe);
                        }
                        tracker.message(&message)
                    }
                    Err(_) => false,
                },
                Ok(None) | Err(_) => {
                    stdout_open = false;
                    false
                }
            },
            read = stderr.read(&mut buf), if stderr_open => match read {
                Ok(n) if n > 0 => tracker.stderr(&buf[..n]),
                Ok(_) | Err(_) => {
                    stderr_open = false;
                    tracker.stderr_closed()
                }
            },
        };
        if changed {
            progress(tracker.progress());
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build failed ({status}):\n{}",
            tracker.tail().join("\n")
        ));
    }
    Ok(executable)
}

/// The executable a `compiler-artifact` message reports, if it is of the
/// wanted target.
fn wanted_executable(message: &serde_json::Value, target: &CargoTarget) -> Option<PathBuf> {
    if message["reason"] != "compiler-artifact" {
        return None;
    }
    let executable = message["executable"].as_str()?;
    let kinds = &message["target"]["kind"];
    let name = message["target"]["name"].as_str().unwrap_or("");
    let kind_is = |k: &str| kinds.as_array().is_some_and(|a| a.iter().any(|x| x == k));
    let wanted = match target {
        CargoTarget::Default => kind_is("bin"),
        CargoTarget::Bin(b) => kind_is("bin") && name == b,
        CargoTarget::Example(e) => kind_is("example") && name == e,
    };
    wanted.then(|| PathBuf::from(executable))
}

/// The root of the workspace `manifest` belongs to (its own directory if
/// it is not a member of one).
async fn workspace_root(manifest: &Path) -> Result<PathBuf, String> {
    let mut command =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args([
            "locate-project",
            "--workspace",
            "--message-format",
            "plain",
            "--manifest-path",
        ])
        .arg(manifest)
        .stdin(Stdio::null());
    let output = super::process::output(&mut command)
        .await
        .map_err(|e| format!("running cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo cannot read {}: {}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let root = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    Ok(root
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.parent().unwrap_or(Path::new(".")).to_path_buf()))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// A workspace with a binary that prints a constant from a sibling
    /// library: changing the library must rebuild the binary.
    #[tokio::test]
    async fn a_change_to_a_sibling_crate_rebuilds_and_an_unchanged_workspace_is_cached() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        for (path, text) in [
            ("Cargo.toml", "[workspace]\nmembers = [\"app\", \"common\"]\nresolver = \"2\"\n"),
            ("common/Cargo.toml", "[package]\nname = \"common\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"),
            ("common/src/lib.rs", "pub const GREETING: &str = \"one\";\n"),
            ("app/Cargo.toml", "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ncommon = { path = \"../common\" }\n"),
            ("app/src/main.rs", "fn main() { println!(\"{}\", common::GREETING); }\n"),
        ] {
            write(&ws.join(path), text);
        }
        let cache = dir.path().join("cache");
        let run = |exe: &Path| {
            let out = std::process::Command::new(exe).output().unwrap();
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        };

        let app = ws.join("app");
        let mut heard = Vec::new();
        let (first, outcome) = build(&app, &CargoTarget::Default, &cache, |p| {
            heard.push(p.clone())
        })
        .await
        .unwrap();
        assert_eq!(outcome, BuildOutcome::Built);
        assert_eq!(run(&first), "one");
        // Each unit as it finished (common, then app), then the build done.
        let compiled: Vec<u32> = heard.iter().map(|p| p.compiled).collect();
        assert!(compiled.windows(2).all(|w| w[0] <= w[1]), "{heard:?}");
        assert!(compiled.contains(&1), "{heard:?}");
        let last = heard.last().unwrap();
        assert_eq!((last.compiled, last.total), (2, Some(2)), "{heard:?}");
        let mut heard_again = 0;
        let (again, outcome) = build(&app, &CargoTarget::Default, &cache, |_| heard_again += 1)
            .await
            .unwrap();
        assert_eq!(heard_again, 0, "a cached build has no progress");
        assert_eq!(
            (again.as_path(), outcome),
            (first.as_path(), BuildOutcome::Cached)
        );

        write(
            &ws.join("common/src/lib.rs"),
            "pub const GREETING: &str = \"two\";\n",
        );
        let (second, outcome) = build(&app, &CargoTarget::Default, &cache, |_| {})
            .await
            .unwrap();
        assert_eq!(outcome, BuildOutcome::Built);
        assert_ne!(second, first);
        assert_eq!(run(&second), "two");
        // The first build is still cached under its own hash.
        assert_eq!(run(&first), "one");
    }
}
