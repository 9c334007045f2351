//! The settings of a managed server (`type: postgres | redis | kafka`), its
//! one ingress (made here: the user names none), and the checks that keep
//! other types' keys off it and its keys off them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use super::{join, type_name, Reader};
use crate::spec::model::*;
use crate::spec::{missing, Kafka, KafkaEngine, Managed, Postgres, Redis, Topic};

/// Keys only a managed server reads (`init` and `config` mean something
/// else elsewhere and are read there).
pub(super) const MANAGED: [&str; 6] = [
    "version", "database", "user", "password", "engine", "topics",
];

/// Keys each managed type reads, beyond the ones every service has.
fn own_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "postgres" => &["version", "database", "user", "password", "init"],
        "redis" => &["password", "config"],
        _ => &["engine", "topics"],
    }
}

impl Reader {
    /// The settings of a `kind` server (postgres, redis or kafka).
    pub(super) fn managed(
        &mut self,
        path: &str,
        kind: &str,
        map: &Map<String, Value>,
    ) -> Option<Managed> {
        for key in MANAGED.iter().chain(["config"].iter()) {
            if map.contains_key(*key) && !own_keys(kind).contains(key) {
                // `config` as a mapping is rig's nesting, read by the caller.
                if *key == "config" && map[*key].is_object() {
                    continue;
                }
                self.error(&join(path, key), format!("a {kind} service has no {key}"));
            }
        }
        for key in [
            "command",
            "args",
            "script",
            "package",
            "bin",
            "example",
            "ingresses",
            "prestart",
        ] {
            if map.contains_key(key) {
                self.error(
                    &join(path, key),
                    format!("tapmesh runs a {kind} service itself: it takes no {key}"),
                );
            }
        }
        if kind == "kafka" && map.contains_key("init") {
            self.error(
                &join(path, "init"),
                "a kafka service takes no init hook: its topics are created by tapmesh; run anything else as a job that depends on it",
            );
        }
        let managed = match kind {
            "postgres" => Managed::Postgres(Postgres {
                version: map
                    .get("version")
                    .and_then(|v| self.version(&join(path, "version"), v)),
                database: self.text_or(path, map, "database", "postgres"),
                user: self.text_or(path, map, "user", "postgres"),
                password: self.text_or(path, map, "password", "postgres"),
                init: self
                    .paths(&join(path, "init"), map.get("init"))
                    .into_iter()
                    .map(PathBuf::from)
                    .collect(),
            }),
            "redis" => Managed::Redis(Redis {
                password: map
                    .get("password")
                    .and_then(|v| self.string(&join(path, "password"), v)),
                config: match map.get("config") {
                    Some(Value::Object(_)) | None => Vec::new(),
                    Some(Value::String(s)) => s.lines().map(str::to_string).collect(),
                    other => self.strings(&join(path, "config"), other),
                },
            }),
            _ => Managed::Kafka(Kafka {
                engine: match self.text_or(path, map, "engine", "tansu").as_str() {
                    "tansu" => KafkaEngine::Tansu,
                    "mock" => KafkaEngine::Mock,
                    other => {
                        self.error(
                            &join(path, "engine"),
                            format!("unknown engine {other:?} (tansu or mock)"),
                        );
                        KafkaEngine::Mock
                    }
                },
                topics: self.topics(&join(path, "topics"), map.get("topics")),
            }),
        };
        self.check_names(path, &managed);
        if let Some(problem) = missing(&managed) {
            self.error(&join(path, "type"), problem);
        }
        Some(managed)
    }

    /// Its one ingress, `default`, speaking its protocol, with its probe.
    pub(super) fn managed_ingress(managed: &Managed) -> BTreeMap<String, Ingress> {
        let (protocol, probe) = match managed {
            Managed::Postgres(pg) => (
                Protocol::Postgres,
                ReadyProbe::Postgres {
                    user: pg.user.clone(),
                    password: pg.password.clone(),
                },
            ),
            Managed::Redis(redis) => (
                Protocol::Redis,
                ReadyProbe::Redis {
                    password: redis.password.clone(),
                },
            ),
            Managed::Kafka(_) => (Protocol::Kafka, ReadyProbe::Kafka),
        };
        let ingress = Ingress {
            protocol,
            ready: ReadyCheck {
                probe,
                ..ReadyCheck::default()
            },
            proto: ProtoSources::default(),
            address: None,
        };
        BTreeMap::from([("default".to_string(), ingress)])
    }

    /// Names that go into command lines and SQL: kept to a safe alphabet.
    fn check_names(&mut self, path: &str, managed: &Managed) {
        let plain = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        let mut names: Vec<(&str, &str)> = Vec::new();
        match managed {
            Managed::Postgres(pg) => {
                names.push(("database", &pg.database));
                names.push(("user", &pg.user));
            }
            Managed::Kafka(kafka) => {
                names.extend(kafka.topics.iter().map(|t| ("topics", t.name.as_str())))
            }
            Managed::Redis(_) => {}
        }
        for (key, name) in names {
            if !plain(name) {
                self.error(
                    &join(path, key),
                    format!("{name:?}: use letters, digits, '-', '_' and '.'"),
                );
            }
        }
    }

    fn text_or(
        &mut self,
        path: &str,
        map: &Map<String, Value>,
        key: &str,
        default: &str,
    ) -> String {
        map.get(key)
            .and_then(|v| self.string(&join(path, key), v))
            .unwrap_or_else(|| default.to_string())
    }

    /// `15` or `"15"`.
    fn version(&mut self, path: &str, value: &Value) -> Option<String> {
        match value {
            Value::Number(n) => Some(n.to_string()),
            other => self.string(path, other),
        }
    }

    /// A path or a list of paths.
    pub(super) fn paths(&mut self, path: &str, value: Option<&Value>) -> Vec<String> {
        match value {
            Some(Value::String(s)) => vec![s.clone()],
            other => self.strings(path, other),
        }
    }

    /// `[orders, { name: payments, partitions: 4 }]` or `{ orders: 4 }`.
    fn topics(&mut self, path: &str, value: Option<&Value>) -> Vec<Topic> {
        let mut topics = Vec::new();
        match value {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let ipath = format!("{path}[{i}]");
                    match item {
                        Value::String(name) => topics.push(Topic {
                            name: name.clone(),
                            partitions: 1,
                        }),
                        Value::Object(_) => {
                            let Some(m) = self.object(&ipath, item, &["name", "partitions"]) else {
                                continue;
                            };
                            let Some(name) = m
                                .get("name")
                                .and_then(|v| self.string(&join(&ipath, "name"), v))
                            else {
                                self.error(&join(&ipath, "name"), "missing: a topic needs a name");
                                continue;
                            };
                            let partitions =
                                self.partitions(&join(&ipath, "partitions"), m.get("partitions"));
                            topics.push(Topic { name, partitions });
                        }
                        other => self.error(
                            &ipath,
                            format!(
                                "expected a topic name or {{ name, partitions }}, found {}",
                                type_name(other)
                            ),
                        ),
                    }
                }
            }
            Some(Value::Object(entries)) => {
                for (name, partitions) in entries {
                    let partitions = self.partitions(&join(path, name), Some(partitions));
                    topics.push(Topic {
                        name: name.clone(),
                        partitions,
                    });
                }
            }
            Some(other) => self.error(
                path,
                format!(
                    "expected a list of topics or a mapping of topic to partitions, found {}",
                    type_name(other)
                ),
            ),
        }
        topics
    }

    fn partitions(&mut self, path: &str, value: Option<&Value>) -> u32 {
        match value {
            None | Some(Value::Null) => 1,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(p @ 1..=10_000) => p as u32,
                _ => {
                    self.error(path, format!("{n}: partitions are 1 to 10000"));
                    1
                }
            },
            Some(other) => {
                self.error(
                    path,
                    format!(
                        "expected a number of partitions, found {}",
                        type_name(other)
                    ),
                );
                1
            }
        }
    }
}
