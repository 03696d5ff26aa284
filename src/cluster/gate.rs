//! Flow control for one route link: publishers pause while the peer's frame queue fills.

use std::sync::atomic::Ordering;

/// Flow control for one route: set when the peer's frame queue is half full, cleared (and
/// paced publishers woken) when the link task has drained it to a quarter.
#[derive(Debug)]
pub struct RouteGate {
    pressured: std::sync::atomic::AtomicBool,
    relief: tokio::sync::watch::Sender<u64>,
    cap: usize,
}

impl RouteGate {
    pub(super) fn new(cap: usize) -> Self {
        RouteGate {
            pressured: std::sync::atomic::AtomicBool::new(false),
            relief: tokio::sync::watch::Sender::new(0),
            cap,
        }
    }

    /// Whether publishers feeding this route should pause.
    pub fn pressured(&self) -> bool {
        self.pressured.load(Ordering::Acquire)
    }

    /// A receiver that resolves when the route is relieved.
    pub fn relief(&self) -> tokio::sync::watch::Receiver<u64> {
        self.relief.subscribe()
    }

    /// Called by the link task after draining: relieves publishers at a quarter full (or
    /// when the link ends, with `queued` 0).
    pub fn drained(&self, queued: usize) {
        if queued <= self.cap / 4 && self.pressured.swap(false, Ordering::AcqRel) {
            self.relief.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    pub(super) fn note_queued(&self, free: usize) -> bool {
        let pressured = free < self.cap / 2;
        if pressured {
            self.pressured.store(true, Ordering::Release);
        }
        pressured
    }
}

impl crate::flow::Backpressure for RouteGate {
    fn pressured(&self) -> bool {
        RouteGate::pressured(self)
    }

    fn relief(&self) -> tokio::sync::watch::Receiver<u64> {
        RouteGate::relief(self)
    }
}
