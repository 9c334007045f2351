//! The decoder of an `http` edge: HTTP/1 or HTTP/2, whichever the client
//! speaks.
//!
//! An HTTP/2 client with prior knowledge opens with a fixed 24-byte preface;
//! an HTTP/1 request never starts that way. [`HttpDecoder`] holds back its
//! verdict only while the client's first bytes are still a prefix of that
//! preface (a few bytes at most, and only then copied), then hands every
//! byte to the decoder it chose. An HTTP/1.1 connection that upgrades with
//! `Upgrade: h2c` is passed to the HTTP/2 decoder at the 101.
//!
//! An HTTP/2 server sends its SETTINGS as soon as the connection is up, and
//! since the proxy connects to the target when the client connects, those
//! bytes can arrive before the client's preface. Server bytes that start
//! like a SETTINGS frame are held (bounded) until the client decides, then
//! fed first, in the order they came. What the first bytes say is
//! [`crate::sniff`]'s business.

use bytes::{Bytes, BytesMut};

use crate::http1::{Http1Config, Http1Decoder};
use crate::http2::{Http2Config, Http2Decoder};
use crate::sniff::{self, ClientHttp};
use crate::{Decoded, Decoder, Direction, Timestamp};

/// The bytes seen before a verdict.
#[derive(Default)]
struct Held {
    /// The client's bytes so far: a strict prefix of the preface.
    client: BytesMut,
    /// The server's bytes so far, if they start like HTTP/2 SETTINGS.
    server: BytesMut,
}

enum Inner {
    /// No verdict yet.
    Undecided(Held),
    Http1(Box<Http1Decoder>),
    Http2(Box<Http2Decoder>),
}

/// Decodes an `http` edge: HTTP/1.x or HTTP/2, whichever the client speaks.
pub struct HttpDecoder {
    inner: Inner,
    http1: Http1Config,
    http2: Http2Config,
}

impl HttpDecoder {
    /// A decoder that will use `http1` or `http2` for the connection, once it
    /// knows which.
    pub fn new(http1: Http1Config, http2: Http2Config) -> Self {
        Self {
            inner: Inner::Undecided(Held::default()),
            http1,
            http2,
        }
    }

    /// Both decoders with the same body capture limit and default bounds.
    pub fn with_capture_limit(capture_limit: usize) -> Self {
        Self::new(
            Http1Config {
                capture_limit,
                ..Http1Config::default()
            },
            Http2Config {
                capture_limit,
                ..Http2Config::default()
            },
        )
    }

    /// Which protocol the connection turned out to speak, once known.
    pub fn protocol(&self) -> Option<&'static str> {
        match self.inner {
            Inner::Undecided(_) => None,
            Inner::Http1(_) => Some("http1"),
            Inner::Http2(_) => Some("http2"),
        }
    }

    fn decide(&mut self, verdict: ClientHttp) {
        self.inner = match verdict {
            ClientHttp::Http2 => Inner::Http2(Box::new(Http2Decoder::new(self.http2.clone()))),
            ClientHttp::Http1 | ClientHttp::Undecided => {
                Inner::Http1(Box::new(Http1Decoder::new(self.http1.clone())))
            }
        };
    }

    fn feed_decided(
        &mut self,
        direction: Direction,
        chunk: &Bytes,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) {
        match &mut self.inner {
            Inner::Http1(d) => {
                d.feed(direction, chunk, at, out);
                if let Some(handover) = d.take_h2c_handover() {
                    let mut h2 = Http2Decoder::after_upgrade(self.http2.clone(), handover.request);
                    if !handover.server_bytes.is_empty() {
                        h2.feed(Direction::TargetToClient, &handover.server_bytes, at, out);
                    }
                    self.inner = Inner::Http2(Box::new(h2));
                }
            }
            Inner::Http2(d) => d.feed(direction, chunk, at, out),
            Inner::Undecided(_) => unreachable!("decided before feeding"),
        }
    }
}

impl Decoder for HttpDecoder {
    fn is_idle(&self) -> bool {
        match &self.inner {
            Inner::Undecided(held) => held.client.is_empty() && held.server.is_empty(),
            Inner::Http1(d) => d.is_idle(),
            Inner::Http2(_) => false,
        }
    }

    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>) {
        let Inner::Undecided(held) = &mut self.inner else {
            return self.feed_decided(direction, chunk, at, out);
        };
        match direction {
            Direction::TargetToClient => {
                held.server.extend_from_slice(chunk);
                if !sniff::looks_like_server_settings(&held.server) {
                    // A server that speaks first otherwise is not HTTP/2;
                    // HTTP/1 will say what is wrong with it.
                    let client = held.client.split().freeze();
                    let server = held.server.split().freeze();
                    self.decide(ClientHttp::Http1);
                    self.feed_decided(Direction::TargetToClient, &server, at, out);
                    if !client.is_empty() && !gave_up(out) {
                        self.feed_decided(Direction::ClientToTarget, &client, at, out);
                    }
                }
            }
            Direction::ClientToTarget => {
                let client = if held.client.is_empty() {
                    chunk.clone()
                } else {
                    held.client.extend_from_slice(chunk);
                    held.client.clone().freeze()
                };
                let verdict = sniff::client_http(&client);
                if verdict == ClientHttp::Undecided {
                    if held.client.is_empty() {
                        held.client.extend_from_slice(chunk);
                    }
                    return; // still could be either
                }
                let server = held.server.split().freeze();
                self.decide(verdict);
                if !server.is_empty() {
                    self.feed_decided(Direction::TargetToClient, &server, at, out);
                }
                if !gave_up(out) {
                    self.feed_decided(Direction::ClientToTarget, &client, at, out);
                }
            }
        }
    }

    fn end_of_stream(&mut self, direction: Direction, at: Timestamp, out: &mut Vec<Decoded>) {
        match &mut self.inner {
            Inner::Http1(d) => d.end_of_stream(direction, at, out),
            Inner::Http2(d) => d.end_of_stream(direction, at, out),
            Inner::Undecided(_) => {}
        }
    }

    fn finish(&mut self, at: Timestamp, out: &mut Vec<Decoded>) {
        match &mut self.inner {
            Inner::Http1(d) => d.finish(at, out),
            Inner::Http2(d) => d.finish(at, out),
            Inner::Undecided(held) => {
                if !held.client.is_empty() {
                    // The client sent part of a request and went away: let
                    // HTTP/1 report it the usual way.
                    let client = held.client.split().freeze();
                    self.decide(ClientHttp::Http1);
                    self.feed_decided(Direction::ClientToTarget, &client, at, out);
                    self.finish(at, out);
                }
            }
        }
    }
}

/// Whether the decoder just gave up: nothing more may be fed after that.
fn gave_up(out: &[Decoded]) -> bool {
    matches!(out.last(), Some(Decoded::Failure(_)))
}
