//! PostgreSQL: the v3 frontend/backend protocol as real clients speak it,
//! one [`PostgresQuery`] per statement executed.
//!
//! The framing (`framing.rs`) follows both directions' messages, the
//! client's (`frontend.rs`) are queued (`pending.rs`) and each server answer
//! (`backend.rs`) is paired with the oldest message still waiting, which is
//! how the server itself processes them. That covers the simple protocol
//! (one output per statement of a multi-statement `Query`, its text cut by
//! `split.rs`), the extended protocol with pipelining (statement text
//! recovered for an `Execute` of a statement `Parse`d earlier, parameters
//! decoded by `params.rs`, the messages a server skips after an error up
//! to `Sync`), `COPY`, notifications and the startup.
//!
//! Authentication is followed, never recorded: password messages are not
//! even buffered, and no output carries a password, hash, nonce, proof,
//! signature or cancel key. A connection that switches to TLS or GSSAPI
//! encryption ends decoding with [`PostgresOutput::Encrypted`], its bytes
//! flowing on.
//!
//! Memory per connection is bounded: only a message's first
//! `max(capture_limit, 1 KiB)` bytes are held (rows and `COPY` data are
//! counted, not kept), at most [`PostgresConfig::max_pending`] messages wait
//! for answers, and [`PostgresConfig::max_statements`] prepared statements
//! and portals are remembered.

mod backend;
mod framing;
mod frontend;
mod messages;
mod params;
mod pending;
mod split;
#[cfg(test)]
mod tests;
mod types;

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

use crate::decoder::Fault;
use crate::{Decoded, Decoder, Direction, Timestamp};
use framing::{MessageReader, Mode};
use pending::{Lru, Op, Portal, Statement};
pub use types::*;

#[derive(Debug, Clone)]
/// Limits that bound a connection's memory.
pub struct PostgresConfig {
    /// Bytes of statement text, parameters, error and notification
    /// messages kept per message; past it they are cut and flagged.
    pub capture_limit: usize,
    /// Bytes of one parameter value shown.
    pub param_limit: usize,
    /// A message longer than this is taken for garbage: the decoder gives
    /// up. (Messages up to it are followed by counting, never buffered.)
    pub max_message_size: u32,
    /// Client messages that may await answers at once (a pipeline's
    /// `Parse`, `Bind`, `Describe`, `Execute` and `Sync` count one each).
    pub max_pending: usize,
    /// Named prepared statements (and, separately, named portals)
    /// remembered; past it the least recently used is forgotten.
    pub max_statements: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            capture_limit: 64 * 1024,
            param_limit: 1024,
            // PostgreSQL's own limit on a message (MaxAllocSize).
            max_message_size: 1 << 30,
            max_pending: 4096,
            max_statements: 1024,
        }
    }
}

/// Bytes kept of messages whose content matters but is small (tags,
/// names, parameter statuses); the floor of what any kept message holds.
const SMALL_KEEP: usize = 1024;
/// `Authentication*`: its code and a SASL mechanism list.
const AUTH_KEEP: usize = 256;
/// Server parameters recorded for the session at most.
const MAX_SERVER_PARAMS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before a `StartupMessage`: untyped packets from the client.
    Startup,
    /// An encryption request awaits its one-byte answer.
    AwaitAnswer(EncryptionKind),
    /// `StartupMessage` sent, `ReadyForQuery` not seen yet.
    Authenticating,
    Ready,
}

/// Decodes one PostgreSQL connection. See the module docs.
pub struct PostgresDecoder {
    config: PostgresConfig,
    client: MessageReader,
    server: MessageReader,
    phase: Phase,
    /// The connection's startup, until it is reported.
    session: Option<Box<PostgresSession>>,
    session_reported: bool,
    ssl_refused: bool,
    ops: VecDeque<Op>,
    /// After an error in the extended protocol the server ignores every
    /// message until `Sync`; set while that `Sync` has not been sent yet.
    discarding: bool,
    statements: Lru<Statement>,
    portals: Lru<Portal>,
    unnamed_statement: Option<Arc<Statement>>,
    unnamed_portal: Option<Arc<Portal>>,
    /// Client bytes of `Parse`/`Bind`/`Describe`/`Close` since the last
    /// `Execute` or `Sync`, and when the first of them came: the next
    /// `Execute`'s request.
    group_started: Option<Timestamp>,
    group_size: u64,
    /// Server bytes answering that group.
    group_response: u64,
    /// Queries answered, awaiting the `ReadyForQuery` that gives their
    /// transaction status.
    done: Vec<PostgresQuery>,
    /// Failed, encrypted or a cancel request: nothing more to decode.
    stopped: bool,
}

impl PostgresDecoder {
    /// A decoder for one connection, from its first byte.
    pub fn new(config: PostgresConfig) -> Self {
        let max = config.max_message_size;
        Self {
            client: MessageReader::new(Mode::Untyped, max),
            server: MessageReader::new(Mode::Typed, max),
            phase: Phase::Startup,
            session: None,
            session_reported: false,
            ssl_refused: false,
            ops: VecDeque::new(),
            discarding: false,
            statements: Lru::new(config.max_statements),
            portals: Lru::new(config.max_statements),
            unnamed_statement: None,
            unnamed_portal: None,
            group_started: None,
            group_size: 0,
            group_response: 0,
            done: Vec::new(),
            stopped: false,
            config,
        }
    }

    /// Client messages awaiting answers.
    pub fn pending(&self) -> usize {
        self.ops.len()
    }

    /// Named prepared statements remembered.
    pub fn statements(&self) -> usize {
        self.statements.len()
    }

    fn push_op(&mut self, op: Op) -> Result<(), Fault> {
        if self.ops.len() >= self.config.max_pending {
            return Err(Fault::limit(format!(
                "more than {} client messages awaiting answers",
                self.config.max_pending
            )));
        }
        self.ops.push_back(op);
        Ok(())
    }

    fn fail(&mut self, direction: Direction, offset: u64, fault: Fault, out: &mut Vec<Decoded>) {
        self.release();
        out.push(Decoded::Failure(fault.at("postgres", direction, offset)));
    }

    /// Stops decoding and lets the connection's memory go.
    fn release(&mut self) {
        self.stopped = true;
        self.ops = VecDeque::new();
        self.done = Vec::new();
        self.statements.clear();
        self.portals.clear();
        self.unnamed_statement = None;
        self.unnamed_portal = None;
    }

    fn emit(out: &mut Vec<Decoded>, output: PostgresOutput) {
        out.push(Decoded::Postgres(Box::new(output)));
    }

    /// Reports the startup, once.
    fn report_session(&mut self, out: &mut Vec<Decoded>) {
        if let Some(session) = self.session.take() {
            self.session_reported = true;
            Self::emit(out, PostgresOutput::Session(*session));
        }
    }

    /// Reports the answered queries with the status that followed them.
    fn flush_done(&mut self, status: Option<TransactionStatus>, out: &mut Vec<Decoded>) {
        for mut q in self.done.drain(..) {
            q.transaction = status;
            out.push(Decoded::Postgres(Box::new(PostgresOutput::Query(q))));
        }
    }

    /// Records an answered query; a pipeline longer than the pending limit
    /// has its queries reported before their `ReadyForQuery`.
    fn answered(&mut self, q: PostgresQuery, out: &mut Vec<Decoded>) {
        self.done.push(q);
        if self.done.len() >= self.config.max_pending {
            self.flush_done(None, out);
        }
    }

    fn keep_client(capture: usize, tag: Option<u8>) -> Option<usize> {
        Some(match tag? {
            // Secrets are never buffered; CopyData is only counted.
            b'p' | b'd' => 0,
            b'Q' | b'P' | b'B' | b'F' => capture,
            b'E' | b'D' | b'C' | b'f' => SMALL_KEEP,
            b'S' | b'H' | b'X' | b'c' => 0,
            _ => return None,
        })
    }

    fn keep_server(capture: usize, tag: u8) -> Option<usize> {
        Some(match tag {
            // Rows and COPY data are counted, never kept.
            b'D' | b'd' | b'T' | b'V' => 0,
            b'R' => AUTH_KEEP,
            // ParameterDescription: the types later Binds are decoded by.
            b'E' | b'N' | b'A' | b't' => capture,
            b'K' | b'S' | b'Z' | b'C' | b'I' | b'1' | b'2' | b'3' | b'n' | b's' | b'G' | b'H'
            | b'W' | b'c' | b'v' => SMALL_KEEP,
            _ => return None,
        })
    }
}

impl Decoder for PostgresDecoder {
    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>) {
        if self.stopped || chunk.is_empty() {
            return;
        }
        if direction == Direction::ClientToTarget
            && self.phase == Phase::Startup
            && self.client.offset_of(0) == 0
            && chunk[0] == 0x16
        {
            // A TLS ClientHello with no SSLRequest before it: PostgreSQL
            // 17's direct TLS negotiation.
            self.release();
            let output = PostgresOutput::Encrypted {
                kind: EncryptionKind::Tls,
                at,
            };
            return Self::emit(out, output);
        }
        let capture = self.config.capture_limit.max(SMALL_KEEP);
        let mut pos = 0;
        loop {
            let next = match direction {
                Direction::ClientToTarget => {
                    self.client.next(chunk, &mut pos, at, |tag, _| match tag {
                        None => Some(framing::MAX_STARTUP_PACKET as usize),
                        tag => Self::keep_client(capture, tag),
                    })
                }
                Direction::TargetToClient => self.server.next(chunk, &mut pos, at, |tag, _| {
                    Self::keep_server(capture, tag?)
                }),
            };
            let message = match next {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => return self.fail(direction, e.offset, e.fault, out),
            };
            let offset = message.offset;
            let result = match direction {
                Direction::ClientToTarget => self.client_message(message, out),
                Direction::TargetToClient => self.server_message(message, at, out),
            };
            if let Err(fault) = result {
                return self.fail(direction, offset, fault, out);
            }
            if self.stopped {
                return;
            }
        }
        match direction {
            Direction::ClientToTarget => self.client.end_chunk(chunk.len()),
            Direction::TargetToClient => self.server.end_chunk(chunk.len()),
        }
    }

    fn finish(&mut self, _at: Timestamp, out: &mut Vec<Decoded>) {
        if self.stopped {
            return;
        }
        // A startup cut short (a client that closes to ask for a password,
        // say) is still reported; so are queries answered whose
        // ReadyForQuery never came. Requests with no answer are not.
        self.report_session(out);
        self.flush_done(None, out);
        self.release();
    }
}

/// A name as the protocol gives it: empty is the unnamed one.
fn name(bytes: &[u8]) -> Option<Arc<str>> {
    (!bytes.is_empty()).then(|| Arc::from(messages::field(bytes)))
}
