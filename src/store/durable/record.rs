//! The binary encoding of every record the durable store keeps (format version 1; see the
//! module docs of `store::durable` for the layout of each partition).
//!
//! Every value starts with [`VERSION`]. Integers are big-endian; strings and byte strings are
//! a `u32` length then the bytes, each length checked against what is left before anything is
//! allocated; an optional field is a presence byte (0 or 1) then the field. Properties are
//! written field by field as (identifier, value) pairs, with the identifiers of MQTT 5.0
//! table 2-4. Decoding never panics: anything it cannot read is a [`RecordError`].

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::codec::{
    LastWill, PayloadFormat, Properties, PropertyValues, QoS, RetainHandling, SubscriptionOptions,
};
use crate::message::Message;
use crate::session::Grant;

/// The first byte of every record.
pub const VERSION: u8 = 1;

/// The store's layout, kept in the `info` partition (every record still starts with
/// [`VERSION`]). 2: subscriptions have records of their own (`subscriptions` partition),
/// which a build reading layout 1 would not see: it refuses the store instead of losing
/// them. A layout 1 store is read as it is and marked 2 on open.
pub const FORMAT: u8 = 2;

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("empty record")]
    Empty,
    #[error("unknown record format version {0} (this build reads version {VERSION})")]
    Version(u8),
    #[error("record ends early")]
    Truncated,
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("string is not UTF-8")]
    Utf8,
    #[error("{0} bytes left over after the record")]
    Trailing(usize),
}

/// A record being written.
#[derive(Debug, Default)]
pub struct Enc(pub Vec<u8>);

impl Enc {
    pub fn new() -> Enc {
        Enc::with_capacity(0)
    }
    /// Room for `n` bytes after the version: a message record is written once, at its full
    /// size, instead of growing through the doublings of its payload's size.
    pub fn with_capacity(n: usize) -> Enc {
        let mut v = Vec::with_capacity(1 + n);
        v.push(VERSION);
        Enc(v)
    }
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        // Nothing the broker holds comes near 4 GiB (the MQTT packet limit is 256 MiB).
        self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.0.extend_from_slice(b);
    }
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    pub fn flag(&mut self, b: bool) {
        self.u8(u8::from(b));
    }
    pub fn time(&mut self, t: SystemTime) {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.duration(d);
    }
    pub fn duration(&mut self, d: Duration) {
        self.u64(d.as_secs());
        self.u32(d.subsec_nanos());
    }
}

/// A record being read.
#[derive(Debug)]
pub struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    /// Checks the version byte and reads what follows.
    pub fn new(b: &'a [u8]) -> Result<Dec<'a>, RecordError> {
        match b.split_first() {
            None => Err(RecordError::Empty),
            Some((&VERSION, rest)) => Ok(Dec(rest)),
            Some((&v, _)) => Err(RecordError::Version(v)),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if n > self.0.len() {
            return Err(RecordError::Truncated);
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], RecordError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub fn string(&mut self) -> Result<String, RecordError> {
        let b = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| RecordError::Utf8)
    }
    pub fn flag(&mut self) -> Result<bool, RecordError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RecordError::Invalid("flag")),
        }
    }
    pub fn qos(&mut self) -> Result<QoS, RecordError> {
        QoS::from_u8(self.u8()?).ok_or(RecordError::Invalid("QoS"))
    }
    pub fn duration(&mut self) -> Result<Duration, RecordError> {
        let secs = self.u64()?;
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return Err(RecordError::Invalid("nanoseconds"));
        }
        Ok(Duration::new(secs, nanos))
    }
    pub fn time(&mut self) -> Result<SystemTime, RecordError> {
        UNIX_EPOCH
            .checked_add(self.duration()?)
            .ok_or(RecordError::Invalid("time"))
    }
    /// A count of items that each take at least `min` bytes: bounded by what is left.
    pub fn count(&mut self, min: usize) -> Result<usize, RecordError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min.max(1)) > self.0.len() {
            return Err(RecordError::Truncated);
        }
        Ok(n)
    }
    /// The end of the record: nothing may be left.
    /// Whether nothing is left to read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn end(self) -> Result<(), RecordError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(RecordError::Trailing(n)),
        }
    }
}

// Property identifiers (MQTT 5.0 table 2-4).
const P_FORMAT: u8 = 0x01;
const P_EXPIRY: u8 = 0x02;
const P_CONTENT_TYPE: u8 = 0x03;
const P_RESPONSE_TOPIC: u8 = 0x08;
const P_CORRELATION: u8 = 0x09;
const P_SUB_ID: u8 = 0x0B;
const P_WILL_DELAY: u8 = 0x18;
const P_USER: u8 = 0x26;

/// Writes the properties a message or a will carries: PUBLISH and will properties (the
/// only ones either holds), one (identifier, value) pair each, preceded by their count.
pub fn put_properties(e: &mut Enc, p: &Properties) {
    let Some(v) = p.values() else {
        e.u32(0);
        return;
    };
    let count = usize::from(v.payload_format_indicator.is_some())
        + usize::from(v.message_expiry_interval.is_some())
        + usize::from(v.content_type.is_some())
        + usize::from(v.response_topic.is_some())
        + usize::from(v.correlation_data.is_some())
        + v.subscription_identifiers.len()
        + usize::from(v.will_delay_interval.is_some())
        + v.user_properties.len();
    e.u32(count as u32);
    if let Some(f) = v.payload_format_indicator {
        e.u8(P_FORMAT);
        e.u8(f as u8);
    }
    if let Some(x) = v.message_expiry_interval {
        e.u8(P_EXPIRY);
        e.u32(x);
    }
    if let Some(s) = &v.content_type {
        e.u8(P_CONTENT_TYPE);
        e.str(s);
    }
    if let Some(s) = &v.response_topic {
        e.u8(P_RESPONSE_TOPIC);
        e.str(s);
    }
    if let Some(b) = &v.correlation_data {
        e.u8(P_CORRELATION);
        e.bytes(b);
    }
    for &id in &v.subscription_identifiers {
        e.u8(P_SUB_ID);
        e.u32(id);
    }
    if let Some(x) = v.will_delay_interval {
        e.u8(P_WILL_DELAY);
        e.u32(x);
    }
    for (k, val) in &v.user_properties {
        e.u8(P_USER);
        e.str(k);
        e.str(val);
    }
}

/// Reads what [`put_properties`] wrote.
pub fn get_properties(d: &mut Dec<'_>) -> Result<Properties, RecordError> {
    let n = d.count(2)?;
    let mut v = PropertyValues::default();
    for _ in 0..n {
        match d.u8()? {
            P_FORMAT => {
                v.payload_format_indicator = Some(match d.u8()? {
                    0 => PayloadFormat::Unspecified,
                    1 => PayloadFormat::Utf8,
                    _ => return Err(RecordError::Invalid("payload format")),
                })
            }
            P_EXPIRY => v.message_expiry_interval = Some(d.u32()?),
            P_CONTENT_TYPE => v.content_type = Some(d.string()?),
            P_RESPONSE_TOPIC => v.response_topic = Some(d.string()?),
            P_CORRELATION => v.correlation_data = Some(Bytes::copy_from_slice(d.bytes()?)),
            P_SUB_ID => v.subscription_identifiers.push(d.u32()?),
            P_WILL_DELAY => v.will_delay_interval = Some(d.u32()?),
            P_USER => {
                let k = d.string()?;
                let val = d.string()?;
                v.user_properties.push((k, val));
            }
            _ => return Err(RecordError::Invalid("property identifier")),
        }
    }
    Ok(Properties::from(v))
}

/// Message body: topic, payload, qos, retain, expiry deadline, properties.
fn put_message_body(e: &mut Enc, m: &Message, expires_at: Option<SystemTime>) {
    e.str(&m.topic);
    e.bytes(&m.payload);
    e.u8(m.qos as u8);
    e.flag(m.retain);
    e.flag(expires_at.is_some());
    if let Some(t) = expires_at {
        e.time(t);
    }
    put_properties(e, &m.properties);
}

fn get_message_body(d: &mut Dec<'_>) -> Result<(Message, Option<SystemTime>), RecordError> {
    let topic = d.string()?;
    let payload = Bytes::copy_from_slice(d.bytes()?);
    let qos = d.qos()?;
    let retain = d.flag()?;
    let expires_at = if d.flag()? { Some(d.time()?) } else { None };
    let properties = get_properties(d)?;
    let m = Message {
        topic,
        payload,
        qos,
        retain,
        properties,
        expires: None,
        routed: None,
    };
    Ok((m, expires_at))
}

/// The wall-clock deadline of a message's `Instant` expiry.
pub fn wall_expiry(m: &Message) -> Option<SystemTime> {
    m.expires.map(|at| {
        let left = at.saturating_duration_since(std::time::Instant::now());
        SystemTime::now() + left
    })
}

/// About the bytes of a message record but its properties: the topic and payload with their
/// lengths, QoS, flags and expiry.
fn message_size(m: &Message) -> usize {
    m.topic.len() + m.payload.len() + 32
}

/// A value of the `messages` partition.
pub fn encode_message(m: &Message) -> Vec<u8> {
    let mut e = Enc::with_capacity(message_size(m));
    put_message_body(&mut e, m, wall_expiry(m));
    e.0
}

pub fn decode_message(b: &[u8]) -> Result<(Message, Option<SystemTime>), RecordError> {
    let mut d = Dec::new(b)?;
    let m = get_message_body(&mut d)?;
    d.end()?;
    Ok(m)
}

/// A value of the `retained` partition: the stamp, then the message.
pub fn encode_retained(m: &Message, ts: u64, origin: &str) -> Vec<u8> {
    let mut e = Enc::with_capacity(message_size(m) + 12 + origin.len());
    e.u64(ts);
    e.str(origin);
    put_message_body(&mut e, m, wall_expiry(m));
    e.0
}

#[allow(clippy::type_complexity)]
pub fn decode_retained(
    b: &[u8],
) -> Result<(u64, String, Message, Option<SystemTime>), RecordError> {
    let mut d = Dec::new(b)?;
    let ts = d.u64()?;
    let origin = d.string()?;
    let (m, at) = get_message_body(&mut d)?;
    d.end()?;
    Ok((ts, origin, m, at))
}

pub fn put_will(e: &mut Enc, w: &LastWill) {
    e.str(&w.topic);
    e.bytes(&w.payload);
    e.u8(w.qos as u8);
    e.flag(w.retain);
    put_properties(e, &w.properties);
}

pub fn get_will(d: &mut Dec<'_>) -> Result<LastWill, RecordError> {
    Ok(LastWill {
        topic: d.string()?,
        payload: Bytes::copy_from_slice(d.bytes()?),
        qos: d.qos()?,
        retain: d.flag()?,
        properties: get_properties(d)?,
    })
}

/// The subscription options byte as MQTT 5 lays it out (§3.8.3.1).
pub fn options_byte(o: &SubscriptionOptions) -> u8 {
    o.qos as u8
        | u8::from(o.no_local) << 2
        | u8::from(o.retain_as_published) << 3
        | (o.retain_handling as u8) << 4
}

pub fn options_from(b: u8) -> Result<SubscriptionOptions, RecordError> {
    if b & 0xC0 != 0 {
        return Err(RecordError::Invalid("subscription options"));
    }
    Ok(SubscriptionOptions {
        qos: QoS::from_u8(b & 3).ok_or(RecordError::Invalid("QoS"))?,
        no_local: b & 4 != 0,
        retain_as_published: b & 8 != 0,
        retain_handling: match (b >> 4) & 3 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendAtSubscribeIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(RecordError::Invalid("retain handling")),
        },
    })
}

/// What the `sessions` partition keeps of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    pub expiry: Option<Duration>,
    /// Whether a connection served it at its last write.
    pub attached: bool,
    pub offline_since: Option<SystemTime>,
    pub will: Option<LastWill>,
    /// Filter → grant, in the order subscribed (a replaced one keeps its place). Written
    /// empty now (each subscription has a record of its own, see `encode_sub`); read from
    /// records written before.
    pub subscriptions: Vec<(String, Grant)>,
    /// The username of the connection that last served it. Written after the subscriptions
    /// (a record written before it was kept ends there, and reads as `None`).
    pub username: Option<String>,
}

pub fn encode_meta(m: &Meta) -> Vec<u8> {
    let mut e = Enc::new();
    e.flag(m.expiry.is_some());
    if let Some(x) = m.expiry {
        e.duration(x);
    }
    e.flag(m.attached);
    e.flag(m.offline_since.is_some());
    if let Some(t) = m.offline_since {
        e.time(t);
    }
    e.flag(m.will.is_some());
    if let Some(w) = &m.will {
        put_will(&mut e, w);
    }
    e.u32(m.subscriptions.len() as u32);
    for (filter, g) in &m.subscriptions {
        put_sub(&mut e, filter, g);
    }
    e.flag(m.username.is_some());
    if let Some(u) = &m.username {
        e.str(u);
    }
    e.0
}

/// One subscription: the filter, its options byte and its identifier (0: none). The same in
/// a `subscriptions` record and in a session record of the layout before.
fn put_sub(e: &mut Enc, filter: &str, g: &Grant) {
    e.str(filter);
    e.u8(options_byte(&g.options));
    e.u32(g.id.map_or(0, NonZeroU32::get));
}

fn get_sub(d: &mut Dec<'_>) -> Result<(String, Grant), RecordError> {
    let filter = d.string()?;
    let options = options_from(d.u8()?)?;
    let id = NonZeroU32::new(d.u32()?);
    Ok((filter, Grant { options, id }))
}

/// A value of the `subscriptions` partition: the filter and its grant.
pub fn encode_sub(filter: &str, g: &Grant) -> Vec<u8> {
    let mut e = Enc::with_capacity(filter.len() + 7);
    put_sub(&mut e, filter, g);
    e.0
}

pub fn decode_sub(b: &[u8]) -> Result<(String, Grant), RecordError> {
    let mut d = Dec::new(b)?;
    let sub = get_sub(&mut d)?;
    d.end()?;
    Ok(sub)
}

pub fn decode_meta(b: &[u8]) -> Result<Meta, RecordError> {
    let mut d = Dec::new(b)?;
    let expiry = if d.flag()? { Some(d.duration()?) } else { None };
    let attached = d.flag()?;
    let offline_since = if d.flag()? { Some(d.time()?) } else { None };
    let will = if d.flag()? {
        Some(get_will(&mut d)?)
    } else {
        None
    };
    let n = d.count(9)?;
    let mut subscriptions = Vec::with_capacity(n);
    for _ in 0..n {
        subscriptions.push(get_sub(&mut d)?);
    }
    let username = if d.is_empty() {
        None
    } else if d.flag()? {
        Some(d.string()?)
    } else {
        None
    };
    d.end()?;
    Ok(Meta {
        expiry,
        attached,
        offline_since,
        will,
        subscriptions,
        username,
    })
}

pub use super::entry::{
    decode_inflight, decode_queued, encode_inflight, encode_queued, Entry, Facts,
};

/// A value that only says "present" (the `qos2` partition).
pub fn encode_marker() -> Vec<u8> {
    vec![VERSION]
}

pub fn decode_marker(b: &[u8]) -> Result<(), RecordError> {
    Dec::new(b)?.end()
}

/// The longest key the engine takes (it stores a key's length in 16 bits, and asserts it).
pub const MAX_KEY: usize = u16::MAX as usize;

/// The longest client id a stored session may have: its longest key is the id, the
/// separator and an 8-byte queue sequence. MQTT allows ids up to 65,535 bytes; a longer one
/// than this is refused at CONNECT while the store is on (see `connection::connect`).
pub const MAX_CLIENT_ID: usize = MAX_KEY - 1 - 8;

/// `client_id 0x00 suffix`: the key of a per-session record. MQTT strings never hold U+0000
/// [MQTT-1.5.3-2], so the separator is unambiguous.
pub fn session_key(client_id: &str, suffix: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(client_id.len() + 1 + suffix.len());
    k.extend_from_slice(client_id.as_bytes());
    k.push(0);
    k.extend_from_slice(suffix);
    k
}

/// Splits a per-session key into the client id and a suffix of `N` bytes.
pub fn split_key<const N: usize>(k: &[u8]) -> Result<(String, [u8; N]), RecordError> {
    if k.len() < N + 1 || k[k.len() - N - 1] != 0 {
        return Err(RecordError::Invalid("key"));
    }
    let (id, rest) = k.split_at(k.len() - N - 1);
    let id = std::str::from_utf8(id).map_err(|_| RecordError::Utf8)?;
    let mut a = [0; N];
    a.copy_from_slice(&rest[1..]);
    Ok((id.to_owned(), a))
}
