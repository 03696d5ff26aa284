//! Subscriptions in the store: one record each, so a change costs that record and not the
//! session's whole list; and session records of the layout before, which held the list,
//! moved to records of their own on open.

use super::store_tests::{open, session, settle, TempDir};
use super::*;
use crate::codec::QoS;
use crate::session::Grant;

fn subscribed(filter: &str) -> Change {
    Change::Subscribed {
        filter: filter.into(),
        grant: Grant::qos(QoS::AtLeastOnce),
    }
}

/// Bytes of session `id`'s own record, read from a closed store.
fn session_record_len(dir: &TempDir, id: &str) -> usize {
    let engine = open_engine(&dir.0).expect("engine");
    let v = engine
        .parts
        .get(Part::Sessions)
        .get(id)
        .expect("read")
        .expect("the session record");
    v.len()
}

#[test]
fn each_subscription_is_a_record_of_its_own_and_the_session_record_stays_small() {
    let dir = TempDir::new("subs-records");
    let (d, _) = open(&dir);
    // One change at a time, each written before the next (as SUBACKs wait for them).
    for i in 0..1_000 {
        d.append(
            "many",
            vec![subscribed(&format!("t/{i:04}/{}", "x".repeat(200)))],
        );
        settle(&d);
    }
    d.append(
        "many",
        vec![Change::Unsubscribed {
            filter: format!("t/0000/{}", "x".repeat(200)),
        }],
    );
    settle(&d);
    assert_eq!(d.partition_len("sessions"), 1);
    assert_eq!(d.partition_len("subscriptions"), 999);
    d.close();
    drop(d);
    // The session record holds no list: 1,000 subscriptions of 200 bytes left it as
    // small as a session with none.
    assert!(session_record_len(&dir, "many") < 32);
    let (_, r) = open(&dir);
    let subs = &session(&r, "many").subscriptions;
    assert_eq!(subs.len(), 999);
    // In the order subscribed.
    assert!(subs[0].0.starts_with("t/0001/"));
    assert!(subs[998].0.starts_with("t/0999/"));
}

#[test]
fn a_session_record_holding_its_subscriptions_is_moved_to_records_on_open() {
    let dir = TempDir::new("subs-legacy");
    {
        let (d, _) = open(&dir);
        d.append("old", vec![subscribed("keep/a")]);
        settle(&d);
        d.close();
    }
    {
        // The layout before: the list in the session record, no subscription records.
        let engine = open_engine(&dir.0).expect("engine");
        let sessions = engine.parts.get(Part::Sessions);
        let mut meta = record::decode_meta(&sessions.get("old").expect("read").expect("there"))
            .expect("decodes");
        meta.subscriptions = vec![
            ("keep/a".into(), Grant::qos(QoS::AtLeastOnce)),
            ("keep/b".into(), Grant::qos(QoS::ExactlyOnce)),
        ];
        sessions
            .insert("old", record::encode_meta(&meta))
            .expect("rewrite");
        let subs = engine.parts.get(Part::Subscriptions);
        let keys: Vec<_> = subs.keys().collect::<Result<_, _>>().expect("keys");
        for k in keys {
            subs.remove(k).expect("remove");
        }
        engine
            .parts
            .info
            .insert(INFO_FORMAT, [1])
            .expect("layout 1");
        engine
            .keyspace
            .persist(PersistMode::SyncAll)
            .expect("persist");
    }
    let (d, r) = open(&dir);
    let subs = &session(&r, "old").subscriptions;
    assert_eq!(
        subs.iter()
            .map(|(f, g)| (f.as_str(), g.options.qos))
            .collect::<Vec<_>>(),
        [("keep/a", QoS::AtLeastOnce), ("keep/b", QoS::ExactlyOnce)]
    );
    assert_eq!(d.partition_len("subscriptions"), 2);
    // A change after the move is one record, and the list stays whole.
    d.append(
        "old",
        vec![Change::Unsubscribed {
            filter: "keep/a".into(),
        }],
    );
    settle(&d);
    d.close();
    drop(d);
    assert!(session_record_len(&dir, "old") < 32, "moved out of it");
    let engine = open_engine(&dir.0).expect("engine");
    assert_eq!(
        engine.parts.info.get(INFO_FORMAT).expect("read").as_deref(),
        Some(&[record::FORMAT][..]),
        "marked as the new layout, which a build of the old one refuses"
    );
    drop(engine);
    let (_, r) = open(&dir);
    let subs = &session(&r, "old").subscriptions;
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].0, "keep/b");
}
