//! From text to [`Spec`]: YAML or JSON is read into a generic value tree,
//! which is then converted by hand so that every problem is collected with
//! its path instead of stopping at the first (as a derived `Deserialize`
//! would).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::model::*;
use super::units::{parse_duration, parse_size};
use super::{SpecError, SpecErrors};

/// Parses `text` (JSON if it starts with `{`, else YAML). Returns the spec
/// as far as it could be read, and every problem met on the way: the
/// caller goes on to check references, so one pass reports everything.
pub(super) fn parse(text: &str, base_dir: &Path) -> Result<(Spec, Vec<SpecError>), SpecErrors> {
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| SpecErrors::one("", format!("not valid JSON: {e}")))?
    } else {
        // serde_yaml's own mapping refuses duplicate keys, so two services
        // of one name are caught here, with the line.
        let yaml: serde_yaml::Value = serde_yaml::from_str(text)
            .map_err(|e| SpecErrors::one("", format!("not valid YAML: {e}")))?;
        serde_json::to_value(yaml)
            .map_err(|e| SpecErrors::one("", format!("not a spec: {e} (keys are strings)")))?
    };
    let mut reader = Reader::default();
    let spec = reader.spec(&value, base_dir);
    Ok((spec, reader.errors))
}

#[derive(Default)]
struct Reader {
    errors: Vec<SpecError>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl Reader {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(SpecError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// `value` as a mapping whose keys are all in `known`.
    fn object<'v>(
        &mut self,
        path: &str,
        value: &'v Value,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Value::Object(map) = value else {
            self.error(
                path,
                format!("expected a mapping, found {}", type_name(value)),
            );
            return None;
        };
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                self.error(
                    &join(path, key),
                    format!("unknown field (known: {})", known.join(", ")),
                );
            }
        }
        Some(map)
    }

    fn string(&mut self, path: &str, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.error(
                    path,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn boolean(&mut self, path: &str, value: Option<&Value>, default: bool) -> bool {
        match value {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.error(
                    path,
                    format!("expected true or false, found {}", type_name(other)),
                );
                default
            }
        }
    }

    fn strings(&mut self, path: &str, value: Option<&Value>) -> Vec<String> {
        match value {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| self.string(&format!("{path}[{i}]"), v))
                .collect(),
            Some(other) => {
                self.error(
                    path,
                    format!("expected a list of strings, found {}", type_name(other)),
                );
                Vec::new()
            }
        }
    }

    fn duration(&mut self, path: &str, value: Option<&Value>, default: Duration) -> Duration {
        let Some(value) = value else { return default };
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            other => {
                self.error(
                    path,
                    format!("expected a duration, found {}", type_name(other)),
                );
                return default;
            }
        };
        parse_duration(&text).unwrap_or_else(|e| {
            self.error(path, e);
            default
        })
    }

    fn spec(&mut self, value: &Value, base_dir: &Path) -> Spec {
        let mut spec = Spec {
            name: String::new(),
            observe: true,
            capture_limit: 64 << 10,
            services: BTreeMap::new(),
            base_dir: base_dir.to_path_buf(),
        };
        let known = ["name", "observe", "capture_limit", "services"];
        let Some(map) = self.object("", value, &known) else {
            return spec;
        };
        match map.get("name") {
            Some(v) => spec.name = self.string("name", v).unwrap_or_default(),
            None => self.error("name", "missing: every environment has a name"),
        }
        spec.observe = self.boolean("observe", map.get("observe"), true);
        if let Some(v) = map.get("capture_limit") {
            let text = match v {
                Value::Number(n) => Some(n.to_string()),
                Value::String(s) => Some(s.clone()),
                other => {
                    self.error(
                        "capture_limit",
                        format!("expected a size, found {}", type_name(other)),
                    );
                    None
                }
            };
            if let Some(text) = text {
                match parse_size(&text) {
                    Ok(n) => spec.capture_limit = n,
                    Err(e) => self.error("capture_limit", e),
                }
            }
        }
        match map.get("services") {
            Some(Value::Object(services)) => {
                for (name, value) in services {
                    let path = join("services", name);
                    if let Some(service) = self.service(&path, name, value) {
                        spec.services.insert(name.clone(), service);
                    }
                }
            }
            Some(other) => self.error(
                "services",
                format!("expected a mapping of services, found {}", type_name(other)),
            ),
            None => self.error("services", "missing: an environment needs services"),
        }
        spec
    }

    fn service(&mut self, path: &str, name: &str, value: &Value) -> Option<Service> {
        const COMMON: [&str; 9] = [
            "type",
            "ingresses",
            "egresses",
            "restart",
            "optional",
            "stop_grace",
            "env",
            "dir",
            "config",
        ];
        const LAUNCH: [&str; 6] = ["command", "args", "script", "package", "bin", "example"];
        let known: Vec<&str> = COMMON.iter().chain(LAUNCH.iter()).copied().collect();
        let map = self.object(path, value, &known)?;
        // rig's wire shape nests the type's settings under `config`.
        let mut merged = map.clone();
        if let Some(config) = map.get("config") {
            let config_path = join(path, "config");
            let known_config: Vec<&str> = LAUNCH
                .iter()
                .chain(["env", "dir"].iter())
                .copied()
                .collect();
            if let Some(config) = self.object(&config_path, config, &known_config) {
                for (k, v) in config {
                    merged.insert(k.clone(), v.clone());
                }
            }
        }
        let map = &merged;

        let kind = match map.get("type") {
            Some(v) => self.string(&join(path, "type"), v),
            None => Some("process".to_string()),
        };
        let args = self.strings(&join(path, "args"), map.get("args"));
        let launch = match kind.as_deref() {
            Some("process") => {
                let mut command = match map.get("command") {
                    Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                    other => self.strings(&join(path, "command"), other),
                };
                if command.is_empty() {
                    self.error(
                        &join(path, "command"),
                        "missing: a process service needs a command",
                    );
                }
                command.extend(args);
                Some(Launch::Process { command })
            }
            Some("script") => {
                let script = match map.get("script").or(map.get("command")) {
                    Some(v) => self.string(&join(path, "script"), v),
                    None => None,
                };
                match script {
                    Some(script) if !script.trim().is_empty() => Some(Launch::Script { script }),
                    _ => {
                        self.error(
                            &join(path, "script"),
                            "missing: a script service needs a script (run with sh -c)",
                        );
                        None
                    }
                }
            }
            Some("cargo") => {
                let package = map
                    .get("package")
                    .and_then(|v| self.string(&join(path, "package"), v));
                let bin = map
                    .get("bin")
                    .and_then(|v| self.string(&join(path, "bin"), v));
                let example = map
                    .get("example")
                    .and_then(|v| self.string(&join(path, "example"), v));
                let target = match (bin, example) {
                    (Some(_), Some(_)) => {
                        self.error(path, "a cargo service names a bin or an example, not both");
                        CargoTarget::Default
                    }
                    (Some(bin), None) => CargoTarget::Bin(bin),
                    (None, Some(example)) => CargoTarget::Example(example),
                    (None, None) => CargoTarget::Default,
                };
                match package {
                    Some(package) => Some(Launch::Cargo {
                        package: PathBuf::from(package),
                        target,
                        args,
                    }),
                    None => {
                        self.error(
                            &join(path, "package"),
                            "missing: a cargo service needs its package's directory",
                        );
                        None
                    }
                }
            }
            Some(other) => {
                self.error(
                    &join(path, "type"),
                    format!("unknown service type {other:?} (process, script or cargo)"),
                );
                None
            }
            None => None,
        };

        let env = match map.get("env") {
            None => BTreeMap::new(),
            Some(Value::Object(vars)) => vars
                .iter()
                .filter_map(|(k, v)| {
                    Some((k.clone(), self.string(&join(&join(path, "env"), k), v)?))
                })
                .collect(),
            Some(other) => {
                self.error(
                    &join(path, "env"),
                    format!("expected a mapping, found {}", type_name(other)),
                );
                BTreeMap::new()
            }
        };
        let dir = map
            .get("dir")
            .and_then(|v| self.string(&join(path, "dir"), v))
            .map(PathBuf::from);

        let mut ingresses = BTreeMap::new();
        if let Some(value) = map.get("ingresses") {
            let ipath = join(path, "ingresses");
            match value {
                Value::Object(entries) => {
                    for (iname, ivalue) in entries {
                        if let Some(ingress) = self.ingress(&join(&ipath, iname), ivalue) {
                            ingresses.insert(iname.clone(), ingress);
                        }
                    }
                }
                other => self.error(
                    &ipath,
                    format!("expected a mapping, found {}", type_name(other)),
                ),
            }
        }
        let mut egresses = BTreeMap::new();
        if let Some(value) = map.get("egresses") {
            let epath = join(path, "egresses");
            match value {
                Value::Object(entries) => {
                    for (ename, evalue) in entries {
                        if let Some(egress) = self.egress(&join(&epath, ename), ename, evalue) {
                            egresses.insert(ename.clone(), egress);
                        }
                    }
                }
                other => self.error(
                    &epath,
                    format!("expected a mapping, found {}", type_name(other)),
                ),
            }
        }
        let restart = match map.get("restart") {
            None => RestartPolicy::default(),
            Some(value) => self.restart(&join(path, "restart"), value),
        };
        let optional = self.boolean(&join(path, "optional"), map.get("optional"), false);
        let stop_grace = self.duration(
            &join(path, "stop_grace"),
            map.get("stop_grace"),
            Duration::from_secs(5),
        );
        Some(Service {
            name: name.to_string(),
            // A placeholder keeps the service (and checks of the references
            // to it) when its launch settings were wrong; the error stands.
            launch: launch.unwrap_or(Launch::Script {
                script: String::new(),
            }),
            env,
            dir,
            ingresses,
            egresses,
            restart,
            optional,
            stop_grace,
        })
    }

    fn ingress(&mut self, path: &str, value: &Value) -> Option<Ingress> {
        let empty = Value::Object(Map::new());
        let value = if value.is_null() { &empty } else { value };
        let map = self.object(path, value, &["protocol", "ready", "proto"])?;
        let protocol = match map.get("protocol") {
            None => Some(Protocol::Tcp),
            Some(v) => match self.string(&join(path, "protocol"), v).as_deref() {
                Some("tcp") => Some(Protocol::Tcp),
                Some("http") => Some(Protocol::Http),
                Some("grpc") => Some(Protocol::Grpc),
                Some("kafka") => Some(Protocol::Kafka),
                Some(other) => {
                    self.error(
                        &join(path, "protocol"),
                        format!("unknown protocol {other:?} (tcp, http, grpc or kafka)"),
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
            ready: ready.unwrap_or(ReadyCheck {
                probe: ReadyProbe::Tcp,
                interval: Duration::from_millis(100),
                timeout: Duration::from_secs(60),
            }),
            proto,
        })
    }

    fn ready(
        &mut self,
        path: &str,
        value: Option<&Value>,
        protocol: Option<Protocol>,
    ) -> Option<ReadyCheck> {
        let mut check = ReadyCheck {
            probe: ReadyProbe::Tcp,
            interval: Duration::from_millis(100),
            timeout: Duration::from_secs(60),
        };
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
                if matches!(protocol, Some(Protocol::Grpc | Protocol::Kafka)) {
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
                if matches!(protocol, Some(Protocol::Tcp | Protocol::Kafka)) {
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

    fn egress(&mut self, path: &str, name: &str, value: &Value) -> Option<Egress> {
        // `db: db` is short for `db: { service: db }`; null names itself.
        match value {
            Value::Null => Some(Egress {
                service: name.to_string(),
                ingress: "default".into(),
            }),
            Value::String(service) => Some(Egress {
                service: service.clone(),
                ingress: "default".into(),
            }),
            _ => {
                let map = self.object(path, value, &["service", "ingress"])?;
                let service = match map.get("service") {
                    Some(v) => self.string(&join(path, "service"), v)?,
                    None => name.to_string(),
                };
                let ingress = match map.get("ingress") {
                    Some(v) => self.string(&join(path, "ingress"), v)?,
                    None => "default".to_string(),
                };
                Some(Egress { service, ingress })
            }
        }
    }

    fn restart(&mut self, path: &str, value: &Value) -> RestartPolicy {
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
}
