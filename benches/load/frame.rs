//! The load generator's wire layer: in-place framing of what a broker sends during a run,
//! encoding of benchmark PUBLISH packets, and the benchmark payload header.
//!
//! Connection setup (CONNECT/CONNACK, SUBSCRIBE/SUBACK) and every acknowledgement use
//! `supermq::codec`. The one exception is reading PUBLISH and the four 4-byte acks while
//! traffic flows: `codec::decode` splits each packet off the buffer as its own `Bytes` and
//! copies the topic into a `String`, an allocation and two atomic operations per message that
//! would make the generator, not the broker, the bottleneck. [`parse`] instead looks at the
//! bytes where they lie and the reader advances past them once per read.

use bytes::{BufMut, BytesMut};
use supermq::codec::{self, Ack, Packet, ProtocolLevel, PublishHeader, QoS};

/// Bytes of the payload header: publisher id, sequence number, send timestamp.
pub const HEADER_LEN: usize = 24;

/// One packet found at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Not enough bytes for a whole packet yet.
    Incomplete,
    /// A PUBLISH of `len` bytes in all.
    Publish {
        len: usize,
        qos: QoS,
        pkid: u16,
        payload: &'a [u8],
    },
    /// PUBACK, PUBREC, PUBREL or PUBCOMP (packet type in `kind`).
    Ack { len: usize, kind: u8, pkid: u16 },
    /// Any other well-framed packet (SUBACK, PINGRESP, …): skipped.
    Other { len: usize, kind: u8 },
}

pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;

/// Frames the packet at the front of `buf` (sent at `level`) without copying; `Err` names
/// what is malformed.
pub fn parse(buf: &[u8], level: ProtocolLevel) -> Result<Frame<'_>, &'static str> {
    let Some(&first) = buf.first() else {
        return Ok(Frame::Incomplete);
    };
    // Remaining length: 1–4 bytes, 7 bits each (MQTT 3.1.1 §2.2.3).
    let mut remaining = 0usize;
    let mut header = 1;
    loop {
        let Some(&b) = buf.get(header) else {
            return Ok(Frame::Incomplete);
        };
        remaining |= usize::from(b & 0x7F) << (7 * (header - 1));
        header += 1;
        if b & 0x80 == 0 {
            break;
        }
        if header > 4 {
            return Err("remaining length longer than 4 bytes");
        }
    }
    let len = header + remaining;
    if buf.len() < len {
        return Ok(Frame::Incomplete);
    }
    let body = &buf[header..len];
    let kind = first >> 4;
    match kind {
        PUBLISH => {
            let qos = QoS::from_u8((first >> 1) & 3).ok_or("PUBLISH with QoS 3")?;
            let topic_len = usize::from(u16::from_be_bytes(
                body.get(..2)
                    .ok_or("short PUBLISH")?
                    .try_into()
                    .unwrap_or([0; 2]),
            ));
            let mut at = 2 + topic_len;
            let mut pkid = 0;
            if qos != QoS::AtMostOnce {
                let id = body.get(at..at + 2).ok_or("short PUBLISH")?;
                pkid = u16::from_be_bytes([id[0], id[1]]);
                at += 2;
            }
            if level.is_v5() {
                // MQTT 5: the properties (length, then the properties) are skipped.
                let (props, n) = vbi(body.get(at..).ok_or("short PUBLISH")?)?;
                at += n + props;
            }
            let payload = body.get(at..).ok_or("short PUBLISH")?;
            Ok(Frame::Publish {
                len,
                qos,
                pkid,
                payload,
            })
        }
        PUBACK..=PUBCOMP => {
            // MQTT 5 may add a reason code and properties after the packet id (§3.4.2).
            let (Some(&hi), Some(&lo)) = (body.first(), body.get(1)) else {
                return Err("acknowledgement shorter than a packet id");
            };
            if !level.is_v5() && body.len() != 2 {
                return Err("acknowledgement with remaining length other than 2");
            }
            Ok(Frame::Ack {
                len,
                kind,
                pkid: u16::from_be_bytes([hi, lo]),
            })
        }
        0 | 15 => Err("reserved packet type"),
        _ => Ok(Frame::Other { len, kind }),
    }
}

/// A variable byte integer (MQTT 5.0 §1.5.5) at the front of `b`: its value and length.
fn vbi(b: &[u8]) -> Result<(usize, usize), &'static str> {
    let mut v = 0usize;
    for (i, &x) in b.iter().take(4).enumerate() {
        v |= usize::from(x & 0x7F) << (7 * i);
        if x & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err("bad or short variable byte integer")
}

/// The benchmark header at the start of every payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Run nonce (high 32 bits) and publisher index (low 32 bits).
    pub publisher: u64,
    /// 0, 1, 2, … per publisher.
    pub seq: u64,
    /// Nanoseconds since the run's shared start instant, taken just before the write.
    pub sent_ns: u64,
}

impl Stamp {
    /// Reads the header of a payload; `None` if it is too short to be one of ours.
    #[inline]
    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let h = payload.get(..HEADER_LEN)?;
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&h[i * 8..i * 8 + 8]);
            u64::from_be_bytes(w)
        };
        Some(Stamp {
            publisher: word(0),
            seq: word(1),
            sent_ns: word(2),
        })
    }
}

/// Appends one benchmark PUBLISH: header via the codec, then stamp and filler.
#[inline]
#[allow(clippy::too_many_arguments)]
pub fn put_publish(
    out: &mut BytesMut,
    level: ProtocolLevel,
    topic: &str,
    qos: QoS,
    pkid: u16,
    stamp: Stamp,
    filler: &[u8],
) {
    let header = PublishHeader {
        dup: false,
        qos,
        retain: false,
        topic,
        pkid,
        payload_len: HEADER_LEN + filler.len(),
        properties: supermq::codec::Properties::none(),
        message_expiry: None,
        topic_alias: None,
        subscription_ids: &[],
    };
    codec::encode_publish_header(&header, level, out);
    out.put_u64(stamp.publisher);
    out.put_u64(stamp.seq);
    out.put_u64(stamp.sent_ns);
    out.put_slice(filler);
}

/// The encoded size of one benchmark PUBLISH (no properties: at MQTT 5 their length byte).
pub fn publish_len(level: ProtocolLevel, topic: &str, qos: QoS, payload: usize) -> usize {
    let mut remaining = 2 + topic.len() + payload + usize::from(level.is_v5());
    if qos != QoS::AtMostOnce {
        remaining += 2;
    }
    let len_bytes = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + len_bytes + remaining
}

/// Appends the acknowledgement packet of type `kind` (PUBACK … PUBCOMP) for `pkid`.
#[inline]
pub fn put_ack(out: &mut BytesMut, level: ProtocolLevel, kind: u8, pkid: u16) {
    let p = match kind {
        PUBACK => Packet::PubAck(Ack::new(pkid)),
        PUBREC => Packet::PubRec(Ack::new(pkid)),
        PUBREL => Packet::PubRel(Ack::new(pkid)),
        _ => Packet::PubComp(Ack::new(pkid)),
    };
    codec::encode(&p, level, out);
}
