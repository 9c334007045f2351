//! The environment spec: its types ([`Spec`] and below), parsing from YAML
//! or JSON (one schema; rig's JSON shape with `config` is accepted too),
//! defaults, and validation that reports every problem at once, each with
//! its path in the file (`services.api.egresses.db.service`).

mod confine;
mod expand;
mod fault;
mod managed;
mod model;
mod only;
mod parse;
mod units;
mod validate;

use std::path::Path;

pub use expand::{expand, wiring_names};
pub use fault::*;
pub use managed::*;
pub use model::*;
pub use units::{parse_duration, parse_size};

/// One problem in a spec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpecError {
    /// Where, as dotted keys (`services.api.ingresses.default.protocol`);
    /// empty for the file as a whole.
    pub path: String,
    pub message: String,
}

/// Every problem found in a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    fn one(path: &str, message: String) -> Self {
        Self(vec![SpecError {
            path: path.to_string(),
            message,
        }])
    }
}

impl std::fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if e.path.is_empty() {
                write!(f, "{}", e.message)?;
            } else {
                write!(f, "{}: {}", e.path, e.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// The largest spec read. Real ones are kilobytes; parsing one of tiny
/// services takes up to ~70 times its size in memory (a 1 MiB spec of
/// 18,000 services peaks at 72 MB), so a larger file is refused unread.
pub const MAX_SPEC_BYTES: usize = 1 << 20;

fn too_large(len: u64) -> SpecErrors {
    SpecErrors::one(
        "",
        format!(
            "the spec is {len} bytes; a spec may be at most {MAX_SPEC_BYTES} bytes ({} MiB)",
            MAX_SPEC_BYTES >> 20
        ),
    )
}

impl Spec {
    /// Reads, defaults and validates the spec in `path` (YAML or JSON).
    /// Relative paths in it are taken from the file's directory.
    pub fn from_path(path: &Path) -> Result<Spec, SpecErrors> {
        let cannot_read = |e| SpecErrors::one("", format!("cannot read {}: {e}", path.display()));
        let len = std::fs::metadata(path).map_err(cannot_read)?.len();
        if len > MAX_SPEC_BYTES as u64 {
            return Err(too_large(len));
        }
        let text = std::fs::read_to_string(path).map_err(cannot_read)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        Self::parse_in(&text, &dir)
    }

    /// A spec from text, with relative paths taken from `base_dir`.
    pub fn parse_in(text: &str, base_dir: &Path) -> Result<Spec, SpecErrors> {
        Self::parse_checked(text, base_dir, false)
    }

    /// A spec from a client that is not trusted with the machine's files
    /// (one posted to the daemon): as [`Spec::parse_in`], and every file it
    /// names must lie under `base_dir`.
    pub fn parse_confined(text: &str, base_dir: &Path) -> Result<Spec, SpecErrors> {
        Self::parse_checked(text, base_dir, true)
    }

    fn parse_checked(text: &str, base_dir: &Path, confined: bool) -> Result<Spec, SpecErrors> {
        if text.len() > MAX_SPEC_BYTES {
            return Err(too_large(text.len() as u64));
        }
        let (spec, mut errors) = parse::parse(text, base_dir)?;
        validate::validate(&spec, &mut errors);
        if confined {
            confine::confine(&spec, &mut errors);
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(SpecErrors(errors))
        }
    }

    /// A spec from text; relative paths are taken from the current directory.
    pub fn parse(text: &str) -> Result<Spec, SpecErrors> {
        let dir = std::env::current_dir().unwrap_or_else(|_| ".".into());
        Self::parse_in(text, &dir)
    }

    /// Every egress edge: (source, egress name, target service, target ingress).
    pub fn edges(&self) -> impl Iterator<Item = (&Service, &str, &Egress)> {
        self.services.values().flat_map(|s| {
            s.egresses
                .iter()
                .map(move |(name, e)| (s, name.as_str(), e))
        })
    }
}

#[cfg(test)]
mod tests;
