//! The producer side of flow control: what a connection (or a route link) does with each
//! message it reads while the consumers it feeds may be asking it to wait.
//!
//! A message read is routed at once unless the producer is paused or something before it
//! still waits (order is kept [MQTT-4.6.0-6]); then it is set aside, and reading stops once
//! `max` are set aside (TCP then pushes back on the sender). A routing that meets a full
//! consumer that still reads hands back what it could not deliver (the remainder), which
//! goes first when the producer resumes.

use std::collections::VecDeque;

use tokio::sync::watch;

use super::Pacer;

/// What a paced producer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step<T> {
    /// Route this item (set aside earlier) now.
    Route(T),
    /// Wait for relief (see [`Pacing::relief`]); nothing may be routed meanwhile.
    Wait,
    /// Nothing is set aside and nothing holds the producer back.
    Idle,
}

/// One producer's pacing state: the consumer it waits for, and the items set aside.
#[derive(Debug)]
pub struct Pacing<T> {
    deferred: VecDeque<T>,
    pacer: Option<Pacer>,
    max: usize,
}

impl<T> Pacing<T> {
    /// A producer that sets at most `max` items aside before it stops reading.
    pub fn new(max: usize) -> Self {
        Pacing {
            deferred: VecDeque::new(),
            pacer: None,
            max,
        }
    }

    /// An item was read: returned to be routed now, or set aside (`None`).
    pub fn arrive(&mut self, item: T) -> Option<T> {
        if self.pacer.is_none() && self.deferred.is_empty() {
            Some(item)
        } else {
            self.deferred.push_back(item);
            None
        }
    }

    /// Routing asked the producer to wait for `pacer`. `remainder` is what could not be
    /// delivered (it goes before everything set aside); `rest` are items read with it that
    /// were not routed yet (they follow the remainder, before older items: they came first).
    pub fn pause(
        &mut self,
        pacer: Pacer,
        remainder: Option<T>,
        rest: impl DoubleEndedIterator<Item = T>,
    ) {
        for item in rest.rev() {
            self.deferred.push_front(item);
        }
        if let Some(r) = remainder {
            self.deferred.push_front(r);
        }
        self.pacer = Some(pacer);
    }

    /// The next step. Checks the pressure afresh: a consumer that was relieved, or that
    /// stopped reading (see [`super::Watermarks::live`]), no longer holds the producer.
    pub fn step(&mut self) -> Step<T> {
        if let Some(p) = &self.pacer {
            if p.pressured() {
                return Step::Wait;
            }
            self.pacer = None;
        }
        match self.deferred.pop_front() {
            Some(item) => Step::Route(item),
            None => Step::Idle,
        }
    }

    /// What to wait on while paused: `None` if the pressure is already gone (subscribed
    /// before checking, so a relief in between is not missed).
    pub fn relief(&self) -> Option<watch::Receiver<u64>> {
        super::relief_of(self.pacer.as_deref()?)
    }

    /// Whether more may be read: fewer than `max` items are set aside.
    pub fn may_read(&self) -> bool {
        self.deferred.len() < self.max
    }

    /// Takes everything set aside, in order (the producer is ending).
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.pacer = None;
        self.deferred.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::super::Backpressure;
    use super::*;

    #[derive(Debug)]
    struct Gate {
        on: AtomicBool,
        tx: watch::Sender<u64>,
    }

    impl Backpressure for Gate {
        fn pressured(&self) -> bool {
            self.on.load(Ordering::Acquire)
        }
        fn relief(&self) -> watch::Receiver<u64> {
            self.tx.subscribe()
        }
    }

    fn gate() -> Arc<Gate> {
        Arc::new(Gate {
            on: AtomicBool::new(true),
            tx: watch::Sender::new(0),
        })
    }

    #[test]
    fn items_route_at_once_until_a_consumer_asks_to_wait() {
        let mut p = Pacing::new(4);
        assert_eq!(p.arrive(1), Some(1));
        let g = gate();
        p.pause(g.clone(), None, [2, 3].into_iter());
        assert_eq!(p.arrive(4), None, "paused: set aside");
        assert_eq!(p.step(), Step::Wait);
        assert!(p.relief().is_some());
        assert!(p.may_read());
        assert_eq!(p.arrive(5), None);
        assert!(!p.may_read(), "four set aside: stop reading");
        g.on.store(false, Ordering::Release);
        assert!(p.relief().is_none());
        let order: Vec<_> = std::iter::from_fn(|| match p.step() {
            Step::Route(x) => Some(x),
            _ => None,
        })
        .collect();
        assert_eq!(order, [2, 3, 4, 5], "read order kept");
        assert_eq!(p.step(), Step::Idle);
        assert_eq!(p.arrive(6), Some(6));
    }

    #[test]
    fn a_remainder_goes_before_everything_set_aside() {
        let mut p = Pacing::new(8);
        let g = gate();
        p.pause(g.clone(), None, std::iter::empty());
        assert_eq!(p.arrive(10), None);
        g.on.store(false, Ordering::Release);
        assert_eq!(p.step(), Step::Route(10));
        // Routing 10 met a full reader: its undelivered part comes back first, then the
        // rest of its batch, then what was read after.
        g.on.store(true, Ordering::Release);
        p.pause(g.clone(), Some(100), [11, 12].into_iter());
        assert_eq!(p.arrive(13), None);
        g.on.store(false, Ordering::Release);
        let order: Vec<_> = std::iter::from_fn(|| match p.step() {
            Step::Route(x) => Some(x),
            _ => None,
        })
        .collect();
        assert_eq!(order, [100, 11, 12, 13]);
    }
}
