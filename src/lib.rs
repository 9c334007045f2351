//! tapmesh: run a local environment of services and observe every call
//! between them.
//!
//! The runtime is layered, each layer using only the ones below it:
//! [`cli`] → [`proxy`] → `tapmesh_protocols`, with [`events`] shared by all
//! and [`redact`] applied wherever a decoder's output becomes an event.

pub mod cli;
pub mod environment;
pub mod events;
pub mod graph;
pub mod inspect;
pub mod orchestrate;
pub mod proxy;
pub mod redact;
pub mod server;
pub mod spec;
pub mod sys;

pub use tapmesh_protocols as protocols;

pub use environment::{Environment, EnvironmentBuilder, Error, Fault, FaultGuard};
pub use events::{Event, EventKind, Payload};
pub use spec::Spec;
