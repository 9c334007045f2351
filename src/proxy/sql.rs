//! PostgreSQL decoder output as events: each statement a
//! `postgres.query.completed` carrying the connection's database and user,
//! each `NOTIFY` a `postgres.notification`, and a switch to TLS or GSSAPI
//! one `decode.error` saying why decoding stopped (the bytes still flow).

use std::sync::OnceLock;

use tapmesh_protocols::postgres::{
    CopyDirection, EncryptionKind, PgValue, PostgresOutput, PostgresQuery, PostgresSession,
    QueryProtocol,
};
use tapmesh_protocols::FailureKind;

use super::observe::{round_micros, Edge};
use crate::events::{
    CopyInfo, DecodeErrorInfo, EventKind, NotificationInfo, Payload, QueryInfo, SqlError,
};

/// Who a connection's statements run as, from its startup.
#[derive(Debug, Default)]
pub(super) struct SqlSession {
    database: Option<String>,
    user: Option<String>,
}

/// The event for one output, if it makes one. The session output is kept
/// in `session` (set once per connection, read without a lock after).
pub(super) fn event(
    edge: &Edge<'_>,
    session: &OnceLock<SqlSession>,
    output: PostgresOutput,
) -> Option<(EventKind, Payload)> {
    match output {
        PostgresOutput::Session(s) => {
            let _ = session.set(from_startup(s));
            None
        }
        PostgresOutput::Query(q) => Some((
            EventKind::PostgresQueryCompleted,
            Payload::Query(query_info(edge, session.get(), q)),
        )),
        PostgresOutput::Notification(n) => Some((
            EventKind::PostgresNotification,
            Payload::Notification(NotificationInfo {
                connection: edge.connection,
                source: edge.source.clone(),
                target: edge.target.clone(),
                ingress: edge.ingress.clone(),
                channel: n.channel,
                payload: n.payload,
                payload_truncated: n.payload_truncated,
                pid: n.pid,
            }),
        )),
        PostgresOutput::Encrypted { kind, .. } => {
            let how = match kind {
                EncryptionKind::Tls => "TLS",
                EncryptionKind::Gss => "GSSAPI encryption",
            };
            Some((
                EventKind::DecodeError,
                Payload::DecodeError(DecodeErrorInfo {
                    connection: edge.connection,
                    source: edge.source.clone(),
                    target: edge.target.clone(),
                    ingress: edge.ingress.clone(),
                    protocol: "postgres".into(),
                    direction: "client_to_target".into(),
                    offset: 0,
                    kind: Some(FailureKind::Encrypted.name().to_string()),
                    reason: format!(
                        "the connection switched to {how}: its statements cannot be decoded (the bytes still flow); connect with sslmode=disable to see them"
                    ),
                }),
            ))
        }
        other => {
            tracing::trace!(
                connection = edge.connection,
                ?other,
                "postgres output with no event"
            );
            None
        }
    }
}

fn from_startup(s: PostgresSession) -> SqlSession {
    SqlSession {
        database: s.database.or_else(|| s.user.clone()),
        user: s.user,
    }
}

fn query_info(edge: &Edge<'_>, session: Option<&SqlSession>, q: PostgresQuery) -> QueryInfo {
    QueryInfo {
        connection: edge.connection,
        source: edge.source.clone(),
        target: edge.target.clone(),
        ingress: edge.ingress.clone(),
        database: session.and_then(|s| s.database.clone()),
        user: session.and_then(|s| s.user.clone()),
        protocol: match q.protocol {
            QueryProtocol::Simple => "simple",
            QueryProtocol::Extended => "extended",
            QueryProtocol::FunctionCall { .. } => "function_call",
        }
        .to_string(),
        sql: q.sql.to_string(),
        sql_truncated: q.sql_truncated,
        params: q.params.into_iter().map(|p| param(p.value)).collect(),
        params_truncated: q.params_truncated,
        statement: q.statement.map(|s| s.to_string()),
        command: q.command,
        rows: q.rows,
        error: q.error.map(|e| SqlError {
            severity: e.severity,
            code: e.code,
            message: e.message,
            detail: e.detail,
            hint: e.hint,
        }),
        notices: q.notice_count,
        copy: q.copy.map(|c| CopyInfo {
            direction: match c.direction {
                CopyDirection::In => "in",
                CopyDirection::Out => "out",
                CopyDirection::Both => "both",
            }
            .to_string(),
            messages: c.messages,
            bytes: c.bytes,
            failed: c.failed,
        }),
        transaction: q.transaction.map(|t| t.as_str().to_string()),
        latency_ms: round_micros(q.latency_ms),
        request_size: q.request_size,
        response_size: q.response_size,
    }
}

fn param(value: PgValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        PgValue::Null => Value::Null,
        PgValue::Bool(b) => Value::Bool(b),
        PgValue::Int(i) => Value::from(i),
        PgValue::Float(f) => serde_json::Number::from_f64(f)
            .map_or_else(|| Value::String(f.to_string()), Value::Number),
        PgValue::Text(s) | PgValue::Uuid(s) | PgValue::Timestamp(s) | PgValue::Bytea(s) => {
            Value::String(s)
        }
        PgValue::Binary { hex, .. } => Value::String(hex),
    }
}
