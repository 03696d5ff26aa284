//! What the broker must have done, judged from the bytes a client sent: the packets its
//! decoder sees in them, the CONNECT and SUBACK rules of a finished conversation, and the
//! QoS 1 messages it acknowledged.

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use supermq::codec::{
    self, ConnAck, ConnectReturnCode, DecodeError, DecodeLimits, Packet, ProtocolLevel, Publish,
    QoS, ReasonCode,
};

use crate::conn::Record;

/// How the bytes a client sent end, as the broker's decoder sees them.
pub(crate) enum End {
    /// Whole packets only.
    Clean,
    /// A packet the broker must refuse.
    Malformed(DecodeError),
    /// An incomplete packet at the end.
    Partial,
}

/// The packets the broker decodes from `sent`, and how the bytes end.
pub(crate) fn model(sent: &[u8], limits: &DecodeLimits) -> (Vec<Packet>, End) {
    let mut buf = BytesMut::from(sent);
    let mut packets = Vec::new();
    // The first CONNECT sets the level the rest is read at, as the broker does.
    let mut level = ProtocolLevel::V311;
    loop {
        match codec::decode(&mut buf, limits, level) {
            Ok(Some(p)) => {
                if let (Packet::Connect(c), true) = (&p, packets.is_empty()) {
                    level = c.level;
                }
                packets.push(p);
            }
            Ok(None) if buf.is_empty() => return (packets, End::Clean),
            Ok(None) => return (packets, End::Partial),
            Err(e) => return (packets, End::Malformed(e)),
        }
    }
}

/// The CONNECT handshake and SUBACK rules for one finished connection.
pub(crate) fn check_conversation(r: &Record, limits: &DecodeLimits) {
    let (packets, end) = model(&r.sent, limits);
    let got = &r.received;
    match packets.first() {
        None => match end {
            End::Malformed(DecodeError::UnsupportedProtocolLevel(l)) => {
                let want = Packet::ConnAck(ConnAck::new(
                    false,
                    ConnectReturnCode::UnacceptableProtocolVersion,
                ));
                assert_eq!(got, &[want], "answer to a CONNECT of level {l}");
            }
            _ => assert!(got.is_empty(), "answers before any CONNECT: {got:?}"),
        },
        Some(Packet::Connect(_)) => {
            if let Some(first) = got.first() {
                let Packet::ConnAck(ack) = first else {
                    panic!("the first answer to CONNECT is {first:?}");
                };
                if ack.reason != ReasonCode::Success {
                    assert!(!ack.session_present, "refused with session present");
                    assert_eq!(got.len(), 1, "a refused CONNECT got more: {got:?}");
                }
            }
        }
        Some(first) => assert!(got.is_empty(), "answers after a first {first:?}: {got:?}"),
    }
    for p in got {
        let Packet::SubAck(ack) = p else { continue };
        let mut subs = packets.iter().filter_map(|p| match p {
            Packet::Subscribe(s) if s.pkid == ack.pkid => Some(s),
            _ => None,
        });
        if let (Some(s), None) = (subs.next(), subs.next()) {
            assert_eq!(s.filters.len(), ack.reasons.len(), "SUBACK for {s:?}");
            for (f, code) in s.filters.iter().zip(&ack.reasons) {
                if let Some(q) = code.granted_qos() {
                    assert!(q <= f.options.qos, "granted {q:?} for {f:?}");
                }
            }
        }
    }
}

/// The QoS 1 messages the broker acknowledged on this connection whose topic `filter`
/// matches (packet ids used once only, so each acknowledgement names one message).
pub(crate) fn acknowledged(
    r: &Record,
    limits: &DecodeLimits,
    filter: &str,
) -> Vec<(String, Bytes)> {
    let (packets, _) = model(&r.sent, limits);
    let mut by_id: HashMap<u16, Vec<&Publish>> = HashMap::new();
    for p in &packets {
        if let Packet::Publish(p) = p {
            if p.qos == QoS::AtLeastOnce {
                by_id.entry(p.pkid).or_default().push(p);
            }
        }
    }
    let acked: Vec<u16> = r
        .received
        .iter()
        .filter_map(|p| match p {
            // At MQTT 5 an error reason (0x80 and up) refuses the message.
            Packet::PubAck(a) if !a.reason.is_error() => Some(a.pkid),
            _ => None,
        })
        .collect();
    by_id
        .into_iter()
        .filter(|(id, ps)| ps.len() == 1 && acked.contains(id))
        .map(|(_, ps)| ps[0])
        .filter(|p| supermq::topic::matches(filter, &p.topic))
        .map(|p| (p.topic.clone(), p.payload.clone()))
        .collect()
}
