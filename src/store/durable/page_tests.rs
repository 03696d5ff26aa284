//! The durable store's waits and paging: held writes going out as one job, an
//! acknowledgement ending on the disk or on the subscribers, and a stored session's queue
//! read back from disk before and after a restart.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::store_tests::{block_on, deliver, msg, open, session, settle, TempDir};
use super::*;
use crate::codec::QoS;

#[test]
fn held_writes_go_to_the_writer_as_one_job_when_the_last_hold_ends() {
    let dir = TempDir::new("hold");
    let (d, _) = open(&dir);
    let m = msg("t", "q2", QoS::ExactlyOnce);
    d.hold_writes();
    d.hold_writes();
    // A subscriber's copy of the message, then the publisher's packet id.
    d.append(
        "sub",
        vec![Change::Enqueued(deliver(&m, QoS::ExactlyOnce, &[]))],
    );
    d.append("pub", vec![Change::Qos2Arrived { pkid: 9 }]);
    assert_eq!(d.appended.load(Ordering::Acquire), 0, "kept back");
    // An acknowledgement waiting now waits for the held ops' job.
    let mut wait = d.durable().expect("held ops are pending");
    {
        use futures_util::FutureExt;
        assert!(
            (&mut wait).now_or_never().is_none(),
            "not before the hold ends"
        );
    }
    d.release_writes();
    assert_eq!(d.appended.load(Ordering::Acquire), 0, "one hold still open");
    d.release_writes();
    assert_eq!(d.appended.load(Ordering::Acquire), 1, "one job for both");
    block_on(wait);
    assert_eq!(d.partition_len("queue"), 1);
    assert_eq!(d.partition_len("qos2"), 1);
    // Unbalanced releases do nothing.
    d.release_writes();
    d.append("pub", vec![Change::Released { pkid: 9 }]);
    assert_eq!(d.appended.load(Ordering::Acquire), 2, "not held");
}

fn paged_opts(dir: &TempDir, window: usize) -> DurableOptions {
    DurableOptions {
        window: Some(window),
        ..dir.opts(SyncMode::Always)
    }
}

fn texts(p: &crate::session::PagedIn) -> Vec<String> {
    p.deliveries
        .iter()
        .map(|d| String::from_utf8(d.msg.payload.to_vec()).unwrap())
        .collect()
}

#[test]
fn a_paged_queue_is_read_back_in_order_before_and_after_a_restart() {
    let dir = TempDir::new("paged");
    {
        let (d, _) = Durable::open(&paged_opts(&dir, 4)).expect("open");
        assert_eq!(d.page_window(), Some(4));
        // The writer is held: the messages are not in the engine yet, and the session has
        // let go of them (paged out at once). They must be read back all the same.
        let release = d.hold_writer();
        let changes = (0..10)
            .map(|i| {
                let m = msg("t", &format!("m{i}"), QoS::AtLeastOnce);
                Change::Enqueued(deliver(&m, QoS::AtLeastOnce, &[]))
            })
            .collect();
        d.append("a", changes);
        let first = d.page_in("a", vec![], 0, 4);
        assert_eq!(texts(&first), ["m0", "m1", "m2", "m3"]);
        assert_eq!(first.lost, 0);
        drop(release);
        drop(first);
        settle(&d);
        // Two of the in-memory four sent (the session's changes come with the call), then
        // the next page starts after the two it still holds.
        let next = d.page_in(
            "a",
            vec![Change::Sent { pkid: 0 }, Change::Sent { pkid: 0 }],
            2,
            3,
        );
        assert_eq!(texts(&next), ["m4", "m5", "m6"]);
        d.close();
    }
    let (d, r) = Durable::open(&paged_opts(&dir, 4)).expect("reopen");
    let a = session(&r, "a");
    assert!(a.queue.is_empty(), "nothing queued is read on open");
    assert_eq!(a.on_disk.len(), 8);
    assert!(a
        .on_disk
        .iter()
        .all(|&(w, q)| w == 3 && q == QoS::AtLeastOnce));
    let all = d.page_in("a", vec![], 0, 100);
    assert_eq!(
        texts(&all),
        ["m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"]
    );
}

#[test]
fn an_unreadable_paged_message_is_reported_lost_and_its_entry_removed() {
    let dir = TempDir::new("paged-lost");
    {
        let (d, _) = Durable::open(&paged_opts(&dir, 4)).expect("open");
        let changes = ["x", "y", "z"]
            .iter()
            .map(|p| {
                Change::Enqueued(deliver(
                    &msg("t", p, QoS::AtLeastOnce),
                    QoS::AtLeastOnce,
                    &[],
                ))
            })
            .collect();
        d.append("a", changes);
        settle(&d);
        d.close();
    }
    let (d, _) = Durable::open(&paged_opts(&dir, 4)).expect("reopen");
    // Message 1 ("y") vanishes from the engine behind the store's back.
    d.parts
        .get(Part::Messages)
        .remove(1u64.to_be_bytes())
        .expect("remove");
    let got = d.page_in("a", vec![], 0, 10);
    assert_eq!(texts(&got), ["x", "z"]);
    assert_eq!(got.lost, 1);
    settle(&d);
    assert_eq!(
        d.partition_len("queue"),
        2,
        "the lost entry is gone from disk"
    );
}

#[test]
fn an_acknowledgement_waits_for_the_disk_or_for_every_stored_session_to_have_it_acknowledged() {
    use futures_util::FutureExt;
    let dir = TempDir::new("delivered");
    let (d, _) = open(&dir);
    let release = d.hold_writer();
    let (m1, m2) = (
        msg("t", "one", QoS::AtLeastOnce),
        msg("t", "two", QoS::AtLeastOnce),
    );
    d.append(
        "a",
        vec![Change::Enqueued(deliver(&m1, QoS::AtLeastOnce, &[]))],
    );
    d.append(
        "b",
        vec![Change::Enqueued(deliver(&m1, QoS::AtLeastOnce, &[]))],
    );
    d.append(
        "a",
        vec![Change::Enqueued(deliver(&m2, QoS::AtLeastOnce, &[]))],
    );
    // A message no stored session holds needs nothing; the writer is held, so the disk
    // cannot be what ended the wait.
    let other = msg("t", "elsewhere", QoS::AtLeastOnce);
    assert!(d.durable_or_delivered(vec![other]).is_none());
    let mut wait = d
        .durable_or_delivered(vec![m1.clone(), m2.clone()])
        .expect("held by stored sessions, not on disk");
    assert!((&mut wait).now_or_never().is_none());
    // Session a takes and acknowledges both; b still holds m1.
    d.append(
        "a",
        vec![
            Change::Sent { pkid: 1 },
            Change::Acked { pkid: 1 },
            Change::Sent { pkid: 2 },
            Change::Acked { pkid: 2 },
        ],
    );
    assert!((&mut wait).now_or_never().is_none(), "b still holds m1");
    d.append(
        "b",
        vec![Change::Sent { pkid: 1 }, Change::Acked { pkid: 1 }],
    );
    block_on(async {
        tokio::time::timeout(Duration::from_secs(5), &mut wait)
            .await
            .expect("released once every session acknowledged, with the writer still held")
    });
    // Without the subscribers, the disk ends it.
    let m3 = msg("t", "three", QoS::AtLeastOnce);
    d.append(
        "a",
        vec![Change::Enqueued(deliver(&m3, QoS::AtLeastOnce, &[]))],
    );
    let wait = d.durable_or_delivered(vec![m3]).expect("pending");
    drop(release);
    block_on(wait);
    assert!(d.durable().is_none());
}

#[test]
fn past_its_share_of_memory_the_writers_backlog_makes_acknowledgements_wait_for_the_disk() {
    use futures_util::FutureExt;
    let dir = TempDir::new("backlog");
    let (d, _) = Durable::open(&DurableOptions {
        // The smallest bound: half of it (2 MiB) may wait for the writer.
        max_memory: 4 << 20,
        ..dir.opts(SyncMode::Always)
    })
    .expect("open");
    let release = d.hold_writer();
    // 3 MiB staged behind the held writer, then one small message.
    for i in 0..3 {
        let big = msg("t", &"x".repeat(1 << 20), QoS::AtLeastOnce);
        d.append(
            &format!("s{i}"),
            vec![Change::Enqueued(deliver(&big, QoS::AtLeastOnce, &[]))],
        );
    }
    let small = msg("t", "small", QoS::AtLeastOnce);
    d.append(
        "a",
        vec![Change::Enqueued(deliver(&small, QoS::AtLeastOnce, &[]))],
    );
    let mut wait = d
        .durable_or_delivered(vec![small.clone()])
        .expect("pending");
    // Delivered and acknowledged: below the bound that would end the wait (see the test
    // above); past it, only the disk does.
    d.append(
        "a",
        vec![Change::Sent { pkid: 1 }, Change::Acked { pkid: 1 }],
    );
    assert!(
        (&mut wait).now_or_never().is_none(),
        "waits for the disk while the writer is that far behind"
    );
    drop(release);
    block_on(async {
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .expect("the disk ends it")
    });
    settle(&d);
    // Written: the backlog is gone, and delivery ends waits again.
    assert_eq!(d.backlog.load(std::sync::atomic::Ordering::Acquire), 0);
}

#[test]
fn a_group_delivery_keeps_its_group_when_read_back_and_across_a_restart() {
    let dir = TempDir::new("paged-group");
    let key = std::sync::Arc::new(crate::topic::GroupKey {
        group: "workers".into(),
        filter: "jobs/#".into(),
    });
    let grouped = |text: &str| {
        let mut d = deliver(
            &msg("jobs/1", text, QoS::AtLeastOnce),
            QoS::AtLeastOnce,
            &[],
        );
        d.group = Some(key.clone());
        d
    };
    {
        let (d, _) = Durable::open(&paged_opts(&dir, 4)).expect("open");
        d.append(
            "a",
            vec![
                Change::Enqueued(grouped("one")),
                Change::Enqueued(grouped("two")),
                Change::Sent { pkid: 1 },
            ],
        );
        settle(&d);
        let back = d.page_in("a", vec![], 0, 10);
        assert_eq!(texts(&back), ["two"]);
        assert_eq!(back.deliveries[0].group.as_ref(), Some(&key));
        d.close();
    }
    // Not paged: the in-flight one and the queued one come back whole, group and all.
    let (_d, r) = open(&dir);
    let a = session(&r, "a");
    let sent = a.inflight[0].delivery.as_ref().expect("in flight");
    assert_eq!(sent.group.as_ref(), Some(&key));
    assert_eq!(a.queue[0].group.as_ref(), Some(&key));
}
