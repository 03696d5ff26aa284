//! Bytes on the wire: packets encoded back to back, and a raw packet encoder for bytes the
//! codec's own encoder would refuse (bad UTF-8, over-long topics, absurd lengths, reserved
//! flags), used by the malformed-input and hostile suites.

use bytes::BytesMut;
use supermq::codec::{self, Packet, ProtocolLevel};

/// The packets encoded back to back, for sending in one write.
pub fn encode_all(packets: &[Packet]) -> BytesMut {
    let mut out = BytesMut::new();
    for p in packets {
        codec::encode(p, ProtocolLevel::V311, &mut out);
    }
    out
}

/// Appends a remaining length in the variable-length encoding of §2.2.3.
pub fn put_len(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

/// A raw packet: first byte, the body's remaining length, body.
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    put_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// A 2-byte-length-prefixed field (§1.5.3); any bytes, valid UTF-8 or not.
pub fn s(bytes: &[u8]) -> Vec<u8> {
    let len = u16::try_from(bytes.len()).expect("a field holds at most 65,535 bytes");
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// A CONNECT with the given protocol name, level, flags and payload; keep-alive 60 s.
pub fn connect_frame(name: &[u8], level: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = s(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    body.extend_from_slice(payload);
    frame(0x10, &body)
}

/// The optional parts of a raw CONNECT.
#[derive(Default)]
pub struct ConnectFields<'a> {
    /// CleanSession 0.
    pub persistent: bool,
    /// (topic, message, QoS).
    pub will: Option<(&'a [u8], &'a [u8], u8)>,
    pub username: Option<&'a [u8]>,
    pub password: Option<&'a [u8]>,
}

/// A 3.1.1 CONNECT for `id`, keep-alive 60 s.
pub fn connect_raw(id: &[u8], f: ConnectFields<'_>) -> Vec<u8> {
    let mut flags = 0u8;
    if !f.persistent {
        flags |= 0x02;
    }
    let mut payload = s(id);
    if let Some((topic, message, qos)) = f.will {
        flags |= 0x04 | (qos << 3);
        payload.extend(s(topic));
        payload.extend(s(message));
    }
    if let Some(u) = f.username {
        flags |= 0x80;
        payload.extend(s(u));
    }
    if let Some(p) = f.password {
        flags |= 0x40;
        payload.extend(s(p));
    }
    connect_frame(b"MQTT", 4, flags, &payload)
}

/// A 3.1.1 CONNECT for `id` with a will (`topic`, `message`, QoS `qos`) and nothing else
/// optional.
pub fn connect_raw_will(id: &[u8], topic: &[u8], message: &[u8], qos: u8) -> Vec<u8> {
    let will = Some((topic, message, qos));
    connect_raw(
        id,
        ConnectFields {
            will,
            ..Default::default()
        },
    )
}

/// A PUBLISH; `pkid` is written only for QoS 1 and 2.
pub fn publish_raw(topic: &[u8], qos: u8, retain: bool, pkid: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = s(topic);
    if qos > 0 {
        body.extend_from_slice(&pkid.to_be_bytes());
    }
    body.extend_from_slice(payload);
    frame(0x30 | (qos << 1) | u8::from(retain), &body)
}

/// A SUBSCRIBE of `filters`, each at QoS 1.
pub fn subscribe_raw(pkid: u16, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    for f in filters {
        body.extend(s(f));
        body.push(1);
    }
    frame(0x82, &body)
}

/// An UNSUBSCRIBE of `filters`.
pub fn unsubscribe_raw(pkid: u16, filters: &[&[u8]]) -> Vec<u8> {
    let mut body = pkid.to_be_bytes().to_vec();
    for f in filters {
        body.extend(s(f));
    }
    frame(0xA2, &body)
}
