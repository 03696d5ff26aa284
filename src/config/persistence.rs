//! The `[persistence]` section: whether and where sessions and retained messages are kept on
//! disk, and what an acknowledgement waits for.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::de;

/// When the store's writes reach the disk (README "Persistence" says what each loses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SyncMode {
    /// Every batch is fsynced before the acknowledgements of its messages are sent: an
    /// acknowledged message survives a crash and a power loss.
    #[default]
    Always,
    /// Acknowledgements do not wait; an fsync every `sync_interval`: a process crash loses
    /// nothing written, a power loss up to that interval.
    Periodic,
    /// Never fsynced by the broker: the operating system writes when it will.
    None,
}

impl SyncMode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("always", SyncMode::Always),
        ("periodic", SyncMode::Periodic),
        ("none", SyncMode::None),
    ];
}

impl<'de> Deserialize<'de> for SyncMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::keyword(d, Self::CHOICES, "\"always\", \"periodic\" or \"none\"")
    }
}

/// The durable store.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a [persistence] table")]
pub struct PersistenceConfig {
    /// Whether persistent sessions and retained messages are kept on disk.
    pub enabled: bool,
    /// The store's directory (created if missing); one broker process per directory.
    #[serde(deserialize_with = "de::path")]
    pub dir: PathBuf,
    pub sync: SyncMode,
    /// With `sync = "periodic"`: how often the store is fsynced.
    #[serde(deserialize_with = "de::positive_duration")]
    pub sync_interval: Duration,
    /// Queued messages a stored session keeps in memory while its client is connected; the
    /// rest of its queue is on disk only, read back as the client takes them. An offline
    /// stored session keeps none, so memory does not grow with what is queued.
    #[serde(deserialize_with = "de::int::<_, _, 1, 65535>")]
    pub memory_window: usize,
    /// Bytes the storage engine keeps in memory: half for write buffers (written out to
    /// disk when full), half for its read cache. What is stored beyond it is on disk only.
    #[serde(deserialize_with = "de::int::<_, _, 4194304, { de::NO_MAX }>")]
    pub max_memory: u64,
    /// The store's bytes on disk past which it is full (0: no bound of its own). Full: an
    /// offline stored session takes no new message (dropped, counted as `store_full`);
    /// connected sessions are served as before.
    #[serde(deserialize_with = "de::int::<_, _, 0, { de::NO_MAX }>")]
    pub max_disk: u64,
    /// Free bytes on the store's filesystem below which the store is full (0: not looked
    /// at), so the broker stops filling a disk before the disk refuses its writes.
    #[serde(deserialize_with = "de::int::<_, _, 0, { de::NO_MAX }>")]
    pub min_free_disk: u64,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        PersistenceConfig {
            enabled: true,
            dir: PathBuf::from("data"),
            sync: SyncMode::Always,
            sync_interval: Duration::from_millis(100),
            memory_window: 64,
            max_memory: 64 << 20,
            max_disk: 0,
            min_free_disk: 256 << 20,
        }
    }
}
