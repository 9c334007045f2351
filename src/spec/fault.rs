//! Faults on an edge, as written: in a spec's `faults:` under an egress, in
//! the daemon's `POST /environments/{id}/faults`, from `tapmesh fault add`
//! and the test APIs. One JSON shape everywhere, Toxiproxy's where it has
//! one (`type`, `stream`, `toxicity`, `attributes` with its attribute names
//! and units), plus what Toxiproxy lacks: request faults matched by a query
//! (`match`) and selected by count (`first`, `every`).
//!
//! Read by hand from a JSON value (as the rest of the spec is) so that every
//! problem comes back with its path rather than the first one alone.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::units::parse_duration;

/// One fault, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FaultSpec {
    /// Unique on its edge; defaults to the type (`latency`, `abort` …).
    pub name: String,
    #[serde(flatten)]
    pub action: FaultAction,
    /// Which way a connection fault acts: `upstream` (client → target) or
    /// `downstream` (target → client, Toxiproxy's default, not written).
    #[serde(skip_serializing_if = "Stream::is_downstream")]
    pub stream: Stream,
    /// The chance it applies: to a connection (connection faults, decided
    /// once per connection as Toxiproxy does) or to a request (request
    /// faults). 1 unless told (and then not written).
    #[serde(skip_serializing_if = "is_certain")]
    pub toxicity: f64,
    /// Request faults: the requests it applies to, in the query language.
    #[serde(rename = "match", skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Request faults: only the first N matching requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<u64>,
    /// Request faults: only every Nth matching request (the Nth, 2Nth …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Upstream,
    Downstream,
}

fn is_certain(p: &f64) -> bool {
    *p >= 1.0
}

impl Stream {
    fn is_downstream(&self) -> bool {
        *self == Stream::Downstream
    }
}

/// What a fault does, with its attributes (Toxiproxy's names and units:
/// milliseconds, KB/s, bytes; slicer's delay in microseconds).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum FaultAction {
    /// Each chunk held `latency` ± `jitter` before it is passed on.
    Latency {
        #[serde(with = "millis")]
        latency: Duration,
        #[serde(with = "millis")]
        jitter: Duration,
    },
    /// At most `rate` KB/s (1 KB = 1,000 bytes).
    Bandwidth { rate: u64 },
    /// The close (FIN) held `delay` before it is passed on.
    SlowClose {
        #[serde(with = "millis")]
        delay: Duration,
    },
    /// Nothing gets through; the connection closes after `timeout` (never, if 0).
    Timeout {
        #[serde(with = "millis")]
        timeout: Duration,
    },
    /// The connection is reset (RST) `timeout` after the fault applies to it.
    ResetPeer {
        #[serde(with = "millis")]
        timeout: Duration,
    },
    /// Data cut into pieces of `average_size` ± `size_variation` bytes,
    /// `delay` microseconds apart.
    Slicer {
        average_size: u64,
        size_variation: u64,
        #[serde(with = "micros")]
        delay: Duration,
    },
    /// The connection is closed once `bytes` have gone through.
    LimitData { bytes: u64 },
    /// The edge is down: new connections are refused, open ones reset.
    Down {},
    /// A matching request (or its response, `on: response`) held `delay`.
    Delay {
        #[serde(with = "millis")]
        delay: Duration,
        on: Phase,
    },
    /// A matching request is not forwarded; the client gets this failure.
    Abort(Abort),
    /// The connection is closed at a matching request.
    Drop {},
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Request,
    Response,
}

/// The failure an `abort` answers with, one per protocol.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Abort {
    Http {
        http_status: u16,
        #[serde(skip_serializing_if = "String::is_empty")]
        body: String,
    },
    Grpc {
        grpc_status: u32,
        #[serde(skip_serializing_if = "String::is_empty")]
        message: String,
    },
    Kafka {
        kafka_error: i16,
    },
}

impl FaultAction {
    /// The `type` as written.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Latency { .. } => "latency",
            Self::Bandwidth { .. } => "bandwidth",
            Self::SlowClose { .. } => "slow_close",
            Self::Timeout { .. } => "timeout",
            Self::ResetPeer { .. } => "reset_peer",
            Self::Slicer { .. } => "slicer",
            Self::LimitData { .. } => "limit_data",
            Self::Down {} => "down",
            Self::Delay { .. } => "delay",
            Self::Abort(_) => "abort",
            Self::Drop {} => "drop",
        }
    }

    /// Whether it acts on requests (decoded edges) rather than bytes.
    pub fn is_request_fault(&self) -> bool {
        matches!(self, Self::Delay { .. } | Self::Abort(_) | Self::Drop {})
    }
}

const CONNECTION_TYPES: &str =
    "latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data, down";
const REQUEST_TYPES: &str = "delay, abort, drop";

/// Reads one fault. Problems come back as (path under the fault, message).
pub fn read_fault(value: &Value) -> Result<FaultSpec, Vec<(String, String)>> {
    let mut errors = Vec::new();
    let Some(map) = value.as_object() else {
        return Err(vec![(String::new(), "expected a mapping".into())]);
    };
    const KEYS: &[&str] = &[
        "name",
        "type",
        "stream",
        "toxicity",
        "match",
        "first",
        "every",
        "attributes",
    ];
    for key in map.keys().filter(|k| !KEYS.contains(&k.as_str())) {
        errors.push((
            key.clone(),
            format!("unknown key (expected one of {})", KEYS.join(", ")),
        ));
    }
    let empty = Map::new();
    let attributes = match map.get("attributes") {
        None => &empty,
        Some(Value::Object(a)) => a,
        Some(_) => {
            errors.push(("attributes".into(), "expected a mapping".into()));
            &empty
        }
    };
    let mut attrs = Attributes {
        map: attributes,
        errors: &mut errors,
    };
    let action = match map.get("type").and_then(Value::as_str) {
        Some(kind) => attrs.action(kind),
        None => {
            attrs.errors.push((
                "type".into(),
                format!("a fault needs a type: one of {CONNECTION_TYPES}, {REQUEST_TYPES}"),
            ));
            None
        }
    };
    if let Some(known) = map
        .get("type")
        .and_then(Value::as_str)
        .and_then(attribute_names)
    {
        attrs.unknown(known);
    }
    let name = match map.get("name") {
        None => action.as_ref().map(|a| a.type_name().to_string()),
        Some(Value::String(s)) if !s.trim().is_empty() && !s.contains('/') => Some(s.clone()),
        Some(_) => {
            errors.push((
                "name".into(),
                "expected a non-empty name without '/'".into(),
            ));
            None
        }
    };
    let stream = match map.get("stream").map(|v| v.as_str()) {
        None | Some(Some("downstream")) => Stream::Downstream,
        Some(Some("upstream")) => Stream::Upstream,
        Some(_) => {
            errors.push(("stream".into(), "expected upstream or downstream".into()));
            Stream::Downstream
        }
    };
    let toxicity = match map.get("toxicity") {
        None => 1.0,
        Some(v) => match v.as_f64().filter(|t| (0.0..=1.0).contains(t)) {
            Some(t) => t,
            None => {
                errors.push(("toxicity".into(), "expected a number from 0 to 1".into()));
                1.0
            }
        },
    };
    let mut count = |key: &str| match map.get(key) {
        None => None,
        Some(v) => match v.as_u64().filter(|n| *n > 0) {
            Some(n) => Some(n),
            None => {
                errors.push((key.into(), "expected a whole number above 0".into()));
                None
            }
        },
    };
    let (first, every) = (count("first"), count("every"));
    let when = match map.get("match") {
        None => None,
        Some(Value::String(q)) => match crate::events::Query::parse(q) {
            Ok(_) => Some(q.clone()),
            Err(e) => {
                errors.push(("match".into(), e.to_string()));
                None
            }
        },
        Some(_) => {
            errors.push(("match".into(), "expected a query (a string)".into()));
            None
        }
    };
    if let Some(action) = &action {
        if !action.is_request_fault() {
            for key in ["match", "first", "every"]
                .into_iter()
                .filter(|k| map.contains_key(*k))
            {
                errors.push((
                    key.into(),
                    format!(
                        "only request faults ({REQUEST_TYPES}) take `{key}`: a {} fault acts on every connection",
                        action.type_name()
                    ),
                ));
            }
        } else if map.contains_key("stream") {
            errors.push((
                "stream".into(),
                "a request fault acts on requests (use `on: response` to delay responses)".into(),
            ));
        }
    }
    match (action, name) {
        (Some(action), Some(name)) if errors.is_empty() => Ok(FaultSpec {
            name,
            action,
            stream,
            toxicity,
            when,
            first,
            every,
        }),
        _ => Err(errors),
    }
}

/// A fault's `attributes`, each read once; what is left over is an error.
struct Attributes<'a> {
    map: &'a Map<String, Value>,
    errors: &'a mut Vec<(String, String)>,
}

impl Attributes<'_> {
    fn action(&mut self, kind: &str) -> Option<FaultAction> {
        let ms = Duration::from_millis;
        Some(match kind {
            "latency" => FaultAction::Latency {
                latency: self.duration("latency", ms(0), ms)?,
                jitter: self.duration("jitter", ms(0), ms)?,
            },
            "bandwidth" => FaultAction::Bandwidth {
                rate: self.number("rate", None)?,
            },
            "slow_close" => FaultAction::SlowClose {
                delay: self.duration("delay", ms(0), ms)?,
            },
            "timeout" => FaultAction::Timeout {
                timeout: self.duration("timeout", ms(0), ms)?,
            },
            "reset_peer" => FaultAction::ResetPeer {
                timeout: self.duration("timeout", ms(0), ms)?,
            },
            "slicer" => FaultAction::Slicer {
                average_size: self.number("average_size", None)?.max(1),
                size_variation: self.number("size_variation", Some(0))?,
                delay: self.duration("delay", ms(0), Duration::from_micros)?,
            },
            "limit_data" => FaultAction::LimitData {
                bytes: self.number("bytes", None)?,
            },
            "down" => FaultAction::Down {},
            "delay" => FaultAction::Delay {
                delay: self.duration("delay", ms(0), ms)?,
                on: match self.take("on") {
                    None => Phase::Request,
                    Some(Value::String(s)) if s == "request" => Phase::Request,
                    Some(Value::String(s)) if s == "response" => Phase::Response,
                    Some(_) => return self.bad("on", "expected request or response"),
                },
            },
            "abort" => FaultAction::Abort(self.abort()?),
            "drop" => FaultAction::Drop {},
            other => {
                self.errors.push((
                    "type".into(),
                    format!("unknown fault type {other:?} (connection faults: {CONNECTION_TYPES}; request faults: {REQUEST_TYPES})"),
                ));
                return None;
            }
        })
    }

    fn abort(&mut self) -> Option<Abort> {
        let given = ["http_status", "grpc_status", "kafka_error"]
            .into_iter()
            .filter(|k| self.map.contains_key(*k))
            .collect::<Vec<_>>();
        match given.as_slice() {
            ["http_status"] => {
                let status = self.number("http_status", None)?;
                if !(100..=599).contains(&status) {
                    return self.bad("http_status", "expected an HTTP status from 100 to 599");
                }
                Some(Abort::Http {
                    http_status: status as u16,
                    body: self.text("body")?,
                })
            }
            ["grpc_status"] => {
                let status = self.number("grpc_status", None)?;
                if !(1..=16).contains(&status) {
                    return self.bad("grpc_status", "expected a gRPC status code from 1 to 16");
                }
                Some(Abort::Grpc {
                    grpc_status: status as u32,
                    message: self.text("message")?,
                })
            }
            ["kafka_error"] => {
                let code = self.take("kafka_error").and_then(Value::as_i64);
                match code.filter(|c| *c != 0 && i16::try_from(*c).is_ok()) {
                    Some(code) => Some(Abort::Kafka {
                        kafka_error: code as i16,
                    }),
                    None => self.bad("kafka_error", "expected a Kafka error code (not 0)"),
                }
            }
            _ => {
                self.errors.push((
                    "attributes".into(),
                    "an abort needs exactly one of http_status (with body), grpc_status (with message) or kafka_error".into(),
                ));
                None
            }
        }
    }

    fn take(&self, key: &'static str) -> Option<&Value> {
        self.map.get(key)
    }

    fn bad<T>(&mut self, key: &str, message: &str) -> Option<T> {
        self.errors
            .push((format!("attributes.{key}"), message.to_string()));
        None
    }

    fn number(&mut self, key: &'static str, default: Option<u64>) -> Option<u64> {
        match (self.take(key), default) {
            (None, Some(d)) => Some(d),
            (None, None) => self.bad(key, "required"),
            (Some(v), _) => match v.as_u64() {
                Some(n) => Some(n),
                None => self.bad(key, "expected a whole number"),
            },
        }
    }

    fn text(&mut self, key: &'static str) -> Option<String> {
        match self.take(key) {
            None => Some(String::new()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => self.bad(key, "expected a string"),
        }
    }

    /// A number in the attribute's unit, or a duration with its own
    /// (`"100ms"`, `"1.5s"`).
    fn duration(
        &mut self,
        key: &'static str,
        default: Duration,
        unit: fn(u64) -> Duration,
    ) -> Option<Duration> {
        match self.take(key) {
            None => Some(default),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n) => Some(unit(n)),
                None => self.bad(
                    key,
                    "expected a whole number or a duration such as \"100ms\"",
                ),
            },
            Some(Value::String(s)) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => self.bad(key, &e),
            },
            Some(_) => self.bad(
                key,
                "expected a whole number or a duration such as \"100ms\"",
            ),
        }
    }

    /// Attributes the type does not have (checked by name, so one that
    /// failed to read does not hide the others).
    fn unknown(&mut self, known: &[&str]) {
        for key in self.map.keys() {
            if !known.contains(&key.as_str()) {
                self.errors.push((
                    format!("attributes.{key}"),
                    "not an attribute of this fault type".into(),
                ));
            }
        }
    }
}

/// The attributes a type takes; `None` for a type that does not exist.
fn attribute_names(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "latency" => &["latency", "jitter"],
        "bandwidth" => &["rate"],
        "slow_close" => &["delay"],
        "timeout" | "reset_peer" => &["timeout"],
        "slicer" => &["average_size", "size_variation", "delay"],
        "limit_data" => &["bytes"],
        "down" | "drop" => &[],
        "delay" => &["delay", "on"],
        "abort" => &[
            "http_status",
            "body",
            "grpc_status",
            "message",
            "kafka_error",
        ],
        _ => return None,
    })
}

mod millis {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

mod micros {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_micros() as u64)
    }
}

#[cfg(test)]
mod tests;
