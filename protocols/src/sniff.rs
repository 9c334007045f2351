//! Telling HTTP/1 from HTTP/2 by a connection's first bytes.
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
//! fed first, in the order they came.

use bytes::{Bytes, BytesMut};

use crate::http1::{Http1Config, Http1Decoder};
use crate::http2::{Http2Config, Http2Decoder, PREFACE};
use crate::{Decoded, Decoder, Direction, Timestamp};

/// Server bytes held while undecided, at most: an HTTP/2 server's opening
/// SETTINGS (and perhaps a WINDOW_UPDATE) is far smaller.
const MAX_HELD_SERVER_BYTES: usize = 16 << 10;

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

    fn decide(&mut self, first: &[u8]) {
        self.inner = if first.starts_with(PREFACE) {
            Inner::Http2(Box::new(Http2Decoder::new(self.http2.clone())))
        } else {
            Inner::Http1(Box::new(Http1Decoder::new(self.http1.clone())))
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
    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>) {
        let Inner::Undecided(held) = &mut self.inner else {
            return self.feed_decided(direction, chunk, at, out);
        };
        match direction {
            Direction::TargetToClient => {
                held.server.extend_from_slice(chunk);
                if !looks_like_server_settings(&held.server) {
                    // A server that speaks first otherwise is not HTTP/2;
                    // HTTP/1 will say what is wrong with it.
                    let client = held.client.split().freeze();
                    let server = held.server.split().freeze();
                    self.decide(b"");
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
                let seen = client.len().min(PREFACE.len());
                if client[..seen] == PREFACE[..seen] && client.len() < PREFACE.len() {
                    if held.client.is_empty() {
                        held.client.extend_from_slice(chunk);
                    }
                    return; // still could be either
                }
                let server = held.server.split().freeze();
                self.decide(&client);
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
                    self.decide(b"");
                    self.feed_decided(Direction::ClientToTarget, &client, at, out);
                    self.finish(at, out);
                }
            }
        }
    }
}

/// Whether `server` (the server's first bytes) can still be the SETTINGS
/// frame an HTTP/2 server opens with: type 0x4 on stream 0, held within
/// bounds.
fn looks_like_server_settings(server: &[u8]) -> bool {
    const SETTINGS: u8 = 0x4;
    if server.len() > MAX_HELD_SERVER_BYTES {
        return false;
    }
    match server.get(..9) {
        Some(head) => head[3] == SETTINGS && head[5..9] == [0, 0, 0, 0],
        None => server.len() < 4 || server[3] == SETTINGS,
    }
}

/// Whether the decoder just gave up: nothing more may be fed after that.
fn gave_up(out: &[Decoded]) -> bool {
    matches!(out.last(), Some(Decoded::Failure(_)))
}
