//! Part of an environment: the named services and everything they depend
//! on (`tapmesh up --only a,b`).

use std::collections::BTreeSet;

use super::{Spec, SpecError, SpecErrors};

impl Spec {
    /// This spec cut down to `names` and what they depend on, through
    /// egresses and `depends_on`, at any depth. An unknown name is an error
    /// naming the services there are.
    pub fn only<S: AsRef<str>>(&self, names: &[S]) -> Result<Spec, SpecErrors> {
        let unknown: Vec<SpecError> = names
            .iter()
            .map(AsRef::as_ref)
            .filter(|n| !self.services.contains_key(*n))
            .map(|n| SpecError {
                path: "only".into(),
                message: format!(
                    "unknown service {n:?} (the spec has {})",
                    self.services.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
            .collect();
        if !unknown.is_empty() {
            return Err(SpecErrors(unknown));
        }
        let mut keep: BTreeSet<&str> = BTreeSet::new();
        let mut pending: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
        while let Some(name) = pending.pop() {
            if keep.insert(name) {
                pending.extend(self.services[name].dependencies().into_keys());
            }
        }
        let mut spec = self.clone();
        spec.services.retain(|name, _| keep.contains(name.as_str()));
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closure_through_egresses_and_depends_on() {
        let spec = Spec::parse(
            r#"
name: e
services:
  db: { command: [db], ingresses: { default: {} } }
  migrate: { command: [m], job: true, egresses: { db: db } }
  api: { command: [api], ingresses: { default: {} }, depends_on: { migrate: completed } }
  web: { command: [web], egresses: { api: api } }
  other: { command: [o] }
"#,
        )
        .unwrap();
        let only = spec.only(&["api"]).unwrap();
        assert_eq!(
            only.services.keys().collect::<Vec<_>>(),
            ["api", "db", "migrate"]
        );
        let err = spec.only(&["api", "nope"]).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(err.0[0].message.contains("\"nope\""), "{err}");
    }
}
