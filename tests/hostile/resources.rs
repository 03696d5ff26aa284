//! Resource attacks: huge declared lengths, thousands of filters, maximal strings, silent
//! connections, invalid UTF-8 and U+0000 in every string field.

use std::time::Duration;

use supermq::codec::{Ack, Packet, QoS, ReasonCode, SubAck, UnsubAck};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::common::{
    connect_packet, connect_raw, connect_raw_will, publish_raw, put_len, s, subscribe_raw,
    unsubscribe_raw, Bystander, ConnectFields, Raw, WAIT,
};
use crate::support::*;

// --- Huge declared lengths ----------------------------------------------------------------

/// The largest remaining length there is (268,435,455: 256 MB), on a PUBLISH and a CONNECT.
const HUGE_PUBLISH: [u8; 5] = [0x32, 0xFF, 0xFF, 0xFF, 0x7F];
const HUGE_CONNECT: [u8; 5] = [0x10, 0xFF, 0xFF, 0xFF, 0x7F];

/// Writes `bytes` one at a time, `gap` apart, to every connection; stops writing to one
/// whose write fails (the broker closed it).
async fn trickle(conns: &mut [Raw], bytes: &[u8], gap: Duration) {
    let mut open = vec![true; conns.len()];
    for &byte in bytes {
        for (r, open) in conns.iter_mut().zip(open.iter_mut()) {
            if *open && !r.try_send_raw(&[byte]).await {
                *open = false;
            }
        }
        tokio::time::sleep(gap).await;
    }
}

/// Trickles `bytes` to `r`; the broker must close the connection having sent nothing.
async fn trickled_then_cut(mut r: Raw, bytes: &[u8], gap: Duration, what: &str) {
    trickle(std::slice::from_mut(&mut r), bytes, gap).await;
    assert_eq!(r.expect_closed().await, vec![], "{what}");
}

/// A fixed header declaring 256 MB, trickled a byte at a time, is refused as soon as the
/// length is complete (`limits.max_packet_size`, 1 MiB by default), before any body byte:
/// before and after CONNECT, on one connection and on fifty at once. The broker's resident
/// memory does not grow with what was declared.
#[tokio::test]
async fn huge_declared_lengths_trickled_are_refused_from_the_fixed_header() {
    let mut b = Broker::start(&[]).await;
    let mut by = Bystander::connect(b.addr).await;
    by.check(&mut b, "start").await;
    let rss_before = b.rss_kib();
    let gap = Duration::from_millis(20);

    // The header alone, then nothing: the broker must not wait for the body.
    let r = Raw::open(b.addr).await;
    trickled_then_cut(r, &HUGE_CONNECT, gap, "256 MB CONNECT header").await;
    by.check(&mut b, "a 256 MB CONNECT header").await;

    let r = Raw::open(b.addr).await;
    trickled_then_cut(r, &HUGE_PUBLISH, gap, "256 MB PUBLISH header first").await;
    by.check(&mut b, "a 256 MB PUBLISH header before CONNECT")
        .await;

    let r = Raw::connect(b.addr, "huge").await;
    trickled_then_cut(r, &HUGE_PUBLISH, gap, "256 MB PUBLISH header").await;
    by.check(&mut b, "a 256 MB PUBLISH header after CONNECT")
        .await;

    // Header and a few body bytes, trickled on fifty connections at once.
    let mut conns = Vec::new();
    for i in 0..50 {
        conns.push(Raw::connect(b.addr, &format!("huge-{i}")).await);
    }
    let mut bytes = HUGE_PUBLISH.to_vec();
    bytes.extend(s(b"topic"));
    bytes.extend_from_slice(&[0, 1, b'p', b'a', b'y']);
    trickle(&mut conns, &bytes, gap).await;
    for r in &mut conns {
        assert_eq!(r.expect_closed().await, vec![], "256 MB PUBLISH, trickled");
    }
    by.check(&mut b, "fifty 256 MB PUBLISH headers").await;

    // A length just over the configured limit is refused the same way.
    let r = Raw::connect(b.addr, "just-over").await;
    let mut over = vec![0x30];
    put_len(&mut over, 1_048_576 - 4 + 1); // 1 + 3 + this = 1 MiB + 1
    trickled_then_cut(r, &over, gap, "1 MiB + 1 byte PUBLISH header").await;
    by.check(&mut b, "a PUBLISH one byte over max_packet_size")
        .await;

    let rss_after = b.rss_kib();
    assert!(
        rss_after < rss_before + 50 * 1024,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB"
    );
    b.stop().await;
}

// --- Many filters in one SUBSCRIBE --------------------------------------------------------

/// 20,000 filters in one SUBSCRIBE (about 200 KB, within `max_packet_size`): with the
/// default `session.max_subscriptions` (10,000) the first 10,000 are granted and every one
/// beyond gets 0x80; a refused filter is not subscribed; re-subscribing a held filter is a
/// replacement, not a new subscription; UNSUBSCRIBE frees the room.
#[tokio::test]
async fn thousands_of_filters_in_one_subscribe_respect_max_subscriptions() {
    const FILTERS: usize = 20_000;
    const MAX: usize = 10_000;
    let mut b = Broker::start(&[]).await;
    let mut by = Bystander::connect(b.addr).await;
    let mut publisher = Raw::connect(b.addr, "publisher").await;

    let filters: Vec<String> = (0..FILTERS).map(|i| format!("many/{i}")).collect();
    let refs: Vec<&[u8]> = filters.iter().map(|f| f.as_bytes()).collect();
    let mut r = Raw::connect(b.addr, "many").await;
    let packet = subscribe_raw(1, &refs);
    assert!(packet.len() < 1_048_576, "within max_packet_size");
    r.send_raw(&packet).await;
    let codes = match r.recv().await {
        Packet::SubAck(SubAck {
            pkid: 1, reasons, ..
        }) => reasons,
        other => panic!("expected SUBACK 1, got {other:?}"),
    };
    assert_eq!(codes.len(), FILTERS, "one return code per filter");
    let granted = codes
        .iter()
        .take_while(|c| **c == ReasonCode::GrantedQoS1)
        .count();
    assert_eq!(
        granted, MAX,
        "the first max_subscriptions filters are granted"
    );
    assert!(
        codes[MAX..]
            .iter()
            .all(|c| *c == ReasonCode::UnspecifiedError),
        "every filter beyond max_subscriptions gets 0x80"
    );
    by.check(&mut b, "20,000 filters in one SUBSCRIBE").await;

    // The session is full: a new filter is refused; one it holds may be replaced.
    assert_eq!(r.subscribe("many/new", QoS::AtLeastOnce).await, 0x80);
    assert_eq!(
        r.subscribe("many/0", QoS::AtLeastOnce).await,
        1,
        "re-subscribing a held filter replaces it"
    );
    // Granted filters deliver, refused ones do not.
    publisher
        .publish("many/0", b"granted", QoS::AtLeastOnce, false)
        .await;
    let p = r.recv_publish().await;
    assert_eq!(p.topic, "many/0");
    assert_not_delivered(
        &mut publisher,
        &mut r,
        &format!("many/{}", FILTERS - 1),
        "many/1",
        "a filter refused by max_subscriptions",
    )
    .await;
    by.check(&mut b, "a full session").await;

    // 20,000 filters in one UNSUBSCRIBE free the room again.
    r.send_raw(&unsubscribe_raw(2, &refs)).await;
    r.expect(Packet::UnsubAck(UnsubAck::new(2))).await;
    assert_eq!(r.subscribe("many/new", QoS::AtLeastOnce).await, 1);
    by.check(&mut b, "20,000 filters in one UNSUBSCRIBE").await;
    b.stop().await;
}

// --- Long strings -------------------------------------------------------------------------

/// 65,535-byte client ids (the protocol maximum, and `limits.max_client_id_len`'s default),
/// user names and passwords are accepted, and so are 65,535-byte topics (one level, exactly
/// `limits.max_topic_length`), retained or not, in PUBLISH, SUBSCRIBE and UNSUBSCRIBE.
#[tokio::test]
async fn maximal_client_ids_and_topics_are_accepted() {
    let mut b = Broker::start(&[]).await;
    let mut by = Bystander::connect(b.addr).await;

    // A persistent session under a 65,535-byte id survives a reconnect, and a take-over.
    let long_id = "c".repeat(65535);
    let (mut c, present) = Raw::connect_with(b.addr, connect_packet(&long_id, false)).await;
    assert!(!present);
    assert_eq!(c.subscribe("long/id", QoS::AtLeastOnce).await, 1);
    c.disconnect().await;
    by.check(&mut b, "a 65,535-byte client id").await;
    let mut publisher = Raw::connect(b.addr, "publisher").await;
    publisher
        .publish("long/id", b"queued", QoS::AtLeastOnce, false)
        .await;
    let (mut c, present) = Raw::connect_with(b.addr, connect_packet(&long_id, false)).await;
    assert!(present, "the 65,535-byte id's session is kept");
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], b"queued");
    let (c2, present) = Raw::connect_with(b.addr, connect_packet(&long_id, true)).await;
    assert!(!present);
    assert_eq!(c.expect_closed().await, vec![], "taken over");
    c2.disconnect().await;
    by.check(&mut b, "a take-over of a 65,535-byte client id")
        .await;

    // A multi-byte 65,535-byte id (32,767 x "é" + "a").
    let utf8_id = format!("{}a", "é".repeat(32767));
    assert_eq!(utf8_id.len(), 65535);
    Raw::connect(b.addr, &utf8_id).await.disconnect().await;
    by.check(&mut b, "a 65,535-byte multi-byte client id").await;

    // 65,535-byte user name and password (a password is binary data).
    let user = vec![b'u'; 65535];
    let password = vec![0xFF; 65535];
    let r = Raw::connect_bytes(
        b.addr,
        &connect_raw(
            b"long-credentials",
            ConnectFields {
                username: Some(&user),
                password: Some(&password),
                ..Default::default()
            },
        ),
    )
    .await;
    r.disconnect().await;
    by.check(&mut b, "a 65,535-byte user name and password")
        .await;

    // A 65,535-byte topic, one level.
    let topic = "t".repeat(65535);
    let mut sub = Raw::connect(b.addr, "long-topic-sub").await;
    assert_eq!(sub.subscribe(&topic, QoS::AtLeastOnce).await, 1);
    publisher
        .publish(&topic, b"long", QoS::AtLeastOnce, false)
        .await;
    let p = sub.recv_publish().await;
    assert_eq!((p.topic.len(), &p.payload[..]), (65535, &b"long"[..]));
    by.check(&mut b, "a 65,535-byte topic").await;

    publisher
        .publish(&topic, b"retained", QoS::AtLeastOnce, true)
        .await;
    let p = sub.recv_publish().await;
    assert_eq!(&p.payload[..], b"retained");
    let mut late = Raw::connect(b.addr, "long-topic-late").await;
    assert_eq!(late.subscribe(&topic, QoS::AtLeastOnce).await, 1);
    let p = late.recv_publish().await;
    assert!(p.retain && p.topic == topic && &p.payload[..] == b"retained");
    late.unsubscribe(&topic).await;
    sub.unsubscribe(&topic).await;
    publisher.publish(&topic, b"", QoS::AtLeastOnce, true).await;
    by.check(&mut b, "a retained 65,535-byte topic").await;

    // A 65,535-byte will topic.
    let w = Raw::connect_bytes(
        b.addr,
        &connect_raw_will(b"long-will", topic.as_bytes(), b"gone", 1),
    )
    .await;
    assert_eq!(sub.subscribe(&topic, QoS::AtLeastOnce).await, 1);
    drop(w);
    let p = sub.recv_publish().await;
    assert_eq!((p.topic.len(), &p.payload[..]), (65535, &b"gone"[..]));
    by.check(&mut b, "a 65,535-byte will topic").await;
    b.stop().await;
}

// --- Connections that never CONNECT -------------------------------------------------------

/// 200 connections that never send CONNECT, one with half a CONNECT, one with a CONNECT
/// header and no body, and one trickling a CONNECT a byte every 200 ms are all closed once
/// `limits.connect_timeout` (1 s) has passed since they were accepted, with nothing sent;
/// the bystander, connected before, is not touched.
#[tokio::test]
async fn connections_without_connect_are_closed_after_connect_timeout() {
    const SILENT: usize = 200;
    let mut b = Broker::start(&[("limits", "connect_timeout = \"1s\"")]).await;
    let mut by = Bystander::connect(b.addr).await;

    let opened = Instant::now();
    let mut quiet = Vec::new();
    for _ in 0..SILENT {
        quiet.push(Raw::open(b.addr).await);
    }
    let full = connect_raw(b"half", ConnectFields::default());
    let mut half = Raw::open(b.addr).await;
    half.send_raw(&full[..full.len() / 2]).await;
    quiet.push(half);
    let mut header_only = Raw::open(b.addr).await;
    header_only.send_raw(&full[..2]).await;
    quiet.push(header_only);

    // The slow one: its writes never reset the timeout.
    let slow = Raw::open(b.addr).await;
    let slow_opened = Instant::now();
    let (mut slow_rd, mut slow_wr) = slow.stream.into_split();
    let mut slow_bytes = vec![0x10];
    put_len(&mut slow_bytes, 1000);
    slow_bytes.extend(s(b"MQTT"));
    slow_bytes.extend_from_slice(&[4, 2, 0, 60]);
    slow_bytes.extend(s(&[b'x'; 500]));
    let writer = tokio::spawn(async move {
        for byte in slow_bytes {
            if slow_wr.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow_wr
    });
    by.check(&mut b, "opening 200 silent connections").await;

    for (i, r) in quiet.iter_mut().enumerate() {
        assert_eq!(r.expect_closed().await, vec![], "silent connection {i}");
        if i == 0 {
            assert!(
                opened.elapsed() >= Duration::from_millis(950),
                "closed {:?} after opening, before connect_timeout",
                opened.elapsed()
            );
        }
    }
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, slow_rd.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "the trickled CONNECT was not cut off: {closed:?}"
    );
    let slow_closed = slow_opened.elapsed();
    assert!(
        slow_closed < Duration::from_secs(4),
        "the trickled CONNECT lived {slow_closed:?} with a 1 s connect_timeout"
    );
    writer.abort();
    by.check(&mut b, "200 silent connections timed out").await;

    // New clients are still welcome.
    Raw::connect(b.addr, "after").await.disconnect().await;
    by.check(&mut b, "a normal client after the time-outs")
        .await;
    b.stop().await;
}

// --- Invalid UTF-8 and U+0000 -------------------------------------------------------------

/// Byte strings that are not well-formed MQTT strings: ill-formed UTF-8 [MQTT-1.5.3-1] and
/// U+0000 [MQTT-1.5.3-2].
fn bad_strings() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("0xC3 0x28 (bad continuation)", b"a\xC3\x28b"),
        ("lone continuation byte", b"a\x80b"),
        ("0xFF", b"\xFFab"),
        ("overlong NUL 0xC0 0x80", b"a\xC0\x80b"),
        ("overlong '/' 0xE0 0x80 0xAF", b"a\xE0\x80\xAFb"),
        ("surrogate U+D800", b"a\xED\xA0\x80b"),
        ("truncated 3-byte sequence", b"ab\xE2\x82"),
        ("beyond U+10FFFF", b"a\xF4\x90\x80\x80"),
        ("U+0000", b"a\0b"),
        ("U+0000 alone", b"\0"),
    ]
}

/// Every string field refuses each bad string by closing the connection with nothing sent:
/// client id, user name, will topic, PUBLISH topic (QoS 0 and 1), SUBSCRIBE and UNSUBSCRIBE
/// filters. The binary fields (password, will message, payload) take the same bytes.
#[tokio::test]
async fn invalid_utf8_and_nul_in_every_string_field_close_the_connection() {
    let mut b = Broker::start(&[]).await;
    let mut by = Bystander::connect(b.addr).await;

    for (name, bad) in bad_strings() {
        let connects = [
            ("client id", connect_raw(bad, ConnectFields::default())),
            (
                "user name",
                connect_raw(
                    b"utf8",
                    ConnectFields {
                        username: Some(bad),
                        ..Default::default()
                    },
                ),
            ),
            ("will topic", connect_raw_will(b"utf8", bad, b"will", 1)),
        ];
        for (field, packet) in connects {
            let what = format!("{name} in the {field}");
            let mut r = Raw::open(b.addr).await;
            expect_silent_close(&mut r, &packet, &what).await;
            by.check(&mut b, &what).await;
        }

        let after_connect = [
            ("PUBLISH QoS 0 topic", publish_raw(bad, 0, false, 0, b"x")),
            ("PUBLISH QoS 1 topic", publish_raw(bad, 1, false, 1, b"x")),
            ("retained PUBLISH topic", publish_raw(bad, 1, true, 1, b"x")),
            ("SUBSCRIBE filter", subscribe_raw(1, &[bad])),
            (
                "second SUBSCRIBE filter",
                subscribe_raw(1, &[b"fine".as_slice(), bad]),
            ),
            ("UNSUBSCRIBE filter", unsubscribe_raw(1, &[bad])),
        ];
        for (field, packet) in after_connect {
            let what = format!("{name} in the {field}");
            let mut r = Raw::connect(b.addr, "utf8").await;
            expect_silent_close(&mut r, &packet, &what).await;
            by.check(&mut b, &what).await;
        }
    }

    // Binary fields are not strings: any bytes are fine there.
    let junk: &[u8] = b"\xFF\x00\xC0\x80\xED\xA0\x80";
    let mut r = Raw::connect_bytes(
        b.addr,
        &connect_raw(
            b"binary",
            ConnectFields {
                will: Some((b"binary/will", junk, 0)),
                username: Some(b"user"),
                password: Some(junk),
                ..Default::default()
            },
        ),
    )
    .await;
    assert_eq!(r.subscribe("binary/t", QoS::AtLeastOnce).await, 1);
    r.send_raw(&publish_raw(b"binary/t", 1, false, 5, junk))
        .await;
    r.expect(Packet::PubAck(Ack::new(5))).await;
    let p = r.recv_publish().await;
    assert_eq!(&p.payload[..], junk);
    r.disconnect().await;
    by.check(&mut b, "binary fields with arbitrary bytes").await;
    b.stop().await;
}
