//! Sans-IO protocol decoders for tapmesh.
//!
//! Nothing in this crate does I/O, reads a clock or spawns a task: a caller
//! feeds each chunk of a connection's traffic, in order, with its
//! [`Direction`] and a [`Timestamp`] from its own clock, and collects what the
//! decoder recognised. That keeps every decoder deterministic, so it can be
//! fuzzed and benchmarked on its own, and lets the proxy that drives it stay
//! the only place that knows about sockets.
//!
//! The contract between the proxy and a decoder lives in [`decoder`].

pub mod content;
pub mod decoder;
pub mod grpc;
pub mod http;
pub mod http1;
pub mod http2;
pub mod kafka;
mod output;
pub mod postgres;
pub mod redis;
pub mod sniff;

pub use decoder::{DecodeFailure, Decoder, Direction, FailureKind, Timestamp};
pub use output::Decoded;
