//! HTTP as tapmesh reports it, whichever version carried it: an
//! [`HttpExchange`] (a request paired with its response) with its
//! [`HeaderBlock`]s and captured bodies, and the [`HttpDecoder`] of an
//! `http` edge, which hands the connection to the [`http1`](crate::http1)
//! or [`http2`](crate::http2) decoder once it knows which one the client
//! speaks.

mod decoder;
mod exchange;
mod headers;

pub use decoder::HttpDecoder;
pub use exchange::{warning, CapturedBody, HttpExchange};
pub(crate) use exchange::{BodyCapture, ExchangeBuilder};
pub use headers::{Field, FieldSpan, HeaderBlock};
