//! A connection's conversation: commands wait in order for their replies,
//! and the state that changes what a reply means is followed on both
//! sides.
//!
//! Redis answers a connection's commands in the order it sent them, so
//! pairing is a queue. What makes it more than a queue:
//! - the client side decides which commands get no reply at all
//!   (`CLIENT REPLY OFF|SKIP`): they are reported when they reach the front;
//! - (un)subscribe commands get one reply per channel;
//! - the server side decides what is pushed rather than a reply: RESP3
//!   pushes (`>`), and in RESP2 the pub/sub arrays of a subscribed
//!   connection and the lines of `MONITOR`;
//! - commands sent inside `MULTI` are held until `EXEC`, whose array
//!   reply gives each its real result (see [`Session::exec`]).

use std::collections::VecDeque;

use super::command::{Class, Kind, Parsed, ReplySwitch};
use super::push;
use super::redact::SECRET_CONFIGS;
use super::render::{self, Render};
use super::resp::{Message, RespType};
use super::types::{RedisCommand, RedisOutput, RedisReply, SkippedCommands};
use super::RedisConfig;
use crate::decoder::Fault;
use crate::{Decoded, Timestamp};

/// A command waiting for its reply (or replies).
struct Waiting {
    cmd: RedisCommand,
    kind: Kind,
    /// Whether a reply is due at all (`CLIENT REPLY` can say no).
    expects_reply: bool,
    /// Sent between `MULTI` and `EXEC`/`DISCARD`.
    queued: bool,
    /// Bytes of argument text held, counted in the pending budget.
    held: usize,
    /// Replies so far, rendered one after another.
    render: Option<Render>,
}

enum Entry {
    Command(Box<Waiting>),
    /// Commands past the pending limit: counted, never kept.
    Skipped {
        run: SkippedCommands,
        replies_left: u64,
    },
}

/// What `CLIENT REPLY` has set for the commands that follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyMode {
    On,
    Off,
    SkipNext,
}

/// Subscriptions held, as the server's replies count them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Subscriptions {
    pub channels: u64,
    pub patterns: u64,
    pub shards: u64,
}

impl Subscriptions {
    fn any(&self) -> bool {
        self.channels + self.patterns + self.shards > 0
    }

    fn of(&self, class: Class) -> u64 {
        match class {
            Class::Channel => self.channels,
            Class::Pattern => self.patterns,
            Class::Shard => self.shards,
        }
    }

    /// A (un)subscribe reply says how many subscriptions are left: of
    /// channels and patterns together, or of shard channels.
    pub fn update(&mut self, class: Class, count: u64) {
        match class {
            Class::Channel => self.channels = count.saturating_sub(self.patterns),
            Class::Pattern => self.patterns = count.saturating_sub(self.channels),
            Class::Shard => self.shards = count,
        }
    }
}

/// Bytes of a command kept however small the limits: enough for its name
/// and subcommand, which every output needs.
const MIN_KEEP: usize = 64;

/// Pending entries past the limit that are kept anyway because they change
/// how replies pair (subscribe, MULTI …); past this many more, give up.
const SPECIAL_EXTRA: usize = 1024;

pub struct Session {
    config: RedisConfig,
    pending: VecDeque<Entry>,
    /// Commands kept (pending and held in a transaction).
    kept: usize,
    /// Bytes of argument text they hold.
    held_bytes: usize,
    // The client's side.
    reply_mode: ReplyMode,
    queuing: bool,
    // The server's side.
    resp3: bool,
    monitor: bool,
    subs: Subscriptions,
    /// Commands queued in the open transaction, waiting for EXEC (boxed
    /// as they were in the queue, so holding one moves a pointer).
    #[allow(clippy::vec_box)]
    transaction: Vec<Box<Waiting>>,
    in_transaction: bool,
    /// A queued command was skipped: EXEC's elements no longer line up.
    transaction_lossy: bool,
}

impl Session {
    pub fn new(config: RedisConfig) -> Self {
        Self {
            config,
            pending: VecDeque::new(),
            kept: 0,
            held_bytes: 0,
            reply_mode: ReplyMode::On,
            queuing: false,
            resp3: false,
            monitor: false,
            subs: Subscriptions::default(),
            transaction: Vec::new(),
            in_transaction: false,
            transaction_lossy: false,
        }
    }

    /// Commands awaiting replies, kept or counted.
    pub fn pending(&self) -> usize {
        self.pending
            .iter()
            .map(|e| match e {
                Entry::Command(_) => 1,
                Entry::Skipped { run, .. } => run.commands as usize,
            })
            .sum()
    }

    /// Bytes of strings to keep of the next command: the capture limit,
    /// less once many pending commands hold their arguments (a deep
    /// pipeline must not hold `max_pending` × `capture_limit`), but never
    /// less than [`MIN_KEEP`].
    pub fn keep_for_next(&self) -> usize {
        let left = self
            .config
            .max_pending_bytes
            .saturating_sub(self.held_bytes);
        self.config.capture_limit.min(left).max(MIN_KEEP)
    }

    /// A command arrived. `Err` when even the commands that must be kept
    /// are too many.
    pub fn command(
        &mut self,
        parsed: Parsed,
        msg: &Message,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let expects_reply = self.expects_reply(parsed.kind);
        let queued =
            self.queuing && !matches!(parsed.kind, Kind::Exec | Kind::Discard | Kind::Multi);
        match parsed.kind {
            Kind::Multi => self.queuing = true,
            Kind::Exec | Kind::Discard => self.queuing = false,
            Kind::Reset => {
                self.queuing = false;
                self.reply_mode = ReplyMode::On;
            }
            _ => {}
        }
        if self.kept >= self.config.max_pending {
            if parsed.kind == Kind::Plain {
                self.skip(msg.size, expects_reply);
                return Ok(());
            }
            if self.kept >= self.config.max_pending + SPECIAL_EXTRA {
                return Err(Fault::limit(format!(
                    "more than {} commands awaiting replies",
                    self.config.max_pending + SPECIAL_EXTRA
                )));
            }
        }
        let render = matches!(parsed.kind, Kind::Subscribe(..) | Kind::Unsubscribe(..))
            .then(|| Render::new(self.config.render_limit));
        let cmd = RedisCommand {
            command: parsed.command,
            args: parsed.args,
            arg_count: parsed.arg_count,
            truncated: parsed.truncated,
            inline: msg.inline,
            transaction: queued,
            reply: None,
            error: None,
            started: msg.started,
            finished: None,
            latency_ms: None,
            request_size: msg.size,
            response_size: 0,
            resp3: self.resp3,
        };
        self.kept += 1;
        self.held_bytes += parsed.held;
        self.pending.push_back(Entry::Command(Box::new(Waiting {
            cmd,
            kind: parsed.kind,
            expects_reply,
            queued,
            held: parsed.held,
            render,
        })));
        self.drain(out);
        Ok(())
    }

    /// Whether the server will answer a command, by `CLIENT REPLY`.
    fn expects_reply(&mut self, kind: Kind) -> bool {
        if self.queuing {
            // Inside MULTI everything is answered QUEUED, CLIENT REPLY too.
            return true;
        }
        match (kind, self.reply_mode) {
            (Kind::ClientReply(ReplySwitch::On), _) | (Kind::Reset, _) => {
                self.reply_mode = ReplyMode::On;
                true
            }
            (Kind::ClientReply(ReplySwitch::Off), _) => {
                self.reply_mode = ReplyMode::Off;
                false
            }
            (Kind::ClientReply(ReplySwitch::Skip), mode) => {
                if mode != ReplyMode::Off {
                    self.reply_mode = ReplyMode::SkipNext;
                }
                false
            }
            (_, ReplyMode::On) => true,
            (_, ReplyMode::Off) => false,
            (_, ReplyMode::SkipNext) => {
                self.reply_mode = ReplyMode::On;
                false
            }
        }
    }

    /// Counts a command past the limit into the run at the back.
    fn skip(&mut self, size: u64, expects_reply: bool) {
        let replies = u64::from(expects_reply);
        if let Some(Entry::Skipped { run, replies_left }) = self.pending.back_mut() {
            run.commands += 1;
            run.request_size += size;
            *replies_left += replies;
            return;
        }
        self.pending.push_back(Entry::Skipped {
            run: SkippedCommands {
                commands: 1,
                request_size: size,
                response_size: 0,
            },
            replies_left: replies,
        });
    }

    /// A complete reply (or push) arrived at `at`.
    pub fn reply(
        &mut self,
        msg: &Message,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let top = render::top(msg);
        let ty = top.map(|i| msg.nodes[i].ty);
        if let (Some(i), Some(RespType::Push | RespType::Array)) = (top, ty) {
            if self.is_push(msg, i) {
                out.push(push::output(msg, i, at, self.config.render_limit));
                return Ok(());
            }
        }
        if self.monitor && ty == Some(RespType::SimpleString) {
            if let Some(i) = top.filter(|&i| push::is_monitor_line(msg.data(i))) {
                out.push(push::monitor(msg, i, at));
                return Ok(());
            }
        }
        self.paired(msg, at, out)
    }

    /// Whether aggregate `i`, a reply's value, was pushed rather than
    /// answers the command at the front; a pushed (un)subscribe notice
    /// updates the subscriptions.
    fn is_push(&mut self, msg: &Message, i: usize) -> bool {
        let kind = push::kind(msg, i);
        let notice = kind
            .as_deref()
            .and_then(push::subscribe_class)
            .zip(push::subscribe_count(msg, i));
        // A notice answers the (un)subscribe command at the front.
        if notice.is_some() && self.front_subscribes() {
            return false;
        }
        let pushed = if msg.nodes[i].ty == RespType::Push {
            true
        } else if self.resp3 || !self.subs.any() {
            false
        } else {
            // RESP2 in subscribed mode: messages come as arrays, and so do
            // notices no command asked for (a shard channel moved away).
            notice.is_some() || matches!(kind.as_deref(), Some("message" | "pmessage" | "smessage"))
        };
        if let (true, Some((class, count))) = (pushed, notice) {
            self.subs.update(class, count);
        }
        pushed
    }

    /// Whether the command at the front is waiting for (un)subscribe replies.
    fn front_subscribes(&self) -> bool {
        matches!(self.pending.front(), Some(Entry::Command(w))
            if matches!(w.kind, Kind::Subscribe(..) | Kind::Unsubscribe(..)))
    }

    /// A reply for the command at the front.
    fn paired(
        &mut self,
        msg: &Message,
        at: Timestamp,
        out: &mut Vec<Decoded>,
    ) -> Result<(), Fault> {
        let Some(front) = self.pending.front_mut() else {
            let mut r = Render::new(120);
            r.value(msg, 0);
            return Err(Fault::unexpected(format!(
                "reply with no command pending: {}",
                r.out
            )));
        };
        let waiting = match front {
            Entry::Skipped { run, replies_left } => {
                run.response_size += msg.size;
                *replies_left = replies_left.saturating_sub(1);
                self.transaction_lossy |= self.in_transaction;
                self.drain(out);
                return Ok(());
            }
            Entry::Command(w) => w,
        };
        waiting.cmd.resp3 = self.resp3;
        let done = add_reply(waiting, msg, at, self.config.render_limit, &mut self.subs);
        if !done {
            return Ok(());
        }
        let Some(Entry::Command(waiting)) = self.pending.pop_front() else {
            unreachable!("the front was a command")
        };
        self.completed(waiting, msg, out);
        self.drain(out);
        Ok(())
    }

    /// A command has all its replies: apply what it changed, report it.
    fn completed(&mut self, mut waiting: Box<Waiting>, msg: &Message, out: &mut Vec<Decoded>) {
        let ok = waiting.cmd.error.is_none();
        match waiting.kind {
            Kind::Hello(Some(v)) if ok => {
                self.resp3 = v >= 3;
                // HELLO 3 is answered in the protocol it switches to.
                waiting.cmd.resp3 = self.resp3;
            }
            Kind::Monitor if ok => self.monitor = true,
            Kind::Multi if ok => {
                self.in_transaction = true;
                self.transaction_lossy = false;
            }
            Kind::Reset if ok => {
                self.resp3 = false;
                self.monitor = false;
                self.subs = Subscriptions::default();
                self.in_transaction = false;
                self.release_transaction(out);
            }
            Kind::Exec if self.in_transaction => return self.exec(waiting, msg, out),
            Kind::Discard if self.in_transaction => {
                self.in_transaction = false;
                self.release_transaction(out);
            }
            _ => {}
        }
        if waiting.queued && self.in_transaction {
            // Held until EXEC says what it did.
            self.transaction.push(waiting);
            return;
        }
        self.emit(waiting, out);
    }

    /// EXEC's reply: each queued command is reported with its element of
    /// the array (its real result), in order, then the EXEC itself with the
    /// whole array. A transaction that did not run (an EXECABORT error, a
    /// null for a WATCH that fired) leaves each command its `QUEUED`.
    fn exec(&mut self, exec: Box<Waiting>, msg: &Message, out: &mut Vec<Decoded>) {
        self.in_transaction = false;
        let top = render::top(msg).filter(|&i| msg.nodes[i].ty == RespType::Array);
        let elements = match top {
            Some(i) if !self.transaction_lossy => render::children(msg, i),
            _ => Vec::new(),
        };
        let mut k = 0;
        for mut held in std::mem::take(&mut self.transaction) {
            let was_queued = held
                .cmd
                .reply
                .as_ref()
                .is_some_and(|r| r.ty == RespType::SimpleString && r.rendered == "\"QUEUED\"");
            if was_queued {
                if let Some(&e) = elements.get(k) {
                    set_reply(&mut held.cmd, msg, e, self.config.render_limit, &[]);
                    held.cmd.finished = exec.cmd.finished;
                    held.cmd.latency_ms = exec.cmd.latency_ms;
                }
                k += 1;
            }
            self.emit(held, out);
        }
        self.emit(exec, out);
    }

    fn release_transaction(&mut self, out: &mut Vec<Decoded>) {
        for held in std::mem::take(&mut self.transaction) {
            self.emit(held, out);
        }
    }

    fn emit(&mut self, waiting: Box<Waiting>, out: &mut Vec<Decoded>) {
        self.kept -= 1;
        self.held_bytes -= waiting.held;
        out.push(Decoded::Redis(Box::new(RedisOutput::Command(waiting.cmd))));
    }

    /// Reports what reached the front without a reply due.
    fn drain(&mut self, out: &mut Vec<Decoded>) {
        loop {
            match self.pending.front() {
                Some(Entry::Command(w)) if !w.expects_reply => {}
                Some(Entry::Skipped {
                    replies_left: 0, ..
                }) => {}
                _ => return,
            }
            match self.pending.pop_front() {
                Some(Entry::Command(w)) => self.emit(w, out),
                Some(Entry::Skipped { run, .. }) => {
                    out.push(Decoded::Redis(Box::new(RedisOutput::Skipped(run))))
                }
                None => return,
            }
        }
    }

    /// The connection ended: what still waits is reported without a reply.
    pub fn finish(&mut self, out: &mut Vec<Decoded>) {
        self.release_transaction(out);
        while let Some(entry) = self.pending.pop_front() {
            match entry {
                Entry::Command(w) => self.emit(w, out),
                Entry::Skipped { run, .. } => {
                    out.push(Decoded::Redis(Box::new(RedisOutput::Skipped(run))))
                }
            }
        }
    }

    /// Forgets everything (after a failure).
    pub fn clear(&mut self) {
        self.pending.clear();
        self.transaction.clear();
        self.kept = 0;
        self.held_bytes = 0;
    }
}

/// Adds one reply to a waiting command; returns whether it has them all.
fn add_reply(
    w: &mut Waiting,
    msg: &Message,
    at: Timestamp,
    limit: usize,
    subs: &mut Subscriptions,
) -> bool {
    w.cmd.response_size += msg.size;
    w.cmd.finished = Some(at);
    w.cmd.latency_ms = Some(at.millis_since(w.cmd.started));
    let secret_keys: &[&str] = if w.kind == Kind::ConfigGet {
        SECRET_CONFIGS
    } else {
        &[]
    };
    let Some(render) = w.render.as_mut() else {
        if let Some(top) = render::top(msg) {
            set_reply(&mut w.cmd, msg, top, limit, secret_keys);
            // The attribute before a value is shown with it.
            if top > 0 {
                let mut r = Render::new(limit);
                r.secret_keys = secret_keys;
                r.value(msg, 0);
                if let Some(reply) = w.cmd.reply.as_mut() {
                    reply.rendered = r.out;
                    reply.truncated |= r.truncated || r.cut;
                }
            }
        }
        return true;
    };
    // (Un)subscribe: one reply per channel, shown one after another.
    if !render.out.is_empty() {
        render.raw(",");
    }
    render.value(msg, 0);
    let replies = w.cmd.reply.as_ref().map_or(0, |r| r.replies) + 1;
    let top = render::top(msg);
    let ty = top.map_or(RespType::Null, |i| msg.nodes[i].ty);
    if ty == RespType::Error && w.cmd.error.is_none() {
        w.cmd.error = top.map(|i| render::error(msg.data(i)));
    }
    w.cmd.reply = Some(RedisReply {
        ty,
        rendered: render.out.clone(),
        truncated: render.truncated || render.cut,
        replies,
    });
    let (class, named) = match w.kind {
        Kind::Subscribe(c, n) | Kind::Unsubscribe(c, n) => (c, n),
        _ => return true,
    };
    if let Some(count) = top.and_then(|i| push::subscribe_count(msg, i)) {
        subs.update(class, count);
    }
    if ty == RespType::Error {
        return true;
    }
    match w.kind {
        Kind::Unsubscribe(..) if named == 0 => subs.of(class) == 0,
        _ => u64::from(replies) >= named.max(1),
    }
}

/// Sets a command's reply to node `i` of `msg` (and its error, if one).
fn set_reply(
    cmd: &mut RedisCommand,
    msg: &Message,
    i: usize,
    limit: usize,
    secret_keys: &'static [&'static str],
) {
    let mut r = Render::new(limit);
    r.secret_keys = secret_keys;
    r.value(msg, i);
    let ty = msg.nodes[i].ty;
    cmd.error = (ty == RespType::Error).then(|| render::error(msg.data(i)));
    cmd.reply = Some(RedisReply {
        ty,
        rendered: r.out,
        truncated: r.truncated || r.cut,
        replies: 1,
    });
}
