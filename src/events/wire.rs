//! An event's JSON envelope, read and written by hand rather than derived,
//! so that an event this version of tapmesh does not know is kept as it
//! was read: a file or stream from a newer tapmesh may hold a `type`, or a
//! payload, this one has never heard of, and reading it back must neither
//! fail nor lose it.
//!
//! Known events are written exactly as the derived serializer wrote them
//! (the envelope's fields, then the one payload object) and read in one
//! pass when `type` comes before the payload, as tapmesh writes it.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use super::{Event, EventKind, Payload};

/// A payload this version does not know, kept as its name and its JSON
/// exactly as read, so that writing the event again gives the same text.
///
/// It stands for two cases: an event whose `type` is unknown (its kind is
/// [`EventKind::Unknown`] and the name it was read with is kept here,
/// whatever its payload, since a new type's payload may not mean what a
/// known payload of the same name means), and a known `type` carrying a
/// payload object of a name this version does not know.
#[derive(Debug, Clone)]
pub struct UnknownPayload {
    type_name: Option<Box<str>>,
    name: Box<str>,
    json: Box<RawValue>,
    /// The payload's `source` and `target` strings, where it has them (as
    /// every traffic payload does), so that edge filters and one-line
    /// views show the traffic of protocols newer than this version.
    source: Option<Arc<str>>,
    target: Option<Arc<str>>,
}

impl UnknownPayload {
    /// The payload `name: json` of an event; `type_name` is the event's
    /// `type` when this version does not know it.
    pub fn new(type_name: Option<&str>, name: &str, json: Box<RawValue>) -> Self {
        #[derive(Deserialize)]
        struct Edge {
            source: Option<Arc<str>>,
            target: Option<Arc<str>>,
        }
        let edge = serde_json::from_str::<Edge>(json.get()).ok();
        let (source, target) = edge.map_or((None, None), |e| (e.source, e.target));
        Self {
            type_name: type_name.map(Into::into),
            name: name.into(),
            json,
            source,
            target,
        }
    }

    /// The event's `type`, when this version does not know it.
    pub fn type_name(&self) -> Option<&str> {
        self.type_name.as_deref()
    }

    /// The payload's field name beside the envelope.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The payload's JSON, exactly as read.
    pub fn json(&self) -> &RawValue {
        &self.json
    }

    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    pub fn target(&self) -> Option<&str> {
        self.target.as_deref()
    }
}

/// Equal when read from the same text.
impl PartialEq for UnknownPayload {
    fn eq(&self, other: &Self) -> bool {
        self.type_name == other.type_name
            && self.name == other.name
            && self.json.get() == other.json.get()
    }
}

/// The payload objects this version knows, by their field name.
const PAYLOAD_NAMES: [&str; 14] = [
    "connection",
    "request",
    "grpc_call",
    "kafka_request",
    "query",
    "notification",
    "command",
    "push",
    "decode_error",
    "dropped",
    "lifecycle",
    "log",
    "note",
    "fault",
];

impl Payload {
    /// The payload's field name beside the envelope (`"request": {…}`).
    pub fn name(&self) -> &str {
        match self {
            Payload::Connection(_) => "connection",
            Payload::Request(_) => "request",
            Payload::GrpcCall(_) => "grpc_call",
            Payload::KafkaRequest(_) => "kafka_request",
            Payload::Query(_) => "query",
            Payload::Notification(_) => "notification",
            Payload::RedisCommand(_) => "command",
            Payload::RedisPush(_) => "push",
            Payload::DecodeError(_) => "decode_error",
            Payload::Dropped(_) => "dropped",
            Payload::Lifecycle(_) => "lifecycle",
            Payload::Log(_) => "log",
            Payload::Note(_) => "note",
            Payload::Fault(_) => "fault",
            Payload::Unknown(u) => u.name(),
        }
    }

    /// The payload object as the event's JSON has it (`None` only for an
    /// unknown payload whose text is not JSON, which reading prevents).
    pub fn to_json(&self) -> Option<serde_json::Value> {
        let value = match self {
            Payload::Connection(c) => serde_json::to_value(c),
            Payload::Request(r) => serde_json::to_value(r),
            Payload::GrpcCall(g) => serde_json::to_value(g),
            Payload::KafkaRequest(k) => serde_json::to_value(k),
            Payload::Query(q) => serde_json::to_value(q),
            Payload::Notification(n) => serde_json::to_value(n),
            Payload::RedisCommand(c) => serde_json::to_value(c),
            Payload::RedisPush(p) => serde_json::to_value(p),
            Payload::DecodeError(d) => serde_json::to_value(d),
            Payload::Dropped(d) => serde_json::to_value(d),
            Payload::Lifecycle(l) => serde_json::to_value(l),
            Payload::Log(l) => serde_json::to_value(l),
            Payload::Note(n) => serde_json::to_value(n),
            Payload::Fault(f) => serde_json::to_value(f),
            Payload::Unknown(u) => serde_json::from_str(u.json().get()),
        };
        value.ok()
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("type", self.type_name())?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("environment", &self.environment)?;
        if let Some(service) = &self.service {
            map.serialize_entry("service", service)?;
        }
        let name = self.payload.name();
        match &self.payload {
            Payload::Connection(c) => map.serialize_entry(name, c),
            Payload::Request(r) => map.serialize_entry(name, r),
            Payload::GrpcCall(g) => map.serialize_entry(name, g),
            Payload::KafkaRequest(k) => map.serialize_entry(name, k),
            Payload::Query(q) => map.serialize_entry(name, q),
            Payload::Notification(n) => map.serialize_entry(name, n),
            Payload::RedisCommand(c) => map.serialize_entry(name, c),
            Payload::RedisPush(p) => map.serialize_entry(name, p),
            Payload::DecodeError(d) => map.serialize_entry(name, d),
            Payload::Dropped(d) => map.serialize_entry(name, d),
            Payload::Lifecycle(l) => map.serialize_entry(name, l),
            Payload::Log(l) => map.serialize_entry(name, l),
            Payload::Note(n) => map.serialize_entry(name, n),
            Payload::Fault(f) => map.serialize_entry(name, f),
            Payload::Unknown(u) => map.serialize_entry(name, u.json()),
        }?;
        map.end()
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EventVisitor)
    }
}

/// A field of the event object, told apart without allocating for the
/// envelope's and the known payloads' names.
enum Key {
    Seq,
    Type,
    Timestamp,
    Environment,
    Service,
    Payload(&'static str),
    Other(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "seq" => Key::Seq,
                    "type" => Key::Type,
                    "timestamp" => Key::Timestamp,
                    "environment" => Key::Environment,
                    "service" => Key::Service,
                    _ => match PAYLOAD_NAMES.iter().find(|&&n| n == key) {
                        Some(name) => Key::Payload(name),
                        None => Key::Other(key.to_string()),
                    },
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// The `type`: a kind this version knows, or the name it does not.
enum TypeName {
    Known(EventKind),
    Unknown(String),
}

impl<'de> Deserialize<'de> for TypeName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TypeVisitor;
        impl Visitor<'_> for TypeVisitor {
            type Value = TypeName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event type")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<TypeName, E> {
                Ok(match EventKind::from_name(name) {
                    Some(kind) => TypeName::Known(kind),
                    None => TypeName::Unknown(name.to_string()),
                })
            }
        }
        deserializer.deserialize_str(TypeVisitor)
    }
}

/// Reads the known payload named `.0`.
struct KnownPayload<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for KnownPayload<'_> {
    type Value = Payload;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
        Ok(match self.0 {
            "connection" => Payload::Connection(Deserialize::deserialize(d)?),
            "request" => Payload::Request(Deserialize::deserialize(d)?),
            "grpc_call" => Payload::GrpcCall(Deserialize::deserialize(d)?),
            "kafka_request" => Payload::KafkaRequest(Deserialize::deserialize(d)?),
            "query" => Payload::Query(Deserialize::deserialize(d)?),
            "notification" => Payload::Notification(Deserialize::deserialize(d)?),
            "command" => Payload::RedisCommand(Deserialize::deserialize(d)?),
            "push" => Payload::RedisPush(Deserialize::deserialize(d)?),
            "decode_error" => Payload::DecodeError(Deserialize::deserialize(d)?),
            "dropped" => Payload::Dropped(Deserialize::deserialize(d)?),
            "lifecycle" => Payload::Lifecycle(Deserialize::deserialize(d)?),
            "log" => Payload::Log(Deserialize::deserialize(d)?),
            "note" => Payload::Note(Deserialize::deserialize(d)?),
            "fault" => Payload::Fault(Deserialize::deserialize(d)?),
            other => unreachable!("{other} is not in PAYLOAD_NAMES"),
        })
    }
}

struct EventVisitor;

/// What has been read of an event so far.
#[derive(Default)]
struct Fields {
    seq: Option<u64>,
    kind: Option<TypeName>,
    timestamp: Option<DateTime<Utc>>,
    environment: Option<Arc<str>>,
    service: Option<Arc<str>>,
    payload: Option<Payload>,
    /// Fields beside the envelope not read as a known payload yet: one
    /// this version does not know, or one that came before `type`.
    others: Vec<(String, Box<RawValue>)>,
}

impl<'de> Visitor<'de> for EventVisitor {
    type Value = Event;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event: seq, type, timestamp, environment and one payload object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Event, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Seq => fields.seq = Some(map.next_value()?),
                Key::Type => fields.kind = Some(map.next_value()?),
                Key::Timestamp => fields.timestamp = Some(map.next_value()?),
                Key::Environment => fields.environment = Some(map.next_value()?),
                Key::Service => fields.service = map.next_value()?,
                Key::Payload(name) => match (&fields.kind, &fields.payload) {
                    // Beside the known payload, what else there is was
                    // never read: newer fields stay harmless.
                    (Some(TypeName::Known(_)), Some(_)) => {
                        map.next_value::<IgnoredAny>()?;
                    }
                    (Some(TypeName::Known(_)), None) => {
                        fields.payload = Some(map.next_value_seed(KnownPayload(name))?);
                    }
                    _ => fields.others.push((name.to_string(), map.next_value()?)),
                },
                Key::Other(name) => fields.others.push((name, map.next_value()?)),
            }
        }
        fields.finish()
    }
}

impl Fields {
    fn finish<E: de::Error>(self) -> Result<Event, E> {
        let (kind, payload) = match (self.kind, self.payload) {
            (None, _) => return Err(E::missing_field("type")),
            (Some(TypeName::Known(kind)), Some(payload)) => (kind, payload),
            (Some(TypeName::Known(kind)), None) => {
                let known = self
                    .others
                    .iter()
                    .find(|(name, _)| PAYLOAD_NAMES.contains(&name.as_str()));
                let payload = match known {
                    // It came before `type`.
                    Some((name, json)) => KnownPayload(name)
                        .deserialize(&**json)
                        .map_err(|e| E::custom(format_args!("{name}: {e}")))?,
                    None => Payload::Unknown(only_payload(None, self.others)?),
                };
                (kind, payload)
            }
            (Some(TypeName::Unknown(name)), _) => (
                EventKind::Unknown,
                Payload::Unknown(only_payload(Some(&name), self.others)?),
            ),
        };
        Ok(Event {
            seq: self.seq.ok_or_else(|| E::missing_field("seq"))?,
            kind,
            timestamp: self
                .timestamp
                .ok_or_else(|| E::missing_field("timestamp"))?,
            environment: self
                .environment
                .ok_or_else(|| E::missing_field("environment"))?,
            service: self.service,
            payload,
        })
    }
}

/// The one field beside the envelope, as an unknown payload.
fn only_payload<E: de::Error>(
    type_name: Option<&str>,
    mut others: Vec<(String, Box<RawValue>)>,
) -> Result<UnknownPayload, E> {
    match others.len() {
        1 => {
            let (name, json) = others.pop().expect("one");
            Ok(UnknownPayload::new(type_name, &name, json))
        }
        0 => Err(E::custom("no payload object beside the envelope")),
        _ => Err(E::custom(format_args!(
            "more than one field beside the envelope ({}) and none a payload this version knows",
            others
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use crate::events::{Event, EventKind, Payload};

    /// One event of every payload, each as tapmesh writes it: reading one
    /// and writing it again gives back the same bytes.
    pub(crate) const CANONICAL: &[&str] = &[
        r#"{"seq":7,"type":"connection.closed","timestamp":"2026-11-22T10:00:00.500Z","environment":"shop","connection":{"id":3,"source":"orders","target":"inventory","ingress":"default","client_addr":"127.0.0.1:5000","bytes_in":10,"bytes_out":20,"duration_ms":1.5,"error":"target reset the connection"}}"#,
        r#"{"seq":8,"type":"request.completed","timestamp":"2026-11-22T10:00:01.250Z","environment":"shop","request":{"connection":3,"source":"orders","target":"inventory","ingress":"default","version":"HTTP/1.1","method":"POST","path":"/items?id=7","status_code":201,"latency_ms":3.06,"request_size":2,"response_size":3,"request_headers":{"content-type":"text/plain","host":"inv:80"},"response_headers":{"content-type":"text/plain"},"response_trailers":{"x-sum":"1"},"request_body":"hi","request_body_encoding":"utf8","request_body_truncated":false,"response_body":"b2sK","response_body_encoding":"base64","response_body_truncated":true,"warnings":["request: odd"],"error":"cut off"}}"#,
        r#"{"seq":9,"type":"grpc.call.completed","timestamp":"2026-11-22T10:00:02Z","environment":"shop","grpc_call":{"connection":4,"source":"orders","target":"inventory","ingress":"default","service":"shop.Inventory","method":"Get","path":"/shop.Inventory/Get","grpc_status":5,"grpc_status_name":"NOT_FOUND","grpc_message":"no item","http_status":200,"latency_ms":1.25,"request_size":12,"response_size":0,"request_messages":1,"response_messages":0,"request_metadata":{"x-id":"1"},"response_metadata":{},"request_body_decoded":[{"id":"7"}],"response_body_decoded":[],"request_body_truncated":false,"response_body_truncated":false,"decoded_with":"reflection","decode_problems":["x"],"health_check":false}}"#,
        r#"{"seq":10,"type":"kafka.request.completed","timestamp":"2026-11-22T10:00:03.000001Z","environment":"shop","kafka_request":{"connection":5,"source":"orders","target":"kafka","ingress":"default","api_key":0,"api_name":"Produce","api_version":9,"correlation_id":42,"client_id":"rdkafka","latency_ms":null,"request_size":120,"response_size":null,"error_code":null,"topics":[{"topic":"orders","partition":0,"records":2,"bytes":64,"error_code":0}]}}"#,
        r#"{"seq":16,"type":"postgres.query.completed","timestamp":"2026-11-22T10:00:09Z","environment":"shop","query":{"connection":6,"source":"orders","target":"db","ingress":"default","database":"shop","user":"app","protocol":"extended","sql":"UPDATE stock SET qty = qty - $1 WHERE sku = $2","params":[1,"A-7"],"statement":"s1","command":"UPDATE","rows":1,"error":null,"transaction":"in_transaction","latency_ms":0.412,"request_size":96,"response_size":30}}"#,
        r#"{"seq":17,"type":"postgres.query.completed","timestamp":"2026-11-22T10:00:10Z","environment":"shop","query":{"connection":6,"source":"orders","target":"db","ingress":"default","database":"shop","user":"app","protocol":"simple","sql":"SELECT 1/0","statement":null,"command":null,"rows":null,"error":{"severity":"ERROR","code":"22012","message":"division by zero"},"notices":1,"copy":{"direction":"in","messages":2,"bytes":12},"transaction":"failed","latency_ms":0.2,"request_size":16,"response_size":90}}"#,
        r#"{"seq":18,"type":"postgres.notification","timestamp":"2026-11-22T10:00:11Z","environment":"shop","notification":{"connection":7,"source":"worker","target":"db","ingress":"default","channel":"orders","payload":"42","pid":311}}"#,
        r#"{"seq":19,"type":"redis.command.completed","timestamp":"2026-11-22T10:00:12Z","environment":"shop","command":{"connection":8,"source":"orders","target":"cache","ingress":"default","command":"SET","args":["item:sku-1","/w==","EX","5"],"binary_args":[1],"arg_count":4,"transaction":true,"reply":{"type":"simple_string","value":"\"OK\""},"error":null,"resp3":true,"latency_ms":0.12,"request_size":48,"response_size":5}}"#,
        r#"{"seq":20,"type":"redis.command.completed","timestamp":"2026-11-22T10:00:13Z","environment":"shop","command":{"connection":8,"source":"orders","target":"cache","ingress":"default","command":"AUTH","args":["[redacted]"],"arg_count":1,"args_truncated":true,"inline":true,"reply":{"type":"error","value":"{\"error\":\"WRONGPASS x\"}","truncated":true,"replies":2},"error":{"code":"WRONGPASS","message":"x"},"latency_ms":null,"request_size":20,"response_size":12}}"#,
        r#"{"seq":21,"type":"redis.push","timestamp":"2026-11-22T10:00:14Z","environment":"shop","push":{"connection":9,"source":"worker","target":"cache","ingress":"default","kind":"pmessage","channel":"orders.1","pattern":"orders.*","payload":"/w==","payload_encoding":"base64","payload_truncated":true,"resp3":true,"size":60}}"#,
        r#"{"seq":11,"type":"decode.error","timestamp":"2026-11-22T10:00:04Z","environment":"shop","decode_error":{"connection":5,"source":"orders","target":"kafka","ingress":"default","protocol":"kafka","direction":"client_to_target","offset":17,"reason":"bad size"}}"#,
        r#"{"seq":22,"type":"decode.error","timestamp":"2026-11-22T10:00:15Z","environment":"shop","decode_error":{"connection":6,"source":"orders","target":"db","ingress":"default","protocol":"postgres","direction":"client_to_target","offset":0,"kind":"encrypted","reason":"the connection switched to TLS"}}"#,
        r#"{"seq":12,"type":"events.dropped","timestamp":"2026-11-22T10:00:05Z","environment":"shop","dropped":{"subscriber":"127.0.0.1:9","subscriber_id":2,"count":3,"first_seq":4,"last_seq":6}}"#,
        r#"{"seq":13,"type":"service.failed","timestamp":"2026-11-22T10:00:06Z","environment":"shop","service":"orders","lifecycle":{"state":"failed","reason":"exited with status 3"}}"#,
        r#"{"seq":14,"type":"service.log","timestamp":"2026-11-22T10:00:07Z","environment":"shop","service":"orders","log":{"stream":"stderr","line":"boom \"quoted\""}}"#,
        r#"{"seq":15,"type":"environment.up","timestamp":"2026-11-22T10:00:08Z","environment":"shop","lifecycle":{"state":"up","endpoints":{"orders":{"default":{"address":"127.0.0.1:1"}}}}}"#,
    ];

    #[test]
    fn every_payload_round_trips_byte_for_byte() {
        for line in CANONICAL {
            let event: Event = serde_json::from_str(line).unwrap();
            assert_eq!(serde_json::to_string(&event).unwrap(), *line);
            let mut fast = Vec::new();
            event.write_json(&mut fast);
            assert_eq!(String::from_utf8(fast).unwrap(), *line);
        }
    }

    fn read(line: &str) -> Event {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    /// Both writers give back `line` exactly.
    fn assert_written_as(event: &Event, line: &str) {
        assert_eq!(serde_json::to_string(event).unwrap(), line);
        let mut fast = Vec::new();
        event.write_json(&mut fast);
        assert_eq!(String::from_utf8(fast).unwrap(), line);
    }

    #[test]
    fn an_unknown_type_is_kept_as_read() {
        let line = r#"{"seq":3,"type":"chaos.injected","timestamp":"2026-11-23T10:00:02Z","environment":"e","chaos":{"edge":"a->b","delay_ms":1.50,"z":[1,{"b":2,"a":1}]}}"#;
        let event = read(line);
        assert_eq!(event.kind, EventKind::Unknown);
        assert_eq!(event.type_name(), "chaos.injected");
        let Payload::Unknown(u) = &event.payload else {
            panic!("{event:?}");
        };
        assert_eq!((u.name(), u.source()), ("chaos", None));
        assert_written_as(&event, line);

        // A new type whose payload has a known name is not read as that
        // payload: the new type may mean something else by it.
        let line = r#"{"seq":4,"type":"service.hibernated","timestamp":"2026-11-23T10:00:02Z","environment":"e","service":"job","lifecycle":{"state":"hibernated","exit_code":0}}"#;
        let event = read(line);
        assert!(matches!(&event.payload, Payload::Unknown(u) if u.name() == "lifecycle"));
        assert_eq!(event.service.as_deref(), Some("job"));
        assert_written_as(&event, line);
    }

    #[test]
    fn an_unknown_payload_of_a_known_type_is_kept_as_read() {
        let line = r#"{"seq":5,"type":"service.ready","timestamp":"2026-11-23T10:00:02Z","environment":"e","service":"db","health":{"probe":"grpc","ms":1e3}}"#;
        let event = read(line);
        assert_eq!(event.kind, EventKind::ServiceReady);
        assert_eq!(event.type_name(), "service.ready");
        assert!(matches!(&event.payload, Payload::Unknown(u) if u.type_name().is_none()));
        assert_written_as(&event, line);
    }

    #[test]
    fn an_unknown_traffic_event_keeps_its_edge() {
        let event = read(
            r#"{"seq":6,"type":"mysql.query.completed","timestamp":"2026-11-23T10:00:02Z","environment":"e","statement":{"source":"api","target":"db","sql":"select 1"}}"#,
        );
        assert_eq!((event.source(), event.target()), (Some("api"), Some("db")));
    }

    #[test]
    fn names_that_need_escaping_are_written_as_serde_json_writes_them() {
        let line = r#"{"seq":7,"type":"odd\"type\n\u0001","timestamp":"2026-11-23T10:00:02.123456789Z","environment":"e\\","odd\\name\t":"just a string"}"#;
        let event = read(line);
        assert_eq!(event.type_name(), "odd\"type\n\u{1}");
        assert_written_as(&event, line);
    }

    #[test]
    fn a_payload_before_the_type_or_beside_others_is_still_read() {
        let canonical = read(CANONICAL[0]);
        let reordered = read(
            r#"{"connection":{"id":3,"source":"orders","target":"inventory","ingress":"default","client_addr":"127.0.0.1:5000","bytes_in":10,"bytes_out":20,"duration_ms":1.5,"error":"target reset the connection"},"environment":"shop","seq":7,"timestamp":"2026-11-22T10:00:00.500Z","type":"connection.closed","later":{"x":1}}"#,
        );
        assert_eq!(reordered, canonical);
        // Through a serde_json::Value (whose keys are in name order) too.
        let value: serde_json::Value = serde_json::from_str(CANONICAL[1]).unwrap();
        assert_eq!(
            serde_json::from_value::<Event>(value).unwrap(),
            read(CANONICAL[1])
        );
        let unknown: serde_json::Value = serde_json::json!({"seq": 1, "type": "x.y",
            "timestamp": "2026-11-23T10:00:02Z", "environment": "e", "x": {"b": 1, "a": 2}});
        let event: Event = serde_json::from_value(unknown).unwrap();
        assert_eq!(event.type_name(), "x.y");
    }

    #[test]
    fn malformed_events_are_errors() {
        let envelope = r#""seq":1,"timestamp":"2026-11-23T10:00:02Z","environment":"e""#;
        for (line, says) in [
            // A known type's payload is checked.
            (
                format!(r#"{{{envelope},"type":"connection.opened","connection":{{"id":"x"}}}}"#),
                "invalid type",
            ),
            (
                format!(r#"{{"connection":{{"id":1}},{envelope},"type":"connection.opened"}}"#),
                "connection: missing field",
            ),
            (format!(r#"{{{envelope},"type":"x.y"}}"#), "no payload"),
            (
                format!(r#"{{{envelope},"type":"x.y","a":{{}},"b":{{}}}}"#),
                "more than one field",
            ),
            (
                r#"{"type":"x.y","timestamp":"2026-11-23T10:00:02Z","environment":"e","a":{}}"#
                    .to_string(),
                "missing field `seq`",
            ),
            (
                format!(r#"{{{envelope},"a":{{}}}}"#),
                "missing field `type`",
            ),
        ] {
            let error = serde_json::from_str::<Event>(&line)
                .unwrap_err()
                .to_string();
            assert!(error.contains(says), "{line}: {error}");
        }
    }

    #[test]
    fn kinds_are_named_as_serde_names_them() {
        for kind in EventKind::KNOWN {
            assert_eq!(EventKind::from_name(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_string(&kind).unwrap(),
                format!("\"{}\"", kind.as_str())
            );
        }
        assert_eq!(EventKind::from_name("unknown"), None);
    }
}
