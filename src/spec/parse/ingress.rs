//! An ingress (protocol, readiness, proto sources, an external address),
//! an egress and a restart policy.

use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{join, Reader};
use crate::spec::model::*;

impl Reader {
    pub(super) fn ingress(&mut self, path: &str, value: &Value) -> Option<Ingress> {
        let empty = Value::Object(Map::new());
        let value = if value.is_null() { &empty } else { value };
        let map = self.object(path, value, &["protocol", "ready", "proto", "address"])?;
        let address = map
            .get("address")
            .and_then(|v| self.string(&join(path, "address"), v));
        let protocol = match map.get("protocol") {
            None => Some(Protocol::Tcp),
            Some(v) => match self.string(&join(path, "protocol"), v).as_deref() {
                Some("tcp") => Some(Protocol::Tcp),
                Some("http") => Some(Protocol::Http),
                Some("grpc") => Some(Protocol::Grpc),
                Some("kafka") => Some(Protocol::Kafka),
                Some("postgres") => Some(Protocol::Postgres),
                Some("redis") => Some(Protocol::Redis),
                Some(other) => {
                    self.error(
                        &join(path, "protocol"),
                        format!(
                            "unknown protocol {other:?} (tcp, http, grpc, kafka, postgres or redis)"
                        ),
                    );
                    None
                }
                None => None,
            },
        };
        let ready = self.ready(&join(path, "ready"), map.get("ready"), protocol);
        let proto = match map.get("proto") {
            None => ProtoSources::default(),
            Some(v) => {
                let ppath = join(path, "proto");
                match self.object(&ppath, v, &["files", "include", "descriptor_sets"]) {
                    Some(p) => ProtoSources {
                        files: self
                            .strings(&join(&ppath, "files"), p.get("files"))
                            .into_iter()
                            .map(PathBuf::from)
                            .collect(),
                        include: self
                            .strings(&join(&ppath, "include"), p.get("include"))
                            .into_iter()
                            .map(PathBuf::from)
                            .collect(),
                        descriptor_sets: self
                            .strings(&join(&ppath, "descriptor_sets"), p.get("descriptor_sets"))
                            .into_iter()
                            .map(PathBuf::from)
                            .collect(),
                    },
                    None => ProtoSources::default(),
                }
            }
        };
        Some(Ingress {
            protocol: protocol.unwrap_or(Protocol::Tcp),
            ready: ready.unwrap_or_default(),
            proto,
            address,
        })
    }

    fn ready(
        &mut self,
        path: &str,
        value: Option<&Value>,
        protocol: Option<Protocol>,
    ) -> Option<ReadyCheck> {
        let mut check = ReadyCheck::default();
        let Some(value) = value else {
            return Some(check);
        };
        let map = self.object(
            path,
            value,
            &["type", "path", "pattern", "interval", "timeout"],
        )?;
        check.interval =
            self.duration(&join(path, "interval"), map.get("interval"), check.interval);
        check.timeout = self.duration(&join(path, "timeout"), map.get("timeout"), check.timeout);
        let http_path = map
            .get("path")
            .and_then(|v| self.string(&join(path, "path"), v));
        let pattern = map
            .get("pattern")
            .and_then(|v| self.string(&join(path, "pattern"), v));
        // `{ path: /health }` alone means an HTTP check.
        let kind = match map.get("type") {
            Some(v) => self.string(&join(path, "type"), v)?,
            None if http_path.is_some() => "http".to_string(),
            None if pattern.is_some() => "log".to_string(),
            None => "tcp".to_string(),
        };
        check.probe = match kind.as_str() {
            "tcp" => ReadyProbe::Tcp,
            "http" => {
                if matches!(
                    protocol,
                    Some(Protocol::Grpc | Protocol::Kafka | Protocol::Postgres | Protocol::Redis)
                ) {
                    self.error(path, format!(
                        "no way to become ready: an http check cannot probe a {} ingress (use tcp{})",
                        protocol.map_or("", |p| p.as_str()),
                        if protocol == Some(Protocol::Grpc) { " or grpc" } else { "" }
                    ));
                }
                ReadyProbe::Http {
                    path: http_path.unwrap_or_else(|| "/".to_string()),
                }
            }
            "grpc" => {
                if matches!(
                    protocol,
                    Some(Protocol::Tcp | Protocol::Kafka | Protocol::Postgres | Protocol::Redis)
                ) {
                    self.error(
                        path,
                        "no way to become ready: a grpc health check needs a grpc or http ingress",
                    );
                }
                ReadyProbe::Grpc
            }
            "log" => match pattern {
                Some(pattern) => match regex::Regex::new(&pattern) {
                    Ok(_) => ReadyProbe::Log { pattern },
                    Err(e) => {
                        self.error(
                            &join(path, "pattern"),
                            format!("not a regular expression: {e}"),
                        );
                        return None;
                    }
                },
                None => {
                    self.error(path, "no way to become ready: a log check needs a pattern");
                    return None;
                }
            },
            other => {
                self.error(
                    &join(path, "type"),
                    format!("unknown readiness check {other:?} (tcp, http, grpc or log)"),
                );
                return None;
            }
        };
        Some(check)
    }

    pub(super) fn egress(&mut self, path: &str, name: &str, value: &Value) -> Option<Egress> {
        // `db: db` is short for `db: { service: db }`; null names itself.
        match value {
            Value::Null => Some(Egress {
                service: name.to_string(),
                ingress: "default".into(),
                faults: Vec::new(),
            }),
            Value::String(service) => Some(Egress {
                service: service.clone(),
                ingress: "default".into(),
                faults: Vec::new(),
            }),
            _ => {
                let map = self.object(path, value, &["service", "ingress", "faults"])?;
                let service = match map.get("service") {
                    Some(v) => self.string(&join(path, "service"), v)?,
                    None => name.to_string(),
                };
                let ingress = match map.get("ingress") {
                    Some(v) => self.string(&join(path, "ingress"), v)?,
                    None => "default".to_string(),
                };
                let faults = self.faults(&join(path, "faults"), map.get("faults"));
                Some(Egress {
                    service,
                    ingress,
                    faults,
                })
            }
        }
    }

    /// An egress's `faults:`, a list; names must be unique on the edge.
    fn faults(&mut self, path: &str, value: Option<&Value>) -> Vec<crate::spec::FaultSpec> {
        let items = match value {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.error(
                    path,
                    format!(
                        "expected a list of faults, found {}",
                        super::type_name(other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut faults: Vec<crate::spec::FaultSpec> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{path}[{i}]");
            match crate::spec::read_fault(item) {
                Ok(fault) if faults.iter().any(|f| f.name == fault.name) => self.error(
                    &join(&at, "name"),
                    format!(
                        "a second fault named {:?} on this edge: give each its own `name`",
                        fault.name
                    ),
                ),
                Ok(fault) => faults.push(fault),
                Err(problems) => {
                    for (key, message) in problems {
                        let where_ = if key.is_empty() {
                            at.clone()
                        } else {
                            join(&at, &key)
                        };
                        self.error(&where_, message);
                    }
                }
            }
        }
        faults
    }

    pub(super) fn restart(&mut self, path: &str, value: &Value) -> RestartPolicy {
        let mut policy = RestartPolicy::default();
        let Some(map) = self.object(path, value, &["max_restarts", "backoff", "healthy_after"])
        else {
            return policy;
        };
        match map.get("max_restarts") {
            None => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= u32::MAX as u64) => {
                policy.max_restarts = n.as_u64().unwrap_or_default() as u32
            }
            Some(other) => self.error(
                &join(path, "max_restarts"),
                format!("expected a count, found {other}"),
            ),
        }
        policy.backoff = self.duration(&join(path, "backoff"), map.get("backoff"), policy.backoff);
        policy.healthy_after = self.duration(
            &join(path, "healthy_after"),
            map.get("healthy_after"),
            policy.healthy_after,
        );
        policy
    }

    /// `liveness: false`, or `{interval, failures}`.
    pub(super) fn liveness(&mut self, path: &str, value: Option<&Value>) -> Liveness {
        let mut liveness = Liveness::default();
        let map = match value {
            None => return liveness,
            Some(Value::Bool(enabled)) => {
                liveness.enabled = *enabled;
                return liveness;
            }
            Some(value) => match self.object(path, value, &["interval", "failures"]) {
                Some(map) => map,
                None => return liveness,
            },
        };
        liveness.interval = self.duration(
            &join(path, "interval"),
            map.get("interval"),
            liveness.interval,
        );
        if liveness.interval < std::time::Duration::from_millis(10) {
            self.error(
                &join(path, "interval"),
                "must be at least 10ms (a probe every instant is a load test)",
            );
        }
        match map.get("failures") {
            None => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=1000).contains(&n)) => {
                liveness.failures = n.as_u64().unwrap_or(1) as u32
            }
            Some(other) => self.error(
                &join(path, "failures"),
                format!("expected a count from 1 to 1000, found {other}"),
            ),
        }
        liveness
    }
}
