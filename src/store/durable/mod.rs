//! The durable store: persistent sessions and retained messages kept on disk in an embedded
//! engine (fjall, a pure-Rust LSM tree), behind the [`SessionJournal`] and
//! [`RetainedJournal`] seams, and handed back as [`Recovered`] on open.
//!
//! # Use
//!
//! [`Durable::open`] takes the directory's lock, reads everything back and starts the
//! group-commit writer (`writer.rs`); the broker then appends changes, waits on
//! [`SessionJournal::durable`] before acknowledging what a stored session holds, and calls
//! [`Durable::close`] at shutdown. [`check`] and [`repair`] are `supermq store check DIR` and
//! `supermq store repair DIR`.
//!
//! # On disk (format version 1)
//!
//! `DIR/LOCK` is held (`flock`, exclusive) by the process that has the store open; the rest
//! is one fjall keyspace with these partitions. Every value starts with the format version
//! byte and is encoded as `record.rs` describes (big-endian integers, `u32`-length-prefixed
//! strings, MQTT 5 properties as (identifier, value) pairs). A per-session key is
//! `client_id 0x00 suffix`.
//!
//! | partition | key | value |
//! | --- | --- | --- |
//! | `sessions` | client id | session expiry, attached flag, offline since (wall clock), will (with its MQTT 5 properties), subscriptions (none since they have records of their own; records written before hold them, and are moved on open), then the username of its last connection (absent in records written before it was kept) |
//! | `subscriptions` | client id, 0, u64 number (in the order subscribed) | filter, options byte, identifier: one record per subscription, so a change writes that one, not the session's whole list |
//! | `queue` | client id, 0, sequence (`u64` BE) | backlog flag (a retained message of a new subscription, sent after the whole queue), message id, delivery QoS, retain, subscription identifiers |
//! | `inflight` | client id, 0, packet id (`u16` BE) | order sent (the queue sequence it had), then the queue entry, or nothing once PUBREC arrived (PUBREL sent) |
//! | `qos2` | client id, 0, packet id | nothing: an inbound QoS 2 id awaiting PUBREL |
//! | `messages` | message id (`u64` BE) | topic, payload, QoS, retain, expiry deadline (wall clock), properties |
//! | `retained` | topic | stamp (ms, origin node), then the message as in `messages` |
//! | `info` | `format` | the format version (one byte, not versioned itself); a newer one than this build reads is refused ([`DurableError::NewerFormat`]), never repaired |
//! | `info` | `last_write` | wall-clock time of the last batch |
//! | `quarantine` | partition name, 0, key, 0, time of repair (ns, BE) | the record `repair` moved aside, unchanged |
//!
//! A message is written once however many sessions queue it; its reference count is the
//! number of `queue` and `inflight` entries naming it, counted on open and kept in memory
//! (`mirror.rs`), so it cannot disagree with the entries: the message is deleted with its
//! last entry, and one that no entry names is purged on open.
//!
//! # Recovery
//!
//! On open every record is decoded. One that cannot be, or an entry naming a message or a
//! session that is not there, makes the open fail with [`DurableError::Corrupt`], which
//! names the commands to run. Queued messages whose expiry passed are dropped (in-flight ones
//! stay: they were sent). The queue comes back in the order it is sent: queue entries, then
//! backlog entries, which become queue entries from then on (rewritten behind the rest, as
//! the broker rebuilds one queue from [`RecoveredSession::queue`]). A session that was attached when the process stopped went offline
//! at the store's last write. Sessions whose expiry passed are returned as they are: the
//! broker ends them. A write cut short by a crash is cut off whole by the engine's journal
//! recovery (each batch is atomic).

mod check;
mod delivered;
mod engine;
mod entry;
mod key;
mod load;
mod messages;
mod mirror;
mod page;
mod record;
mod space;
mod writer;

#[cfg(test)]
mod damage_tests;
#[cfg(test)]
mod page_tests;
#[cfg(test)]
mod record_tests;
#[cfg(test)]
mod retained_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod subs_tests;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use fjall::{Keyspace, PartitionHandle, PersistMode};
use parking_lot::Mutex;
use tokio::sync::watch;

#[cfg(doc)]
use super::RecoveredSession;
use super::{Recovered, RetainedJournal, SessionJournal, Stamp, SyncWait};
use crate::message::Message;
use crate::session::{Change, PagedIn};
use mirror::{Mirror, Op};
use writer::{Job, Writer};

pub use check::{check, repair, CheckReport, Problem, RepairReport};
#[cfg(test)]
use engine::open_engine;
pub use engine::DEFAULT_MAX_MEMORY;
use engine::{open_engine_with, Engine};
pub use record::{RecordError, MAX_CLIENT_ID};
#[cfg(test)]
use std::fs;

/// The key of the time of the last write in the `info` partition.
const INFO_LAST_WRITE: &str = "last_write";
/// The key of the store's format version in the `info` partition (one byte).
const INFO_FORMAT: &str = "format";

/// Where the store is and how hard it syncs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurableOptions {
    pub dir: PathBuf,
    pub sync: SyncMode,
    /// Queued deliveries a connected stored session keeps in memory, the rest staying on
    /// disk only and read back as it is served (an offline session, and every session on
    /// open, keeps none); `None`: every queued delivery is kept in memory and handed back on
    /// open.
    pub window: Option<usize>,
    /// Bytes the engine may keep in memory: write buffers and block cache (see
    /// [`open_engine_with`]).
    pub max_memory: u64,
    /// The store's bytes on disk past which it is full (0: no bound of its own); see
    /// `space.rs` for what full means.
    pub max_disk: u64,
    /// Free bytes on the store's filesystem below which it is full (0: not looked at).
    pub min_free_disk: u64,
}

/// When writes reach the disk (`[persistence] sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Every batch is fsynced before what it holds is reported durable.
    Always,
    /// Batches go to the OS at once and are fsynced at most this often.
    Periodic(Duration),
    /// Batches go to the OS at once; the OS decides when they reach the disk.
    None,
}

/// Why the store could not be opened, checked or repaired.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error(
        "store directory {} is in use by another supermq process (its lock file {}/LOCK is \
         held); stop that broker or give this one another persistence dir",
        dir.display(), dir.display()
    )]
    Locked { dir: PathBuf },
    #[error("store directory {}: {source}", dir.display())]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store directory {}: storage engine: {source}", dir.display())]
    Engine {
        dir: PathBuf,
        #[source]
        source: fjall::Error,
    },
    #[error(
        "store directory {} is damaged: {problem}; run `supermq store check {}` to list \
         what cannot be read, then `supermq store repair {}` to move it aside (nothing is \
         deleted)",
        dir.display(), dir.display(), dir.display()
    )]
    Corrupt { dir: PathBuf, problem: String },
    #[error(
        "store directory {} was written in store format {found}, newer than the {supported} \
         this supermq reads; run the supermq version that wrote it (check and repair refuse \
         it too, so nothing is moved aside)",
        dir.display()
    )]
    NewerFormat {
        dir: PathBuf,
        found: u8,
        supported: u8,
    },
}

/// The partitions, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Part {
    Sessions,
    Queue,
    Inflight,
    Qos2,
    Messages,
    Retained,
    Subscriptions,
}

impl Part {
    pub const ALL: [Part; 7] = [
        Part::Sessions,
        Part::Queue,
        Part::Inflight,
        Part::Qos2,
        Part::Messages,
        Part::Retained,
        Part::Subscriptions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::Sessions => "sessions",
            Part::Queue => "queue",
            Part::Inflight => "inflight",
            Part::Qos2 => "qos2",
            Part::Messages => "messages",
            Part::Retained => "retained",
            Part::Subscriptions => "subscriptions",
        }
    }
}

/// The open partitions.
#[derive(Clone)]
pub(super) struct Parts {
    all: Vec<PartitionHandle>,
    pub info: PartitionHandle,
    pub quarantine: PartitionHandle,
}

impl Parts {
    pub fn get(&self, p: Part) -> &PartitionHandle {
        &self.all[p as usize]
    }

    /// Every partition, `info` and `quarantine` included.
    pub fn every(&self) -> impl Iterator<Item = &PartitionHandle> {
        self.all.iter().chain([&self.info, &self.quarantine])
    }
}

/// The durable store (see the module docs).
pub struct Durable {
    dir: PathBuf,
    sync: SyncMode,
    window: Option<usize>,
    keyspace: Keyspace,
    parts: Parts,
    /// The mirror and the writer's channel, under one lock so jobs are sent in the order
    /// they are numbered. Never held across an `.await`.
    state: Arc<Mutex<State>>,
    /// The number of the last job staged.
    appended: AtomicU64,
    /// Open holds (`State::holds`, readable without the lock).
    holding: std::sync::atomic::AtomicU32,
    /// The number of the last job synced, as the writer last published it: what
    /// `durable` compares first, so the common case (nothing pending) reads two atomics and
    /// no lock shared with the writer.
    synced_at: Arc<AtomicU64>,
    synced: watch::Receiver<u64>,
    /// Acknowledgements waiting for delivery or the disk, told once the disk has theirs.
    sync_waiters: Arc<delivered::SyncWaiters>,
    /// Whether the store is past its disk bound (checked by the writer).
    space: Arc<space::Space>,
    /// Bytes staged and not yet written (see [`BACKLOG_SHARE`]).
    backlog: Arc<AtomicU64>,
    backlog_max: u64,
    thread: Mutex<Option<JoinHandle<()>>>,
    _lock: File,
}

struct State {
    mirror: Mirror,
    tx: Option<Sender<Job>>,
    next: u64,
    /// Open [`SessionJournal::hold_writes`]s, and the ops kept back meanwhile.
    holds: u32,
    held: Vec<Op>,
}

/// The share of `max_memory` (one in this many) that writes staged and not yet written may
/// hold before acknowledgements wait for the disk again instead of for delivery (see
/// `delivered.rs`): publishers are then paced by the writer, so a disk slower than the
/// traffic does not fill memory.
const BACKLOG_SHARE: u64 = 2;

/// Ops kept back by holds beyond which they are written anyway: holds overlapping without a
/// break (many QoS 2 publishers at once) must not keep everything in memory. The batch
/// written then may split one held group (its atomicity is lost, never its data).
const MAX_HELD_OPS: usize = 4096;

impl State {
    /// Sends `ops` to the writer as one job, counting its bytes into `backlog`.
    fn send(&mut self, ops: Vec<Op>, appended: &AtomicU64, backlog: &AtomicU64) {
        let Some(tx) = &self.tx else {
            tracing::warn!("durable store: write after close dropped");
            return;
        };
        let seq = self.next + 1;
        let bytes = ops.iter().map(Op::weight).sum::<usize>() as u64;
        backlog.fetch_add(bytes, Ordering::AcqRel);
        if tx.send(Job::Write { ops, seq, bytes }).is_ok() {
            self.next = seq;
            appended.store(seq, Ordering::Release);
        } else {
            backlog.fetch_sub(bytes, Ordering::AcqRel);
        }
    }
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("dir", &self.dir)
            .field("sync", &self.sync)
            .field("appended", &self.appended.load(Ordering::Relaxed))
            .field("synced", &*self.synced.borrow())
            .finish()
    }
}

impl Durable {
    /// Opens (creating if missing) the store in `opts.dir`, and returns what it kept.
    pub fn open(opts: &DurableOptions) -> Result<(Arc<Durable>, Recovered), DurableError> {
        let engine = open_engine_with(&opts.dir, opts.max_memory)?;
        let scan = load::scan(&engine.parts, false).map_err(|source| DurableError::Engine {
            dir: opts.dir.clone(),
            source,
        })?;
        if let Some(p) = scan.problems.first() {
            let more = match scan.problems.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            return Err(DurableError::Corrupt {
                dir: opts.dir.clone(),
                problem: format!("{p}{more}"),
            });
        }
        let messages = engine.parts.get(Part::Messages).clone();
        let read = move |id| load::read_message(&messages, id);
        let (recovered, mirror, purge) =
            load::recover(scan, SystemTime::now(), opts.window.is_some(), &read);
        if !purge.is_empty() {
            let mut b = engine.keyspace.batch();
            for op in purge {
                match op.value {
                    Some(v) => {
                        b.insert(engine.parts.get(op.part), op.key.as_slice(), &*v.encoded())
                    }
                    None => b.remove(engine.parts.get(op.part), op.key.as_slice()),
                }
            }
            let engine_err = |source| DurableError::Engine {
                dir: opts.dir.clone(),
                source,
            };
            b.commit().map_err(engine_err)?;
            engine
                .keyspace
                .persist(PersistMode::SyncAll)
                .map_err(engine_err)?;
        }
        let (tx, rx) = mpsc::channel();
        let (synced_tx, synced) = watch::channel(0);
        let synced_at = Arc::new(AtomicU64::new(0));
        let space = Arc::new(space::Space::new(
            opts.dir.clone(),
            opts.max_disk,
            opts.min_free_disk,
        ));
        // Known before the first session is served, not a second later.
        space.check(&engine.keyspace);
        let backlog = Arc::new(AtomicU64::new(0));
        let sync_waiters = Arc::new(delivered::SyncWaiters::default());
        let writer = Writer {
            sync_waiters: sync_waiters.clone(),
            space: space.clone(),
            backlog: backlog.clone(),
            keyspace: engine.keyspace.clone(),
            parts: engine.parts.clone(),
            sync: opts.sync,
            rx,
            synced: synced_tx,
            synced_at: synced_at.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("supermq-store".into())
            .spawn(move || writer.run())
            .map_err(|source| DurableError::Io {
                dir: opts.dir.clone(),
                source,
            })?;
        let store = Durable {
            dir: opts.dir.clone(),
            sync: opts.sync,
            window: opts.window,
            space,
            backlog,
            backlog_max: opts.max_memory / BACKLOG_SHARE,
            keyspace: engine.keyspace,
            parts: engine.parts,
            state: Arc::new(Mutex::new(State {
                mirror,
                tx: Some(tx),
                next: 0,
                holds: 0,
                held: Vec::new(),
            })),
            appended: AtomicU64::new(0),
            holding: std::sync::atomic::AtomicU32::new(0),
            synced_at,
            synced,
            sync_waiters,
            thread: Mutex::new(Some(thread)),
            _lock: engine.lock,
        };
        Ok((Arc::new(store), recovered))
    }

    /// The directory the store is in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes and fsyncs everything staged, and stops the writer. Later appends are dropped
    /// (logged). Called at shutdown, and on drop.
    pub fn close(&self) {
        let tx = self.state.lock().tx.take();
        if let Some(tx) = tx {
            let (reply, done) = mpsc::channel();
            if tx.send(Job::Close(reply)).is_ok() {
                let _ = done.recv();
            }
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
            if let Err(e) = self.keyspace.persist(PersistMode::SyncAll) {
                tracing::error!("durable store: final fsync failed: {e}");
            }
        }
    }

    /// Stages the ops `f` makes as one job, or keeps them back while writes are held.
    fn stage(&self, f: impl FnOnce(&mut Mirror) -> Vec<Op>) {
        let mut st = self.state.lock();
        self.stage_locked(&mut st, f);
    }

    /// [`Durable::stage`] with the state's lock held.
    fn stage_locked(&self, st: &mut State, f: impl FnOnce(&mut Mirror) -> Vec<Op>) {
        st.mirror.written(self.synced_at.load(Ordering::Acquire));
        st.mirror.msgs.jobs_sent = st.next;
        let mut ops = f(&mut st.mirror);
        if ops.is_empty() {
            return;
        }
        if st.holds > 0 {
            st.held.append(&mut ops);
            if st.held.len() < MAX_HELD_OPS {
                return;
            }
            ops = std::mem::take(&mut st.held);
        }
        st.send(ops, &self.appended, &self.backlog);
    }

    /// Tests: holds the writer until `release` sends or is dropped.
    #[cfg(test)]
    fn hold_writer(&self) -> std::sync::mpsc::Sender<()> {
        let (release, until) = mpsc::channel();
        if let Some(tx) = &self.state.lock().tx {
            let _ = tx.send(Job::Hold(until));
        }
        release
    }

    /// How many distinct messages the store holds for sessions.
    pub fn message_count(&self) -> usize {
        self.state.lock().mirror.message_count()
    }

    /// The number of records in the partition named `name` (a full count: for tests and
    /// diagnostics); 0 for a name that is not a partition.
    pub fn partition_len(&self, name: &str) -> usize {
        let part = match name {
            "info" => &self.parts.info,
            "quarantine" => &self.parts.quarantine,
            _ => match Part::ALL.iter().find(|p| p.name() == name) {
                Some(p) => self.parts.get(*p),
                None => return 0,
            },
        };
        part.len().unwrap_or(0)
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        self.close();
    }
}

impl SessionJournal for Durable {
    fn append(&self, client_id: &str, changes: Vec<Change>) {
        self.stage(|m| m.apply(client_id, changes));
    }

    fn page_window(&self) -> Option<usize> {
        self.window
    }

    fn full(&self) -> bool {
        self.space.is_full()
    }

    fn page_in(&self, client_id: &str, changes: Vec<Change>, skip: usize, max: usize) -> PagedIn {
        self.read_back(client_id, changes, skip, max)
    }

    fn hold_writes(&self) {
        let mut st = self.state.lock();
        st.holds += 1;
        self.holding.store(st.holds, Ordering::Release);
    }

    fn release_writes(&self) {
        let mut st = self.state.lock();
        st.holds = st.holds.saturating_sub(1);
        self.holding.store(st.holds, Ordering::Release);
        if st.holds == 0 && !st.held.is_empty() {
            let ops = std::mem::take(&mut st.held);
            st.send(ops, &self.appended, &self.backlog);
        }
    }

    /// In every mode an acknowledgement waits for its batch to reach the OS (so a process
    /// crash loses nothing acknowledged); with `Always` also for the fsync.
    fn durable(&self) -> Option<SyncWait> {
        let target = self.target();
        if self.synced_at.load(Ordering::Acquire) >= target {
            return None;
        }
        let mut rx = self.synced.clone();
        Some(Box::pin(async move {
            // Err: the writer stopped, after writing and syncing everything (close).
            let _ = rx.wait_for(|s| *s >= target).await;
        }))
    }

    fn durable_or_delivered(&self, msgs: Vec<Arc<Message>>) -> Option<SyncWait> {
        self.synced_or_delivered(msgs)
    }
}

impl Durable {
    /// The job that must be synced for everything appended so far to be durable.
    fn target(&self) -> u64 {
        if self.holding.load(Ordering::Acquire) > 0 {
            // Ops kept back by a hold go to the writer as the next job when it ends: what
            // was appended is durable once that one is.
            let st = self.state.lock();
            st.next + u64::from(!st.held.is_empty())
        } else {
            self.appended.load(Ordering::Acquire)
        }
    }
}

impl RetainedJournal for Durable {
    fn set(&self, msg: &Message, stamp: &Stamp) {
        let v = record::encode_retained(msg, stamp.ts, &stamp.origin);
        let key = msg.topic.as_bytes().to_vec();
        self.stage(|_| vec![Op::put(Part::Retained, key, v)]);
    }

    fn clear(&self, topic: &str, stamp: &Stamp) {
        // A tombstone, not a deletion: the clear's stamp must outlive a restart, or a peer
        // still holding the older message would bring it back. It is written as what the
        // clear was, a retained message with an empty payload, which the retained store
        // puts back as a tombstone (`RetainedStore::restore`).
        let empty = Message::new(
            topic,
            bytes::Bytes::new(),
            crate::codec::QoS::AtMostOnce,
            true,
        );
        let v = record::encode_retained(&empty, stamp.ts, &stamp.origin);
        let key = topic.as_bytes().to_vec();
        self.stage(|_| vec![Op::put(Part::Retained, key, v)]);
    }

    fn forget(&self, topic: &str) {
        let key = topic.as_bytes().to_vec();
        self.stage(|_| vec![Op::delete(Part::Retained, key)]);
    }
}
