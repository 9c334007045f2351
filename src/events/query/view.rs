//! An event as CEL sees it: values made on access, borrowing the event.
//!
//! Nothing is built per event ahead of evaluation. A name resolves when the
//! expression reaches it, and a string borrows the event's own bytes
//! (`cel`'s `Val` values may borrow), so `http.status >= 500` costs a match
//! on the payload and an integer, not a map of every field. The payload
//! objects by JSON name (`request.status_code`) are the exception: they are
//! the event's JSON, made once per evaluation that uses one.

use std::sync::OnceLock;

use cel::common::traits::{Container, Indexer, Sizer};
use cel::common::types::{
    CelBool, CelDouble, CelDuration, CelInt, CelList, CelNull, CelString, CelTimestamp, CelUInt,
    Type, MAP_TYPE,
};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::ExecutionError;
use serde_json::Value as Json;

use super::fields::Side;
use crate::events::{
    Event, GrpcCallInfo, HeaderMap, KafkaRequestInfo, Payload, QueryInfo, RedisCommandInfo,
    RequestInfo, SqlError,
};

/// Resolves the top-level names of one event.
pub(super) struct EventResolver<'a> {
    event: &'a Event,
    /// The query's constants (`@c0` …, see `fold.rs`).
    constants: &'a [Box<dyn Val>],
    /// The payload's JSON, for names like `request` (made on first use).
    payload: OnceLock<Option<Json>>,
    /// `source->target`, for `edge` (made on first use).
    edge: OnceLock<Option<String>>,
}

impl<'a> EventResolver<'a> {
    pub(super) fn new(event: &'a Event, constants: &'a [Box<dyn Val>]) -> Self {
        Self {
            event,
            constants,
            payload: OnceLock::new(),
            edge: OnceLock::new(),
        }
    }

    fn payload_json(&self) -> Option<&Json> {
        self.payload
            .get_or_init(|| self.event.payload.to_json())
            .as_ref()
    }
}

impl VariableResolver for EventResolver<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let e = self.event;
        let p = &e.payload;
        Some(match name {
            "seq" => int(e.seq as i64),
            "type" => string(e.type_name()),
            "timestamp" => CowVal::owned(CelTimestamp::from(e.timestamp.fixed_offset())),
            "environment" => string(&e.environment),
            "service" => string(e.service.as_deref()?),
            "source" => string(e.source()?),
            "target" => string(e.target()?),
            "edge" => {
                let edge = self
                    .edge
                    .get_or_init(|| Some(format!("{}->{}", e.source()?, e.target()?)));
                string(edge.as_deref()?)
            }
            "latency" => duration(latency_ms(p)?),
            "error" => string(error(p)?),
            "http" => view(View::Http(e.request()?)),
            "grpc" => view(View::Grpc(e.grpc_call()?)),
            "kafka" => view(View::Kafka(e.kafka_request()?)),
            "sql" => view(View::Sql(e.query()?)),
            "redis" => view(View::Redis(e.redis_command()?)),
            _ if name.starts_with(super::fold::CONSTANT) => {
                let i: usize = name[super::fold::CONSTANT.len()..].parse().ok()?;
                CowVal::Borrowed(self.constants.get(i)?.as_ref())
            }
            _ => {
                if p.name() != name {
                    return None;
                }
                json(self.payload_json()?)
            }
        })
    }
}

/// The latency of an exchange, in milliseconds.
fn latency_ms(p: &Payload) -> Option<f64> {
    match p {
        Payload::Request(r) => r.latency_ms,
        Payload::GrpcCall(g) => g.latency_ms,
        Payload::KafkaRequest(k) => k.latency_ms,
        Payload::Query(q) => Some(q.latency_ms),
        Payload::RedisCommand(c) => c.latency_ms,
        _ => None,
    }
}

/// What went wrong, where the payload says so in words.
fn error(p: &Payload) -> Option<&str> {
    match p {
        Payload::Connection(c) => c.error.as_deref(),
        Payload::Request(r) => r.error.as_deref(),
        Payload::GrpcCall(g) => g.error.as_deref(),
        Payload::Query(q) => q.error.as_ref().map(|e| e.message.as_str()),
        Payload::RedisCommand(c) => c.error.as_ref().map(|e| e.message.as_str()),
        Payload::DecodeError(d) => Some(&d.reason),
        Payload::Lifecycle(l) => l.reason.as_deref(),
        _ => None,
    }
}

/// An object of the event: a namespace, a header map, or JSON.
#[derive(Debug, Clone, Copy)]
enum View<'a> {
    Http(&'a RequestInfo),
    HttpSide(&'a RequestInfo, Side),
    Grpc(&'a GrpcCallInfo),
    Kafka(&'a KafkaRequestInfo),
    Sql(&'a QueryInfo),
    SqlError(&'a SqlError),
    Redis(&'a RedisCommandInfo),
    Headers(&'a HeaderMap),
    /// A JSON object.
    Object(&'a serde_json::Map<String, Json>),
}

fn view<'b, 'v>(v: View<'v>) -> CowVal<'b, 'v> {
    CowVal::owned(v)
}

fn int<'b, 'v>(n: i64) -> CowVal<'b, 'v> {
    CowVal::owned(CelInt::from(n))
}

fn string<'b, 'v>(s: &'v str) -> CowVal<'b, 'v> {
    CowVal::owned(CelString::from(s))
}

fn boolean<'b, 'v>(b: bool) -> CowVal<'b, 'v> {
    CowVal::owned(CelBool::from(b))
}

fn duration<'b, 'v>(ms: f64) -> CowVal<'b, 'v> {
    let nanos = (ms * 1e6).round() as i64;
    CowVal::owned(CelDuration::from(chrono::Duration::nanoseconds(nanos)))
}

fn strings<'b, 'v, I: IntoIterator<Item = &'v str>>(items: I) -> CowVal<'b, 'v> {
    let list: Vec<Box<dyn Val + 'v>> = items
        .into_iter()
        .map(|s| Box::new(CelString::from(s)) as Box<dyn Val + 'v>)
        .collect();
    CowVal::owned(CelList::from(list))
}

/// A JSON value as CEL's: scalars as they are, objects as views, arrays as
/// lists (so that `in`, `size` and the comprehensions work on them).
fn json<'b, 'v>(value: &'v Json) -> CowVal<'b, 'v> {
    match value {
        Json::Null => CowVal::owned(CelNull),
        Json::Bool(b) => boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => int(i),
            (None, Some(u)) => CowVal::owned(CelUInt::from(u)),
            _ => CowVal::owned(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Json::String(s) => string(s),
        Json::Array(items) => {
            let list: Vec<Box<dyn Val + 'v>> = items.iter().map(|v| json(v).into_owned()).collect();
            CowVal::owned(CelList::from(list))
        }
        Json::Object(map) => view(View::Object(map)),
    }
}

fn no_such_key(name: &str) -> ExecutionError {
    ExecutionError::no_such_key(name)
}

/// `Some(x)` as the value, `None` as a missing field.
fn some<'b, 'v, T>(
    name: &str,
    value: Option<T>,
    make: impl FnOnce(T) -> CowVal<'b, 'v>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    value.map(make).ok_or_else(|| no_such_key(name))
}

impl<'a> View<'a> {
    fn get_field<'b>(self, name: &str) -> Result<CowVal<'b, 'a>, ExecutionError> {
        match self {
            View::Http(r) => http(r, name),
            View::HttpSide(r, side) => http_side(r, side, name),
            View::Grpc(g) => grpc(g, name),
            View::Kafka(k) => kafka(k, name),
            View::Sql(q) => sql(q, name),
            View::SqlError(e) => sql_error(e, name),
            View::Redis(c) => redis(c, name),
            View::Headers(h) => {
                let value = if name.bytes().any(|b| b.is_ascii_uppercase()) {
                    h.get(&name.to_ascii_lowercase())
                } else {
                    h.get(name)
                };
                some(name, value, string)
            }
            View::Object(map) => some(name, map.get(name), json),
        }
    }
}

fn http<'b, 'a>(r: &'a RequestInfo, name: &str) -> Result<CowVal<'b, 'a>, ExecutionError> {
    Ok(match name {
        "method" => string(&r.method),
        "path" => string(&r.path),
        "status" => return some(name, r.status_code, |s| int(s.into())),
        "version" => string(&r.version),
        "latency" => return some(name, r.latency_ms, duration),
        "error" => return some(name, r.error.as_deref(), string),
        "warnings" => strings(r.warnings.iter().map(String::as_str)),
        "request" => view(View::HttpSide(r, Side::Request)),
        "response" => view(View::HttpSide(r, Side::Response)),
        _ => return Err(no_such_key(name)),
    })
}

fn http_side<'b, 'a>(
    r: &'a RequestInfo,
    side: Side,
    name: &str,
) -> Result<CowVal<'b, 'a>, ExecutionError> {
    fn pick<T>(side: Side, request: T, response: T) -> T {
        match side {
            Side::Request => request,
            Side::Response => response,
        }
    }
    Ok(match name {
        "headers" => view(View::Headers(pick(
            side,
            &r.request_headers,
            &r.response_headers,
        ))),
        "trailers" => view(View::Headers(pick(
            side,
            &r.request_trailers,
            &r.response_trailers,
        ))),
        "body" => string(pick(side, &r.request_body, &r.response_body)),
        "json" => {
            // Parsed per use: bodies are rarely queried, and a parse kept
            // across uses would need a cache in the resolver per side.
            let body = pick(side, &r.request_body, &r.response_body);
            let value: Json = serde_json::from_str(body).map_err(|_| no_such_key(name))?;
            json_owned(value)
        }
        "size" => int(pick(side, r.request_size, r.response_size) as i64),
        "truncated" => boolean(pick(
            side,
            r.request_body_truncated,
            r.response_body_truncated,
        )),
        _ => return Err(no_such_key(name)),
    })
}

/// A JSON value the view made itself (a parsed body): converted whole.
fn json_owned<'b, 'v>(value: Json) -> CowVal<'b, 'v> {
    match cel::to_value(&value) {
        Ok(v) => match Box::<dyn Val>::try_from(v) {
            Ok(b) => CowVal::Owned(b),
            Err(_) => CowVal::owned(CelNull),
        },
        Err(_) => CowVal::owned(CelNull),
    }
}

fn grpc<'b, 'a>(g: &'a GrpcCallInfo, name: &str) -> Result<CowVal<'b, 'a>, ExecutionError> {
    let first = |v: &'a Json| v.as_array().and_then(|a| a.first());
    Ok(match name {
        "service" => string(&g.service),
        "method" => string(&g.method),
        "path" => string(&g.path),
        "status" => return some(name, g.grpc_status, |s| int(s.into())),
        "code" => return some(name, g.grpc_status_name.as_deref(), string),
        "message" => return some(name, g.grpc_message.as_deref(), string),
        "http_status" => return some(name, g.http_status, |s| int(s.into())),
        "latency" => return some(name, g.latency_ms, duration),
        "metadata" => view(View::Headers(&g.request_metadata)),
        "response_metadata" => view(View::Headers(&g.response_metadata)),
        "request" => return some(name, first(&g.request_body_decoded), json),
        "response" => return some(name, first(&g.response_body_decoded), json),
        "requests" => json(&g.request_body_decoded),
        "responses" => json(&g.response_body_decoded),
        "request_messages" => int(g.request_messages as i64),
        "response_messages" => int(g.response_messages as i64),
        "health_check" => boolean(g.health_check),
        "error" => return some(name, g.error.as_deref(), string),
        _ => return Err(no_such_key(name)),
    })
}

fn kafka<'b, 'a>(k: &'a KafkaRequestInfo, name: &str) -> Result<CowVal<'b, 'a>, ExecutionError> {
    let topics = k.topics.as_deref().unwrap_or_default();
    Ok(match name {
        "api" => return some(name, k.api_name.as_deref(), string),
        "api_key" => int(k.api_key.into()),
        "version" => int(k.api_version.into()),
        "correlation_id" => int(k.correlation_id.into()),
        "client_id" => return some(name, k.client_id.as_deref(), string),
        "latency" => return some(name, k.latency_ms, duration),
        "error_code" => return some(name, k.error_code, |c| int(c.into())),
        "topic" => return some(name, topics.first(), |t| string(&t.topic)),
        "topics" => {
            let mut names: Vec<&str> = Vec::new();
            for t in topics {
                if !names.contains(&t.topic.as_str()) {
                    names.push(&t.topic);
                }
            }
            strings(names)
        }
        "records" => int(topics.iter().map(|t| t.records as i64).sum()),
        "request_size" => int(k.request_size as i64),
        "response_size" => return some(name, k.response_size, |s| int(s as i64)),
        _ => return Err(no_such_key(name)),
    })
}

fn sql<'b, 'a>(q: &'a QueryInfo, name: &str) -> Result<CowVal<'b, 'a>, ExecutionError> {
    Ok(match name {
        "command" => return some(name, q.command.as_deref(), string),
        "text" => string(&q.sql),
        "params" => {
            let list: Vec<Box<dyn Val + 'a>> =
                q.params.iter().map(|v| json(v).into_owned()).collect();
            CowVal::owned(CelList::from(list))
        }
        "rows" => return some(name, q.rows, |r| int(r as i64)),
        "error" => return some(name, q.error.as_ref(), |e| view(View::SqlError(e))),
        "statement" => return some(name, q.statement.as_deref(), string),
        "database" => return some(name, q.database.as_deref(), string),
        "user" => return some(name, q.user.as_deref(), string),
        "protocol" => string(&q.protocol),
        "transaction" => return some(name, q.transaction.as_deref(), string),
        "latency" => duration(q.latency_ms),
        _ => return Err(no_such_key(name)),
    })
}

fn sql_error<'b, 'a>(e: &'a SqlError, name: &str) -> Result<CowVal<'b, 'a>, ExecutionError> {
    Ok(match name {
        "code" => string(&e.code),
        "message" => string(&e.message),
        "severity" => string(&e.severity),
        "detail" => return some(name, e.detail.as_deref(), string),
        "hint" => return some(name, e.hint.as_deref(), string),
        _ => return Err(no_such_key(name)),
    })
}

fn redis<'b, 'a>(c: &'a RedisCommandInfo, name: &str) -> Result<CowVal<'b, 'a>, ExecutionError> {
    Ok(match name {
        "command" => string(&c.command),
        "args" => strings(c.args.iter().map(String::as_str)),
        "key" => return some(name, c.args.first(), |k| string(k)),
        "reply" => return some(name, c.reply.as_ref(), |r| string(&r.value)),
        "reply_type" => return some(name, c.reply.as_ref(), |r| string(&r.ty)),
        "error" => return some(name, c.error.as_ref(), |e| string(&e.message)),
        "error_code" => {
            return some(
                name,
                c.error.as_ref().and_then(|e| e.code.as_deref()),
                string,
            )
        }
        "latency" => return some(name, c.latency_ms, duration),
        "transaction" => boolean(c.transaction),
        "resp3" => boolean(c.resp3),
        _ => return Err(no_such_key(name)),
    })
}

impl Val for View<'_> {
    fn get_type(&self) -> &Type {
        &MAP_TYPE
    }

    fn cel_type() -> &'static Type {
        &MAP_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_container(&self) -> Option<&dyn Container> {
        Some(self)
    }

    /// `size()` of header fields and JSON objects; a namespace has none.
    fn as_sizer(&self) -> Option<&dyn Sizer> {
        matches!(self, View::Headers(_) | View::Object(_)).then_some(self as &dyn Sizer)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(*self)
    }
}

impl<'a> Indexer for View<'a> {
    fn get<'b, 'v>(&'b self, idx: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let Some(name) = idx.downcast_ref::<CelString>() else {
            return Err(ExecutionError::UnexpectedType {
                got: idx.get_type().name().to_owned(),
                want: "string".to_owned(),
            });
        };
        let value: CowVal<'b, 'a> = self.get_field(name.inner())?;
        Ok(value)
    }

    fn steal<'v>(self: Box<Self>, idx: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(idx).map(CowVal::into_owned)
    }
}

impl Container for View<'_> {
    fn contains(&self, value: &dyn Val) -> Result<bool, ExecutionError> {
        let Some(name) = value.downcast_ref::<CelString>() else {
            return Ok(false);
        };
        Ok(self.get_field(name.inner()).is_ok())
    }
}

impl Sizer for View<'_> {
    fn size(&self) -> CelInt {
        let n = match self {
            View::Headers(h) => h.len(),
            View::Object(map) => map.len(),
            _ => 0, // not reached: `as_sizer` offers only these two
        };
        CelInt::from(n as i64)
    }
}
