//! Checks across services, once each has been read: names, references,
//! cycles. Every problem is reported, each with its path.

use std::collections::{BTreeMap, BTreeSet};

use super::expand::{expand, expanded_fields, wiring_names};
use super::model::{env_name, Condition, Protocol, ReadyProbe, Service, Spec};
use super::FaultSpec;
use super::SpecError;

pub(super) fn validate(spec: &Spec, errors: &mut Vec<SpecError>) {
    let mut push = |path: String, message: String| errors.push(SpecError { path, message });

    if !spec.name.is_empty() && !usable_name(&spec.name) {
        push(
            "name".into(),
            format!("{:?}: use letters, digits, '-' and '_'", spec.name),
        );
    }
    // Names meet in environment variables upper-cased, '-' as '_': two
    // that meet there would overwrite each other's wiring.
    let mut by_env: BTreeMap<String, &str> = BTreeMap::new();
    for (name, service) in &spec.services {
        let path = format!("services.{name}");
        if name.contains('~') {
            push(
                path.clone(),
                "'~' is reserved for the nodes tapmesh adds (proxies, ~test)".into(),
            );
        } else if !usable_name(name) {
            push(
                path.clone(),
                format!("{name:?} is not a usable name: use letters, digits, '-' and '_'"),
            );
        }
        if let Some(other) = by_env.insert(env_name(name), name) {
            push(
                path.clone(),
                format!(
                    "duplicate name: {name:?} and {other:?} are both {} in the wiring",
                    env_name(name)
                ),
            );
        }
        references(spec, name, service, &mut push);
    }
    for (name, service) in &spec.services {
        depends_on(spec, name, service, &mut push);
        variables(spec, name, service, &mut push);
    }
    for cycle in cycles(spec) {
        let calls = |pair: &[String]| {
            spec.services[&pair[0]]
                .egresses
                .values()
                .any(|e| e.service == pair[1])
        };
        // Named as before when every step is an egress.
        let (path, what) = if cycle.windows(2).all(calls) {
            ("egresses", "egress cycle")
        } else if calls(&cycle[..2]) {
            ("egresses", "dependency cycle (egresses and depends_on)")
        } else {
            ("depends_on", "dependency cycle (egresses and depends_on)")
        };
        push(
            format!("services.{}.{path}", cycle[0]),
            format!("{what}: {}", cycle.join(" -> ")),
        );
    }
}

/// Its ingress and egress names, and where each egress leads.
fn references(spec: &Spec, name: &str, service: &Service, push: &mut impl FnMut(String, String)) {
    let path = format!("services.{name}");
    let mut wiring_names: BTreeMap<String, String> = BTreeMap::new();
    for ingress in service.ingresses.keys() {
        if !usable_name(ingress) {
            push(
                format!("{path}.ingresses.{ingress}"),
                format!("{ingress:?} is not a usable name"),
            );
        }
        if ingress != "default" {
            wiring_names.insert(env_name(ingress), format!("ingress {ingress:?}"));
        }
    }
    for (egress_name, egress) in &service.egresses {
        let epath = format!("{path}.egresses.{egress_name}");
        if !usable_name(egress_name) {
            push(
                epath.clone(),
                format!("{egress_name:?} is not a usable name"),
            );
        }
        if let Some(other) =
            wiring_names.insert(env_name(egress_name), format!("egress {egress_name:?}"))
        {
            push(
                epath.clone(),
                format!(
                    "duplicate name: egress {egress_name:?} and {other} both set {}_HOST",
                    env_name(egress_name)
                ),
            );
        }
        match spec.services.get(&egress.service) {
            None => push(
                format!("{epath}.service"),
                format!("unknown service {:?}", egress.service),
            ),
            Some(target) if !target.ingresses.contains_key(&egress.ingress) => {
                let known: Vec<&str> = target.ingresses.keys().map(String::as_str).collect();
                let known = if known.is_empty() {
                    "it has none".to_string()
                } else {
                    format!("it has {}", known.join(", "))
                };
                push(
                    format!("{epath}.ingress"),
                    format!(
                        "{:?} has no ingress {:?} ({known})",
                        egress.service, egress.ingress
                    ),
                );
            }
            Some(_) if egress.service == *name => push(
                format!("{epath}.service"),
                "a service cannot be its own egress".into(),
            ),
            Some(target) => {
                let protocol = target.ingresses[&egress.ingress].protocol;
                faults(spec, &epath, &egress.faults, protocol, push);
            }
        }
    }
}

/// An egress's faults need its proxy, and request faults an edge whose
/// requests the proxy reads.
fn faults(
    spec: &Spec,
    epath: &str,
    faults: &[FaultSpec],
    protocol: Protocol,
    push: &mut impl FnMut(String, String),
) {
    for (i, fault) in faults.iter().enumerate() {
        let at = format!("{epath}.faults[{i}]");
        if !spec.observe {
            push(
                at.clone(),
                "faults act through the edge's proxy: they need `observe: true`".into(),
            );
            continue;
        }
        if let Err(why) = crate::proxy::fault::not_built_yet(fault) {
            push(format!("{at}.attributes"), why);
            continue;
        }
        let http = matches!(protocol, Protocol::Http | Protocol::Grpc);
        if fault.action.is_request_fault() && !http {
            push(
                format!("{at}.type"),
                format!(
                    "a {} fault acts on HTTP requests; this edge is {} (connection faults act on every edge)",
                    fault.action.type_name(),
                    protocol.as_str()
                ),
            );
        }
    }
}

fn depends_on(spec: &Spec, name: &str, service: &Service, push: &mut impl FnMut(String, String)) {
    if service.is_external() {
        for (ingress, def) in &service.ingresses {
            if matches!(def.ready.probe, ReadyProbe::Log { .. }) {
                push(
                    format!("services.{name}.ingresses.{ingress}.ready"),
                    "an external service's output is not tapmesh's to read: use tcp, http or grpc"
                        .into(),
                );
            }
        }
    }
    for (dependency, condition) in &service.depends_on {
        let path = format!("services.{name}.depends_on.{dependency}");
        match spec.services.get(dependency) {
            None => push(path, format!("unknown service {dependency:?}")),
            Some(_) if dependency == name => push(path, "a service cannot depend on itself".into()),
            Some(target) if *condition == Condition::Completed && !target.job => push(
                path,
                format!("{dependency:?} is not a job (job: true), so it never completes"),
            ),
            Some(_) => {}
        }
    }
}

/// Every `$VAR` tapmesh expands names wiring, a key of the service's
/// `env` (not inside `env` itself) or a variable of tapmesh's own
/// environment.
fn variables(spec: &Spec, name: &str, service: &Service, push: &mut impl FnMut(String, String)) {
    let wiring = wiring_names(spec, service);
    let known = |own_env: bool| {
        let wiring = &wiring;
        move |var: &str| {
            (wiring.contains(var)
                || (own_env && service.env.contains_key(var))
                || std::env::var_os(var).is_some())
            .then(String::new)
        }
    };
    let mut check = |path: String, text: &str, own_env: bool| {
        if let Err(e) = expand(text, known(own_env)) {
            let hint = if own_env {
                "wiring, this service's env, or tapmesh's own environment"
            } else {
                "wiring or tapmesh's own environment"
            };
            push(
                format!("services.{name}.{path}"),
                format!("{e}: use {hint}"),
            );
        }
    };
    for (key, value) in &service.env {
        check(format!("env.{key}"), value, false);
    }
    for (path, text) in expanded_fields(service) {
        check(path, text, !service.is_external());
    }
}

fn usable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-')
}

/// Each cycle through egresses and `depends_on` once, as the names along it, back to the first.
fn cycles(spec: &Spec) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut seen_sets: BTreeSet<Vec<String>> = BTreeSet::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    for start in spec.services.keys() {
        let mut stack: Vec<&str> = Vec::new();
        walk(spec, start, &mut stack, &mut done, &mut |cycle| {
            let mut key: Vec<String> = cycle.iter().map(|s| s.to_string()).collect();
            key.sort();
            if seen_sets.insert(key) {
                let mut names: Vec<String> = cycle.iter().map(|s| s.to_string()).collect();
                names.push(cycle[0].to_string());
                found.push(names);
            }
        });
    }
    found
}

fn walk<'s>(
    spec: &'s Spec,
    node: &'s str,
    stack: &mut Vec<&'s str>,
    done: &mut BTreeSet<&'s str>,
    on_cycle: &mut dyn FnMut(&[&'s str]),
) {
    if let Some(at) = stack.iter().position(|n| *n == node) {
        on_cycle(&stack[at..]);
        return;
    }
    if done.contains(node) {
        return;
    }
    let Some(service) = spec.services.get(node) else {
        return;
    };
    stack.push(node);
    for dependency in service.dependencies().into_keys() {
        if dependency != node {
            walk(spec, dependency, stack, done, on_cycle);
        }
    }
    stack.pop();
    done.insert(node);
}
