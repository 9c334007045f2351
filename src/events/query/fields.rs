//! The names a query can use, and their types: what the checker holds a
//! query to before any event is read, and what `view.rs` answers per event
//! (a unit test walks these tables against events of every kind, so the two
//! cannot drift apart).
//!
//! Two families of names reach the same data. The payload objects by their
//! JSON names (`request.status_code`, `grpc_call.request_metadata`,
//! `lifecycle.state` …) address every field the event's JSON has, read
//! generically. The protocol shorthands (`http.status`, `grpc.method`,
//! `kafka.topic`, `sql.command`, `redis.key`, `edge`, `latency`) are typed,
//! read straight from the event, and are what most queries use.

/// A field's type, as far as the checker can know it before an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Double,
    String,
    Bool,
    Duration,
    Timestamp,
    /// Header fields or gRPC metadata: `map(string, string)`, names
    /// lower-case (`headers["x-request-id"]` matches any case).
    Headers,
    /// A list of strings.
    Strings,
    /// Whatever the event's JSON holds there (a decoded body, a payload
    /// object): checked only at run time.
    Dyn,
    /// A namespace of further names.
    Ns(Ns),
}

impl Ty {
    /// The type's name in CEL, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Ty::Int => "int",
            Ty::Double => "double",
            Ty::String => "string",
            Ty::Bool => "bool",
            Ty::Duration => "duration",
            Ty::Timestamp => "timestamp",
            Ty::Headers => "map(string, string)",
            Ty::Strings => "list(string)",
            Ty::Dyn => "dyn",
            Ty::Ns(_) => "map",
        }
    }
}

/// Which side of an HTTP exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Request,
    Response,
}

/// A namespace: the top level, or an object under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ns {
    Root,
    Http,
    HttpSide(Side),
    Grpc,
    Kafka,
    Sql,
    SqlError,
    Redis,
}

impl Ns {
    /// How a query spells the namespace (`http.request`), for messages.
    pub(crate) fn path(self) -> &'static str {
        match self {
            Ns::Root => "",
            Ns::Http => "http",
            Ns::HttpSide(Side::Request) => "http.request",
            Ns::HttpSide(Side::Response) => "http.response",
            Ns::Grpc => "grpc",
            Ns::Kafka => "kafka",
            Ns::Sql => "sql",
            Ns::SqlError => "sql.error",
            Ns::Redis => "redis",
        }
    }

    /// The names it holds and their types.
    pub(crate) fn fields(self) -> &'static [(&'static str, Ty)] {
        match self {
            Ns::Root => ROOT,
            Ns::Http => HTTP,
            Ns::HttpSide(_) => HTTP_SIDE,
            Ns::Grpc => GRPC,
            Ns::Kafka => KAFKA,
            Ns::Sql => SQL,
            Ns::SqlError => SQL_ERROR,
            Ns::Redis => REDIS,
        }
    }

    pub(crate) fn field(self, name: &str) -> Option<Ty> {
        self.fields()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, ty)| *ty)
    }
}

const ROOT: &[(&str, Ty)] = &[
    ("seq", Ty::Int),
    ("type", Ty::String),
    ("timestamp", Ty::Timestamp),
    ("environment", Ty::String),
    ("service", Ty::String),
    ("source", Ty::String),
    ("target", Ty::String),
    ("edge", Ty::String),
    ("latency", Ty::Duration),
    ("error", Ty::String),
    ("http", Ty::Ns(Ns::Http)),
    ("grpc", Ty::Ns(Ns::Grpc)),
    ("kafka", Ty::Ns(Ns::Kafka)),
    ("sql", Ty::Ns(Ns::Sql)),
    ("redis", Ty::Ns(Ns::Redis)),
    ("connection", Ty::Dyn),
    ("request", Ty::Dyn),
    ("grpc_call", Ty::Dyn),
    ("kafka_request", Ty::Dyn),
    ("query", Ty::Dyn),
    ("notification", Ty::Dyn),
    ("command", Ty::Dyn),
    ("push", Ty::Dyn),
    ("decode_error", Ty::Dyn),
    ("dropped", Ty::Dyn),
    ("lifecycle", Ty::Dyn),
    ("log", Ty::Dyn),
    ("note", Ty::Dyn),
    ("fault", Ty::Dyn),
];

const HTTP: &[(&str, Ty)] = &[
    ("method", Ty::String),
    ("path", Ty::String),
    ("status", Ty::Int),
    ("version", Ty::String),
    ("latency", Ty::Duration),
    ("error", Ty::String),
    ("warnings", Ty::Strings),
    ("request", Ty::Ns(Ns::HttpSide(Side::Request))),
    ("response", Ty::Ns(Ns::HttpSide(Side::Response))),
];

const HTTP_SIDE: &[(&str, Ty)] = &[
    ("headers", Ty::Headers),
    ("trailers", Ty::Headers),
    ("body", Ty::String),
    ("json", Ty::Dyn),
    ("size", Ty::Int),
    ("truncated", Ty::Bool),
];

const GRPC: &[(&str, Ty)] = &[
    ("service", Ty::String),
    ("method", Ty::String),
    ("path", Ty::String),
    ("status", Ty::Int),
    ("code", Ty::String),
    ("message", Ty::String),
    ("http_status", Ty::Int),
    ("latency", Ty::Duration),
    ("metadata", Ty::Headers),
    ("response_metadata", Ty::Headers),
    ("request", Ty::Dyn),
    ("response", Ty::Dyn),
    ("requests", Ty::Dyn),
    ("responses", Ty::Dyn),
    ("request_messages", Ty::Int),
    ("response_messages", Ty::Int),
    ("health_check", Ty::Bool),
    ("error", Ty::String),
];

const KAFKA: &[(&str, Ty)] = &[
    ("api", Ty::String),
    ("api_key", Ty::Int),
    ("version", Ty::Int),
    ("correlation_id", Ty::Int),
    ("client_id", Ty::String),
    ("latency", Ty::Duration),
    ("error_code", Ty::Int),
    ("topic", Ty::String),
    ("topics", Ty::Strings),
    ("records", Ty::Int),
    ("request_size", Ty::Int),
    ("response_size", Ty::Int),
];

const SQL: &[(&str, Ty)] = &[
    ("command", Ty::String),
    ("text", Ty::String),
    ("params", Ty::Dyn),
    ("rows", Ty::Int),
    ("error", Ty::Ns(Ns::SqlError)),
    ("statement", Ty::String),
    ("database", Ty::String),
    ("user", Ty::String),
    ("protocol", Ty::String),
    ("transaction", Ty::String),
    ("latency", Ty::Duration),
];

const SQL_ERROR: &[(&str, Ty)] = &[
    ("code", Ty::String),
    ("message", Ty::String),
    ("severity", Ty::String),
    ("detail", Ty::String),
    ("hint", Ty::String),
];

const REDIS: &[(&str, Ty)] = &[
    ("command", Ty::String),
    ("args", Ty::Strings),
    ("key", Ty::String),
    ("reply", Ty::String),
    ("reply_type", Ty::String),
    ("error", Ty::String),
    ("error_code", Ty::String),
    ("latency", Ty::Duration),
    ("transaction", Ty::Bool),
    ("resp3", Ty::Bool),
];
