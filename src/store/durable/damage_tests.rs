//! The durable store when its directory is damaged or not its own: records that do not
//! decode, entries naming what is not stored, a journal cut short, a newer format, and what
//! check and repair make of them.

use super::store_tests::{deliver, msg, open, session, settle, TempDir};
use super::*;
use crate::codec::QoS;
use crate::session::Grant;

/// Writes two sessions with a queue each, then closes.
fn two_sessions(dir: &TempDir) {
    let (d, _) = open(dir);
    for id in ["a", "b"] {
        d.append(
            id,
            vec![
                Change::Subscribed {
                    filter: "t".into(),
                    grant: Grant::qos(QoS::AtLeastOnce),
                },
                Change::Enqueued(deliver(
                    &msg("t", id, QoS::AtLeastOnce),
                    QoS::AtLeastOnce,
                    &[],
                )),
            ],
        );
    }
    d.close();
}

#[test]
fn a_corrupt_record_stops_the_open_until_repair_moves_it_aside() {
    let dir = TempDir::new("corrupt");
    two_sessions(&dir);
    {
        let engine = open_engine(&dir.0).expect("engine");
        let q = engine.parts.get(Part::Queue);
        q.insert(
            record::session_key("a", &7u64.to_be_bytes()),
            b"\x01\xff\x00garbage".to_vec(),
        )
        .expect("insert garbage");
        engine
            .keyspace
            .persist(PersistMode::SyncAll)
            .expect("persist");
    }
    let err = Durable::open(&dir.opts(SyncMode::Always)).expect_err("corrupt");
    let text = err.to_string();
    assert!(matches!(err, DurableError::Corrupt { .. }), "{text}");
    assert!(text.contains("supermq store check"), "{text}");
    assert!(text.contains("supermq store repair"), "{text}");

    let report = check(&dir.0).expect("check");
    assert_eq!(report.problems.len(), 1, "{report}");
    assert_eq!(report.problems[0].partition, "queue");
    assert!(!report.is_clean());

    let fixed = repair(&dir.0).expect("repair");
    assert_eq!(fixed.quarantined.len(), 1, "{fixed}");
    assert!(check(&dir.0).expect("check again").is_clean());

    let (d, r) = open(&dir);
    assert_eq!(r.sessions.len(), 2);
    for id in ["a", "b"] {
        let s = session(&r, id);
        assert_eq!(s.queue.len(), 1);
        assert_eq!(s.queue[0].message.message.payload, id.as_bytes());
    }
    assert_eq!(d.partition_len("quarantine"), 1, "moved aside, not deleted");
}

#[test]
fn an_entry_naming_a_missing_message_is_moved_aside_by_repair() {
    let dir = TempDir::new("dangling");
    two_sessions(&dir);
    {
        let engine = open_engine(&dir.0).expect("engine");
        let messages: Vec<_> = engine
            .parts
            .get(Part::Messages)
            .keys()
            .collect::<Result<_, _>>()
            .expect("keys");
        assert_eq!(messages.len(), 2);
        // Drop the message of one queue entry behind the store's back.
        engine
            .parts
            .get(Part::Messages)
            .remove(messages[0].clone())
            .expect("remove");
        engine
            .keyspace
            .persist(PersistMode::SyncAll)
            .expect("persist");
    }
    // Open reads no queued message, so it opens; the entry whose message is gone is not
    // delivered (a paging session logs and counts it as it reads it back), and check
    // finds it ahead of time.
    {
        let (d, r) = open(&dir);
        let queued: usize = r.sessions.iter().map(|s| s.queue.len()).sum();
        assert_eq!(queued, 1, "the other session's entry is intact");
        d.close();
    }
    let report = check(&dir.0).expect("check");
    assert_eq!(report.problems.len(), 1, "{report}");
    assert!(
        report.problems[0].what.contains("which is not stored"),
        "{report}"
    );
    assert_eq!(repair(&dir.0).expect("repair").quarantined.len(), 1);
    assert!(check(&dir.0).expect("check again").is_clean());
    let (_d, r) = open(&dir);
    let queued: usize = r.sessions.iter().map(|s| s.queue.len()).sum();
    assert_eq!(queued, 1);
}

#[test]
fn queue_records_without_their_message_facts_still_open_with_the_right_weight_and_expiry() {
    let dir = TempDir::new("older-entries");
    {
        let (d, _) = open(&dir);
        let mut expiring = (*msg("t", "old", QoS::AtLeastOnce)).clone();
        expiring.expires = Some(std::time::Instant::now());
        let changes = vec![
            Change::Enqueued(deliver(
                &msg("t", "kept", QoS::AtLeastOnce),
                QoS::AtLeastOnce,
                &[],
            )),
            Change::Enqueued(deliver(
                &std::sync::Arc::new(expiring),
                QoS::AtLeastOnce,
                &[],
            )),
        ];
        d.append("a", changes);
        d.close();
    }
    {
        // Rewrite each queue record in the layout from before records carried their
        // message's weight and expiry: the entry alone.
        let engine = open_engine(&dir.0).expect("engine");
        let q = engine.parts.get(Part::Queue);
        let all: Vec<_> = q.iter().collect::<Result<_, _>>().expect("read");
        assert_eq!(all.len(), 2);
        for (k, v) in all {
            let (e, facts) = record::decode_queued(&v).expect("decodes");
            assert!(facts.is_some(), "written with its facts");
            let f = facts.expect("facts");
            let tail = 5 + if f.expires_at.is_some() { 12 } else { 0 };
            let older = v[..v.len() - tail].to_vec();
            assert_eq!(record::decode_queued(&older).expect("older"), (e, None));
            q.insert(k, older).expect("rewrite");
        }
        engine
            .keyspace
            .persist(PersistMode::SyncAll)
            .expect("persist");
    }
    let paged = DurableOptions {
        window: Some(4),
        ..dir.opts(SyncMode::Always)
    };
    let (d, r) = Durable::open(&paged).expect("open");
    let a = session(&r, "a");
    // Its message read for the facts: weight "t" + "kept", and the expired one purged
    // together with its message.
    assert_eq!(a.on_disk, vec![(5, QoS::AtLeastOnce)]);
    settle(&d);
    assert_eq!(d.partition_len("queue"), 1);
    assert_eq!(d.partition_len("messages"), 1);
}

#[test]
fn a_journal_cut_short_still_opens() {
    let dir = TempDir::new("truncate");
    two_sessions(&dir);
    {
        let (d, _) = open(&dir);
        d.append(
            "c",
            vec![
                Change::Attached { username: None },
                Change::Qos2Arrived { pkid: 2 },
            ],
        );
        d.close();
    }
    let journals = dir.0.join("db").join("journals");
    let newest = fs::read_dir(&journals)
        .expect("journals")
        .filter_map(|e| e.ok())
        .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
        .max_by_key(|e| e.file_name())
        .expect("a journal file");
    let f = File::options()
        .write(true)
        .open(newest.path())
        .expect("journal");
    let len = f.metadata().expect("len").len();
    assert!(
        len > 64,
        "the newest journal holds the last batches ({len} bytes)"
    );
    f.set_len(len.saturating_sub(5)).expect("truncate");
    drop(f);
    let (_d, r) = open(&dir);
    // What the cut-off batch held may be gone; what came before is intact.
    for id in ["a", "b"] {
        assert_eq!(session(&r, id).queue.len(), 1);
    }
}

#[test]
fn check_reports_counts_and_refuses_a_dir_without_a_store() {
    let dir = TempDir::new("check");
    two_sessions(&dir);
    let report = check(&dir.0).expect("check");
    assert!(report.is_clean(), "{report}");
    let count = |name| report.counts.iter().find(|(n, _)| *n == name).map(|c| c.1);
    assert_eq!(count("sessions"), Some(2));
    assert_eq!(count("queue"), Some(2));
    assert_eq!(count("messages"), Some(2));
    assert!(report.to_string().contains("the store is sound"));
    let none = TempDir::new("check-none");
    assert!(check(&none.0).is_err());
    assert!(!none.0.exists(), "check creates nothing");
}

#[test]
fn a_store_of_a_newer_format_is_refused_and_left_alone() {
    let dir = TempDir::new("newer");
    two_sessions(&dir);
    {
        let engine = open_engine(&dir.0).expect("engine");
        engine
            .parts
            .info
            .insert(INFO_FORMAT, [record::FORMAT + 1])
            .expect("insert");
        engine
            .keyspace
            .persist(PersistMode::SyncAll)
            .expect("persist");
    }
    let err = Durable::open(&dir.opts(SyncMode::Always)).expect_err("newer");
    assert!(matches!(err, DurableError::NewerFormat { .. }), "{err}");
    assert!(matches!(
        repair(&dir.0),
        Err(DurableError::NewerFormat { .. })
    ));
}

/// A key longer than the engine takes (a client id CONNECT should have refused) is left
/// out and said, not handed to the engine, which would panic and stop every later write.
#[test]
fn a_key_too_long_for_the_engine_does_not_stop_the_writer() {
    let dir = TempDir::new("long-key");
    let (d, _) = open(&dir);
    let long = "k".repeat(record::MAX_CLIENT_ID + 1);
    d.append(
        &long,
        vec![Change::Enqueued(deliver(
            &msg("t", "lost", QoS::AtLeastOnce),
            QoS::AtLeastOnce,
            &[],
        ))],
    );
    d.append(
        "after",
        vec![Change::Enqueued(deliver(
            &msg("t", "kept", QoS::AtLeastOnce),
            QoS::AtLeastOnce,
            &[],
        ))],
    );
    settle(&d);
    d.close();
    drop(d);
    let (_, recovered) = open(&dir);
    let after = recovered
        .sessions
        .iter()
        .find(|s| s.client_id == "after")
        .expect("the session written after the long key is on disk");
    assert_eq!(after.queue.len(), 1);
}
