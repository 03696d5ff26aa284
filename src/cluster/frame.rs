//! The route wire format: a pure, versioned encode/decode of the frames peers exchange.
//!
//! Every connection starts with the 4-byte magic `SMQR` and a version byte, so an MQTT client
//! (whose first byte is 0x10) or anything else on the route port is recognised at once and
//! closed. After that, each frame is `type (1 byte) | body length (varint) | body`. Strings
//! and byte fields are varint-length-prefixed. Unknown frame types are an error: a peer that
//! speaks another version is refused at the handshake rather than misread.
//!
//! Version 3 adds to message and retained frames the message's remaining expiry and its
//! MQTT 5 properties ([`props`], announced by bits of the QoS byte).

use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

use crate::codec::Properties;

#[path = "frame_props.rs"]
mod props;

/// Sent first on every route connection.
pub const MAGIC: &[u8; 4] = b"SMQR";
/// The protocol version this build speaks.
pub const VERSION: u8 = 3;
/// Largest frame body accepted (a retained snapshot travels as many frames, not one).
pub const MAX_FRAME: usize = 256 * 1024 * 1024 + 1024;
/// Largest frame body accepted during the handshake (INFO, AUTH, WELCOME), from a peer not
/// yet authenticated: those frames are a few hundred bytes, and a stranger declaring a huge
/// one must not make this node buffer [`MAX_FRAME`] bytes before it is even checked.
pub const MAX_HANDSHAKE_FRAME: usize = 4 * 1024;

/// A route frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Handshake: who the sender is.
    Info(Info),
    /// Handshake: HMAC-SHA256(secret, receiver's nonce ‖ sender node id), when a secret is set.
    Auth(Bytes),
    /// Handshake, accepting side to dialer: the link is registered here and kept. A link the
    /// acceptor refuses (a duplicate) is closed instead, before the dialer has used it.
    Welcome,
    Ping,
    Pong,
    /// The sender's local clients gained interest in `filter` (ref count 0 → 1).
    Sub(String),
    /// The sender's local clients lost interest in `filter` (ref count 1 → 0).
    Unsub(String),
    /// Everything sent before on this link has been applied when the peer answers `SyncAck`.
    Sync(u64),
    SyncAck(u64),
    /// A message published on the sender's node.
    Msg(RouteMsg),
    /// A retained message (or, with an empty payload, a deletion) for last-writer-wins merge.
    Retain(RetainEntry),
    /// A client with this id connected on the sender at `at` (µs since the Unix epoch): any
    /// other node closes its connection for the id if that one is older.
    Client {
        id: String,
        at: u64,
    },
    /// Another node the sender is linked to; the receiver dials it if it does not know it.
    Peer {
        node_id: String,
        addr: String,
    },
    /// The sender now has `weight` local members in consumer group (`group`, `filter`);
    /// 0 withdraws it.
    Group {
        group: String,
        filter: String,
        weight: u32,
    },
    /// Ends the snapshot a link starts with: interest the receiver still holds from the
    /// sender's previous link and that the snapshot did not repeat is withdrawn.
    SnapshotEnd,
}

/// The handshake information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub node_id: String,
    pub cluster: String,
    /// Address other nodes should dial to reach the sender's route listener.
    pub advertise: String,
    /// Random per process start: tells a link to self (same instance) from another node that
    /// was given the same node id (different instance).
    pub instance: u64,
    /// Random challenge for the secret proof.
    pub nonce: u64,
}

/// A forwarded publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMsg {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub retain: bool,
    /// Wall-clock milliseconds at the origin (retained last-writer-wins).
    pub ts: u64,
    /// Consumer groups (group, filter) whose member the sender chose on the receiver.
    pub groups: Vec<(String, String)>,
    /// Sent only for `groups`: the receiver skips ordinary delivery and the retained store.
    pub group_only: bool,
    /// Already handed on once after its chosen member left: not handed on again.
    pub redispatched: bool,
    /// Milliseconds left before the message expires, counted when the frame was made
    /// (the receiver counts from its arrival); 0: it never expires.
    pub expiry_ms: u64,
    /// The MQTT 5 properties that travel with the message (see [`props`]).
    pub properties: Properties,
}

/// A retained message as replicated between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainEntry {
    pub topic: String,
    pub payload: Bytes,
    pub qos: u8,
    pub ts: u64,
    pub origin: String,
    /// As [`RouteMsg::expiry_ms`].
    pub expiry_ms: u64,
    /// As [`RouteMsg::properties`].
    pub properties: Properties,
}

/// Why a route byte stream was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("not a supermq route peer (bad magic; an MQTT client on the route port?)")]
    BadMagic,
    #[error(
        "the peer speaks route protocol version {0} and this node speaks {VERSION}: run the \
         same supermq version on every node of the cluster"
    )]
    BadVersion(u8),
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(usize),
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

const T_INFO: u8 = 1;
const T_AUTH: u8 = 2;
const T_PING: u8 = 3;
const T_PONG: u8 = 4;
const T_SUB: u8 = 5;
const T_UNSUB: u8 = 6;
const T_SYNC: u8 = 7;
const T_SYNC_ACK: u8 = 8;
const T_MSG: u8 = 9;
const T_RETAIN: u8 = 10;
const T_CLIENT: u8 = 11;
const T_PEER: u8 = 12;
const T_GROUP: u8 = 13;
const T_SNAPSHOT_END: u8 = 14;
const T_WELCOME: u8 = 15;

const F_RETAIN: u8 = 0x10;
const F_GROUP_ONLY: u8 = 0x20;
const F_REDISPATCHED: u8 = 0x40;

/// Writes the connection preamble.
pub fn encode_preamble(out: &mut BytesMut) {
    out.put_slice(MAGIC);
    out.put_u8(VERSION);
}

/// Checks the preamble; `Ok(false)` means more bytes are needed.
pub fn decode_preamble(buf: &mut BytesMut) -> Result<bool, FrameError> {
    let n = buf.len().min(4);
    if buf[..n] != MAGIC[..n] {
        return Err(FrameError::BadMagic);
    }
    if buf.len() < 5 {
        return Ok(false);
    }
    if buf[4] != VERSION {
        return Err(FrameError::BadVersion(buf[4]));
    }
    buf.advance(5);
    Ok(true)
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Reads a varint from the front of `b`; `Ok(None)` when incomplete.
fn get_varint(b: &[u8]) -> Result<Option<(u64, usize)>, FrameError> {
    let mut v: u64 = 0;
    for (i, byte) in b.iter().enumerate() {
        if i == 10 {
            return Err(FrameError::Malformed("varint longer than 10 bytes"));
        }
        // The 10th byte holds bit 63 only: anything more would be shifted out unseen.
        if i == 9 && *byte > 1 {
            return Err(FrameError::Malformed("varint overflows 64 bits"));
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((v, i + 1)));
        }
    }
    Ok(None)
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.put_slice(b);
}

/// Appends one frame to `out`.
pub fn encode(f: &Frame, out: &mut BytesMut) {
    let mut body = BytesMut::new();
    let t = match f {
        Frame::Info(i) => {
            put_bytes(&mut body, i.node_id.as_bytes());
            put_bytes(&mut body, i.cluster.as_bytes());
            put_bytes(&mut body, i.advertise.as_bytes());
            body.put_u64(i.instance);
            body.put_u64(i.nonce);
            T_INFO
        }
        Frame::Auth(mac) => {
            put_bytes(&mut body, mac);
            T_AUTH
        }
        Frame::Ping => T_PING,
        Frame::Pong => T_PONG,
        Frame::Sub(s) => {
            put_bytes(&mut body, s.as_bytes());
            T_SUB
        }
        Frame::Unsub(s) => {
            put_bytes(&mut body, s.as_bytes());
            T_UNSUB
        }
        Frame::Sync(n) => {
            body.put_u64(*n);
            T_SYNC
        }
        Frame::SyncAck(n) => {
            body.put_u64(*n);
            T_SYNC_ACK
        }
        Frame::Msg(m) => {
            put_bytes(&mut body, m.topic.as_bytes());
            let mut flags = m.qos | props::flags(m.expiry_ms, &m.properties);
            if m.retain {
                flags |= F_RETAIN;
            }
            if m.group_only {
                flags |= F_GROUP_ONLY;
            }
            if m.redispatched {
                flags |= F_REDISPATCHED;
            }
            body.put_u8(flags);
            body.put_u64(m.ts);
            put_varint(&mut body, m.groups.len() as u64);
            for (g, f) in &m.groups {
                put_bytes(&mut body, g.as_bytes());
                put_bytes(&mut body, f.as_bytes());
            }
            props::put(&mut body, m.expiry_ms, &m.properties);
            put_bytes(&mut body, &m.payload);
            T_MSG
        }
        Frame::Retain(r) => {
            put_bytes(&mut body, r.topic.as_bytes());
            body.put_u8(r.qos | props::flags(r.expiry_ms, &r.properties));
            body.put_u64(r.ts);
            put_bytes(&mut body, r.origin.as_bytes());
            props::put(&mut body, r.expiry_ms, &r.properties);
            put_bytes(&mut body, &r.payload);
            T_RETAIN
        }
        Frame::Client { id, at } => {
            put_bytes(&mut body, id.as_bytes());
            put_varint(&mut body, *at);
            T_CLIENT
        }
        Frame::Peer { node_id, addr } => {
            put_bytes(&mut body, node_id.as_bytes());
            put_bytes(&mut body, addr.as_bytes());
            T_PEER
        }
        Frame::Group {
            group,
            filter,
            weight,
        } => {
            put_bytes(&mut body, group.as_bytes());
            put_bytes(&mut body, filter.as_bytes());
            put_varint(&mut body, u64::from(*weight));
            T_GROUP
        }
        Frame::SnapshotEnd => T_SNAPSHOT_END,
        Frame::Welcome => T_WELCOME,
    };
    out.put_u8(t);
    put_varint(out, body.len() as u64);
    out.put_slice(&body);
}

/// A cursor over one frame body.
struct Body(Bytes);

impl Body {
    fn bytes(&mut self) -> Result<Bytes, FrameError> {
        let (len, n) = get_varint(&self.0)?.ok_or(FrameError::Malformed("truncated length"))?;
        self.0.advance(n);
        let len = usize::try_from(len).map_err(|_| FrameError::Malformed("length overflow"))?;
        if len > self.0.len() {
            return Err(FrameError::Malformed("field runs past the frame"));
        }
        Ok(self.0.split_to(len))
    }
    fn string(&mut self) -> Result<String, FrameError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| FrameError::Malformed("invalid UTF-8"))
    }
    fn varint(&mut self) -> Result<u64, FrameError> {
        let (v, n) = get_varint(&self.0)?.ok_or(FrameError::Malformed("truncated varint"))?;
        self.0.advance(n);
        Ok(v)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        if self.0.is_empty() {
            return Err(FrameError::Malformed("truncated"));
        }
        Ok(self.0.get_u8())
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        if self.0.len() < 8 {
            return Err(FrameError::Malformed("truncated"));
        }
        Ok(self.0.get_u64())
    }
    fn remaining(&self) -> usize {
        self.0.len()
    }
    fn end(self) -> Result<(), FrameError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed("trailing bytes"))
        }
    }
}

/// Decodes one frame from the front of `buf`; `Ok(None)` when more bytes are needed.
pub fn decode(buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    decode_limited(buf, MAX_FRAME)
}

/// [`decode`] with a smaller body limit (see [`MAX_HANDSHAKE_FRAME`]). The limit is checked
/// as soon as the length header is in, before any of the body has to be buffered.
pub fn decode_limited(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, FrameError> {
    let Some(&t) = buf.first() else {
        return Ok(None);
    };
    let Some((len, n)) = get_varint(&buf[1..])? else {
        return Ok(None);
    };
    let len = usize::try_from(len).map_err(|_| FrameError::TooLarge(usize::MAX))?;
    if len > max.min(MAX_FRAME) {
        return Err(FrameError::TooLarge(len));
    }
    if buf.len() < 1 + n + len {
        return Ok(None);
    }
    buf.advance(1 + n);
    let mut b = Body(buf.split_to(len).freeze());
    let f = match t {
        T_INFO => Frame::Info(Info {
            node_id: b.string()?,
            cluster: b.string()?,
            advertise: b.string()?,
            instance: b.u64()?,
            nonce: b.u64()?,
        }),
        T_AUTH => Frame::Auth(b.bytes()?),
        T_PING => Frame::Ping,
        T_PONG => Frame::Pong,
        T_SUB => Frame::Sub(b.string()?),
        T_UNSUB => Frame::Unsub(b.string()?),
        T_SYNC => Frame::Sync(b.u64()?),
        T_SYNC_ACK => Frame::SyncAck(b.u64()?),
        T_MSG => {
            let topic = b.string()?;
            let flags = b.u8()?;
            let ts = b.u64()?;
            let qos = flags & 0x03;
            let known = 0x03 | props::F_EXPIRY | props::F_PROPS;
            if qos > 2 || flags & !(known | F_RETAIN | F_GROUP_ONLY | F_REDISPATCHED) != 0 {
                return Err(FrameError::Malformed("bad message flags"));
            }
            let n = b.varint()?;
            // Each group entry takes at least two bytes: no allocation beyond what arrived.
            if n > b.0.len() as u64 / 2 {
                return Err(FrameError::Malformed("group count runs past the frame"));
            }
            let mut groups = Vec::with_capacity(n as usize);
            for _ in 0..n {
                groups.push((b.string()?, b.string()?));
            }
            let (expiry_ms, properties) = props::get(&mut b, flags)?;
            Frame::Msg(RouteMsg {
                topic,
                payload: b.bytes()?,
                qos,
                retain: flags & F_RETAIN != 0,
                ts,
                groups,
                group_only: flags & F_GROUP_ONLY != 0,
                redispatched: flags & F_REDISPATCHED != 0,
                expiry_ms,
                properties,
            })
        }
        T_RETAIN => {
            let topic = b.string()?;
            let flags = b.u8()?;
            let qos = flags & 0x03;
            if qos > 2 || flags & !(0x03 | props::F_EXPIRY | props::F_PROPS) != 0 {
                return Err(FrameError::Malformed("bad retained QoS"));
            }
            let ts = b.u64()?;
            let origin = b.string()?;
            let (expiry_ms, properties) = props::get(&mut b, flags)?;
            Frame::Retain(RetainEntry {
                topic,
                qos,
                ts,
                origin,
                expiry_ms,
                properties,
                payload: b.bytes()?,
            })
        }
        T_CLIENT => Frame::Client {
            id: b.string()?,
            at: b.varint()?,
        },
        T_PEER => Frame::Peer {
            node_id: b.string()?,
            addr: b.string()?,
        },
        T_GROUP => Frame::Group {
            group: b.string()?,
            filter: b.string()?,
            weight: u32::try_from(b.varint()?)
                .map_err(|_| FrameError::Malformed("group weight overflow"))?,
        },
        T_SNAPSHOT_END => Frame::SnapshotEnd,
        T_WELCOME => Frame::Welcome,
        other => return Err(FrameError::UnknownType(other)),
    };
    b.end()?;
    Ok(Some(f))
}

/// The remaining expiry to send for a message that expires at `expires`, at `now`, in
/// milliseconds rounded up (so it is never 0 before the message has expired); 0 when it
/// never expires, `None` when it has expired (it is then not forwarded at all).
pub fn expiry_ms(expires: Option<Instant>, now: Instant) -> Option<u64> {
    let Some(at) = expires else { return Some(0) };
    let left = at.checked_duration_since(now).filter(|d| !d.is_zero())?;
    let ms = left.as_millis() + u128::from(left.subsec_nanos() % 1_000_000 > 0);
    Some(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The expiry instant of a message that arrives at `now` with `expiry_ms` left (0: never).
pub fn expires_at(expiry_ms: u64, now: Instant) -> Option<Instant> {
    if expiry_ms == 0 {
        return None;
    }
    // Beyond what `Instant` can hold (a hostile or absurd value): as good as never.
    now.checked_add(Duration::from_millis(expiry_ms))
}

/// Encodes one frame into its own buffer (shared by every peer it goes to).
pub fn to_bytes(f: &Frame) -> Bytes {
    let mut out = BytesMut::new();
    encode(f, &mut out);
    out.freeze()
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
