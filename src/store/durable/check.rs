//! `supermq store check DIR` and `supermq store repair DIR`: what the store holds, what in it
//! cannot be read, and moving that aside.
//!
//! Both take the directory's lock, so neither runs against a store a broker has open
//! ([`DurableError::Locked`]). [`repair`] never deletes: every record it takes out (one that
//! does not decode, an entry naming a session or message that is not stored, a message no
//! entry names) is copied unchanged into the `quarantine` partition, under
//! `partition 0x00 key 0x00 time-of-repair`, in the same atomic batch that removes it.

use std::fmt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use fjall::PersistMode;

use super::engine::open_engine;
use super::{load, DurableError, Part};

/// A record that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub partition: String,
    pub key: Vec<u8>,
    pub what: String,
}

impl Problem {
    pub(super) fn new(partition: &str, key: Vec<u8>, what: impl fmt::Display) -> Problem {
        Problem {
            partition: partition.to_owned(),
            key,
            what: what.to_string(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "record \"{}\" of partition {}: {}",
            self.key.escape_ascii(),
            self.partition,
            self.what
        )
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Records per partition.
    pub counts: Vec<(&'static str, usize)>,
    /// Records already moved aside by an earlier repair.
    pub quarantined: usize,
    pub problems: Vec<Problem>,
    /// Ids of messages that no entry names (purged on open, moved aside by repair).
    pub unreferenced_messages: Vec<u64>,
}

impl CheckReport {
    /// Whether the store opens as it is.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, n) in &self.counts {
            writeln!(f, "{name}: {n} records")?;
        }
        writeln!(f, "quarantine: {} records", self.quarantined)?;
        writeln!(
            f,
            "messages named by no entry: {}",
            self.unreferenced_messages.len()
        )?;
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        match self.problems.len() {
            0 => write!(f, "the store is sound"),
            n => write!(
                f,
                "{n} problem(s): run `supermq store repair` to move them aside"
            ),
        }
    }
}

/// What [`repair`] did.
#[derive(Debug, Clone, Default)]
pub struct RepairReport {
    /// The records moved into the quarantine partition, and why.
    pub quarantined: Vec<Problem>,
    /// Messages no entry named, moved aside too.
    pub unreferenced_messages: usize,
}

impl fmt::Display for RepairReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.quarantined {
            writeln!(f, "moved aside: {p}")?;
        }
        write!(
            f,
            "{} record(s) and {} unreferenced message(s) moved to the quarantine partition",
            self.quarantined.len(),
            self.unreferenced_messages
        )
    }
}

fn engine_err(dir: &Path) -> impl Fn(fjall::Error) -> DurableError + '_ {
    move |source| DurableError::Engine {
        dir: dir.to_owned(),
        source,
    }
}

/// Opens the store in `dir`, which must be one (a typo does not create an empty store).
fn open_existing(dir: &Path) -> Result<super::Engine, DurableError> {
    if !dir.join("db").is_dir() {
        return Err(DurableError::Io {
            dir: dir.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no store here (no db directory)",
            ),
        });
    }
    open_engine(dir)
}

/// Reads every record of the store in `dir` and reports what it holds and what is wrong.
pub fn check(dir: &Path) -> Result<CheckReport, DurableError> {
    let engine = open_existing(dir)?;
    let scan = load::scan(&engine.parts, true).map_err(engine_err(dir))?;
    let quarantined = engine.parts.quarantine.len().map_err(engine_err(dir))?;
    Ok(CheckReport {
        counts: scan.counts,
        quarantined,
        problems: scan.problems,
        unreferenced_messages: scan.orphans,
    })
}

/// Moves every record [`check`] objects to into the quarantine partition (see the module
/// docs); the store opens afterwards with everything else intact.
pub fn repair(dir: &Path) -> Result<RepairReport, DurableError> {
    let engine = open_existing(dir)?;
    let parts = &engine.parts;
    let scan = load::scan(parts, true).map_err(engine_err(dir))?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let quarantine_key = |name: &str, key: &[u8]| {
        let mut k = Vec::with_capacity(name.len() + key.len() + 10);
        k.extend_from_slice(name.as_bytes());
        k.push(0);
        k.extend_from_slice(key);
        k.push(0);
        k.extend_from_slice(&stamp.to_be_bytes());
        k
    };
    let handle = |name: &str| match name {
        "info" => Some(&parts.info),
        _ => Part::ALL
            .iter()
            .find(|p| p.name() == name)
            .map(|p| parts.get(*p)),
    };
    let mut batch = engine.keyspace.batch();
    let mut report = RepairReport::default();
    for p in scan.problems {
        let Some(h) = handle(&p.partition) else {
            continue;
        };
        if let Some(v) = h.get(&p.key).map_err(engine_err(dir))? {
            batch.insert(&parts.quarantine, quarantine_key(&p.partition, &p.key), v);
            batch.remove(h, p.key.clone());
            report.quarantined.push(p);
        }
    }
    let messages = parts.get(Part::Messages);
    for id in scan.orphans {
        let key = id.to_be_bytes();
        if let Some(v) = messages.get(key).map_err(engine_err(dir))? {
            let qk = quarantine_key(Part::Messages.name(), &key);
            batch.insert(&parts.quarantine, qk, v);
            batch.remove(messages, key.to_vec());
            report.unreferenced_messages += 1;
        }
    }
    batch.commit().map_err(engine_err(dir))?;
    engine
        .keyspace
        .persist(PersistMode::SyncAll)
        .map_err(engine_err(dir))?;
    Ok(report)
}
