//! The event schema. Field names here are stable API: the JSON they produce
//! is what files, streams and users' tests read.

use super::HeaderMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tapmesh_protocols::content::{decode_content, DecodedContent};

/// One thing that happened in an environment.
///
/// The envelope (`seq`, `type`, `timestamp`, `environment`, `service`) is the
/// same for every event; traffic events carry exactly one payload object,
/// named after what it describes (`"connection": {…}`). Its JSON is read and
/// written by hand (see `wire.rs`), so that events this version does not
/// know survive a round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// 1, 2, 3 … per environment, with no gaps.
    pub seq: u64,
    /// The `type`; [`EventKind::Unknown`] for one this version does not
    /// know, whose name [`Event::type_name`] gives.
    pub kind: EventKind,
    /// When the event completed.
    pub timestamp: DateTime<Utc>,
    pub environment: Arc<str>,
    /// The service a lifecycle event is about.
    pub service: Option<Arc<str>>,
    pub payload: Payload,
}

impl Event {
    /// The `type` as written: the kind's name, or for an event of a type
    /// this version does not know, the name it was read with.
    pub fn type_name(&self) -> &str {
        match (self.kind, &self.payload) {
            (EventKind::Unknown, Payload::Unknown(u)) => u.type_name().unwrap_or("unknown"),
            (kind, _) => kind.as_str(),
        }
    }

    /// The `source` of a traffic event's edge, if it has one.
    pub fn source(&self) -> Option<&str> {
        match &self.payload {
            Payload::Connection(c) => Some(&c.source),
            Payload::Request(r) => Some(&r.source),
            Payload::GrpcCall(g) => Some(&g.source),
            Payload::KafkaRequest(k) => Some(&k.source),
            Payload::Query(q) => Some(&q.source),
            Payload::Notification(n) => Some(&n.source),
            Payload::RedisCommand(c) => Some(&c.source),
            Payload::RedisPush(p) => Some(&p.source),
            Payload::DecodeError(d) => Some(&d.source),
            Payload::Fault(f) => Some(&f.source),
            Payload::Unknown(u) => u.source(),
            _ => None,
        }
    }

    /// The connection of a `connection.opened` or `connection.closed`.
    pub fn connection(&self) -> Option<&ConnectionInfo> {
        match &self.payload {
            Payload::Connection(c) => Some(c),
            _ => None,
        }
    }

    /// The HTTP exchange of a `request.completed`.
    pub fn request(&self) -> Option<&RequestInfo> {
        match &self.payload {
            Payload::Request(r) => Some(r),
            _ => None,
        }
    }

    /// The call of a `grpc.call.completed`.
    pub fn grpc_call(&self) -> Option<&crate::events::GrpcCallInfo> {
        match &self.payload {
            Payload::GrpcCall(g) => Some(g),
            _ => None,
        }
    }

    /// The request of a `kafka.request.completed`.
    pub fn kafka_request(&self) -> Option<&KafkaRequestInfo> {
        match &self.payload {
            Payload::KafkaRequest(k) => Some(k),
            _ => None,
        }
    }

    /// The statement of a `postgres.query.completed`.
    pub fn query(&self) -> Option<&super::QueryInfo> {
        match &self.payload {
            Payload::Query(q) => Some(q),
            _ => None,
        }
    }

    /// The command of a `redis.command.completed`.
    pub fn redis_command(&self) -> Option<&super::RedisCommandInfo> {
        match &self.payload {
            Payload::RedisCommand(c) => Some(c),
            _ => None,
        }
    }

    /// The change of state of a lifecycle event (`service.*`, `environment.*`).
    pub fn lifecycle(&self) -> Option<&LifecycleInfo> {
        match &self.payload {
            Payload::Lifecycle(l) => Some(l),
            _ => None,
        }
    }

    /// The `target` of a traffic event's edge, if it has one.
    pub fn target(&self) -> Option<&str> {
        match &self.payload {
            Payload::Connection(c) => Some(&c.target),
            Payload::Request(r) => Some(&r.target),
            Payload::GrpcCall(g) => Some(&g.target),
            Payload::KafkaRequest(k) => Some(&k.target),
            Payload::Query(q) => Some(&q.target),
            Payload::Notification(n) => Some(&n.target),
            Payload::RedisCommand(c) => Some(&c.target),
            Payload::RedisPush(p) => Some(&p.target),
            Payload::DecodeError(d) => Some(&d.target),
            Payload::Fault(f) => Some(&f.target),
            Payload::Unknown(u) => u.target(),
            _ => None,
        }
    }
}

/// The event's `type`.
///
/// A type this version does not know is [`EventKind::Unknown`], its name
/// kept in the event's [`Payload::Unknown`] rather than here: a name read
/// from a file would make the kind a `String`, not `Copy`, and every
/// `match` on kinds across the crate would change for events that only
/// files from newer versions hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "connection.opened")]
    ConnectionOpened,
    #[serde(rename = "connection.closed")]
    ConnectionClosed,
    #[serde(rename = "request.completed")]
    RequestCompleted,
    #[serde(rename = "grpc.call.completed")]
    GrpcCallCompleted,
    #[serde(rename = "kafka.request.completed")]
    KafkaRequestCompleted,
    #[serde(rename = "postgres.query.completed")]
    PostgresQueryCompleted,
    #[serde(rename = "postgres.notification")]
    PostgresNotification,
    #[serde(rename = "redis.command.completed")]
    RedisCommandCompleted,
    #[serde(rename = "redis.push")]
    RedisPush,
    #[serde(rename = "decode.error")]
    DecodeError,
    #[serde(rename = "events.dropped")]
    EventsDropped,
    #[serde(rename = "service.starting")]
    ServiceStarting,
    #[serde(rename = "service.ready")]
    ServiceReady,
    #[serde(rename = "service.failed")]
    ServiceFailed,
    #[serde(rename = "service.restarting")]
    ServiceRestarting,
    #[serde(rename = "service.stopped")]
    ServiceStopped,
    #[serde(rename = "service.completed")]
    ServiceCompleted,
    #[serde(rename = "service.prestart")]
    ServicePrestart,
    #[serde(rename = "service.init")]
    ServiceInit,
    #[serde(rename = "service.log")]
    ServiceLog,
    #[serde(rename = "environment.up")]
    EnvironmentUp,
    #[serde(rename = "environment.down")]
    EnvironmentDown,
    /// Services restarted with new commands (an edited spec, changed
    /// sources), and why.
    #[serde(rename = "environment.redeployed")]
    EnvironmentRedeployed,
    #[serde(rename = "progress.stall")]
    ProgressStall,
    /// A `cargo` service's build advanced (crates compiled of total).
    #[serde(rename = "build.progress")]
    BuildProgress,
    /// A ready service's liveness probe failed (each failure, with why).
    #[serde(rename = "health.check_failed")]
    HealthCheckFailed,
    /// A test's own step, from `Environment::note` or `POST
    /// /environments/{id}/notes`.
    #[serde(rename = "test.note")]
    TestNote,
    /// A fault on an edge acted: on a request, or on a connection.
    #[serde(rename = "fault.injected")]
    FaultInjected,
    /// A type this version does not know (read from a newer tapmesh's
    /// events): see [`Event::type_name`].
    #[serde(skip)]
    Unknown,
}

impl EventKind {
    /// The name as it appears in `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConnectionOpened => "connection.opened",
            Self::ConnectionClosed => "connection.closed",
            Self::RequestCompleted => "request.completed",
            Self::GrpcCallCompleted => "grpc.call.completed",
            Self::KafkaRequestCompleted => "kafka.request.completed",
            Self::PostgresQueryCompleted => "postgres.query.completed",
            Self::PostgresNotification => "postgres.notification",
            Self::RedisCommandCompleted => "redis.command.completed",
            Self::RedisPush => "redis.push",
            Self::DecodeError => "decode.error",
            Self::EventsDropped => "events.dropped",
            Self::ServiceStarting => "service.starting",
            Self::ServiceReady => "service.ready",
            Self::ServiceFailed => "service.failed",
            Self::ServiceRestarting => "service.restarting",
            Self::ServiceStopped => "service.stopped",
            Self::ServiceCompleted => "service.completed",
            Self::ServicePrestart => "service.prestart",
            Self::ServiceInit => "service.init",
            Self::ServiceLog => "service.log",
            Self::EnvironmentUp => "environment.up",
            Self::EnvironmentDown => "environment.down",
            Self::EnvironmentRedeployed => "environment.redeployed",
            Self::ProgressStall => "progress.stall",
            Self::BuildProgress => "build.progress",
            Self::HealthCheckFailed => "health.check_failed",
            Self::TestNote => "test.note",
            Self::FaultInjected => "fault.injected",
            Self::Unknown => "unknown",
        }
    }

    /// The kind named `name` in `type`, if this version knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::KNOWN.into_iter().find(|k| k.as_str() == name)
    }

    /// Every kind this version knows.
    pub const KNOWN: [Self; 28] = [
        Self::ConnectionOpened,
        Self::ConnectionClosed,
        Self::RequestCompleted,
        Self::GrpcCallCompleted,
        Self::KafkaRequestCompleted,
        Self::PostgresQueryCompleted,
        Self::PostgresNotification,
        Self::RedisCommandCompleted,
        Self::RedisPush,
        Self::DecodeError,
        Self::EventsDropped,
        Self::ServiceStarting,
        Self::ServiceReady,
        Self::ServiceFailed,
        Self::ServiceRestarting,
        Self::ServiceStopped,
        Self::ServiceCompleted,
        Self::ServicePrestart,
        Self::ServiceInit,
        Self::ServiceLog,
        Self::EnvironmentUp,
        Self::EnvironmentDown,
        Self::EnvironmentRedeployed,
        Self::ProgressStall,
        Self::BuildProgress,
        Self::HealthCheckFailed,
        Self::TestNote,
        Self::FaultInjected,
    ];
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event is about, serialized as one named object beside the
/// envelope (`"grpc_call": {…}`: the variant's name in snake case).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `connection.opened` / `connection.closed`.
    Connection(ConnectionInfo),
    /// `request.completed`.
    Request(RequestInfo),
    /// `grpc.call.completed`.
    GrpcCall(super::grpc::GrpcCallInfo),
    /// `kafka.request.completed`.
    KafkaRequest(KafkaRequestInfo),
    /// `postgres.query.completed`.
    Query(super::QueryInfo),
    /// `postgres.notification`.
    Notification(super::NotificationInfo),
    /// `redis.command.completed`.
    RedisCommand(super::RedisCommandInfo),
    /// `redis.push`.
    RedisPush(super::RedisPushInfo),
    /// `decode.error`.
    DecodeError(DecodeErrorInfo),
    /// `events.dropped`.
    Dropped(DroppedInfo),
    /// `service.*` (but `service.log`), `environment.*`, `progress.stall`,
    /// `build.progress`, `health.check_failed`.
    Lifecycle(LifecycleInfo),
    /// `service.log`: one line a service wrote.
    Log(ServiceLogInfo),
    /// `test.note`: a step a test announced.
    Note(NoteInfo),
    /// `fault.injected`: a fault acted on an edge.
    Fault(FaultInfo),
    /// An event of a type, or a payload, this version does not know, kept
    /// as read.
    Unknown(super::UnknownPayload),
}

/// A service's or the environment's change of state. Fields are present
/// only where they say something for that event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LifecycleInfo {
    /// The service's state (`starting`, `ready`, `completed`, `failed` …),
    /// or `up`, `down`, `stalled` on the environment's events.
    pub state: super::LifecycleState,
    /// Why, in a sentence (`exited with status 3`, `readiness: connection
    /// refused`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// How the process ended, when it exited (`service.stopped`,
    /// `service.restarting`, `service.failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that killed it, by name (`SIGKILL`, `SIGTERM`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::signal::deserialize"
    )]
    pub signal: Option<String>,
    /// Restarts so far (on `service.restarting` and `service.failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// The service's last log lines (on `service.failed`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// `environment.up`: every service's and proxy's resolved endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<serde_json::Value>,
    /// `progress.stall`: who waits on whom, one sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<String>,
    /// `build.progress`: how far a `cargo` build is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildProgress>,
    /// `health.check_failed`: liveness failures in a row so far, and the
    /// number that restarts the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<u32>,
    /// `environment.redeployed`: the services restarted with new commands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redeployed: Vec<String>,
}

/// A `cargo` build's progress, from cargo's JSON messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildProgress {
    /// Units (crates, build scripts) finished so far.
    pub compiled: u32,
    /// Units the build has, as far as cargo has said (it grows while
    /// cargo plans; `null` until known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    /// The crate just finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
}

/// One line of a service's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLogInfo {
    /// `stdout` or `stderr`.
    pub stream: String,
    pub line: String,
}

/// A fault that acted: which, where, and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultInfo {
    /// The fault's name on its edge.
    pub fault: String,
    /// Its type (`abort`, `latency` …).
    #[serde(rename = "type")]
    pub kind: String,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    /// The connection it acted on.
    pub connection: u64,
    /// The request or call it acted on: that event's `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_seq: Option<u64>,
    /// What it did, in a sentence.
    pub detail: String,
}

/// A test's own step, so that the timeline shows what the test was doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteInfo {
    pub text: String,
}

/// One TCP connection across an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    /// Unique per proxy process; pairs `opened` with `closed` and names the
    /// connection in `decode.error`.
    pub id: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    /// The client's address as the proxy saw it.
    pub client_addr: String,
    /// Bytes from the client to the target.
    pub bytes_in: u64,
    /// Bytes from the target to the client.
    pub bytes_out: u64,
    /// From accept to close (zero on `connection.opened`).
    pub duration_ms: f64,
    /// Why the connection ended other than by both sides closing cleanly:
    /// the target refused or timed out, a side reset, the proxy stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One HTTP exchange (HTTP/1.x or HTTP/2): a request and its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// The connection's id, as in its `connection.*` events.
    pub connection: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    pub version: String,
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The final status; `null` when no response came.
    pub status_code: Option<u16>,
    /// From the request's first byte to the response head.
    pub latency_ms: Option<f64>,
    /// Every request body byte, captured or not.
    pub request_size: u64,
    pub response_size: u64,
    /// Header names lower-cased; repeated fields joined with `, `.
    pub request_headers: HeaderMap,
    pub response_headers: HeaderMap,
    #[serde(default, skip_serializing_if = "HeaderMap::is_empty")]
    pub request_trailers: HeaderMap,
    #[serde(default, skip_serializing_if = "HeaderMap::is_empty")]
    pub response_trailers: HeaderMap,
    pub request_body: String,
    pub request_body_encoding: BodyEncoding,
    pub request_body_truncated: bool,
    pub response_body: String,
    pub response_body_encoding: BodyEncoding,
    pub response_body_truncated: bool,
    /// What about the exchange's framing another reader might take
    /// differently (`request: content-length and transfer-encoding both
    /// present` …); absent when there is nothing to say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The fault that acted on this exchange (its name), if one did; a
    /// `fault.injected` event follows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Why the exchange is incomplete (no response, cut off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RequestInfo {
    /// The captured request body's bytes, as sent.
    pub fn request_body_bytes(&self) -> Result<Vec<u8>, String> {
        self.request_body_encoding.decode(&self.request_body)
    }

    /// The captured response body's bytes, as sent.
    pub fn response_body_bytes(&self) -> Result<Vec<u8>, String> {
        self.response_body_encoding.decode(&self.response_body)
    }

    /// The response body with its `Content-Encoding` (gzip, deflate, br)
    /// undone, up to `limit` bytes; `None` if it has no content coding.
    /// Events keep bodies as sent; views decode them here, off the traffic path.
    pub fn decoded_response_body(&self, limit: usize) -> Result<Option<DecodedContent>, String> {
        match self.response_headers.get("content-encoding") {
            Some(coding) => decode_content(&self.response_body_bytes()?, coding, limit),
            None => Ok(None),
        }
    }

    /// As [`Self::decoded_response_body`], for the request body.
    pub fn decoded_request_body(&self, limit: usize) -> Result<Option<DecodedContent>, String> {
        match self.request_headers.get("content-encoding") {
            Some(coding) => decode_content(&self.request_body_bytes()?, coding, limit),
            None => Ok(None),
        }
    }
}

/// One Kafka request and its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KafkaRequestInfo {
    /// The connection's id, as in its `connection.*` events.
    pub connection: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    pub api_key: i16,
    /// Kafka's name for the key (`Produce`, `Metadata` …); `null` for a key
    /// Kafka never defined.
    pub api_name: Option<String>,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// From the request's first byte to the response's last; `null` when no
    /// response is expected (a Produce with `acks=0`).
    pub latency_ms: Option<f64>,
    /// Bytes of the request, its 4-byte size field included.
    pub request_size: u64,
    /// Bytes of the response as the broker sent it; `null` without one.
    pub response_size: Option<u64>,
    /// The response's top-level error code, where it has one.
    pub error_code: Option<i16>,
    /// Produce and Fetch: one entry per partition; `null` for other keys
    /// and for bodies that could not be decoded (a version the decoder does
    /// not know, or past the capture limit).
    pub topics: Option<Vec<KafkaTopicPartition>>,
}

/// One partition of a Produce or Fetch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KafkaTopicPartition {
    pub topic: String,
    pub partition: i32,
    pub records: u64,
    pub bytes: u64,
    pub error_code: Option<i16>,
}

/// How a captured body is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    /// The body is valid UTF-8 and is shown as it is.
    Utf8,
    /// Anything else, in standard base64.
    Base64,
}

impl BodyEncoding {
    /// The name as it appears in `*_body_encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyEncoding::Utf8 => "utf8",
            BodyEncoding::Base64 => "base64",
        }
    }

    /// The bytes a body string written in this encoding stands for.
    pub fn decode(self, text: &str) -> Result<Vec<u8>, String> {
        use base64::Engine;
        match self {
            BodyEncoding::Utf8 => Ok(text.as_bytes().to_vec()),
            BodyEncoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("invalid base64 body: {e}")),
        }
    }

    /// A body as a JSON string and the encoding that string uses.
    pub fn encode(body: &[u8]) -> (String, BodyEncoding) {
        use base64::Engine;
        match std::str::from_utf8(body) {
            Ok(text) => (text.to_string(), BodyEncoding::Utf8),
            Err(_) => (
                base64::engine::general_purpose::STANDARD.encode(body),
                BodyEncoding::Base64,
            ),
        }
    }
}

/// A decoder gave up on a connection; its bytes were still forwarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodeErrorInfo {
    /// The connection's id, as in its `connection.*` events.
    pub connection: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    pub protocol: String,
    /// `client_to_target` or `target_to_client`.
    pub direction: String,
    /// Offset of the offending byte within that direction's stream.
    pub offset: u64,
    /// Why, as a stable category to count and match on (`malformed`,
    /// `limit_exceeded`, `unsupported`, `unexpected_message`, `encrypted`,
    /// `rewrite_failed`); absent in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// What exactly went wrong, for a person to read.
    pub reason: String,
}

/// A subscriber fell too far behind and skipped events to catch up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DroppedInfo {
    /// The subscriber's label (for instance the address of a stream client).
    pub subscriber: String,
    /// The subscriber's id, unique within the log.
    pub subscriber_id: u64,
    /// How many events it skipped.
    pub count: u64,
    /// The skipped events are `first_seq ..= last_seq`; `EventLog::since`
    /// can still fetch them.
    pub first_seq: u64,
    pub last_seq: u64,
}

/// An event before the log gives it its `seq` and `environment`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDraft {
    pub kind: EventKind,
    pub timestamp: DateTime<Utc>,
    pub service: Option<Arc<str>>,
    pub payload: Payload,
}

impl EventDraft {
    /// A draft stamped with the current wall-clock time.
    pub fn now(kind: EventKind, payload: Payload) -> Self {
        Self {
            kind,
            timestamp: Utc::now(),
            service: None,
            payload,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection_event() -> Event {
        Event {
            seq: 7,
            kind: EventKind::ConnectionClosed,
            timestamp: "2026-11-22T10:00:00.5Z".parse().unwrap(),
            environment: "shop".into(),
            service: None,
            payload: Payload::Connection(ConnectionInfo {
                id: 3,
                source: "orders".into(),
                target: "inventory".into(),
                ingress: "default".into(),
                client_addr: "127.0.0.1:5000".into(),
                bytes_in: 10,
                bytes_out: 20,
                duration_ms: 1.5,
                error: Some("target reset the connection".into()),
            }),
        }
    }

    #[test]
    fn serializes_envelope_and_one_named_payload() {
        let json: serde_json::Value = serde_json::to_value(connection_event()).unwrap();
        assert_eq!(json["seq"], 7);
        assert_eq!(json["type"], "connection.closed");
        assert_eq!(json["timestamp"], "2026-11-22T10:00:00.500Z");
        assert_eq!(json["environment"], "shop");
        assert!(json.get("service").is_none());
        let c = &json["connection"];
        assert_eq!(c["source"], "orders");
        assert_eq!(c["target"], "inventory");
        assert_eq!(c["ingress"], "default");
        assert_eq!(c["bytes_in"], 10);
        assert_eq!(c["bytes_out"], 20);
        assert_eq!(c["duration_ms"], 1.5);
        assert_eq!(c["error"], "target reset the connection");
        assert_eq!(
            json.as_object().unwrap().len(),
            5,
            "envelope plus one payload: {json}"
        );
    }

    #[test]
    fn round_trips_through_json() {
        let event = connection_event();
        let line = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn bodies_are_utf8_or_base64() {
        assert_eq!(
            BodyEncoding::encode(b"caf\xc3\xa9"),
            ("café".to_string(), BodyEncoding::Utf8)
        );
        assert_eq!(
            BodyEncoding::encode(b"\xff\x00"),
            ("/wA=".to_string(), BodyEncoding::Base64)
        );
    }

    #[test]
    fn absent_error_is_omitted() {
        let mut event = connection_event();
        if let Payload::Connection(c) = &mut event.payload {
            c.error = None;
        }
        let json = serde_json::to_value(&event).unwrap();
        assert!(json["connection"].get("error").is_none());
    }
}
