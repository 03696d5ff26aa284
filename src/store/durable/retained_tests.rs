//! Retained clears across a restart: a clear is kept as a tombstone with its stamp, so a
//! peer that still holds the older message cannot bring it back; tombstones the retained
//! store lets go are deleted from disk too.

use std::sync::Arc;

use super::store_tests::{msg, open, TempDir};
use super::*;
use crate::codec::QoS;
use crate::metrics::Metrics;
use crate::store::{RetainOutcome, RetainedStore};

fn stamp(ts: u64, origin: &str) -> Stamp {
    Stamp {
        ts,
        origin: Arc::from(origin),
    }
}

fn retained_store(d: &Arc<Durable>) -> RetainedStore {
    RetainedStore::new(true, 1000, 1 << 20, 1 << 30, Arc::new(Metrics::default()))
        .with_journal(Some(d.clone() as Arc<dyn RetainedJournal>))
}

#[test]
fn a_cleared_retained_message_stays_cleared_against_an_older_copy_after_a_restart() {
    let dir = TempDir::new("tombstone");
    {
        let (d, _) = open(&dir);
        let rs = retained_store(&d);
        rs.set_node(Arc::from("a"));
        // A peer's message, then this node's clear of it.
        let old = msg("r/t", "old", QoS::AtMostOnce);
        assert!(matches!(
            rs.apply_remote(&old, stamp(1_000, "b")),
            RetainOutcome::Stored(_)
        ));
        let clear = msg("r/t", "", QoS::AtMostOnce);
        assert!(matches!(rs.apply(&clear), RetainOutcome::Removed(_)));
        d.close();
    }
    let (d, r) = open(&dir);
    let rs = retained_store(&d);
    for (m, s) in &r.retained {
        rs.restore(&Arc::new(m.message.clone()), s.clone());
    }
    assert!(rs.matching("#").is_empty(), "still cleared");
    // The peer, back too, offers its older copy: refused, as before the restart.
    let old = msg("r/t", "old", QoS::AtMostOnce);
    assert!(matches!(
        rs.apply_remote(&old, stamp(1_000, "b")),
        RetainOutcome::Stale
    ));
    // A newer message still wins over the tombstone.
    let new = msg("r/t", "new", QoS::AtMostOnce);
    let later = stamp(u64::MAX / 2, "b");
    assert!(matches!(
        rs.apply_remote(&new, later),
        RetainOutcome::Stored(_)
    ));
}

#[test]
fn a_tombstone_let_go_is_deleted_from_disk() {
    let dir = TempDir::new("tombstone-forget");
    let (d, _) = open(&dir);
    d.clear("r/a", &stamp(5, "a"));
    d.clear("r/b", &stamp(6, "a"));
    d.forget("r/a");
    d.close();
    drop(d);
    let (_d, r) = open(&dir);
    let topics: Vec<_> = r
        .retained
        .iter()
        .map(|(m, _)| m.message.topic.clone())
        .collect();
    assert_eq!(topics, ["r/b"]);
}
