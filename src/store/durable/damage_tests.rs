//! The durable store when its directory is damaged or not its own: records that do not
//! decode, entries naming what is not stored, a journal cut short, a newer format, and what
//! check and repair make of them.

use super::store_tests::{deliver, msg, open, session, TempDir};
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
    let err = Durable::open(&dir.opts(SyncMode::Always)).expect_err("dangling");
    assert!(err.to_string().contains("which is not stored"), "{err}");
    let report = check(&dir.0).expect("check");
    assert_eq!(report.problems.len(), 1, "{report}");
    assert_eq!(repair(&dir.0).expect("repair").quarantined.len(), 1);
    let (_d, r) = open(&dir);
    let queued: usize = r.sessions.iter().map(|s| s.queue.len()).sum();
    assert_eq!(queued, 1, "the other session's entry is intact");
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
            .insert(INFO_FORMAT, [record::VERSION + 1])
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
