//! From text to [`Spec`]: YAML or JSON is read into a generic value tree,
//! which is then converted by hand so that every problem is collected with
//! its path instead of stopping at the first (as a derived `Deserialize`
//! would).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::model::*;
use super::units::{parse_duration, parse_size};
use super::{SpecError, SpecErrors};

mod ingress;
mod managed;
mod redact;
mod service;
mod yaml;

/// Parses `text` (JSON if it starts with `{`, else YAML). Returns the spec
/// as far as it could be read, and every problem met on the way: the
/// caller goes on to check references, so one pass reports everything.
pub(super) fn parse(text: &str, base_dir: &Path) -> Result<(Spec, Vec<SpecError>), SpecErrors> {
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| SpecErrors::one("", format!("not valid JSON: {e}")))?
    } else {
        yaml::from_str(text).map_err(|e| SpecErrors::one("", format!("not valid YAML: {e}")))?
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
    pub(super) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(SpecError {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// `value` as a mapping whose keys are all in `known`.
    pub(super) fn object<'v>(
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

    pub(super) fn string(&mut self, path: &str, value: &Value) -> Option<String> {
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

    pub(super) fn boolean(&mut self, path: &str, value: Option<&Value>, default: bool) -> bool {
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

    pub(super) fn strings(&mut self, path: &str, value: Option<&Value>) -> Vec<String> {
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

    pub(super) fn duration(
        &mut self,
        path: &str,
        value: Option<&Value>,
        default: Duration,
    ) -> Duration {
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
            redact: Default::default(),
            services: BTreeMap::new(),
            base_dir: base_dir.to_path_buf(),
        };
        let known = ["name", "observe", "capture_limit", "redact", "services"];
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
        spec.redact = self.redact(map.get("redact"));
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
}
