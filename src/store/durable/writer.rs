//! The group-commit writer: one std thread that owns every write to the engine.
//!
//! `append` and the retained journal stage their writes as one [`Job`] each, numbered in
//! the order staged, and send them down a channel; they never touch the disk. The thread
//! takes everything pending, writes it as one fjall batch (atomic: a crash keeps all of it
//! or none), then syncs as the [`SyncMode`] says: `Always` fsyncs every batch, `Periodic(d)`
//! hands the batch to the OS at once and fsyncs at most every `d` (and within `d` of a
//! write), `None` hands it to the OS and never fsyncs. It then publishes the number of the
//! last job that is as durable as promised on a [`watch`] channel, which `durable()` waits
//! on.
//!
//! A write the engine refuses is retried (every [`RETRY`], up to [`ATTEMPTS`] times) with
//! later jobs waiting behind it, so the order of writes holds. One that still fails, or an
//! fsync that fails (after which the kernel may have dropped the dirty pages: retrying it
//! could report success for data that is gone), stops the store: nothing more is written or
//! reported durable, so waits for durability never end rather than acknowledge what may not
//! be on disk. Both are logged as errors.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use fjall::{Keyspace, PersistMode};
use tokio::sync::watch;

use super::mirror::Op;
use super::space::{self, Space};
use super::{Part, Parts, SyncMode, INFO_LAST_WRITE};
use crate::store::durable::record::{self, Enc};

/// How often the writer looks at the size of the engine's journal (see `trim_journal`).
const TRIM_EVERY: Duration = Duration::from_secs(1);

/// The journal size past which every partition is flushed: a quarter of the size at which
/// the engine halts writes (fjall's default `max_journaling_size`, 512 MiB).
const JOURNAL_TRIM_AT: u64 = 128 << 20;

/// A key no partition holds: MQTT strings never contain U+0000 (client ids, topics), and
/// the binary keys are 8 bytes or `client id, 0, 2 or 8 bytes` (see `record.rs`).
const NO_SUCH_KEY: &[u8] = b"\0supermq: journal trim";

/// How often the time of the last write (`INFO_LAST_WRITE`) is written while nothing else
/// is: on open, the sessions whose clients were connected when the broker stopped are
/// taken to have gone offline then, so their expiry runs from at most this long before a
/// crash.
const STAMP_EVERY: Duration = Duration::from_secs(5);

/// How long the writer waits before writing a refused batch again.
const RETRY: Duration = Duration::from_millis(100);
/// How often it tries a batch before it stops the store.
const ATTEMPTS: u32 = 50;

/// What the writer is sent.
#[derive(Debug)]
pub(super) enum Job {
    /// Writes, numbered `seq` (increasing in the order staged), of `bytes` (`Op::weight`).
    Write { ops: Vec<Op>, seq: u64, bytes: u64 },
    /// Write and fsync everything before this, answer, and stop.
    Close(std::sync::mpsc::Sender<()>),
    /// Tests: stop the writer until the sender side is dropped or sends.
    #[cfg(test)]
    Hold(std::sync::mpsc::Receiver<()>),
}

pub(super) struct Writer {
    pub space: std::sync::Arc<Space>,
    /// Bytes staged and not yet written: the writer takes off what it has written.
    pub backlog: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub keyspace: Keyspace,
    pub parts: Parts,
    pub sync: SyncMode,
    pub rx: Receiver<Job>,
    pub synced: watch::Sender<u64>,
    /// The same number as `synced`, for readers that only compare (see `Durable`).
    pub synced_at: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Waits told when `synced` reaches theirs (after `synced_at` is stored).
    pub sync_waiters: std::sync::Arc<super::delivered::SyncWaiters>,
}

impl Writer {
    pub fn run(self) {
        let mut written = 0u64; // last job written to the engine
        let mut dirty = false; // written and not yet fsynced
        let mut last_sync = Instant::now();
        let mut failed = false;
        let mut last_trim = Instant::now();
        let mut last_space = Instant::now();
        let mut last_stamp = Instant::now();
        loop {
            let first = match (self.sync, dirty) {
                (SyncMode::Periodic(d), true) => {
                    let left = d.saturating_sub(last_sync.elapsed());
                    match self.rx.recv_timeout(left) {
                        Ok(j) => Some(j),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                // Woken at least every `CHECK_EVERY`, so the disk bound is looked at while
                // nothing is written too (space comes back as the engine compacts).
                _ => match self.rx.recv_timeout(space::CHECK_EVERY) {
                    Ok(j) => Some(j),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            if last_space.elapsed() >= space::CHECK_EVERY {
                last_space = Instant::now();
                self.space.check(&self.keyspace);
            }
            let mut jobs: Vec<Job> = first.into_iter().collect();
            jobs.extend(self.rx.try_iter());
            // Each job's ops where they are: the writer reads them in place, never moves them.
            let mut ops: Vec<Vec<Op>> = Vec::new();
            let mut top = written;
            let mut close = None;
            let mut taken = 0;
            for j in jobs {
                match j {
                    Job::Write { ops: o, seq, bytes } => {
                        ops.push(o);
                        top = top.max(seq);
                        taken += bytes;
                    }
                    Job::Close(reply) => close = Some(reply),
                    #[cfg(test)]
                    Job::Hold(until) => {
                        let _ = until.recv();
                    }
                }
            }
            // Nothing is written when everything these jobs held was created and deleted
            // among them (a subscriber that keeps up): they are as durable as everything
            // before them. Still, every batch carries the time of its write, and at least
            // every `STAMP_EVERY` one is written, with no ops if need be. A stopped store
            // writes nothing more and reports nothing durable.
            let kept = if failed {
                Vec::new()
            } else {
                last_per_key(&ops)
            };
            let write = !failed && (!kept.is_empty() || last_stamp.elapsed() >= STAMP_EVERY);
            let ok = !write || {
                last_stamp = Instant::now();
                if last_trim.elapsed() >= TRIM_EVERY {
                    last_trim = Instant::now();
                    self.trim_journal();
                }
                self.write_retrying(&kept)
            };
            drop(kept);
            // Written, elided or given up: the messages the ops held are let go here, before
            // the jobs are reported durable, so a session that drops its copy then leaves none
            // in memory (see `Mirror::written`).
            drop(ops);
            self.backlog.fetch_sub(taken, Ordering::AcqRel);
            failed |= !ok;
            if failed {
                if let Some(reply) = close {
                    let _ = reply.send(());
                    break;
                }
                continue;
            }
            written = top;
            dirty |= write;
            let due = match self.sync {
                SyncMode::Always => true,
                SyncMode::Periodic(d) => last_sync.elapsed() >= d,
                SyncMode::None => false,
            };
            if dirty && (due || close.is_some()) {
                match self.keyspace.persist(PersistMode::SyncData) {
                    Ok(()) => {
                        dirty = false;
                        last_sync = Instant::now();
                    }
                    Err(e) => {
                        tracing::error!(
                            "durable store: fsync failed, the store stops (nothing more is \
                             written or acknowledged as durable): {e}"
                        );
                        failed = true;
                        if let Some(reply) = close {
                            let _ = reply.send(());
                            break;
                        }
                        continue;
                    }
                }
            } else if dirty {
                // Periodic and None: into the OS at once, so a process crash loses nothing.
                if let Err(e) = self.keyspace.persist(PersistMode::Buffer) {
                    tracing::error!("durable store: write to the OS failed: {e}");
                }
            }
            if !dirty || !matches!(self.sync, SyncMode::Always) {
                self.synced_at
                    .store(written, std::sync::atomic::Ordering::Release);
                self.synced.send_replace(written);
                self.sync_waiters.reached(written);
            }
            if let Some(reply) = close {
                let _ = reply.send(());
                break;
            }
        }
    }

    /// Keeps the engine's journal from growing to the size at which it halts writes. A
    /// journal file is deleted once every partition it holds writes for has flushed past it;
    /// a partition that stopped being written (no QoS 2 traffic for a while, no retained
    /// message changed) can hold that up for good (fjall issue 288), and at 512 MiB of
    /// journal the engine stops every write. Past a quarter of that, every partition gets a
    /// deletion of a key that cannot exist (so none is empty) and a fresh memtable, which
    /// the engine then flushes, and the old journals go.
    fn trim_journal(&self) {
        if self.keyspace.journal_disk_space() < JOURNAL_TRIM_AT {
            return;
        }
        tracing::debug!(
            bytes = self.keyspace.journal_disk_space(),
            "durable store: flushing every partition to free the journal"
        );
        for p in self.parts.every() {
            let mut b = self.keyspace.batch();
            b.remove(p, NO_SUCH_KEY);
            if let Err(e) = b.commit().and_then(|()| p.rotate_memtable().map(|_| ())) {
                tracing::warn!("durable store: flushing partition {}: {e}", p.name);
            }
        }
    }

    /// Writes `ops`, retrying as the module docs say; false when the store must stop.
    fn write_retrying(&self, ops: &[&Op]) -> bool {
        for attempt in 1..=ATTEMPTS {
            match self.write(ops) {
                Ok(()) => return true,
                Err(e) if attempt < ATTEMPTS => {
                    tracing::error!("durable store: write failed (attempt {attempt}): {e}");
                    std::thread::sleep(RETRY);
                }
                Err(e) => {
                    tracing::error!(
                        "durable store: write failed {ATTEMPTS} times, the store stops \
                         (nothing more is written or acknowledged as durable): {e}"
                    );
                }
            }
        }
        false
    }

    /// Writes `ops` and the time of this write as one batch.
    fn write(&self, ops: &[&Op]) -> Result<(), fjall::Error> {
        let mut b = self.keyspace.batch();
        for op in ops {
            if op.key.as_slice().is_empty() || op.key.as_slice().len() > record::MAX_KEY {
                // Never staged (CONNECT refuses the client ids that would make one too long,
                // see `record::MAX_CLIENT_ID`; topics and ids are never empty); the engine
                // would panic on it, stopping every write, so it is left out and said.
                tracing::error!(
                    partition = op.part.name(),
                    len = op.key.as_slice().len(),
                    "durable store: a key the engine does not take (empty or too long) is not written"
                );
                continue;
            }
            let p = self.parts.get(op.part);
            match &op.value {
                Some(v) => b.insert(p, op.key.as_slice(), &*v.encoded()),
                None => b.remove(p, op.key.as_slice()),
            }
        }
        let mut e = Enc::new();
        e.time(SystemTime::now());
        b.insert(&self.parts.info, INFO_LAST_WRITE, e.0);
        b.commit()
    }
}

/// The last op of each key, in their order, so a batch never holds two ops on one key; and
/// none at all for a record created and deleted in this batch (a message delivered and
/// acknowledged before its batch was written, its queue entry and its in-flight record),
/// which then costs nothing: not its bytes, not even a deletion. The mirror marks the puts
/// that create their key ([`Op::creates`]): when the first op on a key in a batch is one,
/// nothing of the key is on disk before the batch.
fn last_per_key(jobs: &[Vec<Op>]) -> Vec<&Op> {
    let ops = || jobs.iter().flatten();
    let n = jobs.iter().map(Vec::len).sum();
    // Per key: (its first op creates it, place of its last op). Keys hold client ids: a
    // seeded hash of good quality, still far cheaper than SipHash.
    let mut last: HashMap<(Part, &[u8]), (bool, usize), foldhash::quality::RandomState> =
        HashMap::with_capacity_and_hasher(n, Default::default());
    for (i, op) in ops().enumerate() {
        last.entry((op.part, op.key.as_slice()))
            .and_modify(|(_, at)| *at = i)
            .or_insert((op.creates, i));
    }
    ops()
        .enumerate()
        .filter(|(i, op)| match last.get(&(op.part, op.key.as_slice())) {
            Some(&(created, at)) => at == *i && !(created && op.value.is_none()),
            None => false,
        })
        .map(|(_, op)| op)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(ops: Vec<Op>) -> Vec<(Part, Vec<u8>, bool)> {
        // Split in two jobs, as the writer takes them.
        let mut first = ops;
        let second = first.split_off(first.len() / 2);
        last_per_key(&[first, second])
            .iter()
            .map(|o| (o.part, o.key.as_slice().to_vec(), o.value.is_some()))
            .collect()
    }

    #[test]
    fn only_the_last_op_of_a_key_is_written() {
        let ops = vec![
            Op::put(Part::Inflight, vec![1], vec![0xaa; 16]),
            Op::put(Part::Sessions, vec![7], vec![1]),
            Op::delete(Part::Inflight, vec![1]),
            Op::put(Part::Queue, vec![8], vec![2]),
            Op::put(Part::Sessions, vec![7], vec![2]),
            // Same key, another partition: kept.
            Op::put(Part::Qos2, vec![8], vec![3]),
        ];
        assert_eq!(
            shape(ops),
            [
                (Part::Inflight, vec![1], false),
                (Part::Queue, vec![8], true),
                (Part::Sessions, vec![7], true),
                (Part::Qos2, vec![8], true),
            ]
        );
    }

    #[test]
    fn a_record_created_and_deleted_in_one_batch_is_not_written_at_all() {
        let ops = vec![
            Op::create(Part::Messages, vec![1], vec![0xaa; 1024]),
            Op::create(Part::Queue, vec![7], vec![1]),
            Op::create(Part::Inflight, vec![7], vec![3]),
            // Created in an earlier batch: its deletion is written.
            Op::delete(Part::Queue, vec![6]),
            Op::delete(Part::Queue, vec![7]),
            Op::delete(Part::Messages, vec![1]),
            // A put over a record that may be on disk (PUBREC over a sent PUBLISH): the
            // deletion stays.
            Op::put(Part::Inflight, vec![8], vec![4]),
            Op::delete(Part::Inflight, vec![8]),
            Op::delete(Part::Inflight, vec![7]),
            // Deleted, then created again: the put is written.
            Op::delete(Part::Qos2, vec![9]),
            Op::create(Part::Qos2, vec![9], vec![5]),
        ];
        assert_eq!(
            shape(ops),
            [
                (Part::Queue, vec![6], false),
                (Part::Inflight, vec![8], false),
                (Part::Qos2, vec![9], true),
            ]
        );
    }
}
