//! The writing half of a client: publishes (paced or as fast as the socket takes them, within
//! the QoS 1/2 window) and the acknowledgements the reader queued, many packets per write.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use supermq::codec::QoS;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::sleep_until;

use crate::client::{Link, Run};
use crate::frame::{self, Stamp, HEADER_LEN};

/// Bytes of PUBLISH packets encoded per write when publishing as fast as possible: large
/// enough that syscalls are a small share of the work, small enough to stay in cache.
const BATCH_BYTES: usize = 128 * 1024;

/// What one publisher sends.
#[derive(Debug, Clone)]
pub struct PubPlan {
    /// Run nonce (high half) and publisher index (low half), stamped into every payload.
    pub publisher: u64,
    pub topic: String,
    pub qos: QoS,
    /// Payload bytes, stamp included.
    pub size: usize,
    /// Messages per second for this publisher; 0 for as fast as possible.
    pub rate: f64,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// Stop at this instant.
    pub deadline: Option<Instant>,
    /// Most QoS 1/2 messages in flight.
    pub window: usize,
    /// The protocol level spoken.
    pub level: supermq::codec::ProtocolLevel,
    /// When publishing started (the pacing origin).
    pub go: Instant,
}

/// Decrements `Run::publishing` exactly once, even if the task is aborted.
struct Publishing(Arc<Run>);

impl Drop for Publishing {
    fn drop(&mut self) {
        self.0.publishing.fetch_sub(1, Ordering::AcqRel);
        self.0.changed.notify_one();
    }
}

/// Writes until the run finishes or the connection fails. The caller has already counted
/// this client in `Run::publishing` if it has a plan.
pub async fn write_loop(
    mut wr: OwnedWriteHalf,
    link: Arc<Link>,
    plan: Option<PubPlan>,
    run: Arc<Run>,
) {
    let guard = plan.as_ref().map(|_| Publishing(run.clone()));
    if let Err(e) = drive(&mut wr, &link, plan, guard, &run).await {
        if !run.finish.is_cancelled() {
            run.error(e);
        }
    }
}

async fn drive(
    wr: &mut OwnedWriteHalf,
    link: &Link,
    plan: Option<PubPlan>,
    mut publishing: Option<Publishing>,
    run: &Run,
) -> Result<(), String> {
    let (filler, msg_len) = match &plan {
        Some(p) => (
            vec![b'x'; p.size.saturating_sub(HEADER_LEN)],
            frame::publish_len(p.level, &p.topic, p.qos, p.size),
        ),
        None => (Vec::new(), 0),
    };
    let max_batch = (BATCH_BYTES / msg_len.max(1)).max(1) as u64;
    let mut wbuf = BytesMut::with_capacity(BATCH_BYTES + msg_len + 1024);
    let mut seq = 0u64;
    loop {
        {
            let mut ctrl = link.ctrl.lock();
            if !ctrl.is_empty() {
                wbuf.extend_from_slice(&ctrl);
                ctrl.clear();
            }
        }
        let now = Instant::now();
        let mut batch = 0;
        if let (Some(p), Some(_)) = (&plan, &publishing) {
            let done = run.stop_pub.is_cancelled()
                || p.deadline.is_some_and(|d| now >= d)
                || p.count.is_some_and(|c| seq >= c);
            if done {
                publishing = None;
            } else {
                let mut n = max_batch;
                if p.rate > 0.0 {
                    // Message k is due k/rate seconds after go: send all that are owed.
                    let owed = (now.duration_since(p.go).as_secs_f64() * p.rate) as u64 + 1;
                    n = n.min(owed.saturating_sub(seq));
                }
                if let Some(c) = p.count {
                    n = n.min(c - seq);
                }
                batch = encode(&mut wbuf, p, link, &filler, &mut seq, n, run.ns(now));
            }
        }
        if !wbuf.is_empty() {
            tokio::select! {
                biased;
                _ = run.finish.cancelled() => return Ok(()),
                r = wr.write_all(&wbuf) => r.map_err(|e| format!("write: {e}"))?,
            }
            wbuf.clear();
            if batch > 0 {
                link.sent.fetch_add(batch, Ordering::Relaxed);
                run.sent.fetch_add(batch, Ordering::Relaxed);
                run.last_tx_ns
                    .fetch_max(run.ns(Instant::now()), Ordering::Relaxed);
            }
            continue;
        }
        // Nothing to write now: wait for credit or acks to send, the next due message, or
        // the end of publishing.
        let active = plan.as_ref().filter(|_| publishing.is_some());
        // Pacing only matters while the window has credit; otherwise an overdue message
        // would wake this loop for nothing until acks arrive.
        let due = active
            .filter(|p| p.rate > 0.0)
            .filter(|p| p.qos == QoS::AtMostOnce || link.window.lock().inflight < p.window)
            .map(|p| p.go + Duration::from_secs_f64(seq as f64 / p.rate));
        let deadline = active.and_then(|p| p.deadline);
        tokio::select! {
            _ = run.finish.cancelled() => return Ok(()),
            _ = link.wake.notified() => {}
            _ = run.stop_pub.cancelled(), if active.is_some() => {}
            _ = sleep_until(due.unwrap_or(now).into()), if due.is_some() => {}
            _ = sleep_until(deadline.unwrap_or(now).into()), if deadline.is_some() => {}
        }
    }
}

/// Encodes up to `n` messages (fewer if the QoS 1/2 window is short of credit); returns how
/// many.
fn encode(
    out: &mut BytesMut,
    p: &PubPlan,
    link: &Link,
    filler: &[u8],
    seq: &mut u64,
    n: u64,
    now_ns: u64,
) -> u64 {
    if n == 0 {
        return 0;
    }
    let stamp = |seq| Stamp {
        publisher: p.publisher,
        seq,
        sent_ns: now_ns,
    };
    if p.qos == QoS::AtMostOnce {
        for _ in 0..n {
            frame::put_publish(out, p.level, &p.topic, p.qos, 0, stamp(*seq), filler);
            *seq += 1;
        }
        return n;
    }
    // One lock per batch: the reader returns credit under the same lock.
    let mut w = link.window.lock();
    let credit = p.window.saturating_sub(w.inflight) as u64;
    // Unpaced, the window is refilled a quarter at a time, so that a broker acknowledging
    // each message separately does not make every write carry a single message.
    let chunk = (p.window as u64 / 4).clamp(1, n);
    if p.rate == 0.0 && w.inflight > 0 && credit < chunk {
        return 0;
    }
    let n = n.min(credit);
    for _ in 0..n {
        let id = w.alloc();
        frame::put_publish(out, p.level, &p.topic, p.qos, id, stamp(*seq), filler);
        *seq += 1;
    }
    n
}
