//! Moving bytes both ways across one proxied connection.
//!
//! Both directions and the connection's decoder live in one future that
//! polls each direction in turn. Each direction is a small state machine
//! (read a chunk, write it all, feed it to the decoder, read again), so
//! neither direction ever waits on the other, and the decoder, owned by the
//! future, needs no lock and no shared cell.
//!
//! Two ways to move a chunk:
//! - [`RelayMode::Copy`] reads once into a reused `BytesMut`, freezes it as
//!   `Bytes`, writes it, and hands the same `Bytes` to the decoder. The
//!   buffer's allocation is reclaimed for the next read as soon as the
//!   decoder has let go of the chunk.
//! - [`RelayMode::Splice`] (no decoder) moves pages socket → pipe → socket
//!   with `splice(2)`; the payload never enters user space.
//!
//! Either way a direction holds its buffer or pipe only while data flows
//! (see [`super::pool`]), so an idle connection costs two sockets and a
//! small task, nothing more.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::io;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use socket2::SockRef;
use tapmesh_protocols::{DecodeFailure, Decoded, Decoder, Direction, Timestamp};
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_util::sync::CancellationToken;

use super::fault::{FaultMark, LiveFaults, Op, Rule, Shaper, Step};
use super::pipe::Pipe;
use super::pool::{self, COPY_CHUNK};
/// Bytes asked of one socket → pipe splice.
const SPLICE_CHUNK: usize = 1 << 20;
/// Chunks one direction moves per poll before letting the other direction
/// and other connections run.
const CHUNKS_PER_POLL: usize = 16;
/// Most bytes a direction reads ahead while `latency` holds earlier ones.
const MAX_AHEAD: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayMode {
    Copy,
    Splice,
}

/// Alters what the target sends before the client gets it. Only Kafka
/// edges have one (to rewrite broker addresses); it sees every request
/// before it is forwarded, so it knows which responses to hold back.
pub(crate) trait Transform: Send {
    /// A chunk from the client, about to be forwarded unchanged.
    fn client_chunk(&mut self, chunk: &Bytes);
    /// A chunk from the target: appends to `out` what to forward now (the
    /// rest is held until it can be). A response it failed to alter is
    /// forwarded as it came and reported in `failures`.
    fn target_chunk(
        &mut self,
        chunk: Bytes,
        out: &mut VecDeque<Bytes>,
        failures: &mut Vec<DecodeFailure>,
    );
    /// The target closed its side: appends whatever is still held.
    fn target_end(&mut self, out: &mut VecDeque<Bytes>);
}

/// What looks at (and, for Kafka, alters) a connection's traffic.
#[derive(Default)]
pub(crate) struct Watch {
    pub decoder: Option<Box<dyn Decoder>>,
    pub transform: Option<Box<dyn Transform>>,
    /// The edge's faults, on an edge that can have them.
    pub faults: Option<Box<LiveFaults>>,
}

/// What the relay reports as it goes.
pub(crate) enum Observed {
    /// The decoder's output, with the fault that acted on it (an HTTP
    /// exchange a request fault picked).
    Decoded(Decoded, Option<FaultMark>),
    /// A connection fault now applies to this connection.
    Fault(Arc<Rule>),
}

/// One end of the proxied connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Target,
}

impl Side {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Target => "target",
        }
    }
}

/// Why a relay ended other than by both sides closing cleanly.
#[derive(Debug)]
pub(crate) enum RelayError {
    /// That side reset the connection (or vanished while we wrote to it).
    Reset(Side),
    /// Any other I/O failure on that side.
    Io(Side, io::Error),
    /// The proxy is shutting down.
    Stopped,
    /// A fault ended the connection: with a reset, or closing it.
    Fault { reset: bool },
}

pub(crate) struct RelayOutcome {
    /// Bytes delivered from the client to the target.
    pub bytes_in: u64,
    /// Bytes delivered from the target to the client.
    pub bytes_out: u64,
    pub error: Option<RelayError>,
}

/// Relays until both directions have carried their FIN across, a side
/// fails, or `cancel` fires. Decoder output goes to `on_decoded`; after a
/// [`Decoded::Failure`] the decoder is dropped and the bytes still flow.
pub(crate) async fn relay(
    client: &mut TcpStream,
    target: &mut TcpStream,
    mode: RelayMode,
    Watch {
        decoder,
        transform,
        faults,
    }: Watch,
    origin: Instant,
    cancel: &CancellationToken,
    on_decoded: &mut (dyn FnMut(Observed) + Send),
) -> RelayOutcome {
    let base = if decoder.is_some() || transform.is_some() {
        RelayMode::Copy
    } else {
        mode
    };
    let mut up = Half::new(Direction::ClientToTarget, Side::Client, Side::Target);
    let mut down = Half::new(Direction::TargetToClient, Side::Target, Side::Client);
    let mut observer = Observer {
        decoder,
        transform,
        failures: Vec::new(),
        out: Vec::new(),
        origin,
        last: Timestamp::default(),
        on_decoded,
        faults,
    };
    let mut cancelled = pin!(cancel.cancelled());
    let result = poll_fn(|cx| {
        if cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(RelayError::Stopped));
        }
        if let Some(faults) = observer.faults.as_mut() {
            if faults.poll_changed(cx) {
                if faults.set.is_down() {
                    return Poll::Ready(Err(RelayError::Fault { reset: true }));
                }
                (up.shaper, down.shaper) = faults.shapers();
                observer.report_applied();
            }
        }
        if let Some(reset) = observer.faults.as_mut().and_then(|f| f.poll_deadline(cx)) {
            return Poll::Ready(Err(RelayError::Fault { reset }));
        }
        // Splice moves bytes the relay never sees: faults need them copied.
        let mode = match &observer.faults {
            Some(faults) if !faults.set.is_empty() => RelayMode::Copy,
            _ => base,
        };
        let up_done = up.poll(cx, mode, client, target, &mut observer)?.is_ready();
        let down_done = down
            .poll(cx, mode, target, client, &mut observer)?
            .is_ready();
        if up_done && down_done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await;
    observer.finish();
    RelayOutcome {
        bytes_in: up.delivered,
        bytes_out: down.delivered,
        error: result.err(),
    }
}

/// The connection's decoder, if it still has one, and where its output goes.
struct Observer<'a> {
    decoder: Option<Box<dyn Decoder>>,
    transform: Option<Box<dyn Transform>>,
    /// What the transform could not alter, reused across chunks.
    failures: Vec<DecodeFailure>,
    /// Reused for every chunk, so a chunk that completes nothing allocates nothing.
    out: Vec<Decoded>,
    origin: Instant,
    /// The last timestamp given to the decoder.
    last: Timestamp,
    on_decoded: &'a mut (dyn FnMut(Observed) + Send),
    faults: Option<Box<LiveFaults>>,
}

impl Observer<'_> {
    fn now(&mut self) -> Timestamp {
        let now = Timestamp(self.origin.elapsed().as_nanos() as u64).max(self.last);
        self.last = now;
        now
    }

    /// A chunk read at `read_at` has been forwarded. Its timestamp is when
    /// it was read, not when the (perhaps slow) receiver took it, raised if
    /// need be to the last one fed: chunks are fed in the order their writes
    /// finished, and decoders are promised timestamps that never decrease.
    fn chunk(&mut self, direction: Direction, chunk: &Bytes, read_at: Instant) {
        if let Some(decoder) = self.decoder.as_mut() {
            let read = Timestamp(read_at.saturating_duration_since(self.origin).as_nanos() as u64);
            let at = read.max(self.last);
            self.last = at;
            decoder.feed(direction, chunk, at, &mut self.out);
            self.publish();
        }
        if direction == Direction::ClientToTarget {
            if let Some(faults) = self.faults.as_mut() {
                faults.requests_seen();
            }
        }
    }

    fn end_of_stream(&mut self, direction: Direction) {
        let at = self.now();
        if let Some(decoder) = self.decoder.as_mut() {
            decoder.end_of_stream(direction, at, &mut self.out);
            self.publish();
        }
    }

    fn finish(&mut self) {
        let at = self.now();
        if let Some(decoder) = self.decoder.as_mut() {
            decoder.finish(at, &mut self.out);
            self.publish();
        }
        self.decoder = None;
    }

    /// Reports what the transform failed to alter. The decoder is kept: the
    /// traffic went through as it came, and it can still follow it.
    fn transform_failures(&mut self) {
        for failure in self.failures.drain(..) {
            (self.on_decoded)(Observed::Decoded(Decoded::Failure(failure), None));
        }
    }

    fn publish(&mut self) {
        for decoded in self.out.drain(..) {
            if matches!(decoded, Decoded::Failure(_)) {
                // The decoder has given up on this connection: from here on
                // the bytes are only counted.
                self.decoder = None;
            }
            let mark = match (&decoded, self.faults.as_mut()) {
                (Decoded::Http(_), Some(faults)) => faults.exchange_done(),
                _ => None,
            };
            (self.on_decoded)(Observed::Decoded(decoded, mark));
        }
    }

    /// Reports the connection faults that newly apply.
    fn report_applied(&mut self) {
        if let Some(faults) = self.faults.as_mut() {
            for rule in faults.applied.drain(..) {
                (self.on_decoded)(Observed::Fault(rule));
            }
        }
    }

    /// A response a request fault answers with, once it is its turn.
    fn take_injection(&mut self) -> Option<Bytes> {
        let decoding = self.decoder.is_some();
        self.faults.as_mut()?.take_injection(decoding)
    }
}

enum State {
    Reading,
    /// Copy mode: `chunk[written..]` is still to be written.
    WritingChunk {
        chunk: Bytes,
        written: usize,
        read_at: Instant,
    },
    /// Copy mode through a transform: `Half::queue` holds what to write;
    /// then `original` (the chunk as read, if any) goes to the decoder, and
    /// with `then_end` the direction ends.
    WritingQueue {
        original: Option<(Bytes, Instant)>,
        then_end: bool,
    },
    /// Splice mode: this many bytes wait in the pipe.
    DrainingPipe {
        left: usize,
    },
    /// Through a request gate: `Half::ops` says what to do; then
    /// `original` goes to the decoder.
    Segments {
        original: Bytes,
        read_at: Instant,
    },
    /// A response a request fault answers with, being written to the client.
    Injecting {
        bytes: Bytes,
        written: usize,
    },
    /// `slow_close`: the FIN is passed on at `at`.
    Closing {
        at: Instant,
    },
    Done,
}

/// One direction of the connection.
struct Half {
    direction: Direction,
    from: Side,
    to: Side,
    state: State,
    /// Copy mode: the buffer being read into, while data flows.
    buf: Option<BytesMut>,
    /// Splice mode: the pipe carrying data, while data flows.
    pipe: Option<Pipe>,
    /// Through a transform: the pieces still to write.
    queue: VecDeque<Bytes>,
    /// Bytes of `queue`'s front piece already written.
    queue_written: usize,
    delivered: u64,
    /// Connection faults on this direction, if any apply.
    shaper: Option<Shaper>,
    /// The timer faults wait on, made the first time one waits.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Through a request gate: what to do with the chunk being relayed.
    ops: VecDeque<Op>,
    /// A response a request fault holds: not written before this.
    hold: Option<Instant>,
    /// `slow_close` has been waited for.
    closing_done: bool,
    /// Read while `latency` held an earlier chunk, each with when it was
    /// read (at most [`MAX_AHEAD`] bytes), and whether the source's FIN
    /// came after them.
    ahead: VecDeque<(Bytes, Instant)>,
    ahead_bytes: usize,
    ahead_eof: bool,
}

impl Half {
    fn new(direction: Direction, from: Side, to: Side) -> Self {
        Self {
            direction,
            from,
            to,
            state: State::Reading,
            buf: None,
            pipe: None,
            queue: VecDeque::new(),
            queue_written: 0,
            delivered: 0,
            shaper: None,
            sleep: None,
            ops: VecDeque::new(),
            hold: None,
            closing_done: false,
            ahead: VecDeque::new(),
            ahead_bytes: 0,
            ahead_eof: false,
        }
    }

    /// The source sent FIN: carry it across and stop this direction; false
    /// if `slow_close` holds it (the state is then `Closing`).
    fn end(&mut self, dst: &TcpStream, observer: &mut Observer<'_>) -> Result<bool, RelayError> {
        if let Some(delay) = self.shaper.as_ref().and_then(|s| s.slow_close) {
            if !self.closing_done {
                self.closing_done = true;
                self.release();
                self.state = State::Closing {
                    at: Instant::now() + delay,
                };
                return Ok(false);
            }
        }
        self.state = State::Done;
        self.release();
        observer.end_of_stream(self.direction);
        match SockRef::from(dst).shutdown(Shutdown::Write) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(RelayError::Reset(self.to)),
            Err(e) => Err(write_error(self.to, e)),
        }
    }

    /// Moves data from `src` to `dst` until `src` has nothing ready, `dst`
    /// cannot take more, or this poll's share of chunks is used up.
    /// `Ready(Ok)` once the direction is finished.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        mode: RelayMode,
        src: &mut TcpStream,
        dst: &mut TcpStream,
        observer: &mut Observer<'_>,
    ) -> Poll<Result<(), RelayError>> {
        let (from, to) = (self.from, self.to);
        let read_error = |e| read_error(from, e);
        let write_error = |e| write_error(to, e);
        for _ in 0..CHUNKS_PER_POLL {
            match &mut self.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Reading => {
                    if self.direction == Direction::TargetToClient {
                        if let Some(bytes) = observer.take_injection() {
                            self.state = State::Injecting { bytes, written: 0 };
                            continue;
                        }
                    }
                    if let Some((chunk, read_at)) = self.ahead.pop_front() {
                        self.ahead_bytes -= chunk.len();
                        self.state = State::WritingChunk {
                            chunk,
                            written: 0,
                            read_at,
                        };
                        self.through_transform(observer);
                        self.through_faults(observer);
                        continue;
                    }
                    let read = if self.ahead_eof {
                        Poll::Ready(Ok(0))
                    } else {
                        match mode {
                            RelayMode::Copy => self.poll_read_chunk(cx, src),
                            RelayMode::Splice => {
                                ready!(src.poll_read_ready(cx)).map_err(read_error)?;
                                match self.fill_pipe(src) {
                                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                                    other => Poll::Ready(other),
                                }
                            }
                        }
                    };
                    match ready!(read) {
                        Ok(0) => {
                            if self.direction == Direction::TargetToClient {
                                if let Some(transform) = observer.transform.as_mut() {
                                    transform.target_end(&mut self.queue);
                                    if !self.queue.is_empty() {
                                        self.release();
                                        self.state = State::WritingQueue {
                                            original: None,
                                            then_end: true,
                                        };
                                        continue;
                                    }
                                }
                            }
                            if self.end(dst, observer)? {
                                return Poll::Ready(Ok(()));
                            }
                        }
                        Ok(_) => {
                            self.through_transform(observer);
                            self.through_faults(observer);
                        }
                        Err(e) => return Poll::Ready(Err(read_error(e))),
                    }
                }
                State::WritingChunk {
                    chunk,
                    written,
                    read_at,
                } => {
                    let mut want = chunk.len() - *written;
                    if let Some(until) = self.hold {
                        ready!(poll_until(&mut self.sleep, cx, until));
                        self.hold = None;
                    }
                    if let Some(shaper) = self.shaper.as_mut() {
                        match shaper.next(want, *read_at, Instant::now()) {
                            Step::Write(n) => want = n,
                            Step::Wait(until) => {
                                if shaper.reads_ahead() {
                                    self.read_ahead(cx, src)?;
                                }
                                ready!(poll_until(&mut self.sleep, cx, until));
                                continue;
                            }
                            Step::Discard => {
                                shaper.chunk_done();
                                self.state = State::Reading;
                                continue;
                            }
                            Step::Close => {
                                return Poll::Ready(Err(RelayError::Fault { reset: false }))
                            }
                        }
                    }
                    // Through tokio's AsyncWrite: a partial write clears the
                    // socket's write readiness, so no write is tried in vain.
                    match ready!(
                        Pin::new(&mut *dst).poll_write(cx, &chunk[*written..*written + want])
                    ) {
                        Ok(n) => {
                            *written += n;
                            if let Some(shaper) = self.shaper.as_mut() {
                                shaper.wrote(n, Instant::now());
                                if *written == chunk.len() {
                                    shaper.chunk_done();
                                }
                                if shaper.limit_reached() {
                                    self.delivered += *written as u64;
                                    return Poll::Ready(Err(RelayError::Fault { reset: false }));
                                }
                            }
                            if *written == chunk.len() {
                                let State::WritingChunk { chunk, read_at, .. } =
                                    std::mem::replace(&mut self.state, State::Reading)
                                else {
                                    unreachable!()
                                };
                                self.delivered += chunk.len() as u64;
                                observer.chunk(self.direction, &chunk, read_at);
                            }
                        }
                        Err(e) => return Poll::Ready(Err(write_error(e))),
                    }
                }
                State::WritingQueue { .. } => {
                    if let Some(piece) = self.queue.front() {
                        ready!(dst.poll_write_ready(cx)).map_err(write_error)?;
                        match dst.try_write(&piece[self.queue_written..]) {
                            Ok(n) => {
                                self.queue_written += n;
                                self.delivered += n as u64;
                                if self.queue_written == piece.len() {
                                    self.queue.pop_front();
                                    self.queue_written = 0;
                                }
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                            Err(e) => return Poll::Ready(Err(write_error(e))),
                        }
                        continue;
                    }
                    let State::WritingQueue { original, then_end } =
                        std::mem::replace(&mut self.state, State::Reading)
                    else {
                        unreachable!()
                    };
                    if let Some((chunk, read_at)) = original {
                        observer.chunk(self.direction, &chunk, read_at);
                    }
                    if then_end && self.end(dst, observer)? {
                        return Poll::Ready(Ok(()));
                    }
                }
                State::Segments { original, read_at } => {
                    let read_at = *read_at;
                    if matches!(self.ops.front(), Some(Op::Close)) && !original.is_empty() {
                        // The decoder sees the request the connection
                        // closes at (and any answer to it) before the close.
                        let original = std::mem::take(original);
                        observer.chunk(self.direction, &original, read_at);
                    }
                    let answering = observer
                        .faults
                        .as_ref()
                        .is_some_and(|f| !f.inject.is_empty());
                    match ready!(self.poll_op(cx, dst, read_at, answering)) {
                        Ok(true) => {}
                        Ok(false) => {
                            let State::Segments { original, read_at } =
                                std::mem::replace(&mut self.state, State::Reading)
                            else {
                                unreachable!()
                            };
                            observer.chunk(self.direction, &original, read_at);
                        }
                        Err(e) => return Poll::Ready(Err(e)),
                    }
                }
                State::Injecting { bytes, written } => {
                    match ready!(Pin::new(&mut *dst).poll_write(cx, &bytes[*written..])) {
                        Ok(n) => {
                            *written += n;
                            self.delivered += n as u64;
                            if *written == bytes.len() {
                                let State::Injecting { bytes, .. } =
                                    std::mem::replace(&mut self.state, State::Reading)
                                else {
                                    unreachable!()
                                };
                                observer.chunk(self.direction, &bytes, Instant::now());
                                // The other direction may wait to close after it.
                                cx.waker().wake_by_ref();
                            }
                        }
                        Err(e) => return Poll::Ready(Err(write_error(e))),
                    }
                }
                State::Closing { at } => {
                    let at = *at;
                    ready!(poll_until(&mut self.sleep, cx, at));
                    if self.end(dst, observer)? {
                        return Poll::Ready(Ok(()));
                    }
                }
                State::DrainingPipe { left } => {
                    ready!(dst.poll_write_ready(cx)).map_err(write_error)?;
                    let pipe = self
                        .pipe
                        .as_ref()
                        .expect("a pipe holds the data being drained");
                    let want = *left;
                    match dst.try_io(Interest::WRITABLE, || pipe.drain_to(dst.as_raw_fd(), want)) {
                        Ok(n) => {
                            *left -= n;
                            self.delivered += n as u64;
                            if *left == 0 {
                                self.state = State::Reading;
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Poll::Ready(Err(write_error(e))),
                    }
                }
            }
        }
        // Used up this poll's share while data keeps coming: run again soon,
        // after the other direction and other tasks had their turn.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// A chunk was just read into `WritingChunk`: a transform notes a
    /// request, or turns a response into the pieces to write.
    fn through_transform(&mut self, observer: &mut Observer<'_>) {
        let Some(transform) = observer.transform.as_mut() else {
            return;
        };
        let State::WritingChunk { chunk, .. } = &self.state else {
            return;
        };
        match self.direction {
            Direction::ClientToTarget => transform.client_chunk(chunk),
            Direction::TargetToClient => {
                let State::WritingChunk { chunk, read_at, .. } =
                    std::mem::replace(&mut self.state, State::Reading)
                else {
                    unreachable!()
                };
                transform.target_chunk(chunk.clone(), &mut self.queue, &mut observer.failures);
                observer.transform_failures();
                self.queue_written = 0;
                self.state = State::WritingQueue {
                    original: Some((chunk, read_at)),
                    then_end: false,
                };
            }
        }
    }

    /// A chunk was just read into `WritingChunk`: on a gated client
    /// direction it becomes `Segments`; a response a request fault holds
    /// gets its hold.
    fn through_faults(&mut self, observer: &mut Observer<'_>) {
        // The common case first: an edge with no faults looks no further.
        match &observer.faults {
            Some(faults) if !faults.is_quiet() => {}
            _ => return,
        }
        let idle = observer.decoder.as_ref().is_some_and(|d| d.is_idle());
        let Some(faults) = observer.faults.as_mut() else {
            return;
        };
        let State::WritingChunk { read_at, .. } = &self.state else {
            return;
        };
        match self.direction {
            Direction::ClientToTarget => {
                if !faults.wants_gate(idle) {
                    return;
                }
                let read_at = *read_at;
                let State::WritingChunk { chunk, .. } =
                    std::mem::replace(&mut self.state, State::Reading)
                else {
                    unreachable!()
                };
                faults.gate_chunk(&chunk, &mut self.ops);
                self.state = State::Segments {
                    original: chunk,
                    read_at,
                };
            }
            Direction::TargetToClient => {
                if let Some(hold) = faults.response_hold() {
                    self.hold = Some(Instant::now() + hold);
                }
            }
        }
    }

    /// Does the front op of `Segments`: `Ready(Ok(true))` while ops remain,
    /// `Ready(Ok(false))` once they are all done.
    fn poll_op(
        &mut self,
        cx: &mut Context<'_>,
        dst: &mut TcpStream,
        read_at: Instant,
        answering: bool,
    ) -> Poll<Result<bool, RelayError>> {
        match self.ops.front_mut() {
            None => Poll::Ready(Ok(false)),
            // The client gets the answers it is owed before the close (the
            // other direction wakes this one when it has written them).
            Some(Op::Close) if answering => Poll::Pending,
            Some(Op::Close) => Poll::Ready(Err(RelayError::Fault { reset: false })),
            Some(Op::Wait(until)) => {
                let until = *until;
                ready!(poll_until(&mut self.sleep, cx, until));
                self.ops.pop_front();
                Poll::Ready(Ok(true))
            }
            Some(Op::Write(bytes)) => {
                let mut want = bytes.len();
                if let Some(shaper) = self.shaper.as_mut() {
                    match shaper.next(want, read_at, Instant::now()) {
                        Step::Write(n) => want = n,
                        Step::Wait(until) => {
                            ready!(poll_until(&mut self.sleep, cx, until));
                            return Poll::Ready(Ok(true));
                        }
                        Step::Discard => {
                            self.ops.pop_front();
                            return Poll::Ready(Ok(true));
                        }
                        Step::Close => return Poll::Ready(Err(RelayError::Fault { reset: false })),
                    }
                }
                match ready!(Pin::new(&mut *dst).poll_write(cx, &bytes[..want])) {
                    Ok(n) => {
                        bytes.advance(n);
                        self.delivered += n as u64;
                        if bytes.is_empty() {
                            self.ops.pop_front();
                        }
                        if let Some(shaper) = self.shaper.as_mut() {
                            shaper.wrote(n, Instant::now());
                            if shaper.limit_reached() {
                                return Poll::Ready(Err(RelayError::Fault { reset: false }));
                            }
                        }
                        Poll::Ready(Ok(true))
                    }
                    Err(e) => Poll::Ready(Err(write_error(self.to, e))),
                }
            }
        }
    }

    /// Reads what the source has while `latency` holds an earlier chunk:
    /// latency delays each byte from when it arrived (as Toxiproxy's
    /// does), so a response sent in two writes arrives late once, not twice.
    fn read_ahead(&mut self, cx: &mut Context<'_>, src: &mut TcpStream) -> Result<(), RelayError> {
        while !self.ahead_eof && self.ahead_bytes < MAX_AHEAD {
            let mut buf = BytesMut::with_capacity(COPY_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut *src), cx, &mut buf) {
                Poll::Ready(Ok(0)) => self.ahead_eof = true,
                Poll::Ready(Ok(n)) => {
                    self.ahead_bytes += n;
                    self.ahead.push_back((buf.freeze(), Instant::now()));
                }
                Poll::Ready(Err(e)) => return Err(read_error(self.from, e)),
                Poll::Pending => break,
            }
        }
        Ok(())
    }

    /// Copy mode: reads one chunk through tokio's `AsyncRead`, which, on
    /// epoll, takes a read that did not fill the buffer as proof the socket
    /// is drained and clears its readiness: the next poll waits for epoll
    /// instead of trying a `recv` that would only say EAGAIN. With small
    /// request/response traffic that is one syscall saved per message.
    fn poll_read_chunk(
        &mut self,
        cx: &mut Context<'_>,
        src: &mut TcpStream,
    ) -> Poll<io::Result<usize>> {
        let buf = self.buf.get_or_insert_with(pool::take_buffer);
        if buf.capacity() < COPY_CHUNK / 4 {
            // Reclaims the previous chunks' allocation when nothing else
            // holds them any more, so a steady stream reuses one buffer.
            buf.reserve(COPY_CHUNK);
        }
        match tokio_util::io::poll_read_buf(Pin::new(&mut *src), cx, buf) {
            Poll::Ready(Ok(n)) if n > 0 => {
                let chunk = buf.split().freeze();
                self.state = State::WritingChunk {
                    chunk,
                    written: 0,
                    read_at: Instant::now(),
                };
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                self.release();
                Poll::Pending
            }
            other => other,
        }
    }

    fn fill_pipe(&mut self, src: &TcpStream) -> io::Result<usize> {
        let pipe = match &self.pipe {
            Some(pipe) => pipe,
            None => self.pipe.insert(pool::take_pipe()?),
        };
        match src.try_io(Interest::READABLE, || {
            pipe.fill_from(src.as_raw_fd(), SPLICE_CHUNK)
        }) {
            Ok(n) if n > 0 => {
                self.state = State::DrainingPipe { left: n };
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.release();
                Err(e)
            }
            other => other,
        }
    }

    /// The source has nothing more for now: give the (empty) buffer or pipe
    /// back to the thread's pool until data arrives again.
    fn release(&mut self) {
        debug_assert!(matches!(self.state, State::Reading | State::Done));
        if let Some(buf) = self.buf.take() {
            pool::give_back_buffer(buf);
        }
        if let Some(pipe) = self.pipe.take() {
            pool::give_back_pipe(pipe);
        }
    }
}

/// Waits on the direction's fault timer until `until`.
fn poll_until(
    sleep: &mut Option<Pin<Box<Sleep>>>,
    cx: &mut Context<'_>,
    until: Instant,
) -> Poll<()> {
    if Instant::now() >= until {
        return Poll::Ready(());
    }
    let deadline = tokio::time::Instant::from_std(until);
    let sleep = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
    if sleep.deadline() != deadline {
        sleep.as_mut().reset(deadline);
    }
    sleep.as_mut().poll(cx)
}

/// A failed read: the source reset, or failed some other way.
fn read_error(from: Side, e: io::Error) -> RelayError {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            RelayError::Reset(from)
        }
        _ => RelayError::Io(from, e),
    }
}

/// A failed write: the destination reset or went away, or failed some other way.
fn write_error(to: Side, e: io::Error) -> RelayError {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => RelayError::Reset(to),
        _ => RelayError::Io(to, e),
    }
}
