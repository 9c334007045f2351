//! The payloads of PostgreSQL edges: `query` (`postgres.query.completed`)
//! and `notification` (`postgres.notification`).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One SQL statement executed (or refused) on an observed edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryInfo {
    /// The connection's id, as in its `connection.*` events.
    pub connection: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    /// The connection's database and user, from its startup.
    pub database: Option<String>,
    pub user: Option<String>,
    /// `simple` (a Query message), `extended` (Parse/Bind/Execute) or
    /// `function_call`.
    pub protocol: String,
    /// The statement's text, cut at the capture limit.
    pub sql: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sql_truncated: bool,
    /// Bound parameters: JSON null, booleans, numbers and strings (bytea
    /// as `\x…`, timestamps in RFC 3339, other binary values as hex).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub params_truncated: bool,
    /// The prepared statement's name (`null` for the unnamed one).
    pub statement: Option<String>,
    /// The command tag's verb: `SELECT`, `INSERT`, `CREATE TABLE` …
    pub command: Option<String>,
    /// Rows the tag reports, or rows returned when it reports none.
    pub rows: Option<u64>,
    pub error: Option<SqlError>,
    /// Notices raised while it ran.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub notices: u32,
    /// `COPY` data that crossed (counted, never captured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyInfo>,
    /// `idle`, `in_transaction` or `failed`, from the ReadyForQuery after it.
    pub transaction: Option<String>,
    pub latency_ms: f64,
    pub request_size: u64,
    pub response_size: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// An ErrorResponse's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlError {
    pub severity: String,
    /// The SQLSTATE (`23505`).
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CopyInfo {
    /// `in` (from the client), `out` or `both`.
    pub direction: String,
    /// CopyData messages (rows, in text and CSV formats).
    pub messages: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
}

/// A `NOTIFY` delivered to a listening connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationInfo {
    pub connection: u64,
    pub source: Arc<str>,
    pub target: Arc<str>,
    pub ingress: Arc<str>,
    pub channel: String,
    pub payload: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_truncated: bool,
    /// The notifying backend's process id.
    pub pid: i32,
}
