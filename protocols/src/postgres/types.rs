//! What the PostgreSQL decoder reports: one [`PostgresOutput`] per thing
//! worth an event. Every field is owned, bounded data; none of it comes from
//! an authentication exchange's secrets (passwords, MD5 hashes, SCRAM nonces,
//! proofs and signatures, the cancel key), which the decoder never keeps.

use std::sync::Arc;

use crate::Timestamp;

/// One output of the PostgreSQL decoder.
#[derive(Debug, Clone, PartialEq)]
pub enum PostgresOutput {
    /// The connection's startup: who connected to which database, and how
    /// it ended (ready for queries, or refused). Reported once, before any
    /// query of the connection.
    Session(PostgresSession),
    /// One statement executed (or refused), with its outcome.
    Query(PostgresQuery),
    /// An asynchronous `NOTIFY` delivered to this connection.
    Notification(PgNotification),
    /// A `ParameterStatus` after startup (`SET application_name …`).
    ParameterChanged {
        /// The parameter's name.
        name: String,
        /// Its new value.
        value: String,
    },
    /// An `ErrorResponse` no request was waiting for (a `FATAL` when the
    /// server terminates an idle connection, say).
    ServerError {
        /// The error's fields.
        error: PgError,
        /// When it arrived.
        at: Timestamp,
    },
    /// A connection that only asked the server to cancel another
    /// connection's query. The cancel key is a secret and is not kept.
    CancelRequest {
        /// The process id of the backend whose query to cancel.
        pid: i32,
        /// When the request arrived.
        at: Timestamp,
    },
    /// The connection switched to TLS or GSSAPI encryption: the decoder
    /// stops here, by design and not as a failure. This is its last output;
    /// the bytes keep flowing.
    Encrypted {
        /// Which encryption.
        kind: EncryptionKind,
        /// When the server agreed to it (or the client started TLS).
        at: Timestamp,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// The encryption a connection switched to.
pub enum EncryptionKind {
    /// `SSLRequest` answered `S`, or a TLS handshake with no request
    /// first (PostgreSQL 17's `sslnegotiation=direct`).
    Tls,
    /// `GSSENCRequest` answered `G`.
    Gss,
}

/// The startup of a connection.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PostgresSession {
    /// The `user` startup parameter.
    pub user: Option<String>,
    /// The `database` startup parameter (PostgreSQL defaults it to the user).
    pub database: Option<String>,
    /// The `application_name` startup parameter.
    pub application_name: Option<String>,
    /// Other startup parameters (`client_encoding`, `options` …), bounded.
    pub startup_parameters: Vec<(String, String)>,
    /// The protocol version asked for, as `(major, minor)`.
    pub protocol_version: (u16, u16),
    /// Whether the client asked for TLS first and was told no (`N`).
    pub ssl_refused: bool,
    /// How the server authenticated the client (never with what).
    pub auth: Option<AuthMethod>,
    /// `ParameterStatus` values the server reported during startup.
    pub server_parameters: Vec<(String, String)>,
    /// The backend's process id (`BackendKeyData`; its secret key is not kept).
    pub backend_pid: Option<i32>,
    /// The startup message's first byte.
    pub started: Timestamp,
    /// The `ReadyForQuery` that ended startup; `None` if it never came.
    pub ready_at: Option<Timestamp>,
    /// The error that refused the connection (a failed password, say).
    pub error: Option<PgError>,
}

/// The authentication the server asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// `AuthenticationOk` with no challenge before it (`trust`).
    Trust,
    /// A password in clear text (`AuthenticationCleartextPassword`).
    Cleartext,
    /// An MD5 hash of the password (`AuthenticationMD5Password`).
    Md5,
    /// SASL, with the mechanisms the server offered (`SCRAM-SHA-256` …).
    Sasl {
        /// The mechanisms, in the server's order.
        mechanisms: Vec<String>,
    },
    /// GSSAPI.
    Gss,
    /// SSPI (Windows).
    Sspi,
    /// Kerberos V5 (long gone from PostgreSQL, still a code).
    KerberosV5,
    /// A request code this decoder does not know.
    Other(i32),
}

/// How a query reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryProtocol {
    /// A `Query` message (one output per statement in its text).
    Simple,
    /// `Parse`/`Bind`/`Execute`.
    Extended,
    /// The legacy `FunctionCall` message, by function OID.
    FunctionCall {
        /// The function's OID.
        oid: u32,
    },
}

/// One statement execution and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresQuery {
    /// How the statement reached the server.
    pub protocol: QueryProtocol,
    /// The statement's text, cut at the capture limit (shared by every
    /// execution of a prepared statement).
    pub sql: Arc<str>,
    /// The text was cut at the capture limit.
    pub sql_truncated: bool,
    /// Bound parameters (extended protocol), each value capped.
    pub params: Vec<PgParam>,
    /// Parameters past the capture limit are missing.
    pub params_truncated: bool,
    /// The prepared statement's name; `None` for the unnamed statement.
    pub statement: Option<Arc<str>>,
    /// The portal's name; `None` for the unnamed portal.
    pub portal: Option<Arc<str>>,
    /// The command tag without its counts: `SELECT`, `INSERT`,
    /// `CREATE TABLE` …; `None` on error or an empty query.
    pub command: Option<String>,
    /// The whole command tag (`INSERT 0 2`).
    pub tag: Option<String>,
    /// Rows from the tag, or `DataRow`s seen when the tag has no count.
    pub rows: Option<u64>,
    /// The query string was empty (`EmptyQueryResponse`).
    pub empty: bool,
    /// `Execute` with a row limit stopped early (`PortalSuspended`).
    pub suspended: bool,
    /// `COPY` data that crossed, counted and never captured.
    pub copy: Option<PgCopy>,
    /// The `ErrorResponse` that ended it, if one did.
    pub error: Option<PgError>,
    /// Notices raised while it ran, the first few.
    pub notices: Vec<PgError>,
    /// How many notices were raised in all.
    pub notice_count: u32,
    /// From the `ReadyForQuery` that followed; `None` when none came (the
    /// connection closed, or a pipeline ran longer than the pending limit).
    pub transaction: Option<TransactionStatus>,
    /// The first byte of the messages that asked for it.
    pub started: Timestamp,
    /// The message that completed it (`CommandComplete`, an error …).
    pub completed: Timestamp,
    /// From `started` to `completed`.
    pub latency_ms: f64,
    /// Client bytes: the `Query` message (counted on its first statement
    /// only), or `Parse`/`Bind`/`Describe`/`Execute` since the last `Sync`,
    /// plus `COPY` data sent.
    pub request_size: u64,
    /// Server bytes answering it, rows and `COPY` data included.
    pub response_size: u64,
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct PgParam {
    /// The value, decoded where possible.
    pub value: PgValue,
    /// The value was longer than the parameter limit and is cut.
    pub truncated: bool,
}

/// A parameter's value, decoded where its format and type allow.
#[derive(Debug, Clone, PartialEq)]
pub enum PgValue {
    /// SQL `NULL`.
    Null,
    /// Text format, or a binary text/varchar/name.
    Text(String),
    /// A `bool` (binary).
    Bool(bool),
    /// An `int2`, `int4` or `int8` (binary), or an `oid`.
    Int(i64),
    /// A `float4` or `float8` (binary).
    Float(f64),
    /// A `uuid` (binary), in its usual text form.
    Uuid(String),
    /// RFC 3339 (`timestamptz` in UTC with `Z`, `timestamp` without an
    /// offset), or `infinity`/`-infinity`.
    Timestamp(String),
    /// `bytea`, as PostgreSQL prints it: `\x` and hex.
    Bytea(String),
    /// Binary of a type not decoded here, as hex; `oid` when known.
    Binary {
        /// The type's OID, when the statement declared it.
        oid: Option<u32>,
        /// The value's bytes as hex.
        hex: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// Which way a `COPY`'s data flowed.
pub enum CopyDirection {
    /// `COPY … FROM STDIN`: data from the client.
    In,
    /// `COPY … TO STDOUT`: data from the server.
    Out,
    /// `CopyBothResponse` (replication).
    Both,
}

#[derive(Debug, Clone, PartialEq, Eq)]
/// The `COPY` data of one statement, counted and never captured.
pub struct PgCopy {
    /// Which way it flowed.
    pub direction: CopyDirection,
    /// `CopyData` messages (rows, in text and CSV formats).
    pub messages: u64,
    /// Bytes of data those messages carried.
    pub bytes: u64,
    /// The client gave up with `CopyFail`.
    pub failed: bool,
}

/// The fields of an `ErrorResponse` or `NoticeResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgError {
    /// `ERROR`, `FATAL`, `PANIC`, `WARNING`, `NOTICE` … (non-localised
    /// where the server sent it).
    pub severity: String,
    /// The SQLSTATE (`22012`).
    pub code: String,
    /// The primary message, for people.
    pub message: String,
    /// Detail beyond the message, if the server gave one.
    pub detail: Option<String>,
    /// A hint at what to do about it, if the server gave one.
    pub hint: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
/// A `NOTIFY` delivered to the connection (`NotificationResponse`).
pub struct PgNotification {
    /// The channel it was sent on.
    pub channel: String,
    /// Its payload (capped).
    pub payload: String,
    /// The payload was cut at the capture limit.
    pub payload_truncated: bool,
    /// The notifying backend's process id.
    pub pid: i32,
    /// When it arrived.
    pub at: Timestamp,
}

/// The transaction status a `ReadyForQuery` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Not in a transaction block (`I`).
    Idle,
    /// In a transaction block (`T`).
    InTransaction,
    /// In a transaction that failed: commands are ignored until it ends.
    Failed,
}

impl TransactionStatus {
    /// The status of a `ReadyForQuery` byte (`I`, `T` or `E`).
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'I' => Some(Self::Idle),
            b'T' => Some(Self::InTransaction),
            b'E' => Some(Self::Failed),
            _ => None,
        }
    }

    /// The name events use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::InTransaction => "in_transaction",
            Self::Failed => "failed",
        }
    }
}
