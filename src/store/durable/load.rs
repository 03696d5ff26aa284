//! Reading the store back: every record decoded ([`scan`]), what cannot be read or names
//! what is not there listed as a [`Problem`], and the rest turned into [`Recovered`] and the
//! writer's [`Mirror`] ([`recover`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use fjall::PartitionHandle;

use super::check::Problem;
use super::mirror::{Mirror, Op, SessionMirror};
use super::record::{self, Entry, Facts, Meta, RecordError};
use super::{Part, Parts, INFO_LAST_WRITE};
use crate::message::Message;
use crate::store::{
    Recovered, RecoveredDelivery, RecoveredInflight, RecoveredMessage, RecoveredSession, Stamp,
};

/// A stored message and its wall-clock expiry.
type Stored = (Message, Option<SystemTime>);

/// The stored messages' ids, ascending: eight bytes a message and a binary search, since
/// a check may index millions.
#[derive(Debug, Default)]
pub(super) struct MsgIndex {
    ids: Vec<u64>,
}

impl MsgIndex {
    /// The position of message `id`.
    pub fn find(&self, id: u64) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Everything read, and what could not be.
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub metas: BTreeMap<String, Meta>,
    /// Per session, (sequence, entry, its message's facts) in sequence order.
    pub queues: HashMap<String, Vec<(u64, Entry, Option<Facts>)>>,
    /// Per session, (pkid, order sent, entry until PUBREC).
    pub inflight: HashMap<String, Vec<(u16, u64, Option<Entry>)>>,
    pub qos2: HashMap<String, Vec<u16>>,
    /// Per session, (record number, filter, grant) as read.
    pub subs: HashMap<String, Vec<(u64, String, crate::session::Grant)>>,
    /// The `messages` partition, when the scan read it (`store check`; open does not).
    pub messages: Option<MsgIndex>,
    /// The highest message id in the store or named by an entry: new ids start above it.
    pub last_msg: Option<u64>,
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

/// Reads every record; with `messages` false, every record but the messages themselves
/// (what opening the store does: its time and memory then do not grow with the bytes
/// queued; a queued message that turns out missing is found, logged and counted when it is
/// read back, and `supermq store check` finds it ahead of time).
pub(super) fn scan(parts: &Parts, messages: bool) -> Result<Scan, fjall::Error> {
    let mut s = Scan::default();
    let mut last = parts
        .get(Part::Messages)
        .last_key_value()?
        .and_then(|(k, _)| <[u8; 8]>::try_from(&*k).ok())
        .map(u64::from_be_bytes);
    s.each(parts, Part::Sessions, |s, k, v| {
        let id = std::str::from_utf8(k).map_err(|_| RecordError::Utf8)?;
        s.metas.insert(id.to_owned(), record::decode_meta(v)?);
        Ok(())
    })?;
    if messages {
        let mut ids = Vec::new();
        s.each(parts, Part::Messages, |_, k, v| {
            let id = <[u8; 8]>::try_from(k).map_err(|_| RecordError::Invalid("key"))?;
            record::decode_message(v)?;
            ids.push(u64::from_be_bytes(id));
            Ok(())
        })?;
        // The partition yields its keys in order (big-endian ids); sorted anyway, since
        // the binary search depends on it.
        ids.sort_unstable();
        ids.dedup();
        s.messages = Some(MsgIndex { ids });
    }
    s.each(parts, Part::Queue, |s, k, v| {
        let (id, seq) = record::split_key::<8>(k)?;
        let (e, facts) = record::decode_queued(v)?;
        last = last.max(Some(e.msg));
        s.queues
            .entry(id)
            .or_default()
            .push((u64::from_be_bytes(seq), e, facts));
        Ok(())
    })?;
    s.each(parts, Part::Inflight, |s, k, v| {
        let (id, pkid) = record::split_key::<2>(k)?;
        let (order, e) = record::decode_inflight(v)?;
        last = last.max(e.as_ref().map(|e| e.msg));
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
    s.each(parts, Part::Subscriptions, |s, k, v| {
        let (id, n) = record::split_key::<8>(k)?;
        let (filter, grant) = record::decode_sub(v)?;
        let n = u64::from_be_bytes(n);
        s.subs.entry(id).or_default().push((n, filter, grant));
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
    s.last_msg = last;
    check_references(&mut s);
    Ok(s)
}

/// Lists (and takes out of the scan) the entries of sessions that are not stored and those
/// naming messages that are not stored; lists the messages nothing names.
fn check_references(s: &mut Scan) {
    // Per message (by its place in the index), whether any entry names it.
    let mut named = vec![false; s.messages.as_ref().map_or(0, MsgIndex::len)];
    let mut found = Vec::new();
    let metas = &s.metas;
    let messages = s.messages.as_ref();
    let session_gone = |id: &str| !metas.contains_key(id);
    // Where message `m` is in the index: `Err(())` if it is not there; `Ok(None)` when the
    // scan did not read the messages.
    let find = |m: u64| match messages {
        None => Ok(None),
        Some(ix) => ix.find(m).map(Some).ok_or(()),
    };
    for (id, q) in &mut s.queues {
        let gone = session_gone(id);
        q.retain(|(seq, e, _)| {
            let why = match find(e.msg) {
                _ if gone => "an entry of a session that is not stored".to_owned(),
                Err(()) => format!("names message {}, which is not stored", e.msg),
                Ok(i) => {
                    if let Some(i) = i {
                        named[i] = true;
                    }
                    return true;
                }
            };
            let key = record::session_key(id, &seq.to_be_bytes());
            found.push(Problem::new(Part::Queue.name(), key, why));
            false
        });
    }
    for (id, f) in &mut s.inflight {
        let gone = session_gone(id);
        f.retain(|(pkid, _, e)| {
            let why = match e.as_ref().map(|e| (e.msg, find(e.msg))) {
                _ if gone => "an entry of a session that is not stored".to_owned(),
                Some((m, Err(()))) => format!("names message {m}, which is not stored"),
                Some((_, Ok(i))) => {
                    if let Some(i) = i {
                        named[i] = true;
                    }
                    return true;
                }
                None => return true,
            };
            let key = record::session_key(id, &pkid.to_be_bytes());
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
    for (id, subs) in &mut s.subs {
        if session_gone(id) {
            for (n, _, _) in subs.drain(..) {
                let key = record::session_key(id, &n.to_be_bytes());
                let why = "a subscription of a session that is not stored";
                found.push(Problem::new(Part::Subscriptions.name(), key, why));
            }
        }
    }
    s.problems.extend(found);
    if let Some(ix) = &s.messages {
        s.orphans = ix
            .ids
            .iter()
            .zip(&named)
            .filter(|(_, &n)| !n)
            .map(|(&m, _)| m)
            .collect();
    }
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
        group: e.group.clone(),
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

/// Session `id`'s subscriptions in the order subscribed, from its `subscriptions` records
/// and, for a session record written before those existed, from the session record: those
/// are moved to records of their own now (and the session record written without them), so
/// a later change writes one record, not the whole list.
fn subscriptions(
    id: &str,
    meta: &mut Meta,
    s: &mut Scan,
    sm: &mut SessionMirror,
    purge: &mut Vec<Op>,
) -> Vec<(String, crate::session::Grant)> {
    let mut recs = s.subs.remove(id).unwrap_or_default();
    recs.sort_unstable_by_key(|r| r.0);
    sm.next_sub = recs.last().map_or(0, |r| r.0 + 1);
    let mut out = Vec::with_capacity(recs.len() + meta.subscriptions.len());
    for (n, filter, grant) in recs {
        sm.subs.insert(filter.clone(), n);
        out.push((filter, grant));
    }
    let inline = std::mem::take(&mut meta.subscriptions);
    if inline.is_empty() {
        return out;
    }
    for (filter, grant) in inline {
        if sm.subs.contains_key(&filter) {
            continue;
        }
        let n = sm.next_sub;
        sm.next_sub += 1;
        let key = record::session_key(id, &n.to_be_bytes());
        purge.push(Op::create(
            Part::Subscriptions,
            key,
            record::encode_sub(&filter, &grant),
        ));
        sm.subs.insert(filter.clone(), n);
        out.push((filter, grant));
    }
    // In the same batch as the records above: a crash keeps both or neither.
    purge.push(Op::put(
        Part::Sessions,
        id.as_bytes().to_vec(),
        record::encode_meta(meta),
    ));
    out
}

/// What a clean scan holds, as of `now`: the sessions and retained messages, the writer's
/// mirror, and the writes that purge expired queue entries and the messages only they
/// named. `read` reads a message (in-flight ones, queued ones unless `paged`, and those of
/// queue records written without their facts); with `paged` the queued deliveries are
/// left on disk and only counted (`RecoveredSession::on_disk`), so open reads no queued
/// message.
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
    // Messages named by a purged entry: deleted below if no kept entry names them.
    let mut let_go = Vec::new();
    let metas = std::mem::take(&mut s.metas);
    for (id, mut meta) in metas {
        let mut sm = SessionMirror::default();
        let subscriptions = subscriptions(&id, &mut meta, &mut s, &mut sm, &mut purge);
        let mut rs = RecoveredSession {
            client_id: id.clone(),
            expiry: meta.expiry,
            offline_since: if meta.attached {
                Some(s.last_write.unwrap_or(now))
            } else {
                meta.offline_since
            },
            subscriptions,
            will: meta.will.clone(),
            username: meta.username.clone(),
            ..RecoveredSession::default()
        };
        let entries = s.queues.remove(&id).unwrap_or_default();
        let mut next = entries.last().map_or(0, |(seq, _, _)| seq + 1);
        let mut kept = Vec::new();
        for (seq, e, facts) in entries {
            // A record written before queue records carried their facts: read its message.
            let facts = facts.or_else(|| read(e.msg).map(|(m, at)| Facts::of(&m, at)));
            let Some(f) = facts else {
                // Its message is missing: left for `supermq store check` to report.
                continue;
            };
            if f.expires_at.is_some_and(|at| at <= now) {
                let key = record::session_key(&id, &seq.to_be_bytes());
                purge.push(Op::delete(Part::Queue, key));
                let_go.push(e.msg);
                continue;
            }
            kept.push((seq, e, f));
        }
        // Sent order: the queue, then the backlog. The broker rebuilds one queue from
        // `queue`, so backlog entries become queue entries behind the rest, under new
        // sequence numbers (past every sequence and send order of the session) that keep
        // that order on disk too.
        let (queue, backlog): (Vec<_>, Vec<_>) = kept.into_iter().partition(|(_, e, _)| !e.backlog);
        if let Some(fl) = s.inflight.get(&id) {
            next = fl.iter().map(|(_, o, _)| o + 1).fold(next, u64::max);
        }
        let mut ordered = queue;
        for (old, mut e, f) in backlog {
            purge.push(Op::delete(
                Part::Queue,
                record::session_key(&id, &old.to_be_bytes()),
            ));
            e.backlog = false;
            let key = record::session_key(&id, &next.to_be_bytes());
            purge.push(Op::put(Part::Queue, key, record::encode_queued(&e, &f)));
            ordered.push((next, e, f));
            next += 1;
        }
        sm.queue.reserve_exact(ordered.len());
        for (seq, e, f) in ordered {
            if paged {
                rs.on_disk.push((f.weight as usize, e.qos));
            } else {
                let Some(m) = reader.get(e.msg) else {
                    continue;
                };
                rs.queue.push(delivery(&e, m));
            }
            *mirror.msgs.counts.entry(e.msg).or_default() += 1;
            sm.queue.push_back((seq, e));
        }
        let mut fl = s.inflight.remove(&id).unwrap_or_default();
        fl.sort_by_key(|&(_, order, _)| order);
        for (pkid, order, e) in fl {
            next = next.max(order + 1);
            let d = e.as_ref().and_then(|e| {
                let m = reader.get(e.msg)?;
                Some(delivery(e, m))
            });
            if let Some(e) = e.as_ref().filter(|_| d.is_some()) {
                *mirror.msgs.counts.entry(e.msg).or_default() += 1;
            }
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
    mirror.msgs.next = s.last_msg.map_or(0, |m| m + 1);
    let_go.sort_unstable();
    let_go.dedup();
    for m in let_go.into_iter().chain(s.orphans) {
        if !mirror.msgs.counts.contains_key(&m) {
            purge.push(Op::delete(Part::Messages, m.to_be_bytes().to_vec()));
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
