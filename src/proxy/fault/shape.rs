//! Connection faults on one direction of one connection: when the next
//! bytes may go, how many, or whether they go at all.
//!
//! The relay asks [`Shaper::next`] before each write and reports what it
//! wrote; the shaper never touches sockets or sleeps itself, so the relay
//! keeps one state machine and one timer per direction. Toxiproxy's
//! semantics where it has them: latency per chunk, bandwidth as a rate in
//! KB/s, slicer pieces with a delay between them, `limit_data` closing once
//! the bytes have passed, `timeout` swallowing data and closing later,
//! `reset_peer` resetting later, `slow_close` holding the FIN.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Dice, FaultSet, Rule};
use crate::spec::{FaultAction, Stream};

/// What the faults allow the relay to do next with pending bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write at most this many bytes now.
    Write(usize),
    /// Nothing before this instant.
    Wait(Instant),
    /// The bytes are swallowed (`timeout`): counted as read, never written.
    Discard,
    /// The connection ends here (`limit_data` reached).
    Close,
}

/// When a connection fault ends the connection on its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    pub at: Instant,
    /// RST (`reset_peer`) rather than FIN (`timeout`).
    pub reset: bool,
}

/// One direction's connection faults, as they apply to one connection.
pub(crate) struct Shaper {
    latency: Option<(Duration, u64)>,
    /// Bytes per second.
    rate: Option<u64>,
    /// Average and variation of a piece, and the pause after one.
    slicer: Option<(u64, u64, Duration)>,
    limit: Option<u64>,
    swallow: bool,
    pub slow_close: Option<Duration>,
    pub deadline: Option<Deadline>,
    dice: Dice,
    /// The current chunk may not go before this (latency).
    chunk_due: Option<Instant>,
    /// Pacing (bandwidth, slicer): nothing before this.
    next_free: Option<Instant>,
    passed: u64,
}

impl Shaper {
    /// The faults of `set` acting on `stream`, for a connection whose
    /// toxicity draws are remembered in `drawn` (rule id, applies). Rules
    /// that apply for the first time are appended to `applied`.
    pub fn build(
        set: &FaultSet,
        stream: Stream,
        drawn: &mut Vec<(u64, bool)>,
        dice: &mut Dice,
        applied: &mut Vec<Arc<Rule>>,
    ) -> Option<Self> {
        let now = Instant::now();
        let mut shaper = Self {
            latency: None,
            rate: None,
            slicer: None,
            limit: None,
            swallow: false,
            slow_close: None,
            deadline: None,
            dice: Dice::new(dice.next()),
            chunk_due: None,
            next_free: None,
            passed: 0,
        };
        let mut any = false;
        for rule in set.connection_rules(stream) {
            let applies = match drawn.iter().find(|(id, _)| *id == rule.id) {
                Some(&(_, applies)) => applies,
                None => {
                    let applies = dice.chance(rule.spec.toxicity);
                    drawn.push((rule.id, applies));
                    if applies {
                        applied.push(rule.clone());
                    }
                    applies
                }
            };
            if !applies {
                continue;
            }
            any = true;
            match rule.spec.action {
                FaultAction::Latency { latency, jitter } => {
                    shaper.latency = Some((latency, jitter.as_micros() as u64))
                }
                FaultAction::Bandwidth { rate } => shaper.rate = Some(rate.saturating_mul(1000)),
                FaultAction::Slicer {
                    average_size,
                    size_variation,
                    delay,
                } => shaper.slicer = Some((average_size, size_variation, delay)),
                FaultAction::LimitData { bytes } => shaper.limit = Some(bytes),
                FaultAction::SlowClose { delay } => shaper.slow_close = Some(delay),
                FaultAction::Timeout { timeout } => {
                    shaper.swallow = true;
                    if !timeout.is_zero() {
                        shaper.deadline = Some(Deadline {
                            at: now + timeout,
                            reset: false,
                        });
                    }
                }
                FaultAction::ResetPeer { timeout } => {
                    shaper.deadline = Some(Deadline {
                        at: now + timeout,
                        reset: true,
                    })
                }
                _ => {}
            }
        }
        any.then_some(shaper)
    }

    /// What may happen to `pending` bytes of a chunk read at `read_at`.
    pub fn next(&mut self, pending: usize, read_at: Instant, now: Instant) -> Step {
        if self.swallow {
            return Step::Discard;
        }
        let mut allowed = pending;
        if let Some(limit) = self.limit {
            let left = limit.saturating_sub(self.passed);
            if left == 0 {
                return Step::Close;
            }
            allowed = allowed.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        if let Some((latency, jitter_us)) = self.latency {
            let due = *self.chunk_due.get_or_insert_with(|| {
                let jitter = self.dice.spread(jitter_us);
                let base = read_at + latency;
                if jitter >= 0 {
                    base + Duration::from_micros(jitter as u64)
                } else {
                    base.checked_sub(Duration::from_micros(jitter.unsigned_abs()))
                        .unwrap_or(read_at)
                        .max(read_at)
                }
            });
            if now < due {
                return Step::Wait(due);
            }
        }
        if let Some(free) = self.next_free.filter(|free| now < *free) {
            return Step::Wait(free);
        }
        if let Some(rate) = self.rate {
            // A tenth of a second's worth at a time, so pacing stays smooth
            // whatever the chunk size.
            allowed = allowed.min((rate / 10).max(1) as usize);
        }
        if let Some((average, variation, _)) = self.slicer {
            let size = (average as i64 + self.dice.spread(variation)).max(1) as usize;
            allowed = allowed.min(size);
        }
        Step::Write(allowed.max(1).min(pending))
    }

    /// `n` bytes were written at `now`.
    pub fn wrote(&mut self, n: usize, now: Instant) {
        self.passed += n as u64;
        let mut free = self.next_free.unwrap_or(now).max(now);
        let mut paced = false;
        if let Some(rate) = self.rate.filter(|r| *r > 0) {
            free += Duration::from_nanos((n as u128 * 1_000_000_000 / rate as u128) as u64);
            paced = true;
        }
        if let Some((_, _, delay)) = self.slicer {
            free += delay;
            paced = true;
        }
        if paced {
            self.next_free = Some(free);
        }
    }

    /// The chunk is through: the next one gets its own latency.
    pub fn chunk_done(&mut self) {
        self.chunk_due = None;
    }

    /// Whether waits are for latency, during which the relay reads ahead.
    pub fn reads_ahead(&self) -> bool {
        self.latency.is_some()
    }

    /// `limit_data` has let through all it will.
    pub fn limit_reached(&self) -> bool {
        self.limit.is_some_and(|limit| self.passed >= limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::read_fault;

    fn shaper(faults: &[serde_json::Value]) -> Shaper {
        let edge = super::super::EdgeFaults::default();
        for f in faults {
            edge.add(read_fault(f).unwrap()).unwrap();
        }
        let (mut drawn, mut applied) = (Vec::new(), Vec::new());
        let shaper = Shaper::build(
            &edge.current(),
            Stream::Downstream,
            &mut drawn,
            &mut Dice::new(7),
            &mut applied,
        )
        .expect("a fault applies");
        assert_eq!(applied.len(), faults.len());
        shaper
    }

    #[test]
    fn latency_holds_each_chunk_from_when_it_was_read() {
        let mut s =
            shaper(&[serde_json::json!({"type": "latency", "attributes": {"latency": 100}})]);
        let read = Instant::now();
        assert_eq!(
            s.next(10, read, read),
            Step::Wait(read + Duration::from_millis(100))
        );
        let later = read + Duration::from_millis(100);
        assert_eq!(s.next(10, read, later), Step::Write(10));
        s.wrote(10, later);
        s.chunk_done();
        let next = later + Duration::from_millis(1);
        assert_eq!(
            s.next(5, next, next),
            Step::Wait(next + Duration::from_millis(100))
        );
    }

    #[test]
    fn bandwidth_paces_a_tenth_of_a_second_at_a_time() {
        // 10 KB/s: 1,000 bytes per write, then 100 ms before the next.
        let mut s = shaper(&[serde_json::json!({"type": "bandwidth", "attributes": {"rate": 10}})]);
        let t = Instant::now();
        assert_eq!(s.next(5000, t, t), Step::Write(1000));
        s.wrote(1000, t);
        assert_eq!(
            s.next(4000, t, t),
            Step::Wait(t + Duration::from_millis(100))
        );
        let t2 = t + Duration::from_millis(100);
        assert_eq!(s.next(4000, t, t2), Step::Write(1000));
    }

    #[test]
    fn limit_data_lets_exactly_its_bytes_through_then_closes() {
        let mut s =
            shaper(&[serde_json::json!({"type": "limit_data", "attributes": {"bytes": 7}})]);
        let t = Instant::now();
        assert_eq!(s.next(5, t, t), Step::Write(5));
        s.wrote(5, t);
        assert_eq!(s.next(5, t, t), Step::Write(2));
        s.wrote(2, t);
        assert!(s.limit_reached());
        assert_eq!(s.next(3, t, t), Step::Close);
    }

    #[test]
    fn slicer_cuts_pieces_around_the_average_and_pauses_between() {
        let mut s = shaper(&[serde_json::json!({"type": "slicer",
            "attributes": {"average_size": 10, "size_variation": 3, "delay": 500}})]);
        let mut t = Instant::now();
        let mut left = 1000;
        while left > 0 {
            let Step::Write(n) = s.next(left, t, t) else {
                panic!("expected a write")
            };
            assert!((7..=13).contains(&n) || n == left, "{n}");
            s.wrote(n, t);
            assert_eq!(
                s.next(left - n, t, t),
                Step::Wait(t + Duration::from_micros(500))
            );
            t += Duration::from_micros(500);
            left -= n;
        }
    }

    #[test]
    fn timeout_swallows_and_closes_later_reset_peer_resets() {
        let mut s =
            shaper(&[serde_json::json!({"type": "timeout", "attributes": {"timeout": 50}})]);
        let t = Instant::now();
        assert_eq!(s.next(5, t, t), Step::Discard);
        assert!(matches!(s.deadline, Some(Deadline { reset: false, .. })));
        let s = shaper(&[serde_json::json!({"type": "reset_peer", "attributes": {"timeout": 0}})]);
        assert!(matches!(s.deadline, Some(Deadline { reset: true, .. })));
    }

    #[test]
    fn toxicity_is_drawn_once_per_connection() {
        let edge = super::super::EdgeFaults::default();
        edge.add(
            read_fault(&serde_json::json!({"type": "latency", "toxicity": 0.5,
                "attributes": {"latency": 1}}))
            .unwrap(),
        )
        .unwrap();
        let mut dice = Dice::new(1);
        let mut applied_to = 0;
        for _ in 0..400 {
            let (mut drawn, mut applied) = (Vec::new(), Vec::new());
            let first = Shaper::build(
                &edge.current(),
                Stream::Downstream,
                &mut drawn,
                &mut dice,
                &mut applied,
            )
            .is_some();
            // Built again for the same connection (a fault added elsewhere):
            // the same answer, and not reported twice.
            let again = Shaper::build(
                &edge.current(),
                Stream::Downstream,
                &mut drawn,
                &mut dice,
                &mut applied,
            )
            .is_some();
            assert_eq!(first, again);
            assert_eq!(applied.len(), usize::from(first));
            applied_to += usize::from(first);
        }
        assert!((120..=280).contains(&applied_to), "{applied_to} of 400");
    }
}
