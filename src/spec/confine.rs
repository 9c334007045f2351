//! For a spec that came from elsewhere (posted to the daemon): every file
//! it names must lie under its `base_dir`. Without this a posted spec
//! could make tapmesh open any file the daemon can read, and a compile
//! error could show a piece of it.

use std::path::{Component, Path, PathBuf};

use super::model::{Launch, Spec};
use super::SpecError;

/// Adds a problem for every path in `spec` that leads outside its
/// `base_dir`, lexically (`..`, absolute paths) or through a symlink.
pub(super) fn confine(spec: &Spec, errors: &mut Vec<SpecError>) {
    let base = normalize(&spec.base_dir);
    let real_base = base.canonicalize().unwrap_or_else(|_| base.clone());
    let mut check = |path: String, file: &Path| {
        if let Some(why) = escapes(&base, &real_base, file) {
            errors.push(SpecError {
                path,
                message: format!(
                    "{} {why}: a posted spec may name only files under its base_dir ({})",
                    file.display(),
                    base.display()
                ),
            });
        }
    };
    for (name, service) in &spec.services {
        let path = format!("services.{name}");
        if let Some(dir) = &service.dir {
            check(format!("{path}.dir"), dir);
        }
        if let Launch::Cargo { package, .. } = &service.launch {
            check(format!("{path}.package"), package);
        }
        for (ingress, def) in &service.ingresses {
            let ppath = format!("{path}.ingresses.{ingress}.proto");
            let lists = [
                ("files", &def.proto.files),
                ("include", &def.proto.include),
                ("descriptor_sets", &def.proto.descriptor_sets),
            ];
            for (key, files) in lists {
                for (i, file) in files.iter().enumerate() {
                    check(format!("{ppath}.{key}.{i}"), file);
                }
            }
        }
    }
}

/// Why `file` (relative to `base`, or absolute) is not under `base`.
fn escapes(base: &Path, real_base: &Path, file: &Path) -> Option<&'static str> {
    let joined = normalize(&base.join(file));
    if !joined.starts_with(base) {
        return Some("is outside it");
    }
    // What exists is followed through its symlinks; what does not yet
    // exist cannot be read either.
    match joined.canonicalize() {
        Ok(real) if !real.starts_with(real_base) => Some("leads outside it through a symlink"),
        _ => None,
    }
}

/// `path` with `.` and `..` resolved by name, not by the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        std::fs::create_dir_all(base.join("protos")).unwrap();
        std::os::unix::fs::symlink("/etc", base.join("etc")).unwrap();
        let real = base.canonicalize().unwrap();
        for ok in ["protos/a.proto", "./protos/../protos", "new/file.proto"] {
            assert_eq!(escapes(&base, &real, Path::new(ok)), None, "{ok}");
        }
        assert_eq!(
            escapes(&base, &real, &base.join("protos/a.proto")),
            None,
            "an absolute path under the base"
        );
        for bad in ["/etc/passwd", "../x.proto", "protos/../../x", "etc/passwd"] {
            assert!(escapes(&base, &real, Path::new(bad)).is_some(), "{bad}");
        }
    }
}
