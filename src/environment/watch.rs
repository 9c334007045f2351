//! `tapmesh up --watch`: the spec file, each `cargo` service's workspace
//! and each service's `watch:` paths, polled; a change of content (not of
//! modification time: a file saved unchanged is no change) redeploys only
//! the services it concerns.
//!
//! Polling rather than inotify: it sees edits on any filesystem (network
//! mounts, editors that replace files by renaming), and with each file's
//! hash kept under its size and modification time a poll reads only what
//! was touched. A change is acted on once two polls in a row agree, so an
//! editor's several writes make one redeploy.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::{Environment, Error};
use crate::orchestrate::RedeployError;
use crate::spec::{Launch, Spec};

/// How often the watched files are looked at.
const POLL: Duration = Duration::from_millis(400);

/// What a watch did about a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchReport {
    /// These services were rebuilt (if `cargo`) and restarted, with why.
    Redeployed(Vec<(String, String)>),
    /// The spec changed but nothing in it concerns a running service's
    /// commands.
    NothingToRedeploy,
    /// The edited spec is invalid: every problem, with its path; nothing
    /// was changed.
    Invalid(String),
    /// The change was not applied (it changes the environment's shape, a
    /// build failed, a service did not come back).
    NotApplied(String),
}

/// The content hashes of files, kept under their size and mtime.
#[derive(Default)]
struct Hashes {
    known: HashMap<PathBuf, (u64, SystemTime, [u8; 32])>,
}

impl Hashes {
    /// One hash for everything under `root` (a file or a directory, minus
    /// hidden entries and `target/`); a missing path hashes as empty.
    fn tree(&mut self, root: &Path) -> [u8; 32] {
        let mut files = Vec::new();
        collect(root, &mut files);
        files.sort();
        let mut hasher = Sha256::new();
        for file in files {
            hasher.update(file.to_string_lossy().as_bytes());
            hasher.update(self.file(&file));
        }
        hasher.finalize().into()
    }

    fn file(&mut self, path: &Path) -> [u8; 32] {
        let Ok(meta) = std::fs::metadata(path) else {
            return [0; 32];
        };
        let stamp = (
            meta.len(),
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        );
        // A modification time is only as fine as the kernel's clock tick:
        // two same-sized writes within one tick look alike, so a file
        // touched in the last seconds is read again.
        let settled = stamp
            .1
            .elapsed()
            .is_ok_and(|age| age > Duration::from_secs(2));
        if let Some((len, modified, hash)) = self.known.get(path) {
            if settled && (*len, *modified) == stamp {
                return *hash;
            }
        }
        let hash: [u8; 32] = Sha256::digest(std::fs::read(path).unwrap_or_default()).into();
        self.known
            .insert(path.to_path_buf(), (stamp.0, stamp.1, hash));
        hash
    }
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        out.push(path.to_path_buf());
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        collect(&entry.path(), out);
    }
}

/// Where a `cargo` package's build reads from: its workspace's root (the
/// nearest directory up with a `[workspace]` manifest), else itself.
fn workspace_of(package: &Path) -> PathBuf {
    let mut dir = Some(package);
    while let Some(d) = dir {
        let manifest = std::fs::read_to_string(d.join("Cargo.toml")).unwrap_or_default();
        if manifest.contains("[workspace]") {
            return d.to_path_buf();
        }
        dir = d.parent();
    }
    package.to_path_buf()
}

/// Each service's watched roots: its workspace (cargo) and `watch:` paths.
fn roots(spec: &Spec) -> BTreeMap<String, Vec<PathBuf>> {
    spec.services
        .iter()
        .map(|(name, service)| {
            let mut roots: Vec<PathBuf> = service
                .watch
                .iter()
                .map(|p| spec.base_dir.join(p))
                .collect();
            if let Launch::Cargo { package, .. } = &service.launch {
                roots.push(workspace_of(&spec.base_dir.join(package)));
            }
            (name.clone(), roots)
        })
        .collect()
}

/// A snapshot: the spec file's hash and each service's roots' hashes.
#[derive(Clone, PartialEq)]
struct Snapshot {
    spec: [u8; 32],
    services: BTreeMap<String, Vec<(PathBuf, [u8; 32])>>,
}

fn snapshot(hashes: &mut Hashes, spec_path: &Path, spec: &Spec) -> Snapshot {
    Snapshot {
        spec: hashes.file(spec_path),
        services: roots(spec)
            .into_iter()
            .map(|(name, roots)| {
                let hashed = roots.into_iter().map(|r| {
                    let h = hashes.tree(&r);
                    (r, h)
                });
                (name, hashed.collect())
            })
            .collect(),
    }
}

impl Environment {
    /// Watches `spec_path` (the file this environment was started from;
    /// `only` as given to `up --only`), each `cargo` service's workspace and
    /// each service's `watch:` paths, and redeploys what a change concerns.
    /// Runs until dropped; each outcome goes to `report`.
    pub async fn watch(
        &self,
        spec_path: &Path,
        only: &[String],
        mut report: impl FnMut(WatchReport),
    ) {
        let mut hashes = Hashes::default();
        // Started from this file a moment ago; if it is already broken, it
        // is watched until it is fixed, like any later edit.
        let current = load(spec_path, only).ok().map(|spec| {
            let seen = snapshot(&mut hashes, spec_path, &spec);
            (spec, seen)
        });
        self.watch_from(spec_path, only, current, hashes, &mut report)
            .await
    }

    async fn watch_from(
        &self,
        spec_path: &Path,
        only: &[String],
        mut current: Option<(Spec, Snapshot)>,
        mut hashes: Hashes,
        mut report: impl FnMut(WatchReport),
    ) {
        loop {
            tokio::time::sleep(POLL).await;
            let Some((spec, seen)) = &current else {
                if let Ok(spec) = load(spec_path, only) {
                    let seen = snapshot(&mut hashes, spec_path, &spec);
                    current = Some((spec, seen));
                }
                continue;
            };
            let now = snapshot(&mut hashes, spec_path, spec);
            if now == *seen {
                continue;
            }
            // Settle: act once a second look agrees.
            tokio::time::sleep(POLL).await;
            if snapshot(&mut hashes, spec_path, spec) != now {
                continue;
            }
            let (outcome, applied) = self.apply(spec_path, only, spec, seen, &now).await;
            report(outcome);
            // Whatever happened, this content has been answered: the next
            // report is for the next change.
            let spec = applied.unwrap_or_else(|| spec.clone());
            let seen = snapshot(&mut hashes, spec_path, &spec);
            current = Some((spec, seen));
        }
    }

    /// Applies one change; the spec now running, if it changed.
    async fn apply(
        &self,
        spec_path: &Path,
        only: &[String],
        spec: &Spec,
        seen: &Snapshot,
        now: &Snapshot,
    ) -> (WatchReport, Option<Spec>) {
        let mut changed = BTreeMap::new();
        for (name, roots) in &now.services {
            let before = seen.services.get(name);
            for (root, hash) in roots {
                let was = before.and_then(|b| b.iter().find(|(r, _)| r == root));
                if was.is_some_and(|(_, h)| h != hash) {
                    let shown = root.strip_prefix(&spec.base_dir).unwrap_or(root);
                    changed
                        .entry(name.clone())
                        .or_insert_with(|| format!("{} changed", shown.display()));
                }
            }
        }
        let next = if now.spec != seen.spec {
            match load(spec_path, only) {
                Ok(next) => next,
                Err(problems) => return (WatchReport::Invalid(problems), None),
            }
        } else {
            spec.clone()
        };
        match self.redeploy(next.clone(), changed).await {
            Ok(done) if done.is_empty() => (WatchReport::NothingToRedeploy, Some(next)),
            Ok(done) => (WatchReport::Redeployed(done), Some(next)),
            Err(Error::Redeploy(e @ (RedeployError::Shape(_) | RedeployError::Build(_)))) => {
                (WatchReport::NotApplied(e.to_string()), None)
            }
            Err(e) => (WatchReport::NotApplied(e.to_string()), Some(next)),
        }
    }
}

/// The spec file, as `up` read it; every problem as text.
fn load(path: &Path, only: &[String]) -> Result<Spec, String> {
    let spec = Spec::from_path(path).and_then(|spec| {
        if only.is_empty() {
            Ok(spec)
        } else {
            spec.only(only)
        }
    });
    spec.map_err(|errors| errors.to_string())
}
