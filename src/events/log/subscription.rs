//! Subscribers: cursors into the log that replay history in bounded pages
//! and then follow live events.
//!
//! History no longer in memory is read back from the events file one page
//! at a time, as the subscriber asks for it: a reader that stops reading
//! holds one page at most, and one that goes away stops the reading. At
//! most [`DISK_READERS`] pages of one log are read at once, so replaying
//! readers take turns on the disk and the CPU instead of crowding out live
//! readers and the daemon's other requests.

use std::collections::VecDeque;
use std::fs::File;
use std::future::poll_fn;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use std::task::Poll;

use super::{index_offset, Shared, State, Wake, BATCH};
use crate::events::{DroppedInfo, Event, EventDraft, EventFilter, EventKind, Payload};

/// Most events one page read back from the file holds…
const PAGE_EVENTS: usize = BATCH;
/// …and most bytes of JSON it may span (a page ends after the line that
/// crosses this): what a replaying subscriber holds in memory at most.
const PAGE_BYTES: u64 = 256 << 10;
/// Pages of one log read at the same time; others wait their turn.
pub(super) const DISK_READERS: usize = 2;

/// Events read back from the file, and where the line after them starts.
pub(super) struct Page {
    pub(super) events: Vec<Arc<Event>>,
    pub(super) next_offset: u64,
}

/// Reads the events `from ..< to` that start at or after byte `offset`
/// (an index entry at or before `from`, or where the previous page ended),
/// up to `max_events` and about `max_bytes` of lines.
pub(super) fn read_page(
    path: Option<&Path>,
    offset: u64,
    from: u64,
    to: u64,
    max_events: usize,
    max_bytes: u64,
) -> io::Result<Page> {
    let Some(path) = path else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("events {from}..{to} are no longer in memory and the log has no file to read them from"),
        ));
    };
    let mut reader = BufReader::with_capacity(64 << 10, File::open(path)?);
    reader.seek(SeekFrom::Start(offset))?;
    let mut events = Vec::new();
    let mut line = String::new();
    let mut next_offset = offset;
    let mut taken_bytes = 0;
    while events.len() < max_events && taken_bytes < max_bytes {
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        let event: Event = serde_json::from_str(&line).map_err(io::Error::other)?;
        line.clear();
        if event.seq >= to {
            break;
        }
        next_offset += n as u64;
        if event.seq >= from {
            taken_bytes += n as u64;
            events.push(Arc::new(event));
        }
    }
    Ok(Page {
        events,
        next_offset,
    })
}

/// Appends the `events.dropped` notice saying subscriber `id` missed
/// `from ..< to`; returns the notice's seq.
fn record_drop(
    shared: &Shared,
    st: &mut State,
    id: u64,
    label: &str,
    from: u64,
    to: u64,
) -> (u64, Wake) {
    let notice = EventDraft::now(
        EventKind::EventsDropped,
        Payload::Dropped(DroppedInfo {
            subscriber: label.to_string(),
            subscriber_id: id,
            count: to - from,
            first_seq: from,
            last_seq: to - 1,
        }),
    );
    let notice = shared.unnumbered(notice);
    // Rare, and already under the lock: a line of its own.
    let mut line = Vec::new();
    if shared.has_sink {
        super::serialize_unnumbered(&notice, &mut line);
    }
    shared.push_locked(st, notice, &line, false)
}

/// A cursor that follows an [`EventLog`](super::EventLog): replays from its
/// starting seq, then waits for new events. Dropping it unsubscribes.
pub struct Subscription {
    shared: Arc<Shared>,
    id: u64,
    label: String,
    filter: EventFilter,
    /// The next seq to deliver.
    cursor: u64,
    /// Events from this seq on arrived after subscribing; only they count
    /// towards the lag.
    live_from: u64,
    max_lag: u64,
    /// Ends before this seq, if set.
    end: Option<u64>,
    /// Takes its turn at the disk with the other readers (see `DISK_READERS`).
    throttled: bool,
    batch: VecDeque<Arc<Event>>,
    /// Where in the file the event at this seq starts (the end of the
    /// last page read), so the next page starts there.
    resume: Option<(u64, u64)>,
    /// A drop notice to deliver ahead of its place in the log (see
    /// `skip_history`)…
    early: Option<Arc<Event>>,
    /// …and its seq once delivered, to skip when the cursor reaches it.
    delivered_early: Option<u64>,
}

enum Refill {
    Ready,
    Disk { from: u64, to: u64, offset: u64 },
    Wait,
    Closed,
}

impl Subscription {
    pub(super) fn new(shared: Arc<Shared>, id: u64, from_seq: u64, filter: EventFilter) -> Self {
        let (live_from, max_lag) = (shared.lock().next_seq, shared.memory_events as u64);
        Self {
            shared,
            id,
            label: format!("subscriber-{id}"),
            filter,
            cursor: from_seq.max(1),
            live_from,
            max_lag,
            end: None,
            throttled: true,
            batch: VecDeque::new(),
            resume: None,
            early: None,
            delivered_early: None,
        }
    }

    /// Names the subscriber in its `events.dropped` events.
    pub fn labeled(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// How many live events may wait unread before this subscriber skips to
    /// the present (default: the log's `memory_events`).
    pub fn with_max_lag(mut self, max_lag: u64) -> Self {
        self.max_lag = max_lag.max(1);
        self
    }

    /// Ends the subscription once it has delivered the events before
    /// `end_seq` (`last_seq() + 1`: what is logged now, and no more).
    pub fn until(mut self, end_seq: u64) -> Self {
        self.end = Some(end_seq);
        self
    }

    /// Reads history from disk without waiting for a turn: for tapmesh's
    /// own followers (the summary, the daemon's status), which must not
    /// fall behind because clients are replaying.
    pub(crate) fn unthrottled(mut self) -> Self {
        self.throttled = false;
        self
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Events read ahead and not delivered yet (at most a page).
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.batch.len()
    }

    /// The next event the filter keeps, waiting for it if need be. `None`
    /// once the log has closed (or the subscription's end is reached) and
    /// everything before that was delivered.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(event) = self.next_buffered() {
                return Some(event);
            }
            match self.refill() {
                // A query that keeps few events may pass over many here:
                // let other tasks run between batches.
                Refill::Ready => tokio::task::consume_budget().await,
                Refill::Closed => return None,
                Refill::Wait => self.wait().await,
                Refill::Disk { from, to, offset } => {
                    let turn = match self.throttled {
                        true => Some(self.shared.disk_readers.acquire().await),
                        false => None,
                    };
                    let path = self.shared.readable.clone();
                    let read = tokio::task::spawn_blocking(move || {
                        read_page(path.as_deref(), offset, from, to, PAGE_EVENTS, PAGE_BYTES)
                    })
                    .await
                    .unwrap_or_else(|e| Err(io::Error::other(e)));
                    drop(turn);
                    self.take_from_disk(from, to, read);
                }
            }
        }
    }

    /// The next event that is available now, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        self.ready_now(true)
    }

    /// The next event that is available without waiting or reading the
    /// file: for batching on an async task what is ready now.
    pub fn try_recv_in_memory(&mut self) -> Option<Arc<Event>> {
        self.ready_now(false)
    }

    fn ready_now(&mut self, read_disk: bool) -> Option<Arc<Event>> {
        loop {
            if let Some(event) = self.next_buffered() {
                return Some(event);
            }
            match self.refill() {
                Refill::Ready => {}
                Refill::Disk { from, to, offset } if read_disk => {
                    let path = self.shared.readable.as_deref();
                    let read = read_page(path, offset, from, to, PAGE_EVENTS, PAGE_BYTES);
                    self.take_from_disk(from, to, read);
                }
                Refill::Closed | Refill::Wait | Refill::Disk { .. } => return None,
            }
        }
    }

    fn next_buffered(&mut self) -> Option<Arc<Event>> {
        if let Some(notice) = self.early.take() {
            self.delivered_early = Some(notice.seq);
            return Some(notice);
        }
        while let Some(event) = self.batch.pop_front() {
            if self.delivered_early == Some(event.seq) {
                self.delivered_early = None;
                continue;
            }
            if self.filter.matches(&event) || self.is_own_drop_notice(&event) {
                return Some(event);
            }
        }
        None
    }

    /// A subscriber always sees the notice of its own drop, whatever its filter.
    fn is_own_drop_notice(&self, event: &Event) -> bool {
        matches!(&event.payload, Payload::Dropped(d) if d.subscriber_id == self.id)
    }

    fn refill(&mut self) -> Refill {
        let end = self.end.unwrap_or(u64::MAX);
        if self.cursor >= end {
            return Refill::Closed;
        }
        let mut st = self.shared.lock();
        let head = st.next_seq;
        let unread_live = head.saturating_sub(self.cursor.max(self.live_from));
        if unread_live > self.max_lag && self.end.is_none() {
            let (notice_seq, wake) = record_drop(
                &self.shared,
                &mut st,
                self.id,
                &self.label,
                self.cursor,
                head,
            );
            self.cursor = notice_seq;
            drop(st);
            self.shared.wake(wake);
            return Refill::Ready;
        }
        if self.cursor < st.first_seq {
            let offset = match self.resume {
                Some((seq, offset)) if seq == self.cursor => offset,
                _ => index_offset(&st.index, self.cursor),
            };
            return Refill::Disk {
                from: self.cursor,
                to: st.first_seq.min(end),
                offset,
            };
        }
        if self.cursor < head.min(end) {
            let start = (self.cursor - st.first_seq) as usize;
            let room = (end - self.cursor).min(BATCH as u64) as usize;
            self.batch
                .extend(st.ring.range(start..).take(room).cloned());
            self.cursor += self.batch.len() as u64;
            return Refill::Ready;
        }
        if st.closed {
            Refill::Closed
        } else {
            Refill::Wait
        }
    }

    fn take_from_disk(&mut self, from: u64, to: u64, read: io::Result<Page>) {
        let why = match read {
            Ok(page) => {
                let contiguous = page.events.first().is_some_and(|e| e.seq == from)
                    && page
                        .events
                        .windows(2)
                        .all(|pair| pair[1].seq == pair[0].seq + 1);
                if contiguous {
                    self.cursor = from + page.events.len() as u64;
                    self.resume = Some((self.cursor, page.next_offset));
                    self.batch.extend(page.events);
                    return;
                }
                format!(
                    "the file has no unbroken run of events from {from} (found {})",
                    page.events.len()
                )
            }
            Err(e) => e.to_string(),
        };
        tracing::warn!(subscriber = %self.label, from, to, "cannot replay evicted events: {why}");
        let shared = self.shared.clone();
        let wake = self.skip_history(&mut shared.lock(), from, to);
        self.shared.wake(wake);
    }

    /// Records that history `from ..< to` cannot be read any more. The notice
    /// is appended at the head of the log but delivered right away; the
    /// cursor then resumes at `to` and skips the notice when it gets there.
    fn skip_history(&mut self, st: &mut State, from: u64, to: u64) -> Wake {
        let (notice_seq, wake) = record_drop(&self.shared, st, self.id, &self.label, from, to);
        self.early = st.ring.back().filter(|e| e.seq == notice_seq).cloned();
        self.cursor = to;
        wake
    }

    /// Parks until the log has an event past the cursor, or closes.
    async fn wait(&self) {
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if st.next_seq > self.cursor || st.closed {
                Poll::Ready(())
            } else {
                st.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}
