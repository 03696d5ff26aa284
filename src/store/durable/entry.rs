//! The records of queued and in-flight deliveries (the `queue` and `inflight` partitions):
//! the [`Entry`] naming a stored message and what the delivery adds to it, the [`Facts`] a
//! queue record keeps of its message so that opening the store reads none, and the
//! consumer group a delivery was handed to this session by. Later fields are appended at the
//! end of a record, so records written before them still read.

use std::sync::Arc;
use std::time::SystemTime;

use super::record::{Dec, Enc, RecordError};
use crate::codec::QoS;
use crate::message::Message;
use crate::topic::GroupKey;

/// One queued (or in-flight, not yet PUBREC'd) delivery: the message id and what the
/// delivery adds to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Queued in the backlog (a retained message of a new subscription), not the queue.
    pub backlog: bool,
    pub msg: u64,
    pub qos: QoS,
    pub retain: bool,
    pub sub_ids: Vec<u32>,
    /// The consumer group it was handed to this session by: if the session ends before
    /// its client has it, the router hands it to another member.
    pub group: Option<Arc<GroupKey>>,
}

fn put_entry(e: &mut Enc, x: &Entry) {
    e.flag(x.backlog);
    e.u64(x.msg);
    e.u8(x.qos as u8);
    e.flag(x.retain);
    e.u32(x.sub_ids.len() as u32);
    for &id in &x.sub_ids {
        e.u32(id);
    }
}

fn get_entry(d: &mut Dec<'_>) -> Result<Entry, RecordError> {
    let backlog = d.flag()?;
    let msg = d.u64()?;
    let qos = d.qos()?;
    let retain = d.flag()?;
    let n = d.count(4)?;
    let mut sub_ids = Vec::with_capacity(n);
    for _ in 0..n {
        sub_ids.push(d.u32()?);
    }
    Ok(Entry {
        backlog,
        msg,
        qos,
        retain,
        sub_ids,
        group: None,
    })
}

/// The group of an entry, written last in its record (records from before read as none).
fn put_group(e: &mut Enc, g: Option<&GroupKey>) {
    if let Some(g) = g {
        e.str(&g.group);
        e.str(&g.filter);
    }
}

fn get_group(d: &mut Dec<'_>) -> Result<Option<Arc<GroupKey>>, RecordError> {
    if d.is_empty() {
        return Ok(None);
    }
    let group = Arc::from(d.string()?);
    let filter = Arc::from(d.string()?);
    Ok(Some(Arc::new(GroupKey { group, filter })))
}

/// What a queue record carries of its message besides the id, so that opening the store
/// reads no message (see `load.rs`): the message's weight (topic and payload bytes) and its
/// wall-clock expiry. Written after the entry; a record written before it reads back as
/// `None`, and open reads that one's message instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub weight: u32,
    pub expires_at: Option<SystemTime>,
}

impl Facts {
    pub fn of(m: &Message, expires_at: Option<SystemTime>) -> Facts {
        let weight = m.topic.len() + m.payload.len();
        Facts {
            weight: u32::try_from(weight).unwrap_or(u32::MAX),
            expires_at,
        }
    }
}

/// A value of the `queue` partition: the entry, its message's facts, then its group.
pub fn encode_queued(x: &Entry, f: &Facts) -> Vec<u8> {
    let mut e = Enc::new();
    put_entry(&mut e, x);
    e.u32(f.weight);
    e.flag(f.expires_at.is_some());
    if let Some(t) = f.expires_at {
        e.time(t);
    }
    put_group(&mut e, x.group.as_deref());
    e.0
}

pub fn decode_queued(b: &[u8]) -> Result<(Entry, Option<Facts>), RecordError> {
    let mut d = Dec::new(b)?;
    let mut x = get_entry(&mut d)?;
    let facts = if d.is_empty() {
        None
    } else {
        let weight = d.u32()?;
        let expires_at = if d.flag()? { Some(d.time()?) } else { None };
        Some(Facts { weight, expires_at })
    };
    x.group = get_group(&mut d)?;
    d.end()?;
    Ok((x, facts))
}

/// A value of the `inflight` partition: the order sent, and the delivery (`None` once the
/// PUBREC arrived: PUBREL sent).
pub fn encode_inflight(order: u64, x: Option<&Entry>) -> Vec<u8> {
    let mut e = Enc::new();
    e.u64(order);
    e.flag(x.is_some());
    if let Some(x) = x {
        put_entry(&mut e, x);
        put_group(&mut e, x.group.as_deref());
    }
    e.0
}

pub fn decode_inflight(b: &[u8]) -> Result<(u64, Option<Entry>), RecordError> {
    let mut d = Dec::new(b)?;
    let order = d.u64()?;
    let x = if d.flag()? {
        let mut x = get_entry(&mut d)?;
        x.group = get_group(&mut d)?;
        Some(x)
    } else {
        None
    };
    d.end()?;
    Ok((order, x))
}
