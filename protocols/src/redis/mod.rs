//! Redis: commands paired with their replies, and what the server pushes,
//! from RESP2 and RESP3 as real clients speak them.
//!
//! - `resp.rs` frames each direction byte by byte (a message may be cut
//!   anywhere), keeping a bounded tree of each message: big bulk strings
//!   are counted through, never buffered past the capture limit.
//! - `inline.rs` reads commands typed by hand (`PING\r\n`).
//! - `command.rs` names a command (`CLIENT TRACKING`), captures its
//!   arguments and `redact.rs` replaces its secrets before any text exists.
//! - `session.rs` pairs replies with commands in order and follows what
//!   changes their meaning: `HELLO`, subscriptions, `MULTI`/`EXEC`,
//!   `MONITOR`, `CLIENT REPLY`, `RESET`.
//! - `push.rs` and `render.rs` turn values into outputs.
//!
//! Transactions: each command queued between `MULTI` and `EXEC` is
//! reported (with `transaction: true`) with its own element of EXEC's
//! reply, latency to EXEC's reply; then the EXEC with the whole array.
//!
//! Memory per connection is bounded: a message's kept strings by
//! [`RedisConfig::capture_limit`] and its kept values by
//! [`RedisConfig::max_values`]; pending commands by
//! [`RedisConfig::max_pending`] (commands past it are counted and paired
//! but not kept, and reported as one [`RedisOutput::Skipped`] per run) and
//! their arguments by [`RedisConfig::max_pending_bytes`]; renderings by
//! [`RedisConfig::render_limit`].

mod command;
mod inline;
mod push;
mod redact;
mod render;
mod resp;
mod session;
#[cfg(test)]
mod tests;
mod types;

use bytes::Bytes;

use crate::decoder::Fault;
use crate::{Decoded, Decoder, Direction, Timestamp};
use resp::{Limits, RespReader, Side};
use session::Session;
pub use types::*;

#[derive(Debug, Clone)]
/// Limits that bound a connection's memory and what an output shows.
pub struct RedisConfig {
    /// Bytes of a message's strings kept: a command's arguments, a reply's
    /// values. The rest is counted.
    pub capture_limit: usize,
    /// Bytes of a reply's rendering (and of a push's rendered payload).
    pub render_limit: usize,
    /// Values of one message kept (a command's arguments, a reply's
    /// elements); later ones are counted.
    pub max_values: usize,
    /// Commands kept while they await replies; past it they are counted.
    pub max_pending: usize,
    /// Bytes of argument text pending commands may hold together; past it
    /// a command keeps its name and little more.
    pub max_pending_bytes: usize,
    /// Aggregates nested deeper are taken for garbage.
    pub max_depth: usize,
    /// A longer bulk string is taken for garbage.
    pub max_bulk_len: u64,
    /// An aggregate of more entries is taken for garbage.
    pub max_aggregate_len: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            capture_limit: 64 * 1024,
            render_limit: 64 * 1024,
            max_values: 1024,
            max_pending: 10_000,
            max_pending_bytes: 8 * 1024 * 1024,
            max_depth: 64,
            // Redis's proto-max-bulk-len can be raised past its 512 MB
            // default; 4 GiB is past anything a real peer sends.
            max_bulk_len: 4 << 30,
            // Redis's own bound on a multibulk length (INT_MAX).
            max_aggregate_len: i32::MAX as u64,
        }
    }
}

/// Decodes one Redis connection. See the module docs.
pub struct RedisDecoder {
    config: RedisConfig,
    requests: RespReader,
    replies: RespReader,
    session: Session,
    failed: bool,
}

impl RedisDecoder {
    /// A decoder for one connection, from its first byte.
    pub fn new(config: RedisConfig) -> Self {
        let limits = Limits {
            max_depth: config.max_depth,
            max_bulk: config.max_bulk_len,
            max_count: config.max_aggregate_len,
            // The root and the command name at least.
            max_nodes: config.max_values.max(3),
        };
        Self {
            requests: RespReader::new(Side::Request, limits),
            replies: RespReader::new(Side::Reply, limits),
            session: Session::new(config.clone()),
            config,
            failed: false,
        }
    }

    /// Commands awaiting replies.
    pub fn pending(&self) -> usize {
        self.session.pending()
    }

    fn fail(&mut self, direction: Direction, offset: u64, fault: Fault, out: &mut Vec<Decoded>) {
        self.failed = true;
        self.session.clear();
        out.push(Decoded::Failure(fault.at("redis", direction, offset)));
    }

    /// Reads `chunk` of one direction; `Err` with the offset and fault of
    /// the first thing that cannot be followed.
    fn read(
        &mut self,
        direction: Direction,
        chunk: &[u8],
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), (u64, Fault)> {
        let mut pos = 0;
        while pos < chunk.len() {
            let reader = match direction {
                Direction::ClientToTarget => &mut self.requests,
                Direction::TargetToClient => &mut self.replies,
            };
            if reader.at_boundary() {
                reader.set_keep(match direction {
                    Direction::ClientToTarget => self.session.keep_for_next(),
                    Direction::TargetToClient => self.config.capture_limit,
                });
            }
            let (used, complete) = reader
                .feed(&chunk[pos..], at)
                .map_err(|f| (f.offset, f.fault))?;
            pos += used;
            if !complete {
                continue;
            }
            let msg = reader.message();
            let result = match direction {
                Direction::ClientToTarget => match command::parse(msg) {
                    Some(parsed) => self.session.command(parsed, msg, out),
                    None => Ok(()),
                },
                Direction::TargetToClient => self.session.reply(msg, at, out),
            };
            result.map_err(|fault| (msg.offset, fault))?;
        }
        Ok(())
    }
}

impl Decoder for RedisDecoder {
    fn feed(&mut self, direction: Direction, chunk: &Bytes, at: Timestamp, out: &mut Vec<Decoded>) {
        if self.failed {
            return;
        }
        if let Err((offset, fault)) = self.read(direction, chunk, at, out) {
            self.fail(direction, offset, fault, out);
        }
    }

    fn finish(&mut self, _at: Timestamp, out: &mut Vec<Decoded>) {
        if self.failed {
            return;
        }
        // Commands cut off by the close (a BLPOP that never returned) are
        // still worth seeing: reported with no reply.
        self.session.finish(out);
        self.failed = true;
    }
}
