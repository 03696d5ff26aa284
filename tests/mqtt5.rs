//! MQTT 5 behaviour over TCP against a real broker on 127.0.0.1:0, with the raw client of
//! `common`: CONNECT/CONNACK negotiation, session expiry, keep-alive and take-over
//! ([`connect`]); PUBLISH properties, message expiry, acknowledgement reason codes, topic
//! aliases and capability limits ([`publish`]); Receive Maximum and Maximum Packet Size in
//! both directions ([`flow`]); subscription options, identifiers and reason codes
//! ([`subscribe`]); will delay and will properties ([`will`]); enhanced authentication
//! ([`auth`]); properties across a cluster ([`cluster`]). Mixed 3.1.1/5 traffic is covered
//! where both levels apply. Helpers shared by the modules are here.

#[path = "mqtt5/auth.rs"]
mod auth;
#[path = "mqtt5/cluster.rs"]
mod cluster;
mod common;
#[path = "mqtt5/connect.rs"]
mod connect;
#[path = "mqtt5/flow.rs"]
mod flow;
#[path = "mqtt5/publish.rs"]
mod publish;
#[path = "mqtt5/subscribe.rs"]
mod subscribe;
#[path = "mqtt5/will.rs"]
mod will;

use std::net::SocketAddr;

use bytes::Bytes;
use common::{connect5, Raw};
use supermq::codec::{
    Ack, ConnAck, Packet, Properties, PropertyValues, Publish, QoS, SubAck, Subscribe,
    SubscribeFilter, SubscriptionOptions,
};

/// Property values built by `f` from all absent.
pub(crate) fn props(f: impl FnOnce(&mut PropertyValues)) -> PropertyValues {
    let mut v = PropertyValues::default();
    f(&mut v);
    v
}

/// The values of `p`, all absent when empty.
pub(crate) fn values(p: &Properties) -> PropertyValues {
    p.values_or_empty().clone()
}

/// An MQTT 5 client `id` with Clean Start 1 and these CONNECT properties.
pub(crate) async fn v5_with(addr: SocketAddr, id: &str, pv: PropertyValues) -> (Raw, ConnAck) {
    Raw::connect5(addr, connect5(id, true, pv)).await
}

/// An MQTT 5 client `id` with Clean Start 1 and no CONNECT properties.
pub(crate) async fn v5(addr: SocketAddr, id: &str) -> Raw {
    v5_with(addr, id, PropertyValues::default()).await.0
}

/// A PUBLISH with properties.
pub(crate) fn publish5(
    topic: &str,
    qos: QoS,
    pkid: u16,
    payload: &[u8],
    pv: PropertyValues,
) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic.into(),
        pkid,
        payload: Bytes::copy_from_slice(payload),
        properties: pv.into(),
    }
}

/// Sends `p` (its packet id is set here for QoS 1 and 2) and returns the reason code of
/// its PUBACK or PUBREC (a QoS 2 flow is then completed when that code is a success); 0 for
/// QoS 0. PUBLISH packets that arrive meanwhile are kept, in order, for later `recv` calls.
pub(crate) async fn send_publish(c: &mut Raw, mut p: Publish) -> u8 {
    if p.qos == QoS::AtMostOnce {
        p.pkid = 0;
        c.send(&Packet::Publish(p)).await;
        return 0;
    }
    p.pkid = c.pkid();
    let (qos, pkid) = (p.qos, p.pkid);
    c.send(&Packet::Publish(p)).await;
    let mut overtaken = Vec::new();
    let code = loop {
        match c.recv().await {
            Packet::PubAck(a) if qos == QoS::AtLeastOnce && a.pkid == pkid => {
                break a.reason.to_u8()
            }
            Packet::PubRec(a) if qos == QoS::ExactlyOnce && a.pkid == pkid => {
                let code = a.reason.to_u8();
                if code < 0x80 {
                    c.send(&Packet::PubRel(Ack::new(pkid))).await;
                    loop {
                        match c.recv().await {
                            Packet::PubComp(a) if a.pkid == pkid => break,
                            other @ Packet::Publish(_) => overtaken.push(other),
                            other => panic!("expected PUBCOMP {pkid}, got {other:?}"),
                        }
                    }
                }
                break code;
            }
            other @ Packet::Publish(_) => overtaken.push(other),
            other => panic!("expected the acknowledgement of {pkid}, got {other:?}"),
        }
    };
    for p in overtaken {
        c.hold(p);
    }
    code
}

/// Subscribes with full options and, if given, a Subscription Identifier; the SUBACK
/// reason codes.
pub(crate) async fn subscribe5(
    c: &mut Raw,
    filters: Vec<SubscribeFilter>,
    id: Option<u32>,
) -> Vec<u8> {
    let pkid = c.pkid();
    let mut s = Subscribe::new(pkid, filters);
    if let Some(id) = id {
        s.properties = props(|v| v.subscription_identifiers = vec![id]).into();
    }
    c.send(&Packet::Subscribe(s)).await;
    let mut overtaken = Vec::new();
    let codes = loop {
        match c.recv().await {
            Packet::SubAck(SubAck {
                pkid: p, reasons, ..
            }) if p == pkid => break reasons.iter().map(|r| r.to_u8()).collect(),
            other @ Packet::Publish(_) => overtaken.push(other),
            other => panic!("expected SUBACK {pkid}, got {other:?}"),
        }
    };
    for p in overtaken {
        c.hold(p);
    }
    codes
}

/// A subscription to `filter` at `qos` with options set by `f`.
pub(crate) fn sub(
    filter: &str,
    qos: QoS,
    f: impl FnOnce(&mut SubscriptionOptions),
) -> SubscribeFilter {
    let mut s = SubscribeFilter::new(filter, qos);
    f(&mut s.options);
    s
}

/// Waits for the broker to send DISCONNECT and close the connection; the DISCONNECT's
/// reason code must be `code`.
pub(crate) async fn expect_disconnect(c: &mut Raw, code: u8) {
    let before = c.expect_closed().await;
    match before.last() {
        Some(Packet::Disconnect(d)) => assert_eq!(
            d.reason.to_u8(),
            code,
            "DISCONNECT reason {:#04x}, wanted {code:#04x}; got {before:?}",
            d.reason.to_u8()
        ),
        _ => panic!("expected DISCONNECT {code:#04x} before the close, got {before:?}"),
    }
}

/// A PINGREQ round trip: the PUBLISH packets (acknowledged) that arrived before PINGRESP.
pub(crate) async fn until_pong(c: &mut Raw) -> Vec<Publish> {
    c.send(&Packet::PingReq).await;
    let mut got = Vec::new();
    loop {
        match c.recv().await {
            Packet::PingResp => return got,
            Packet::Publish(p) => {
                c.ack(&p).await;
                got.push(p);
            }
            other => panic!("expected PUBLISH or PINGRESP, got {other:?}"),
        }
    }
}
