//! The event log: gap-free numbering, bounded memory, a JSON Lines file, and
//! subscribers that can never slow the publisher down.
//!
//! Shape: one ring of `Arc<Event>` behind a mutex that is held only to push
//! (or to copy out a batch of pointers). Subscribers are cursors into that
//! ring, not queues, so a stalled subscriber costs no memory and cannot make
//! [`EventLog::append`] wait. The publisher drops from the ring the oldest
//! events past `memory_events` once they are on disk, so every event stays
//! reachable: in memory, or on disk through a sparse seq → offset index.
//!
//! With a file, [`EventLog::append`] turns the event into its JSON line on
//! the publisher's own thread, outside the lock, and under the lock only
//! stamps the seq into it and queues the bytes; a writer thread takes the
//! queued bytes in one swap and writes them. That looks like work on the
//! traffic path, and it is the cheaper way: measured with wrk through the
//! HTTP proxy, a writer thread that serialised the events itself cost about
//! a quarter of the requests per second (serialising on another core reads
//! each event's scattered allocations cold, and frees them there, handing
//! the memory back across threads), where serialising on the relay thread,
//! with the event still in its cache, costs a few per cent.
//!
//! A subscriber whose unread backlog of *live* events (appended after it
//! subscribed) grows past its `max_lag` skips to the present; the log then
//! records an `events.dropped` event naming it and the range it missed, which
//! it receives next. Replay of history on subscribe is never dropped.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::task::Waker;
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

mod subscription;

pub use subscription::Subscription;

use super::{Event, EventDraft, EventFilter};

/// Events per entry of the on-disk offset index.
const INDEX_STRIDE: u64 = 1024;
/// Most events a subscriber or the writer copies out under one lock.
const BATCH: usize = 512;
/// The writer, when idle, looks for new events this often…
const WRITER_POLL: Duration = Duration::from_millis(5);
/// …and is woken sooner only when this many wait (or on flush and close).
/// Waking it per event would cost a futex wake and a context switch for
/// every request the proxy reports.
const WRITER_WAKE_BACKLOG: u64 = 4096;
/// After this many empty polls (about 100 ms) the writer sleeps until the
/// next append, so an idle log costs no wake-ups.
const WRITER_IDLE_POLLS: u32 = 20;

/// Where the log writes its JSON Lines.
#[derive(Debug, Clone)]
pub enum EventSink {
    /// A file, created (or truncated) when the log starts. Events evicted
    /// from memory are read back from it.
    File(PathBuf),
    /// Standard output. Evicted events cannot be read back from it.
    Stdout,
}

/// How to build an [`EventLog`].
#[derive(Debug, Clone)]
pub struct EventLogConfig {
    /// The `environment` of every event.
    pub environment: Arc<str>,
    /// How many events to keep in memory once they are on disk (or, with no
    /// sink, at all). Also the default `max_lag` of a subscriber.
    pub memory_events: usize,
    pub sink: Option<EventSink>,
}

impl EventLogConfig {
    pub fn new(environment: impl Into<Arc<str>>) -> Self {
        Self {
            environment: environment.into(),
            memory_events: 100_000,
            sink: None,
        }
    }

    pub fn memory_events(mut self, n: usize) -> Self {
        self.memory_events = n.max(1);
        self
    }

    pub fn sink(mut self, sink: EventSink) -> Self {
        self.sink = Some(sink);
        self
    }
}

/// Why [`EventLog::wait_for`] returned without a match.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("no matching event within {0:?}")]
    Timeout(Duration),
    #[error("the event log closed before a matching event arrived")]
    Closed,
}

/// An environment's event log. Cheap to clone; every clone is the same log.
/// When the last clone is dropped the log flushes its file and stops its
/// writer thread.
#[derive(Clone)]
pub struct EventLog {
    shared: Arc<Shared>,
    _closer: Arc<CloseOnDrop>,
}

struct Shared {
    environment: Arc<str>,
    memory_events: usize,
    /// The file events can be read back from, if any.
    readable: Option<PathBuf>,
    /// Events are written to a sink: appends serialise them.
    has_sink: bool,
    state: Mutex<State>,
    /// Signalled whenever `persisted_seq` advances or the writer stops.
    persisted: Condvar,
    writer_thread: OnceLock<Thread>,
    writer_join: Mutex<Option<JoinHandle<()>>>,
    next_subscriber_id: AtomicU64,
    /// Turns at reading history back from the file (see `subscription`).
    disk_readers: tokio::sync::Semaphore,
}

struct State {
    /// The seq the next append receives. Seqs start at 1.
    next_seq: u64,
    /// Events `first_seq .. next_seq`, in order.
    ring: VecDeque<Arc<Event>>,
    first_seq: u64,
    /// Every event below this seq has been flushed to the sink.
    persisted_seq: u64,
    /// While a sink is being written, eviction waits for `persisted_seq`.
    writing: bool,
    /// The JSON lines of the events the writer has yet to take, in seq order.
    unwritten: Vec<u8>,
    /// Bytes of JSON lines queued so far: where the next line starts in the file.
    sink_len: u64,
    /// Byte offset of events 1, 1 + INDEX_STRIDE, 1 + 2·INDEX_STRIDE … in the file.
    index: Vec<u64>,
    /// Subscribers parked until the next append.
    waiters: Vec<Waker>,
    /// The writer is polling (every `WRITER_POLL`) for new events.
    writer_parked: bool,
    /// The writer has been idle a while and sleeps until woken: the next
    /// append wakes it whatever the backlog.
    writer_asleep: bool,
    closed: bool,
    write_error: Option<String>,
}

impl State {
    /// Takes the oldest event out of memory if more than `keep` are held
    /// and it is on disk (or there is no file it must reach first).
    fn evict_oldest(&mut self, keep: usize) -> Option<Arc<Event>> {
        if self.ring.len() > keep && (!self.writing || self.first_seq < self.persisted_seq) {
            self.first_seq += 1;
            self.ring.pop_front()
        } else {
            None
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An event not numbered yet (`seq` 0), ready to be pushed.
    fn unnumbered(&self, draft: EventDraft) -> Arc<Event> {
        Arc::new(Event {
            seq: 0,
            kind: draft.kind,
            timestamp: draft.timestamp,
            environment: self.environment.clone(),
            service: draft.service,
            payload: draft.payload,
        })
    }

    /// Numbers and stores one event made by [`Shared::unnumbered`] and, with
    /// a sink, queues `line` (the event's JSON line, serialised with seq 0)
    /// with its seq. The caller wakes the returned waiters and drops the
    /// evicted events after releasing the lock. `evict` is false for drop
    /// notices: a notice must not push out the very event its subscriber
    /// resumes at (the next ordinary append trims the ring instead).
    fn push_locked(
        &self,
        st: &mut State,
        mut event: Arc<Event>,
        line: &[u8],
        evict: bool,
    ) -> (u64, Wake) {
        let seq = st.next_seq;
        st.next_seq += 1;
        Arc::get_mut(&mut event)
            .expect("an unnumbered event is not shared yet")
            .seq = seq;
        if st.writing {
            if (seq - 1) % INDEX_STRIDE == 0 {
                st.index.push(st.sink_len);
            }
            let start = st.unwritten.len();
            st.unwritten.extend_from_slice(b"{\"seq\":");
            st.unwritten
                .extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
            st.unwritten
                .extend_from_slice(&line[UNNUMBERED_PREFIX.len()..]);
            st.sink_len += (st.unwritten.len() - start) as u64;
        }
        st.ring.push_back(event);
        // Two at most: after a burst the writer has persisted, the ring
        // shrinks by one per append rather than one publisher freeing the
        // whole burst at once.
        let keep = self.memory_events;
        let evicted = if evict {
            [st.evict_oldest(keep), st.evict_oldest(keep)]
        } else {
            [None, None]
        };
        let wake = Wake {
            evicted,
            waiters: if st.waiters.is_empty() {
                Vec::new()
            } else {
                std::mem::take(&mut st.waiters)
            },
            writer: st.writer_parked
                && (st.writer_asleep || st.next_seq - st.persisted_seq >= WRITER_WAKE_BACKLOG)
                && std::mem::take(&mut st.writer_parked),
        };
        (seq, wake)
    }

    fn wake(&self, wake: Wake) {
        for w in wake.waiters {
            w.wake();
        }
        if wake.writer {
            if let Some(t) = self.writer_thread.get() {
                t.unpark();
            }
        }
        drop(wake.evicted);
    }

    fn close(&self) {
        let waiters = {
            let mut st = self.lock();
            st.closed = true;
            std::mem::take(&mut st.waiters)
        };
        for w in waiters {
            w.wake();
        }
        if let Some(t) = self.writer_thread.get() {
            t.unpark();
        }
        let handle = self
            .writer_join
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// Waiters to wake once the lock is released, and events to free then.
struct Wake {
    evicted: [Option<Arc<Event>>; 2],
    waiters: Vec<Waker>,
    writer: bool,
}

/// Closes the log when the last [`EventLog`] clone goes away. Subscriptions
/// do not hold it, so they end (with `None`) rather than keep the log alive.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl EventLog {
    /// Opens the log, creating its sink file and starting the writer thread.
    pub fn new(config: EventLogConfig) -> io::Result<Self> {
        let (writer, readable): (Option<Box<dyn Write + Send>>, _) = match &config.sink {
            None => (None, None),
            Some(EventSink::Stdout) => (Some(Box::new(io::stdout())), None),
            Some(EventSink::File(path)) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                (Some(Box::new(File::create(path)?)), Some(path.clone()))
            }
        };
        let shared = Arc::new(Shared {
            environment: config.environment,
            memory_events: config.memory_events.max(1),
            readable,
            has_sink: writer.is_some(),
            state: Mutex::new(State {
                next_seq: 1,
                ring: VecDeque::new(),
                first_seq: 1,
                persisted_seq: 1,
                writing: writer.is_some(),
                unwritten: Vec::new(),
                sink_len: 0,
                index: Vec::new(),
                waiters: Vec::new(),
                writer_parked: false,
                writer_asleep: false,
                closed: false,
                write_error: None,
            }),
            persisted: Condvar::new(),
            writer_thread: OnceLock::new(),
            writer_join: Mutex::new(None),
            next_subscriber_id: AtomicU64::new(1),
            disk_readers: tokio::sync::Semaphore::new(subscription::DISK_READERS),
        });
        if let Some(sink) = writer {
            let for_thread = shared.clone();
            let handle = thread::Builder::new()
                .name("tapmesh-event-writer".into())
                .spawn(move || write_loop(&for_thread, sink))?;
            let _ = shared.writer_thread.set(handle.thread().clone());
            *shared
                .writer_join
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(handle);
        }
        Ok(Self {
            _closer: Arc::new(CloseOnDrop(shared.clone())),
            shared,
        })
    }

    /// A log kept in memory only (the newest `memory_events` events).
    pub fn in_memory(environment: impl Into<Arc<str>>) -> Self {
        Self::new(EventLogConfig::new(environment))
            .expect("a log without a sink cannot fail to open")
    }

    pub fn environment(&self) -> &Arc<str> {
        &self.shared.environment
    }

    /// Numbers the event, stores it and wakes subscribers. Never waits for a
    /// subscriber or for the disk. Returns the event's `seq`.
    pub fn append(&self, draft: EventDraft) -> u64 {
        thread_local! {
            /// One line buffer per publishing thread: no allocation per event.
            static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        let event = self.shared.unnumbered(draft);
        let (seq, wake) = LINE.with_borrow_mut(|line| {
            line.clear();
            if self.shared.has_sink {
                serialize_unnumbered(&event, line);
            }
            let mut st = self.shared.lock();
            self.shared.push_locked(&mut st, event, line, true)
        });
        self.shared.wake(wake);
        seq
    }

    /// How many events are held in memory now.
    pub fn events_in_memory(&self) -> usize {
        self.shared.lock().ring.len()
    }

    /// The seq of the newest event (0 if there is none yet).
    pub fn last_seq(&self) -> u64 {
        self.shared.lock().next_seq - 1
    }

    /// Every event with `seq >= from_seq`, from memory and, for older ones,
    /// from the file. All of them at once: to go through a long history,
    /// [`EventLog::subscribe`] reads it page by page instead.
    pub fn since(&self, from_seq: u64) -> io::Result<Vec<Arc<Event>>> {
        let from_seq = from_seq.max(1);
        let (mut out, disk) = {
            let st = self.shared.lock();
            let start = from_seq.max(st.first_seq);
            let skip = (start - st.first_seq) as usize;
            let mem: Vec<_> = st.ring.iter().skip(skip).cloned().collect();
            let disk = (from_seq < st.first_seq)
                .then(|| (st.first_seq, index_offset(&st.index, from_seq)));
            (mem, disk)
        };
        if let Some((end, offset)) = disk {
            let page = subscription::read_page(
                self.shared.readable.as_deref(),
                offset,
                from_seq,
                end,
                usize::MAX,
                u64::MAX,
            )?;
            let mut older = page.events;
            older.append(&mut out);
            out = older;
        }
        Ok(out)
    }

    /// The event numbered `seq`: from memory, else from the file; `None`
    /// past the end of the log.
    pub fn get(&self, seq: u64) -> io::Result<Option<Arc<Event>>> {
        let disk = {
            let st = self.shared.lock();
            if seq == 0 || seq >= st.next_seq {
                return Ok(None);
            }
            if seq >= st.first_seq {
                return Ok(st.ring.get((seq - st.first_seq) as usize).cloned());
            }
            index_offset(&st.index, seq)
        };
        let page = subscription::read_page(
            self.shared.readable.as_deref(),
            disk,
            seq,
            seq + 1,
            1,
            u64::MAX,
        )?;
        Ok(page.events.into_iter().find(|e| e.seq == seq))
    }

    /// The newest `n` events in memory that `keep` accepts, oldest first,
    /// and whether memory still holds the log from its first event (if not,
    /// older matches may be on disk only). Scans backwards a batch of
    /// pointers at a time, so appends never wait long for the lock.
    pub fn recent_in_memory(
        &self,
        n: usize,
        mut keep: impl FnMut(&Event) -> bool,
    ) -> (Vec<Arc<Event>>, bool) {
        let mut found = Vec::new();
        let mut end = u64::MAX;
        let mut from_start = false;
        let mut chunk = Vec::with_capacity(BATCH);
        while found.len() < n {
            {
                let st = self.shared.lock();
                from_start = st.first_seq == 1;
                let end_seq = end.min(st.next_seq);
                if end_seq <= st.first_seq {
                    break;
                }
                let start_seq = end_seq.saturating_sub(BATCH as u64).max(st.first_seq);
                let (start, stop) = (
                    (start_seq - st.first_seq) as usize,
                    (end_seq - st.first_seq) as usize,
                );
                chunk.extend(st.ring.range(start..stop).cloned());
                end = start_seq;
            }
            for event in chunk.drain(..).rev() {
                if found.len() < n && keep(&event) {
                    found.push(event);
                }
            }
        }
        found.reverse();
        (found, from_start)
    }

    /// Follows the log from `from_seq` (1 replays everything; `last_seq() + 1`
    /// gives only new events), delivering the events `filter` keeps.
    pub fn subscribe(&self, from_seq: u64, filter: EventFilter) -> Subscription {
        let id = self
            .shared
            .next_subscriber_id
            .fetch_add(1, Ordering::Relaxed);
        Subscription::new(self.shared.clone(), id, from_seq, filter)
    }

    /// Waits until an event (already logged, or yet to come) satisfies
    /// `predicate`, and returns the first such event.
    pub async fn wait_for<F>(
        &self,
        mut predicate: F,
        timeout: Duration,
    ) -> Result<Arc<Event>, WaitError>
    where
        F: FnMut(&Event) -> bool,
    {
        let mut sub = self.subscribe(1, EventFilter::all()).with_max_lag(u64::MAX);
        let search = async {
            while let Some(event) = sub.recv().await {
                if predicate(&event) {
                    return Ok(event);
                }
            }
            Err(WaitError::Closed)
        };
        tokio::time::timeout(timeout, search)
            .await
            .unwrap_or(Err(WaitError::Timeout(timeout)))
    }

    /// Ends the log: every subscription ends once it has delivered what was
    /// logged, and the writer stops after writing all of it to the file.
    /// For an environment that is down while its record is still served.
    pub fn close(&self) {
        self.shared.close();
        // The writer is gone: nothing may wait for it any more.
        self.shared.lock().writing = false;
    }

    /// Whether [`EventLog::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }

    /// Blocks until every event appended so far is on disk. Returns the
    /// writer's error if it could not write.
    pub fn flush(&self) -> io::Result<()> {
        if let Some(writer) = self.shared.writer_thread.get() {
            writer.unpark();
        }
        let mut st = self.shared.lock();
        let target = st.next_seq;
        while st.writing && st.persisted_seq < target {
            st = self
                .shared
                .persisted
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        // What is on disk need not stay in memory past the window.
        let keep = self.shared.memory_events;
        let evicted: Vec<_> = std::iter::from_fn(|| st.evict_oldest(keep)).collect();
        let result = match &st.write_error {
            Some(e) => Err(io::Error::other(e.clone())),
            None => Ok(()),
        };
        drop(st);
        drop(evicted);
        result
    }
}

/// How a line starts when serialised with seq 0; [`Shared::push_locked`]
/// writes the real seq in its place.
const UNNUMBERED_PREFIX: &[u8] = b"{\"seq\":0";

/// `event`'s JSON line (ending in a newline) with seq 0, appended to `line`.
fn serialize_unnumbered(event: &Event, line: &mut Vec<u8>) {
    debug_assert_eq!(event.seq, 0);
    event.write_json(line);
    debug_assert!(line.starts_with(UNNUMBERED_PREFIX));
    line.push(b'\n');
}

/// Persisted events past `memory_events` beyond which the writer trims the
/// ring itself. Below it, publishers trim as they append (see
/// [`Shared::push_locked`]), so in steady traffic events are freed on the
/// thread that made them.
const WRITER_TRIM_SLACK: usize = 1024;

/// The writer thread: writes the queued JSON lines to the sink in batches,
/// flushing after each so `persisted_seq` always means "readable from the
/// file".
fn write_loop(shared: &Shared, sink: Box<dyn Write + Send>) {
    let mut out = sink;
    // Swapped with the log's queue: the two buffers trade places, so once
    // warm neither side allocates.
    let mut batch: Vec<u8> = Vec::new();
    let mut evicted: Vec<Arc<Event>> = Vec::new();
    let mut idle_polls = 0u32;
    loop {
        let upto = {
            let mut st = shared.lock();
            if !st.unwritten.is_empty() {
                std::mem::swap(&mut st.unwritten, &mut batch);
                idle_polls = 0;
                st.writer_asleep = false;
                st.next_seq
            } else if st.closed {
                return;
            } else {
                st.writer_parked = true;
                idle_polls = idle_polls.saturating_add(1);
                st.writer_asleep = idle_polls > WRITER_IDLE_POLLS;
                let asleep = st.writer_asleep;
                drop(st);
                if asleep {
                    thread::park();
                } else {
                    thread::park_timeout(WRITER_POLL);
                }
                continue;
            }
        };
        let result = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        let mut st = shared.lock();
        match result {
            Ok(()) => {
                st.persisted_seq = upto;
                let keep = shared.memory_events;
                if st.ring.len() > keep + WRITER_TRIM_SLACK {
                    evicted.extend(std::iter::from_fn(|| st.evict_oldest(keep)));
                }
            }
            Err(e) => {
                // Keep the log usable in memory; flush() reports the failure.
                tracing::error!(error = %e, "writing the event log failed; events are kept in memory only from now on");
                st.write_error = Some(e.to_string());
                st.writing = false;
                let unwritten = std::mem::take(&mut st.unwritten);
                drop(st);
                shared.persisted.notify_all();
                drop(unwritten);
                return;
            }
        }
        drop(st);
        shared.persisted.notify_all();
        // Freed here, outside the lock.
        evicted.clear();
    }
}

fn index_offset(index: &[u64], seq: u64) -> u64 {
    index
        .get(((seq - 1) / INDEX_STRIDE) as usize)
        .copied()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{ConnectionInfo, EventKind, Payload};

    fn draft(id: u64) -> EventDraft {
        EventDraft::now(
            EventKind::ConnectionOpened,
            Payload::Connection(ConnectionInfo {
                id,
                source: "a".into(),
                target: "b".into(),
                ingress: "default".into(),
                client_addr: "127.0.0.1:1".into(),
                bytes_in: 0,
                bytes_out: 0,
                duration_ms: 0.0,
                error: None,
            }),
        )
    }

    fn conn_id(e: &Event) -> u64 {
        match &e.payload {
            Payload::Connection(c) => c.id,
            other => panic!("not a connection event: {other:?}"),
        }
    }

    #[test]
    fn seqs_are_gap_free_from_one() {
        let log = EventLog::in_memory("t");
        for i in 0..10 {
            assert_eq!(log.append(draft(i)), i + 1);
        }
        let all = log.since(1).unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert_eq!(log.since(8).unwrap().len(), 3);
        assert_eq!(&*all[0].environment, "t");
    }

    #[test]
    fn memory_is_bounded_and_evicted_events_come_back_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = EventLog::new(
            EventLogConfig::new("t")
                .memory_events(100)
                .sink(EventSink::File(path.clone())),
        )
        .unwrap();
        for i in 0..5_000 {
            log.append(draft(i));
        }
        log.flush().unwrap();
        // The writer evicts as it persists: once all is on disk, only the
        // newest 100 stay in memory.
        assert!(
            log.shared.lock().ring.len() <= 100,
            "ring holds {}",
            log.shared.lock().ring.len()
        );
        log.append(draft(5_000));

        let all = log.since(1).unwrap();
        assert_eq!(all.len(), 5_001);
        for (i, e) in all.iter().enumerate() {
            assert_eq!(e.seq, i as u64 + 1);
            assert_eq!(conn_id(e), i as u64);
        }
        // A read from the middle of the file uses the index.
        let tail = log.since(2_500).unwrap();
        assert_eq!(tail.first().unwrap().seq, 2_500);
        assert_eq!(tail.len(), 2_502);

        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().count(),
            5_001,
            "every event is in the file after close"
        );
    }

    #[test]
    fn without_a_file_evicted_history_is_reported_not_silently_skipped() {
        let log = EventLog::new(EventLogConfig::new("t").memory_events(10)).unwrap();
        for i in 0..50 {
            log.append(draft(i));
        }
        let mut sub = log.subscribe(1, EventFilter::all()).with_max_lag(u64::MAX);
        let first = sub.try_recv().unwrap();
        match &first.payload {
            Payload::Dropped(d) => {
                assert_eq!((d.first_seq, d.last_seq, d.count), (1, 40, 40));
            }
            other => panic!("expected a drop notice, got {other:?}"),
        }
        let rest: Vec<u64> = std::iter::from_fn(|| sub.try_recv())
            .map(|e| e.seq)
            .collect();
        assert_eq!(rest.first(), Some(&41));
        assert!(rest.contains(&50));
    }

    #[tokio::test]
    async fn subscribe_replays_then_follows() {
        let log = EventLog::in_memory("t");
        log.append(draft(0));
        log.append(draft(1));
        let mut sub = log.subscribe(2, EventFilter::all());
        assert_eq!(sub.recv().await.unwrap().seq, 2);
        let writer = log.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            writer.append(draft(2));
        });
        assert_eq!(sub.recv().await.unwrap().seq, 3);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn filter_applies_but_own_drop_notice_always_arrives() {
        let log = EventLog::in_memory("t");
        let mut sub = log
            .subscribe(1, EventFilter::types(["connection.closed"]))
            .labeled("slow one")
            .with_max_lag(5);
        for i in 0..20 {
            log.append(draft(i)); // connection.opened: filtered out
        }
        let notice = sub.recv().await.unwrap();
        assert_eq!(notice.kind, EventKind::EventsDropped);
        match &notice.payload {
            Payload::Dropped(d) => {
                assert_eq!(d.subscriber, "slow one");
                assert_eq!((d.count, d.first_seq, d.last_seq), (20, 1, 20));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(notice.seq, 21);
        assert!(sub.try_recv().is_none());
    }

    #[tokio::test]
    async fn wait_for_sees_past_and_future_events_and_times_out() {
        let log = EventLog::in_memory("t");
        log.append(draft(42));
        let found = log
            .wait_for(|e| conn_id(e) == 42, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(found.seq, 1);

        let writer = log.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            writer.append(draft(43));
        });
        let found = log
            .wait_for(|e| conn_id(e) == 43, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(found.seq, 2);

        let err = log
            .wait_for(|e| conn_id(e) == 99, Duration::from_millis(30))
            .await
            .unwrap_err();
        assert!(matches!(err, WaitError::Timeout(_)));
    }

    #[tokio::test]
    async fn subscription_ends_when_the_log_closes() {
        let log = EventLog::in_memory("t");
        log.append(draft(0));
        let mut sub = log.subscribe(1, EventFilter::all());
        drop(log);
        assert_eq!(sub.recv().await.unwrap().seq, 1);
        assert!(sub.recv().await.is_none());
    }

    #[tokio::test]
    async fn history_is_replayed_in_pages_and_until_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::new(
            EventLogConfig::new("t")
                .memory_events(100)
                .sink(EventSink::File(dir.path().join("events.jsonl"))),
        )
        .unwrap();
        for i in 0..5_000 {
            log.append(draft(i));
        }
        log.flush().unwrap();
        let mut sub = log.subscribe(1, EventFilter::all()).until(4_001);
        let mut seen = 0u64;
        let mut most_buffered = 0;
        while let Some(event) = sub.recv().await {
            seen += 1;
            assert_eq!(event.seq, seen);
            assert_eq!(conn_id(&event), seen - 1);
            most_buffered = most_buffered.max(sub.buffered());
        }
        assert_eq!(seen, 4_000, "until(4001) ends after seq 4000");
        assert!(
            most_buffered <= BATCH,
            "a replaying subscriber held {most_buffered} events"
        );
        // From the middle, resuming page after page where the last ended.
        let mut sub = log
            .subscribe(2_345, EventFilter::all())
            .until(2_345 + 1_500);
        let seqs: Vec<u64> = std::iter::from_fn(|| sub.try_recv())
            .map(|e| e.seq)
            .collect();
        assert_eq!(seqs, (2_345..3_845).collect::<Vec<_>>());
    }

    #[test]
    fn recent_in_memory_finds_the_newest_matches() {
        let log = EventLog::new(EventLogConfig::new("t").memory_events(2_000)).unwrap();
        for i in 0..3_000 {
            log.append(draft(i));
        }
        let (even, whole) = log.recent_in_memory(5, |e| conn_id(e) % 2 == 0);
        assert!(!whole, "the first 1,000 events left memory");
        assert_eq!(
            even.iter().map(|e| conn_id(e)).collect::<Vec<_>>(),
            [2_990, 2_992, 2_994, 2_996, 2_998]
        );
        // Fewer matches than asked for: all of them, oldest first.
        let (few, _) = log.recent_in_memory(10, |e| conn_id(e) < 1_003);
        assert_eq!(
            few.iter().map(|e| conn_id(e)).collect::<Vec<_>>(),
            [1_000, 1_001, 1_002]
        );
    }
}
