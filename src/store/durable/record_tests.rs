//! The record encoding: every record round-trips, and no bytes make a decoder panic.

use std::num::NonZeroU32;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use proptest::prelude::*;

use super::record::*;
use crate::codec::{
    LastWill, PayloadFormat, Properties, PropertyValues, QoS, RetainHandling, SubscriptionOptions,
};
use crate::message::Message;
use crate::session::Grant;

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn properties() -> impl Strategy<Value = Properties> {
    (
        proptest::option::of(prop_oneof![
            Just(PayloadFormat::Unspecified),
            Just(PayloadFormat::Utf8)
        ]),
        proptest::option::of(any::<u32>()),
        proptest::option::of("\\PC{0,12}"),
        proptest::option::of("[a-z/]{0,12}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
        proptest::collection::vec(1u32..268_435_456, 0..3),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(("\\PC{0,6}", "\\PC{0,6}"), 0..4),
    )
        .prop_map(|(f, exp, ct, rt, cd, ids, delay, user)| {
            Properties::from(PropertyValues {
                payload_format_indicator: f,
                message_expiry_interval: exp,
                content_type: ct,
                response_topic: rt,
                correlation_data: cd.map(Bytes::from),
                subscription_identifiers: ids,
                will_delay_interval: delay,
                user_properties: user,
                ..PropertyValues::default()
            })
        })
}

fn message() -> impl Strategy<Value = Message> {
    (
        "\\PC{0,24}",
        proptest::collection::vec(any::<u8>(), 0..256),
        qos(),
        any::<bool>(),
        properties(),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| Message {
            topic,
            payload: Bytes::from(payload),
            qos,
            retain,
            properties,
            expires: None,
            routed: None,
        })
}

fn time() -> impl Strategy<Value = SystemTime> {
    (0u64..u64::from(u32::MAX) * 4, 0u32..1_000_000_000)
        .prop_map(|(s, n)| UNIX_EPOCH + Duration::new(s, n))
}

fn grant() -> impl Strategy<Value = Grant> {
    (qos(), any::<bool>(), any::<bool>(), 0u8..3, any::<u32>()).prop_map(
        |(qos, no_local, rap, rh, id)| Grant {
            options: SubscriptionOptions {
                qos,
                no_local,
                retain_as_published: rap,
                retain_handling: match rh {
                    0 => RetainHandling::SendAtSubscribe,
                    1 => RetainHandling::SendAtSubscribeIfNew,
                    _ => RetainHandling::DoNotSend,
                },
            },
            id: NonZeroU32::new(id % 268_435_456),
        },
    )
}

fn meta() -> impl Strategy<Value = Meta> {
    (
        proptest::option::of((any::<u32>(), 0u32..1_000_000_000)),
        any::<bool>(),
        proptest::option::of(time()),
        proptest::option::of((message(), properties())),
        proptest::collection::vec(("\\PC{1,16}", grant()), 0..5),
        proptest::option::of("\\PC{0,16}"),
    )
        .prop_map(
            |(exp, attached, offline_since, will, subscriptions, username)| Meta {
                expiry: exp.map(|(s, n)| Duration::new(u64::from(s), n)),
                attached,
                offline_since,
                will: will.map(|(m, p)| LastWill {
                    topic: m.topic,
                    payload: m.payload,
                    qos: m.qos,
                    retain: m.retain,
                    properties: p,
                }),
                subscriptions,
                username,
            },
        )
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        any::<bool>(),
        any::<u64>(),
        qos(),
        any::<bool>(),
        proptest::collection::vec(any::<u32>(), 0..4),
        proptest::option::of(("[a-z$]{1,8}", "[a-z/#+]{1,12}")),
    )
        .prop_map(|(backlog, msg, qos, retain, sub_ids, group)| Entry {
            backlog,
            msg,
            qos,
            retain,
            sub_ids,
            group: group.map(|(g, f): (String, String)| {
                std::sync::Arc::new(crate::topic::GroupKey {
                    group: g.into(),
                    filter: f.into(),
                })
            }),
        })
}

proptest! {
    #[test]
    fn messages_round_trip(m in message()) {
        let (back, at) = decode_message(&encode_message(&m)).expect("decodes");
        prop_assert_eq!(back, m);
        prop_assert_eq!(at, None);
    }

    #[test]
    fn retained_round_trip(m in message(), ts in any::<u64>(), origin in "\\PC{0,12}") {
        let (t, o, back, _) = decode_retained(&encode_retained(&m, ts, &origin)).expect("decodes");
        prop_assert_eq!((t, o, back), (ts, origin, m));
    }

    #[test]
    fn metas_round_trip(m in meta()) {
        prop_assert_eq!(decode_meta(&encode_meta(&m)).expect("decodes"), m);
    }

    #[test]
    fn entries_round_trip(
        e in entry(),
        order in any::<u64>(),
        sent in any::<bool>(),
        weight in any::<u32>(),
        secs in proptest::option::of(0u64..4_000_000_000),
    ) {
        let expires_at = secs.map(|s| UNIX_EPOCH + Duration::from_secs(s));
        let f = Facts { weight, expires_at };
        let queued = encode_queued(&e, &f);
        prop_assert_eq!(decode_queued(&queued).expect("decodes"), (e.clone(), Some(f)));
        // A queue record from before records carried their message's facts (and group):
        // the entry alone, which reads back without them.
        let group = e.group.as_ref().map_or(0, |g| 8 + g.group.len() + g.filter.len());
        let tail = 4 + 1 + if expires_at.is_some() { 12 } else { 0 } + group;
        let older = &queued[..queued.len() - tail];
        let bare = Entry { group: None, ..e.clone() };
        prop_assert_eq!(decode_queued(older).expect("decodes"), (bare, None));
        let x = sent.then_some(&e);
        let (o, back) = decode_inflight(&encode_inflight(order, x)).expect("decodes");
        prop_assert_eq!((o, back.as_ref()), (order, x));
    }

    #[test]
    fn session_keys_split_back(id in "[^\\x00]{0,20}", seq in any::<u64>()) {
        let k = session_key(&id, &seq.to_be_bytes());
        let (back, s) = split_key::<8>(&k).expect("splits");
        prop_assert_eq!((back, u64::from_be_bytes(s)), (id, seq));
    }

    /// Arbitrary bytes, and valid records cut or flipped anywhere: errors, never panics.
    #[test]
    fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_message(&bytes);
        let _ = decode_retained(&bytes);
        let _ = decode_meta(&bytes);
        let _ = decode_queued(&bytes);
        let _ = decode_inflight(&bytes);
        let _ = decode_marker(&bytes);
        let _ = split_key::<8>(&bytes);
        let _ = split_key::<2>(&bytes);
        let mut versioned = bytes.clone();
        versioned.insert(0, VERSION);
        let _ = decode_message(&versioned);
        let _ = decode_retained(&versioned);
        let _ = decode_meta(&versioned);
        let _ = decode_queued(&versioned);
        let _ = decode_inflight(&versioned);
    }

    #[test]
    fn damaged_records_are_errors(m in meta(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let good = encode_meta(&m);
        let at = cut.index(good.len());
        // A record cut right after its subscriptions is one in the layout from before
        // usernames were kept, which still reads.
        let older = encode_meta(&Meta { username: None, ..m.clone() }).len() - 1;
        prop_assert!(at == older || decode_meta(&good[..at]).is_err());
        let mut bad = good.clone();
        bad[at] ^= flip;
        let _ = decode_meta(&bad);
    }
}

#[test]
fn a_message_expiry_becomes_a_wall_clock_deadline() {
    let mut m = Message::new("t", Bytes::from_static(b"p"), QoS::AtLeastOnce, false);
    m.expires = Some(Instant::now() + Duration::from_secs(60));
    let (_, at) = decode_message(&encode_message(&m)).expect("decodes");
    let left = at
        .expect("a deadline")
        .duration_since(SystemTime::now())
        .expect("in the future");
    assert!(left > Duration::from_secs(58) && left <= Duration::from_secs(60));
}

#[test]
fn unknown_versions_and_empty_records_are_named() {
    assert_eq!(decode_queued(&[]), Err(RecordError::Empty));
    assert_eq!(decode_queued(&[9, 0]), Err(RecordError::Version(9)));
    assert_eq!(decode_marker(&[VERSION, 0]), Err(RecordError::Trailing(1)));
    // A length far past the end is refused before anything is allocated.
    let mut huge = vec![VERSION];
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(decode_message(&huge), Err(RecordError::Truncated));
}

#[test]
fn a_session_record_written_before_usernames_were_kept_reads_as_none() {
    let m = Meta {
        expiry: Some(Duration::from_secs(60)),
        subscriptions: vec![("a/#".into(), Grant::default())],
        username: Some("alice".into()),
        ..Meta::default()
    };
    let with = encode_meta(&m);
    // The older layout ends after the subscriptions (the flag byte and the string are new).
    let without = &with[..with.len() - (1 + 4 + "alice".len())];
    let old = decode_meta(without).expect("the older layout still reads");
    assert_eq!(old.username, None);
    assert_eq!(old.subscriptions, m.subscriptions);
    assert_eq!(decode_meta(&with).expect("reads"), m);
}
