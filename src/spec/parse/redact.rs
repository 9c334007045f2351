//! The spec's `redact:`: `false` (nothing is redacted), `true` (the
//! defaults, as when it is absent), or a mapping of what to add to them.

use serde_json::Value;

use super::{type_name, Reader};
use crate::redact::{RedactConfig, Redactor};

const KNOWN: [&str; 6] = [
    "enabled",
    "headers",
    "metadata",
    "json_fields",
    "json_paths",
    "patterns",
];

impl Reader {
    pub(super) fn redact(&mut self, value: Option<&Value>) -> RedactConfig {
        let mut config = RedactConfig::default();
        match value {
            None => {}
            Some(Value::Bool(on)) => config.enabled = *on,
            Some(value @ Value::Object(_)) => {
                let Some(map) = self.object("redact", value, &KNOWN) else {
                    return config;
                };
                config.enabled = self.boolean("redact.enabled", map.get("enabled"), true);
                config.headers = self.strings("redact.headers", map.get("headers"));
                config.metadata = self.strings("redact.metadata", map.get("metadata"));
                config.json_fields = self.strings("redact.json_fields", map.get("json_fields"));
                config.json_paths = self.strings("redact.json_paths", map.get("json_paths"));
                config.patterns = self.strings("redact.patterns", map.get("patterns"));
                // Every entry is checked now, so a bad one is refused with
                // the rest of the spec's problems, before anything starts.
                if let Err(errors) = Redactor::new(&config) {
                    for e in errors {
                        self.error(&format!("redact.{}", e.path), e.message);
                    }
                }
            }
            Some(other) => self.error(
                "redact",
                format!(
                    "expected true, false or a mapping ({}), found {}",
                    KNOWN[1..].join(", "),
                    type_name(other)
                ),
            ),
        }
        config
    }
}
