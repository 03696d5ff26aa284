//! Reading the store back: every record decoded ([`scan`]), what cannot be read or names
//! what is not there listed as a [`Problem`], and the rest turned into [`Recovered`] and the
//! writer's [`Mirror`] ([`recover`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use fjall::PartitionHandle;

use super::check::Problem;
use super::mirror::{Mirror, MsgRef, Op, SessionMirror};
use super::record::{self, Entry, Meta, RecordError};
use super::{Part, Parts, INFO_LAST_WRITE};
use crate::message::Message;
use crate::store::{
    Recovered, RecoveredDelivery, RecoveredInflight, RecoveredMessage, RecoveredSession, Stamp,
};

/// A stored message and its wall-clock expiry.
type Stored = (Message, Option<SystemTime>);

/// What the scan keeps of a stored message (not the message: the store may hold far more
/// than memory): its wall-clock expiry and its weight (topic and payload bytes).
#[derive(Debug, Clone, Copy)]
pub(super) struct MsgInfo {
    pub expires_at: Option<SystemTime>,
    pub weight: usize,
}

/// Everything read, and what could not be.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub metas: BTreeMap<String, Meta>,
    /// Per session, (sequence, entry) in sequence order.
    pub queues: HashMap<String, Vec<(u64, Entry)>>,
    /// Per session, (pkid, order sent, entry until PUBREC).
    pub inflight: HashMap<String, Vec<(u16, u64, Option<Entry>)>>,
    pub qos2: HashMap<String, Vec<u16>>,
    pub messages: HashMap<u64, MsgInfo>,
    pub retained: Vec<(Stored, Stamp)>,
    pub last_write: Option<SystemTime>,
    /// Records per partition, as read.
    pub counts: Vec<(&'static str, usize)>,
    /// Records that cannot be read, or that name a session or message that is not there.
    pub problems: Vec<Problem>,
    /// Messages no entry names.
    pub orphans: Vec<u64>,
}

/// Message `id` read from the `messages` partition (`None`: not there, or unreadable).
pub(super) fn read_message(part: &PartitionHandle, id: u64) -> Option<Stored> {
    let v = part.get(id.to_be_bytes()).ok()??;
    record::decode_message(&v).ok()
}

impl Scan {
    fn problem(&mut self, part: &str, key: &[u8], what: impl std::fmt::Display) {
        self.problems.push(Problem {
            partition: part.to_owned(),
            key: key.to_vec(),
            what: what.to_string(),
        });
    }

    /// Decodes each record of `p` with `f`, listing those it refuses.
    fn each(
        &mut self,
        parts: &Parts,
        p: Part,
        mut f: impl FnMut(&mut Scan, &[u8], &[u8]) -> Result<(), RecordError>,
    ) -> Result<(), fjall::Error> {
        // One record at a time: the partition may be far larger than memory.
        let mut n = 0;
        for kv in parts.get(p).iter() {
            let (k, v) = kv?;
            n += 1;
            if let Err(e) = f(self, &k, &v) {
                self.problem(p.name(), &k, e);
            }
        }
        self.counts.push((p.name(), n));
        Ok(())
    }
}

/// Reads every record.
pub(super) fn scan(parts: &Parts) -> Result<Scan, fjall::Error> {
    let mut s = Scan::default();
    s.each(parts, Part::Sessions, |s, k, v| {
        let id = std::str::from_utf8(k).map_err(|_| RecordError::Utf8)?;
        s.metas.insert(id.to_owned(), record::decode_meta(v)?);
        Ok(())
    })?;
    s.each(parts, Part::Messages, |s, k, v| {
        let id = <[u8; 8]>::try_from(k).map_err(|_| RecordError::Invalid("key"))?;
        let (m, expires_at) = record::decode_message(v)?;
        let info = MsgInfo {
            expires_at,
            weight: m.topic.len() + m.payload.len(),
        };
        s.messages.insert(u64::from_be_bytes(id), info);
        Ok(())
    })?;
    s.each(parts, Part::Queue, |s, k, v| {
        let (id, seq) = record::split_key::<8>(k)?;
        let e = record::decode_entry(v)?;
        s.queues
            .entry(id)
            .or_default()
            .push((u64::from_be_bytes(seq), e));
        Ok(())
    })?;
    s.each(parts, Part::Inflight, |s, k, v| {
        let (id, pkid) = record::split_key::<2>(k)?;
        let (order, e) = record::decode_inflight(v)?;
        s.inflight
            .entry(id)
            .or_default()
            .push((u16::from_be_bytes(pkid), order, e));
        Ok(())
    })?;
    s.each(parts, Part::Qos2, |s, k, v| {
        let (id, pkid) = record::split_key::<2>(k)?;
        record::decode_marker(v)?;
        s.qos2.entry(id).or_default().push(u16::from_be_bytes(pkid));
        Ok(())
    })?;
    s.each(parts, Part::Retained, |s, k, v| {
        let (ts, origin, m, at) = record::decode_retained(v)?;
        if k != m.topic.as_bytes() {
            return Err(RecordError::Invalid(
                "retained key (not the message's topic)",
            ));
        }
        let stamp = Stamp {
            ts,
            origin: Arc::from(origin),
        };
        s.retained.push(((m, at), stamp));
        Ok(())
    })?;
    if let Some(v) = parts.info.get(INFO_LAST_WRITE)? {
        match record::Dec::new(&v).and_then(|mut d| {
            let t = d.time()?;
            d.end().map(|()| t)
        }) {
            Ok(t) => s.last_write = Some(t),
            Err(e) => s.problem("info", INFO_LAST_WRITE.as_bytes(), e),
        }
    }
    check_references(&mut s);
    Ok(s)
}

/// Lists (and takes out of the scan) the entries of sessions that are not stored and those
/// naming messages that are not stored; lists the messages nothing names.
fn check_references(s: &mut Scan) {
    let mut named: HashMap<u64, u32> = HashMap::new();
    let mut found = Vec::new();
    let metas = &s.metas;
    let messages = &s.messages;
    let session_gone = |id: &str| !metas.contains_key(id);
    let msg_gone = |m: u64| !messages.contains_key(&m);
    for (id, q) in &mut s.queues {
        q.retain(|(seq, e)| {
            let key = record::session_key(id, &seq.to_be_bytes());
            let why = if session_gone(id) {
                "an entry of a session that is not stored".to_owned()
            } else if msg_gone(e.msg) {
                format!("names message {}, which is not stored", e.msg)
            } else {
                *named.entry(e.msg).or_default() += 1;
                return true;
            };
            found.push(Problem::new(Part::Queue.name(), key, why));
            false
        });
    }
    for (id, f) in &mut s.inflight {
        f.retain(|(pkid, _, e)| {
            let key = record::session_key(id, &pkid.to_be_bytes());
            let why = if session_gone(id) {
                "an entry of a session that is not stored".to_owned()
            } else if let Some(m) = e.as_ref().map(|e| e.msg).filter(|&m| msg_gone(m)) {
                format!("names message {m}, which is not stored")
            } else {
                if let Some(e) = e {
                    *named.entry(e.msg).or_default() += 1;
                }
                return true;
            };
            found.push(Problem::new(Part::Inflight.name(), key, why));
            false
        });
    }
    for (id, ids) in &mut s.qos2 {
        if session_gone(id) {
            for pkid in ids.drain(..) {
                let key = record::session_key(id, &pkid.to_be_bytes());
                let why = "an entry of a session that is not stored";
                found.push(Problem::new(Part::Qos2.name(), key, why));
            }
        }
    }
    s.problems.extend(found);
    let mut orphans: Vec<u64> = s
        .messages
        .keys()
        .filter(|m| !named.contains_key(m))
        .copied()
        .collect();
    orphans.sort_unstable();
    s.orphans = orphans;
}

fn delivery(e: &Entry, m: &Stored) -> RecoveredDelivery {
    RecoveredDelivery {
        message: RecoveredMessage {
            // The store's id: sessions that held one message share it again in memory.
            id: Some(e.msg),
            message: m.0.clone(),
            expires_at: m.1,
        },
        qos: e.qos,
        retain: e.retain,
        sub_ids: e.sub_ids.clone(),
    }
}

/// Messages read back on open, each once however many entries name it.
struct Reader<'a> {
    read: &'a dyn Fn(u64) -> Option<Stored>,
    cache: HashMap<u64, Stored>,
}

impl Reader<'_> {
    fn get(&mut self, id: u64) -> Option<&Stored> {
        if !self.cache.contains_key(&id) {
            let m = (self.read)(id)?;
            self.cache.insert(id, m);
        }
        self.cache.get(&id)
    }
}

/// What a clean scan holds, as of `now`: the sessions and retained messages, the writer's
/// mirror, and the writes that purge expired queue entries and unnamed messages. `read`
/// reads a message (in-flight ones, and queued ones unless `paged`); with `paged` the
/// queued deliveries are left on disk and only counted (`RecoveredSession::on_disk`).
pub(super) fn recover(
    mut s: Scan,
    now: SystemTime,
    paged: bool,
    read: &dyn Fn(u64) -> Option<Stored>,
) -> (Recovered, Mirror, Vec<Op>) {
    let mut reader = Reader {
        read,
        cache: HashMap::new(),
    };
    let mut out = Recovered::default();
    let mut mirror = Mirror::default();
    let mut purge = Vec::new();
    let mut counts: HashMap<u64, u32> = HashMap::new();
    let expired = |m: &MsgInfo| m.expires_at.is_some_and(|at| at <= now);
    let metas = std::mem::take(&mut s.metas);
    for (id, meta) in metas {
        let mut sm = SessionMirror::default();
        let mut rs = RecoveredSession {
            client_id: id.clone(),
            expiry: meta.expiry,
            offline_since: if meta.attached {
                Some(s.last_write.unwrap_or(now))
            } else {
                meta.offline_since
            },
            subscriptions: meta.subscriptions.clone(),
            will: meta.will.clone(),
            username: meta.username.clone(),
            ..RecoveredSession::default()
        };
        let entries = s.queues.remove(&id).unwrap_or_default();
        let mut next = entries.last().map_or(0, |(seq, _)| seq + 1);
        let mut kept = Vec::new();
        for (seq, e) in entries {
            let Some(m) = s.messages.get(&e.msg) else {
                continue;
            };
            if expired(m) {
                purge.push(Op::delete(
                    Part::Queue,
                    record::session_key(&id, &seq.to_be_bytes()),
                ));
                continue;
            }
            kept.push((seq, e));
        }
        // Sent order: the queue, then the backlog. The broker rebuilds one queue from
        // `queue`, so backlog entries become queue entries behind the rest, under new
        // sequence numbers (past every sequence and send order of the session) that keep
        // that order on disk too.
        let (queue, backlog): (Vec<_>, Vec<_>) = kept.into_iter().partition(|(_, e)| !e.backlog);
        if let Some(fl) = s.inflight.get(&id) {
            next = fl.iter().map(|(_, o, _)| o + 1).fold(next, u64::max);
        }
        let mut ordered = queue;
        for (old, mut e) in backlog {
            purge.push(Op::delete(
                Part::Queue,
                record::session_key(&id, &old.to_be_bytes()),
            ));
            e.backlog = false;
            let key = record::session_key(&id, &next.to_be_bytes());
            purge.push(Op::put(Part::Queue, key, record::encode_entry(&e)));
            ordered.push((next, e));
            next += 1;
        }
        for (seq, e) in ordered {
            let Some(info) = s.messages.get(&e.msg) else {
                continue;
            };
            if paged {
                rs.on_disk.push((info.weight, e.qos));
            } else {
                let Some(m) = reader.get(e.msg) else {
                    continue;
                };
                rs.queue.push(delivery(&e, m));
            }
            *counts.entry(e.msg).or_default() += 1;
            sm.queue.push_back((seq, e));
        }
        let mut fl = s.inflight.remove(&id).unwrap_or_default();
        fl.sort_by_key(|&(_, order, _)| order);
        for (pkid, order, e) in fl {
            next = next.max(order + 1);
            let d = e.as_ref().and_then(|e| {
                let m = reader.get(e.msg)?;
                *counts.entry(e.msg).or_default() += 1;
                Some(delivery(e, m))
            });
            rs.inflight.push(RecoveredInflight { pkid, delivery: d });
            sm.inflight.insert(pkid, (order, e.map(|e| e.msg)));
        }
        let mut q2 = s.qos2.remove(&id).unwrap_or_default();
        q2.sort_unstable();
        sm.qos2 = q2.iter().copied().collect();
        rs.incoming_qos2 = q2;
        sm.next_seq = next;
        sm.meta = meta;
        mirror.sessions.insert(id, sm);
        out.sessions.push(rs);
    }
    let mut ids: Vec<u64> = s.messages.keys().copied().collect();
    ids.sort_unstable();
    mirror.next_msg = ids.last().map_or(0, |m| m + 1);
    for id in ids {
        match counts.get(&id) {
            Some(&count) => {
                mirror.messages.insert(
                    id,
                    MsgRef {
                        count,
                        live: None,
                        unwritten: None,
                        watchers: Vec::new(),
                    },
                );
            }
            None => purge.push(Op::delete(Part::Messages, id.to_be_bytes().to_vec())),
        }
    }
    for ((m, at), stamp) in s.retained {
        if at.is_some_and(|at| at <= now) {
            purge.push(Op::delete(Part::Retained, m.topic.as_bytes().to_vec()));
            continue;
        }
        let rm = RecoveredMessage {
            id: None,
            message: m,
            expires_at: at,
        };
        out.retained.push((rm, stamp));
    }
    (out, mirror, purge)
}
