//! Events and the environment's event log.
//!
//! Every observation (a connection, a decoded request, a service changing
//! state) becomes an [`Event`] appended to the environment's [`EventLog`],
//! which numbers it, keeps the newest ones in memory, writes all of them to
//! a JSON Lines file and serves them to any number of subscribers.

mod event;
mod filter;
#[cfg(test)]
pub(crate) mod fixtures;
mod grpc;
mod headers;
pub(crate) mod json;
mod log;
mod query;
mod redis;
mod signal;
mod sql;
mod state;
mod wire;

pub use event::{
    BodyEncoding, ConnectionInfo, DecodeErrorInfo, DroppedInfo, Event, EventDraft, EventKind,
    Payload, RequestInfo,
};
pub use event::{
    BuildProgress, FaultInfo, KafkaRequestInfo, KafkaTopicPartition, LifecycleInfo, NoteInfo,
    ServiceLogInfo,
};
pub use filter::{EventFilter, Shorthands, StatusClass};
pub use grpc::GrpcCallInfo;
pub use headers::HeaderMap;
pub use log::{EventLog, EventLogConfig, EventSink, Subscription, WaitError};
pub use query::{Query, QueryError};
pub use redis::{RedisCommandInfo, RedisErrorInfo, RedisPushInfo, RedisReplyInfo};
pub use signal::signal_name;
pub use sql::{CopyInfo, NotificationInfo, QueryInfo, SqlError};
pub use state::{LifecycleState, ServiceState};
pub use wire::UnknownPayload;
