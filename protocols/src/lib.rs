//! Sans-IO protocol decoders for tapmesh.
//!
//! Nothing in this crate does I/O, reads a clock or spawns a task: a caller
//! feeds each chunk of a connection's traffic, in order, with its
//! [`Direction`] and a [`Timestamp`] from its own clock, and collects what the
//! decoder recognised. That keeps every decoder deterministic, so it can be
//! fuzzed and benchmarked on its own, and lets the proxy that drives it stay
//! the only place that knows about sockets.
//!
//! The contract between the proxy and a decoder is the [`Decoder`] trait;
//! what decoders report is [`Decoded`], and why one gave up a
//! [`DecodeFailure`] with its [`FailureKind`].

// Decoders read untrusted bytes: no unsafe code, and every public item
// says what it is for.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod content;
mod decoder;
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
