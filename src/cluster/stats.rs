//! Traffic counters of one route link (for `$SYS/broker/routes/<node>/...`).

use std::sync::atomic::AtomicU64;

/// Traffic counters of one route link.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub msgs_in: AtomicU64,
    pub msgs_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}
