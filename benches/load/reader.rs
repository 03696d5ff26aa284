//! The reading half of a client: one read of up to 256 KB, every packet in it handled in
//! place, then one hand-over to the writer per read.
//!
//! Deliveries are checked against the payload stamp (which publisher, which sequence number,
//! when sent) to count loss, duplicates and reordering and to record end-to-end latency.
//! Acknowledgements are owed per the QoS 1/2 flows: PUBACK for a QoS 1 delivery, PUBREC then
//! PUBCOMP for QoS 2; a publisher's PUBREC is answered with PUBREL. A client that only
//! subscribes has no writer task: its reader writes the acknowledgements of each read itself
//! with a non-blocking write (what does not fit waits for the socket to become writable,
//! while reading goes on), which saves a task wake-up per read.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use supermq::codec::QoS;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::client::{Link, Run};
use crate::frame::{self, Frame, Stamp};
use crate::histogram::Histogram;
use crate::stats::SeqTracker;

/// Largest single read.
const READ_CHUNK: usize = 256 * 1024;
/// Below this much free space the buffer is topped up before the next read.
const MIN_SPARE: usize = 64 * 1024;

/// What one subscriber saw.
#[derive(Debug)]
pub struct SubState {
    /// Indexed by publisher index.
    pub trackers: Vec<SeqTracker>,
    pub latency: Histogram,
    /// PUBLISH packets whose stamp is not from this run.
    pub foreign: u64,
    /// Deliveries whose payload length differs from the one sent.
    pub corrupted: u64,
    nonce: u32,
    size: usize,
}

impl SubState {
    pub fn new(publishers: usize, nonce: u32, size: usize) -> Self {
        SubState {
            trackers: vec![SeqTracker::default(); publishers],
            latency: Histogram::default(),
            foreign: 0,
            corrupted: 0,
            nonce,
            size,
        }
    }

    /// Accounts one delivery; true if it was one of this run's messages.
    #[inline]
    fn on_publish(&mut self, payload: &[u8], now_ns: u64) -> bool {
        let Some(st) = Stamp::read(payload) else {
            self.foreign += 1;
            return false;
        };
        if (st.publisher >> 32) as u32 != self.nonce {
            self.foreign += 1;
            return false;
        }
        let idx = (st.publisher & 0xFFFF_FFFF) as usize;
        let recorded = self.trackers.get_mut(idx).is_some_and(|t| t.record(st.seq));
        if !recorded {
            self.foreign += 1;
            return false;
        }
        if payload.len() != self.size {
            self.corrupted += 1;
        }
        self.latency.record(now_ns.saturating_sub(st.sent_ns));
        true
    }
}

/// Reads until the run finishes or the connection fails; returns what the subscriber saw.
/// `direct` is the write half when no writer task owns it: acknowledgements are then
/// written from here (and the half stays open; dropping it would send FIN).
pub async fn read_loop(
    mut rd: OwnedReadHalf,
    mut buf: BytesMut,
    link: Arc<Link>,
    mut sub: Option<SubState>,
    run: Arc<Run>,
    direct: Option<OwnedWriteHalf>,
) -> Option<SubState> {
    let mut ctrl = BytesMut::new();
    let mut released: Vec<u16> = Vec::new();
    loop {
        if buf.capacity() - buf.len() < MIN_SPARE {
            // Consumed bytes are reclaimed in place: the buffer is never shared.
            buf.reserve(READ_CHUNK);
        }
        let unsent = direct.as_ref().filter(|_| !ctrl.is_empty());
        let r = tokio::select! {
            biased;
            _ = run.finish.cancelled() => break,
            w = async { unsent?.as_ref().writable().await.ok() }, if unsent.is_some() => {
                let flushed = match w {
                    Some(()) => flush(direct.as_ref(), &mut ctrl),
                    None => Err(io::ErrorKind::BrokenPipe.into()),
                };
                if let Err(e) = flushed {
                    run.error(format!("write: {e}"));
                    break;
                }
                continue;
            }
            r = rd.read_buf(&mut buf) => r,
        };
        match r {
            Ok(0) => {
                if !run.finish.is_cancelled() {
                    run.error("connection closed by the broker".into());
                }
                break;
            }
            Ok(_) => {}
            Err(e) => {
                if !run.finish.is_cancelled() {
                    run.error(format!("read: {e}"));
                }
                break;
            }
        }
        // One clock read per batch: everything in it arrived together.
        let now_ns = run.ns(std::time::Instant::now());
        let mut pos = 0;
        let mut got = 0u64;
        loop {
            match frame::parse(&buf[pos..], run.level) {
                Ok(Frame::Incomplete) => break,
                Ok(Frame::Publish {
                    len,
                    qos,
                    pkid,
                    payload,
                }) => {
                    if let Some(s) = sub.as_mut() {
                        got += u64::from(s.on_publish(payload, now_ns));
                    }
                    match qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => {
                            frame::put_ack(&mut ctrl, run.level, frame::PUBACK, pkid)
                        }
                        QoS::ExactlyOnce => {
                            frame::put_ack(&mut ctrl, run.level, frame::PUBREC, pkid)
                        }
                    }
                    pos += len;
                }
                Ok(Frame::Ack { len, kind, pkid }) => {
                    match kind {
                        frame::PUBACK | frame::PUBCOMP => released.push(pkid),
                        frame::PUBREC => frame::put_ack(&mut ctrl, run.level, frame::PUBREL, pkid),
                        _ => frame::put_ack(&mut ctrl, run.level, frame::PUBCOMP, pkid),
                    }
                    pos += len;
                }
                Ok(Frame::Other { len, .. }) => pos += len,
                Err(e) => {
                    run.error(format!("malformed packet from the broker: {e}"));
                    return sub;
                }
            }
        }
        buf.advance(pos);
        let mut wake = false;
        if !released.is_empty() {
            let total = released.len() as u64;
            let mut acked = 0;
            let mut w = link.window.lock();
            for id in released.drain(..) {
                acked += u64::from(w.release(id));
            }
            drop(w);
            run.acked.fetch_add(acked, Ordering::Relaxed);
            if acked < total {
                run.unexpected_acks
                    .fetch_add(total - acked, Ordering::Relaxed);
            }
            wake = true;
        }
        if direct.is_some() {
            if let Err(e) = flush(direct.as_ref(), &mut ctrl) {
                run.error(format!("write: {e}"));
                break;
            }
        } else if !ctrl.is_empty() {
            link.ctrl.lock().extend_from_slice(&ctrl);
            ctrl.clear();
            wake = true;
        }
        if wake {
            link.wake.notify_one();
        }
        if got > 0 {
            run.received.fetch_add(got, Ordering::Relaxed);
            run.last_rx_ns.fetch_max(now_ns, Ordering::Relaxed);
        }
    }
    sub
}

/// Writes as much of `pending` as the socket takes now, without waiting.
fn flush(wr: Option<&OwnedWriteHalf>, pending: &mut BytesMut) -> io::Result<()> {
    let Some(wr) = wr else { return Ok(()) };
    while !pending.is_empty() {
        match wr.as_ref().try_write(pending) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => pending.advance(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    pending.clear();
    Ok(())
}
