//! A service: how it is launched (or that it is external), its settings,
//! its hooks and what it depends on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::managed::MANAGED;
use super::{join, type_name, Reader};
use crate::spec::model::*;
use crate::spec::Managed;

const COMMON: [&str; 16] = [
    "watch",
    "type",
    "ingresses",
    "egresses",
    "restart",
    "liveness",
    "optional",
    "stop_grace",
    "env",
    "dir",
    "config",
    "job",
    "depends_on",
    "prestart",
    "init",
    "address",
];
const LAUNCH: [&str; 6] = ["command", "args", "script", "package", "bin", "example"];

/// The longest a hook may run unless it says otherwise.
const HOOK_TIMEOUT: Duration = Duration::from_secs(300);

impl Reader {
    pub(super) fn service(&mut self, path: &str, name: &str, value: &Value) -> Option<Service> {
        let known: Vec<&str> = COMMON
            .iter()
            .chain(LAUNCH.iter())
            .chain(MANAGED.iter())
            .copied()
            .collect();
        let map = self.object(path, value, &known)?;
        // rig's wire shape nests the type's settings under `config` (a
        // mapping; a redis service's `config` lines are a list).
        let mut merged = map.clone();
        if let Some(config) = map.get("config").filter(|c| c.is_object()) {
            merged.remove("config");
            let config_path = join(path, "config");
            let known_config: Vec<&str> = LAUNCH
                .iter()
                .chain(MANAGED.iter())
                .chain(["env", "dir", "address", "init", "config"].iter())
                .copied()
                .collect();
            if let Some(config) = self.object(&config_path, config, &known_config) {
                for (k, v) in config {
                    merged.insert(k.clone(), v.clone());
                }
            }
        }
        let map = &merged;
        let launch = self.launch(path, map);
        let external = matches!(launch, Some(Launch::External));
        let managed = match &launch {
            Some(Launch::Managed(m)) => Some(m.clone()),
            _ => None,
        };
        if managed.is_none() {
            for key in MANAGED {
                if map.contains_key(key) {
                    self.error(
                        &join(path, key),
                        "only a postgres, redis or kafka service has this setting",
                    );
                }
            }
        }

        let env = self.env(path, map);
        let dir = map
            .get("dir")
            .and_then(|v| self.string(&join(path, "dir"), v))
            .map(PathBuf::from);
        let mut ingresses = self.named(path, "ingresses", map, |r, p, _, v| r.ingress(p, v));
        if let Some(managed) = &managed {
            ingresses = Self::managed_ingress(managed);
        }
        if external {
            self.external_address(path, map, &mut ingresses);
        } else if map.contains_key("address") {
            self.error(
                &join(path, "address"),
                "only an external service has an address (tapmesh picks the others' ports)",
            );
        }
        let egresses = self.named(path, "egresses", map, |r, p, n, v| r.egress(p, n, v));
        let restart = match map.get("restart") {
            None => RestartPolicy::default(),
            Some(value) => self.restart(&join(path, "restart"), value),
        };
        let liveness = self.liveness(&join(path, "liveness"), map.get("liveness"));
        let watch = self
            .paths(&join(path, "watch"), map.get("watch"))
            .into_iter()
            .map(PathBuf::from)
            .collect();
        let optional = self.boolean(&join(path, "optional"), map.get("optional"), false);
        let stop_grace = self.duration(
            &join(path, "stop_grace"),
            map.get("stop_grace"),
            Duration::from_secs(5),
        );
        let job = self.boolean(&join(path, "job"), map.get("job"), false);
        let depends_on = self.depends_on(&join(path, "depends_on"), map.get("depends_on"));
        let prestart = self.hook(&join(path, "prestart"), map.get("prestart"));
        // A postgres service's `init` is its SQL files, read with its settings.
        let init = match &managed {
            Some(Managed::Postgres(_)) => None,
            _ => self.hook(&join(path, "init"), map.get("init")),
        };
        if external {
            self.refuse_for_external(path, map);
        }
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
            liveness,
            watch,
            optional,
            stop_grace,
            job,
            depends_on,
            prestart,
            init,
        })
    }

    fn env(&mut self, path: &str, map: &Map<String, Value>) -> BTreeMap<String, String> {
        match map.get("env") {
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
        }
    }

    fn refuse_for_external(&mut self, path: &str, map: &Map<String, Value>) {
        for key in [
            "job",
            "prestart",
            "init",
            "restart",
            "liveness",
            "watch",
            "egresses",
            "depends_on",
        ] {
            if map.contains_key(key) {
                self.error(
                &join(path, key),
                "an external service is not started by tapmesh, so it has no jobs, hooks, restarts, egresses or dependencies",
            );
            }
        }
    }

    /// Each entry of the mapping `key`, read by `read`.
    fn named<T>(
        &mut self,
        path: &str,
        key: &str,
        map: &Map<String, Value>,
        mut read: impl FnMut(&mut Self, &str, &str, &Value) -> Option<T>,
    ) -> BTreeMap<String, T> {
        let mut out = BTreeMap::new();
        let Some(value) = map.get(key) else {
            return out;
        };
        let path = join(path, key);
        match value {
            Value::Object(entries) => {
                for (name, value) in entries {
                    if let Some(item) = read(self, &join(&path, name), name, value) {
                        out.insert(name.clone(), item);
                    }
                }
            }
            other => self.error(
                &path,
                format!("expected a mapping, found {}", type_name(other)),
            ),
        }
        out
    }

    fn launch(&mut self, path: &str, map: &Map<String, Value>) -> Option<Launch> {
        let kind = match map.get("type") {
            Some(v) => self.string(&join(path, "type"), v)?,
            None => "process".to_string(),
        };
        let args = self.strings(&join(path, "args"), map.get("args"));
        match kind.as_str() {
            "process" => {
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
            "script" => {
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
            "cargo" => self.cargo(path, map, args),
            "postgres" | "redis" | "kafka" => self.managed(path, &kind, map).map(Launch::Managed),
            "external" => {
                for key in LAUNCH {
                    if map.contains_key(key) {
                        self.error(
                            &join(path, key),
                            "an external service is not started by tapmesh: give its address instead",
                        );
                    }
                }
                Some(Launch::External)
            }
            other => {
                self.error(
                    &join(path, "type"),
                    format!("unknown service type {other:?} (process, script, cargo, external, postgres, redis or kafka)"),
                );
                None
            }
        }
    }

    fn cargo(&mut self, path: &str, map: &Map<String, Value>, args: Vec<String>) -> Option<Launch> {
        let mut get = |key: &str| map.get(key).and_then(|v| self.string(&join(path, key), v));
        let package = get("package");
        let bin = get("bin");
        let example = get("example");
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

    /// `address: host:port` is the default ingress's (a TCP one unless
    /// `ingresses` says otherwise); every ingress needs one.
    fn external_address(
        &mut self,
        path: &str,
        map: &Map<String, Value>,
        ingresses: &mut BTreeMap<String, Ingress>,
    ) {
        if let Some(v) = map.get("address") {
            if let Some(address) = self.string(&join(path, "address"), v) {
                let default = ingresses
                    .entry("default".to_string())
                    .or_insert_with(|| Ingress {
                        protocol: Protocol::Tcp,
                        ready: ReadyCheck::default(),
                        proto: ProtoSources::default(),
                        address: None,
                    });
                if default.address.is_some() {
                    self.error(
                        &join(path, "address"),
                        "given twice: here and as ingresses.default.address",
                    );
                }
                default.address = Some(address);
            }
        }
        if ingresses.is_empty() {
            self.error(
                &join(path, "address"),
                "missing: an external service needs an address (host:port)",
            );
        }
        for (name, ingress) in ingresses.iter() {
            if ingress.address.is_none() {
                self.error(
                    &format!("{path}.ingresses.{name}.address"),
                    "missing: each ingress of an external service needs an address (host:port)",
                );
            }
        }
    }

    /// `[a, b]` (each `ready`), or `{ a: completed, b: { condition: started } }`.
    fn depends_on(&mut self, path: &str, value: Option<&Value>) -> BTreeMap<String, Condition> {
        let mut out = BTreeMap::new();
        match value {
            None => {}
            Some(Value::Array(_)) => {
                for name in self.strings(path, value) {
                    out.insert(name, Condition::Ready);
                }
            }
            Some(Value::Object(entries)) => {
                for (name, v) in entries {
                    let cpath = join(path, name);
                    let text = match v {
                        Value::Null => Some("ready".to_string()),
                        Value::Object(_) => self
                            .object(&cpath, v, &["condition"])
                            .and_then(|m| m.get("condition"))
                            .and_then(|c| self.string(&join(&cpath, "condition"), c)),
                        other => self.string(&cpath, other),
                    };
                    let condition = match text.as_deref() {
                        Some("started") => Condition::Started,
                        Some("ready") | None => Condition::Ready,
                        Some("completed") => Condition::Completed,
                        Some(other) => {
                            self.error(
                                &cpath,
                                format!(
                                    "unknown condition {other:?} (started, ready or completed)"
                                ),
                            );
                            Condition::Ready
                        }
                    };
                    out.insert(name.clone(), condition);
                }
            }
            Some(other) => self.error(
                path,
                format!(
                    "expected a list of services or a mapping of service to condition, found {}",
                    type_name(other)
                ),
            ),
        }
        out
    }

    /// A script (a string), an argv (a list), or `{ command | script, timeout }`.
    fn hook(&mut self, path: &str, value: Option<&Value>) -> Option<Hook> {
        let value = value?;
        let (run, timeout) = match value {
            Value::String(_) | Value::Array(_) => (self.hook_run(path, value), HOOK_TIMEOUT),
            Value::Object(_) => {
                let map = self.object(path, value, &["command", "script", "timeout"])?;
                let timeout =
                    self.duration(&join(path, "timeout"), map.get("timeout"), HOOK_TIMEOUT);
                let run = match (map.get("command"), map.get("script")) {
                    (Some(_), Some(_)) => {
                        self.error(path, "a hook has a command or a script, not both");
                        None
                    }
                    (Some(c), None) => match c {
                        Value::String(s) => Some(HookRun::Command(
                            s.split_whitespace().map(str::to_string).collect(),
                        )),
                        other => self.hook_run(&join(path, "command"), other),
                    },
                    (None, Some(s)) => self.string(&join(path, "script"), s).map(HookRun::Script),
                    (None, None) => {
                        self.error(path, "missing: a hook needs a command or a script");
                        None
                    }
                };
                (run, timeout)
            }
            other => {
                self.error(
                    path,
                    format!(
                        "expected a script, a command list or a mapping, found {}",
                        type_name(other)
                    ),
                );
                (None, HOOK_TIMEOUT)
            }
        };
        let run = run?;
        let empty = match &run {
            HookRun::Command(argv) => argv.is_empty(),
            HookRun::Script(s) => s.trim().is_empty(),
        };
        if empty {
            self.error(path, "empty: a hook needs something to run");
            return None;
        }
        Some(Hook { run, timeout })
    }

    fn hook_run(&mut self, path: &str, value: &Value) -> Option<HookRun> {
        match value {
            Value::String(s) => Some(HookRun::Script(s.clone())),
            Value::Array(_) => Some(HookRun::Command(self.strings(path, Some(value)))),
            other => {
                self.error(
                    path,
                    format!(
                        "expected a script or a command list, found {}",
                        type_name(other)
                    ),
                );
                None
            }
        }
    }
}
