//! The store's disk bound (`[persistence] max_disk` and `min_free_disk`): whether the store
//! is full, looked at by the writer about once a second and read by sessions without a lock.
//!
//! The policy when full (README "Persistence"): a stored session whose client is offline
//! takes no new message (each one dropped and counted, drop reason `store_full`), whatever
//! `queue_full_policy` says, since dropping its oldest would not make room on disk. A
//! session whose client is connected is served as before: what it can add to the disk is
//! bounded by its own queue bounds, and its client is reading it back. Retained messages
//! are still written (bounded by the retained limits).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fjall::Keyspace;

/// How often the writer looks at the disk.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The bound, and whether the store is past it.
#[derive(Debug)]
pub(super) struct Space {
    /// The store's own bytes on disk past which it is full (0: no bound of its own).
    max_disk: u64,
    /// Free bytes on the store's filesystem below which it is full (0: not looked at).
    min_free: u64,
    dir: PathBuf,
    full: AtomicBool,
}

impl Space {
    pub fn new(dir: PathBuf, max_disk: u64, min_free: u64) -> Space {
        Space {
            max_disk,
            min_free,
            dir,
            full: AtomicBool::new(false),
        }
    }

    /// Whether the store is past its bound, as of the last check.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Relaxed)
    }

    /// Looks at the disk and sets [`Space::is_full`], logging each change.
    pub fn check(&self, keyspace: &Keyspace) {
        let why = self.over(keyspace);
        let was = self.full.swap(why.is_some(), Ordering::Relaxed);
        match (&why, was) {
            (Some(why), false) => tracing::warn!(
                dir = %self.dir.display(),
                "durable store full ({why}): offline stored sessions take no new messages \
                 until it has room"
            ),
            (None, true) => tracing::info!(
                dir = %self.dir.display(),
                "durable store has room again: offline stored sessions take messages"
            ),
            _ => {}
        }
    }

    /// Why the store is full now, if it is.
    fn over(&self, keyspace: &Keyspace) -> Option<String> {
        if self.max_disk > 0 {
            let used = keyspace.disk_space();
            if used >= self.max_disk {
                return Some(format!(
                    "{used} bytes on disk, max_disk is {}",
                    self.max_disk
                ));
            }
        }
        if self.min_free > 0 {
            if let Some(free) = free_bytes(&self.dir) {
                if free < self.min_free {
                    return Some(format!(
                        "{free} bytes free on its filesystem, min_free_disk is {}",
                        self.min_free
                    ));
                }
            }
        }
        None
    }
}

/// Bytes an unprivileged process may still write on the filesystem holding `dir`.
#[cfg(target_os = "linux")]
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

#[cfg(not(target_os = "linux"))]
fn free_bytes(_dir: &std::path::Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::super::store_tests::{deliver, msg, settle, TempDir};
    use super::super::{Durable, DurableOptions, SyncMode};
    use crate::codec::QoS;
    use crate::session::Change;
    use crate::store::SessionJournal;

    fn opened(dir: &TempDir, max_disk: u64) -> std::sync::Arc<Durable> {
        let opts = DurableOptions {
            max_disk,
            ..dir.opts(SyncMode::Always)
        };
        Durable::open(&opts).expect("open").0
    }

    #[test]
    fn the_store_is_full_once_its_files_pass_max_disk() {
        let dir = TempDir::new("space");
        {
            let d = opened(&dir, 0);
            let m = msg("t", &"x".repeat(64 << 10), QoS::AtLeastOnce);
            d.append(
                "a",
                vec![Change::Enqueued(deliver(&m, QoS::AtLeastOnce, &[]))],
            );
            settle(&d);
            assert!(!d.full(), "no bound");
            d.close();
        }
        // 64 KiB are on disk now: a 4 KiB bound is passed from the open on.
        assert!(opened(&dir, 4096).full());
        assert!(!opened(&dir, 1 << 40).full());
    }
}
