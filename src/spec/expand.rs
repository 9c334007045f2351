//! Variables in a spec: which names a service's wiring sets, and `$VAR` /
//! `${VAR}` expansion. Validation uses both, so an unknown name is refused
//! before anything starts; the orchestrator expands with the real values.

use std::collections::BTreeSet;

use super::model::{env_name, Launch, Service, Spec};

/// The names a service's wiring sets, as the orchestrator sets them:
/// `HOST`/`PORT`/`HOSTPORT` for the default ingress, `<INGRESS>_…` for
/// named ones, `<EGRESS>_…` per egress (and `_URL` or `_BROKERS` to a
/// managed server), and tapmesh's own.
pub fn wiring_names(spec: &Spec, service: &Service) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut put = |prefix: &str| {
        for suffix in ["HOST", "PORT", "HOSTPORT"] {
            names.insert(format!("{prefix}{suffix}"));
        }
    };
    if !service.is_external() {
        for ingress in service.ingresses.keys() {
            if ingress == "default" {
                put("");
            } else {
                put(&format!("{}_", env_name(ingress)));
            }
        }
        let mut ready_made = Vec::new();
        for (egress, e) in &service.egresses {
            put(&format!("{}_", env_name(egress)));
            if let Some(Launch::Managed(m)) = spec.services.get(&e.service).map(|t| &t.launch) {
                ready_made.push(format!("{}_{}", env_name(egress), m.egress_variable("").0));
            }
        }
        names.extend(ready_made);
        for own in ["TAPMESH_WIRING", "TAPMESH_TEMP_DIR", "TAPMESH_ENV_DIR"] {
            names.insert(own.to_string());
        }
    }
    names
}

/// Expands `$NAME` and `${NAME}` by `lookup` (`$$` is a literal `$`; a `$`
/// before anything else stays as it is). An unknown name is an error
/// naming it, so a typo does not start a service with an empty port.
pub fn expand(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, next) = if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            (&body[..end], &body[end + 1..])
        } else {
            let len = name_len(after);
            if len == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            (&after[..len], &after[len..])
        };
        let value = lookup(name).ok_or_else(|| format!("${name} is not set (in {text:?})"))?;
        out.push_str(&value);
        rest = next;
    }
    out.push_str(rest);
    Ok(out)
}

/// A shell-style name at the start of `s`: a letter or `_`, then letters,
/// digits and `_`.
fn name_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    if !bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return 0;
    }
    bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(bytes.len())
}

/// Every text of `service` tapmesh expands, with its path under the
/// service: argv, cargo args, env values, hook commands, addresses. A
/// `script` (service or hook) is not among them: the shell expands it,
/// from the same names in its environment.
pub fn expanded_fields(service: &Service) -> Vec<(String, &str)> {
    let mut fields: Vec<(String, &str)> = Vec::new();
    match &service.launch {
        Launch::Process { command } => {
            for (i, a) in command.iter().enumerate() {
                fields.push((format!("command[{i}]"), a));
            }
        }
        Launch::Cargo { args, .. } => {
            for (i, a) in args.iter().enumerate() {
                fields.push((format!("args[{i}]"), a));
            }
        }
        Launch::Script { .. } | Launch::External | Launch::Managed(_) => {}
    }
    for (hook, name) in [(&service.prestart, "prestart"), (&service.init, "init")] {
        if let Some(super::Hook {
            run: super::HookRun::Command(argv),
            ..
        }) = hook
        {
            for (i, a) in argv.iter().enumerate() {
                fields.push((format!("{name}.command[{i}]"), a));
            }
        }
    }
    for (ingress, def) in &service.ingresses {
        if let Some(address) = &def.address {
            fields.push((format!("ingresses.{ingress}.address"), address));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        (name == "PORT").then(|| "7000".to_string())
    }

    #[test]
    fn both_forms_expand_alike() {
        assert_eq!(expand("--port=${PORT}", vars).unwrap(), "--port=7000");
        assert_eq!(expand("--port=$PORT", vars).unwrap(), "--port=7000");
        assert_eq!(expand("$PORT/x${PORT}y", vars).unwrap(), "7000/x7000y");
        assert_eq!(
            expand("cost $$5, $ and $1", vars).unwrap(),
            "cost $5, $ and $1"
        );
        assert!(expand("$NOPE_NOT_SET", vars)
            .unwrap_err()
            .contains("$NOPE_NOT_SET is not set"));
        assert!(expand("${NOPE}", vars).unwrap_err().contains("$NOPE"));
        assert!(expand("${PORT", vars).unwrap_err().contains("unclosed"));
    }
}
