//! The consumer side of flow control: when one queue asks its producers to pause, when it
//! blocks a delivery instead of losing it, when it counts as stalled, and when it relieves
//! its producers again. Pure: every method takes the queue's numbers and `now`.

use std::time::{Duration, Instant};

/// What a queue says to a delivery offered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// There is room: queue it.
    Accept,
    /// Full, and its consumer is still reading: the producer keeps the message and offers it
    /// again once the queue is relieved (never lost for a reader).
    Block,
    /// Full, and its consumer has stalled or is offline (or the producer cannot wait): the
    /// queue-full policy applies.
    Overflow,
    /// Full for longer than `session.slow_consumer_timeout`: the consumer is disconnected,
    /// and the queue-full policy applies to this delivery.
    SlowConsumer,
}

/// The flow-control state of one consumer queue.
#[derive(Debug, Clone, Default)]
pub struct Watermarks {
    /// Producers were told this queue is filling; cleared at the low watermark.
    pressured: bool,
    /// When the queue last crossed the high watermark: a consumer gets one stall window from
    /// then to show it drains (the start of a burst on an idle consumer).
    high_since: Option<Instant>,
    /// When the consumer last took messages from the queue.
    last_drain: Option<Instant>,
    /// When the queue became full (while its consumer is connected).
    full_since: Option<Instant>,
}

/// Queue length at which producers are asked to pause: half the bound, and never so deep
/// that pacing starts only after seconds of queueing.
#[inline]
pub fn high_water(cap: usize) -> usize {
    (cap / 2).clamp(1, 4096)
}

impl Watermarks {
    /// Whether the consumer is reading: connected, and it took messages within `stall` (or
    /// its queue crossed the high watermark less than `stall` ago, so it has had no chance).
    #[inline]
    pub fn live(&self, online: bool, now: Instant, stall: Duration) -> bool {
        let recent =
            |t: Option<Instant>| t.is_some_and(|t| now.saturating_duration_since(t) < stall);
        online && (recent(self.last_drain) || recent(self.high_since))
    }

    /// Whether producers should wait: the queue is past its high watermark (and not yet
    /// back to the low one) and its consumer is reading. A consumer that stops reading stops
    /// pacing its producers once `stall` has passed.
    #[inline]
    pub fn pressured(&self, online: bool, now: Instant, stall: Duration) -> bool {
        self.pressured && self.live(online, now, stall)
    }

    /// Decides a delivery offered to a queue that is `full` (by count or bytes), or `busy`
    /// (it has room, but another producer has the consumer first: the retained messages of
    /// a new subscription, which must not be overtaken by newer copies of their topics).
    /// `may_block`: the producer can keep the message and retry (a publisher, a route); a
    /// will or a broker notice cannot.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn admit(
        &mut self,
        full: bool,
        busy: bool,
        online: bool,
        may_block: bool,
        now: Instant,
        stall: Duration,
        slow: Option<Duration>,
    ) -> Admission {
        if !full && !busy {
            return Admission::Accept;
        }
        let live = self.live(online, now, stall);
        if !full {
            return if live && may_block {
                self.pressured = true;
                Admission::Block
            } else {
                Admission::Accept
            };
        }
        if live {
            self.pressured = true;
        }
        if online {
            let since = *self.full_since.get_or_insert(now);
            if slow.is_some_and(|t| now.duration_since(since) >= t) {
                return Admission::SlowConsumer;
            }
        }
        if live && may_block {
            Admission::Block
        } else {
            Admission::Overflow
        }
    }

    /// Records that the queue holds `len` messages after a push.
    #[inline]
    pub fn pushed(&mut self, len: usize, cap: usize, online: bool, now: Instant, stall: Duration) {
        if len >= high_water(cap) {
            self.high_since.get_or_insert(now);
            if !self.pressured && self.live(online, now, stall) {
                self.pressured = true;
            }
        }
    }

    /// Records that the consumer took `sent` messages, leaving `queued` in the queue and
    /// `waiting` more with a producer that has the consumer first (a retained backlog);
    /// true when this relieves the producers (all of it fell to the low watermark, a quarter
    /// of the bound).
    #[inline]
    pub fn drained(
        &mut self,
        sent: u64,
        queued: usize,
        waiting: usize,
        cap: usize,
        now: Instant,
    ) -> bool {
        if sent > 0 {
            self.last_drain = Some(now);
        }
        let high = high_water(cap);
        let len = queued + waiting;
        if len < high {
            self.high_since = None;
        }
        if queued < cap {
            self.full_since = None;
        }
        if self.pressured && len <= high / 2 {
            self.pressured = false;
            return true;
        }
        false
    }

    /// The consumer connected or went away: a full queue starts counting afresh.
    pub fn reset_full(&mut self) {
        self.full_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALL: Duration = Duration::from_secs(1);

    #[test]
    fn a_reading_consumer_blocks_instead_of_overflowing() {
        let mut w = Watermarks::default();
        let t0 = Instant::now();
        w.drained(1, 0, 0, 100, t0);
        assert_eq!(
            w.admit(true, false, true, true, t0, STALL, None),
            Admission::Block
        );
        assert!(w.pressured(true, t0, STALL));
        // A producer that cannot wait (a will) overflows.
        assert_eq!(
            w.admit(true, false, true, false, t0, STALL, None),
            Admission::Overflow
        );
    }

    #[test]
    fn a_backlog_blocks_producers_only_while_its_consumer_reads() {
        let mut w = Watermarks::default();
        let t0 = Instant::now();
        w.drained(1, 0, 0, 100, t0);
        assert_eq!(
            w.admit(false, true, true, true, t0, STALL, None),
            Admission::Block
        );
        assert_eq!(
            w.admit(false, true, true, true, t0 + STALL * 2, STALL, None),
            Admission::Accept,
            "a stalled consumer's room is used"
        );
        assert!(!w.drained(1, 0, 30, 100, t0), "the backlog still waits");
        assert!(w.drained(1, 0, 0, 100, t0));
    }

    #[test]
    fn a_stalled_consumer_overflows_and_stops_pacing() {
        let mut w = Watermarks::default();
        let t0 = Instant::now();
        w.drained(1, 0, 0, 100, t0);
        let later = t0 + STALL * 2;
        assert_eq!(
            w.admit(true, false, true, true, later, STALL, None),
            Admission::Overflow
        );
        assert!(!w.pressured(true, later, STALL));
        assert!(!w.pressured(false, t0, STALL), "offline never paces");
    }

    #[test]
    fn a_burst_on_an_idle_consumer_gets_one_stall_window() {
        let mut w = Watermarks::default();
        let t0 = Instant::now();
        w.pushed(50, 100, true, t0, STALL);
        assert!(w.live(true, t0, STALL));
        assert!(w.pressured(true, t0, STALL));
        assert!(!w.live(true, t0 + STALL, STALL));
    }

    #[test]
    fn relief_comes_at_the_low_watermark() {
        let mut w = Watermarks::default();
        let t0 = Instant::now();
        w.drained(1, 0, 0, 100, t0);
        w.pushed(50, 100, true, t0, STALL);
        assert!(w.pressured(true, t0, STALL));
        assert!(
            !w.drained(10, 26, 0, 100, t0),
            "above a quarter of the bound"
        );
        assert!(w.drained(1, 25, 0, 100, t0));
        assert!(!w.pressured(true, t0, STALL));
    }

    #[test]
    fn a_queue_full_past_the_slow_consumer_timeout_says_so() {
        let mut w = Watermarks::default();
        let t0 = Instant::now();
        let slow = Some(Duration::from_secs(30));
        assert_eq!(
            w.admit(true, false, true, true, t0, STALL, slow),
            Admission::Overflow
        );
        assert_eq!(
            w.admit(
                true,
                false,
                true,
                true,
                t0 + Duration::from_secs(31),
                STALL,
                slow
            ),
            Admission::SlowConsumer
        );
        // Draining below the bound starts the count again.
        w.drained(1, 99, 0, 100, t0 + Duration::from_secs(31));
        assert_eq!(
            w.admit(
                true,
                false,
                true,
                true,
                t0 + Duration::from_millis(31_500),
                STALL,
                slow
            ),
            Admission::Block
        );
    }
}
