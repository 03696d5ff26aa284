//! Opening the engine: the directory's lock file (one process per store), the fjall
//! keyspace with its memory bound, the partitions, and the format version check.

use std::fs::{self, File};
use std::path::Path;

use fjall::{Keyspace, PartitionCreateOptions, PersistMode};

use super::{record, DurableError, Part, Parts, INFO_FORMAT};

/// The lock, the engine and its partitions, open.
pub(super) struct Engine {
    pub lock: File,
    pub keyspace: Keyspace,
    pub parts: Parts,
}

/// The engine's memory when no bound is given (`store check`, `store repair`).
pub const DEFAULT_MAX_MEMORY: u64 = 64 << 20;

/// Creates `dir` if missing, takes `dir/LOCK` and opens the engine.
pub(super) fn open_engine(dir: &Path) -> Result<Engine, DurableError> {
    open_engine_with(dir, DEFAULT_MAX_MEMORY)
}

/// [`open_engine`] with the engine's memory bounded by `max_memory` bytes: half for its
/// write buffers (written out to disk when full), half for its block cache.
pub(super) fn open_engine_with(dir: &Path, max_memory: u64) -> Result<Engine, DurableError> {
    let io = |source| DurableError::Io {
        dir: dir.to_owned(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(io)?;
    lock_exclusive(&lock, dir)?;
    let engine = |source| DurableError::Engine {
        dir: dir.to_owned(),
        source,
    };
    let half = (max_memory / 2).max(1 << 20);
    let keyspace = fjall::Config::new(dir.join("db"))
        .manual_journal_persist(true)
        .max_write_buffer_size(half)
        .cache_size(half)
        .open()
        .map_err(engine)?;
    let open = |name: &str| {
        keyspace
            .open_partition(name, PartitionCreateOptions::default())
            .map_err(engine)
    };
    let mut all = Vec::new();
    for p in Part::ALL {
        all.push(open(p.name())?);
    }
    let parts = Parts {
        all,
        info: open("info")?,
        quarantine: open("quarantine")?,
    };
    match parts.info.get(INFO_FORMAT).map_err(engine)?.as_deref() {
        Some([v]) if *v <= record::FORMAT => {
            if *v < record::FORMAT {
                parts
                    .info
                    .insert(INFO_FORMAT, [record::FORMAT])
                    .map_err(engine)?;
                keyspace.persist(PersistMode::SyncAll).map_err(engine)?;
            }
        }
        Some([v]) => {
            return Err(DurableError::NewerFormat {
                dir: dir.to_owned(),
                found: *v,
                supported: record::FORMAT,
            })
        }
        Some(_) => {
            return Err(DurableError::Corrupt {
                dir: dir.to_owned(),
                problem: "the format record of the info partition is not one byte".into(),
            })
        }
        None => {
            parts
                .info
                .insert(INFO_FORMAT, [record::FORMAT])
                .map_err(engine)?;
            keyspace.persist(PersistMode::SyncAll).map_err(engine)?;
        }
    }
    Ok(Engine {
        lock,
        keyspace,
        parts,
    })
}

#[cfg(target_os = "linux")]
fn lock_exclusive(f: &File, dir: &Path) -> Result<(), DurableError> {
    use rustix::fs::{flock, FlockOperation};
    match flock(f, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(DurableError::Locked {
            dir: dir.to_owned(),
        }),
        Err(e) => Err(DurableError::Io {
            dir: dir.to_owned(),
            source: e.into(),
        }),
    }
}

#[cfg(not(target_os = "linux"))]
fn lock_exclusive(_: &File, _: &Path) -> Result<(), DurableError> {
    Ok(())
}
