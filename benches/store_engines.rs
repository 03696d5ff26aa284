//! The durable store's write pattern against two embedded engines, fjall and redb: batches of
//! 1 KB appends (1, 16 and 64 messages), each batch committed and fsynced as one group
//! commit, with the previous batch deleted in the same commit (the acks). Prints appends/s,
//! fsynced batches/s and the p50/p99 commit latency per engine and batch size, and, for
//! reference, this machine's raw `fdatasync` latency for a small append. Then the store
//! built on fjall (`store::durable`, `sync = "always"`) as the broker drives it: 1 KB
//! messages enqueued for a stored session, each waiting on `durable()` before its
//! acknowledgement, at 10,000 msgs/s and with 64 publishers at full speed.
//!
//! `cargo bench --bench store_engines` (release; about 30 s). Files go under the system
//! temporary directory and are removed afterwards.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use supermq::codec::QoS;
use supermq::message::{Delivery, Message};
use supermq::session::Change;
use supermq::store::SessionJournal;

/// How long each (engine, batch size) runs.
const RUN: Duration = Duration::from_secs(3);
const VALUE: usize = 1024;
const BATCHES: [usize; 3] = [1, 16, 64];

struct Figures {
    appends: u64,
    batches: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn print(&mut self, engine: &str, batch: usize) {
        self.latencies.sort();
        let pct = |p: f64| {
            let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
            self.latencies[i]
        };
        let secs = self.elapsed.as_secs_f64();
        println!(
            "{engine:<6} batch {batch:>3}: {:>9.0} appends/s {:>7.0} fsynced batches/s  commit p50 {:>7.3} ms  p99 {:>7.3} ms",
            self.appends as f64 / secs,
            self.batches as f64 / secs,
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        );
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("supermq-bench-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `commit(first_key, batch)` until [`RUN`] has passed.
fn drive(batch: usize, mut commit: impl FnMut(u64, usize)) -> Figures {
    let mut f = Figures {
        appends: 0,
        batches: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    let start = Instant::now();
    let mut key = 0u64;
    while start.elapsed() < RUN {
        let t = Instant::now();
        commit(key, batch);
        f.latencies.push(t.elapsed());
        key += batch as u64;
        f.appends += batch as u64;
        f.batches += 1;
    }
    f.elapsed = start.elapsed();
    f
}

fn fjall_run(dir: &Path, batch: usize) -> Figures {
    use fjall::{Config, PartitionCreateOptions, PersistMode};
    let ks = Config::new(dir)
        .manual_journal_persist(true)
        .open()
        .expect("fjall open");
    let part = ks
        .open_partition("queue", PartitionCreateOptions::default())
        .expect("partition");
    let value = vec![0x5au8; VALUE];
    drive(batch, |first, n| {
        let mut b = ks.batch();
        for k in first..first + n as u64 {
            b.insert(&part, k.to_be_bytes(), value.as_slice());
        }
        // The previous batch is acknowledged: deleted in this commit.
        for k in first.saturating_sub(n as u64)..first {
            b.remove(&part, k.to_be_bytes());
        }
        b.commit().expect("commit");
        ks.persist(PersistMode::SyncData).expect("persist");
    })
}

fn redb_run(dir: &Path, batch: usize) -> Figures {
    use redb::{Database, Durability, TableDefinition};
    const QUEUE: TableDefinition<u64, &[u8]> = TableDefinition::new("queue");
    let db = Database::create(dir.join("redb")).expect("redb open");
    let value = vec![0x5au8; VALUE];
    drive(batch, |first, n| {
        let mut tx = db.begin_write().expect("begin");
        tx.set_durability(Durability::Immediate);
        {
            let mut t = tx.open_table(QUEUE).expect("table");
            for k in first..first + n as u64 {
                t.insert(k, value.as_slice()).expect("insert");
            }
            for k in first.saturating_sub(n as u64)..first {
                t.remove(k).expect("remove");
            }
        }
        tx.commit().expect("commit");
    })
}

fn raw_fdatasync(dir: &Path) {
    let path = dir.join("raw");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("raw file");
    let mut lat = Vec::new();
    for i in 0..500u32 {
        let t = Instant::now();
        f.write_all(&i.to_be_bytes()).expect("write");
        f.sync_data().expect("fdatasync");
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "raw    4-byte append + fdatasync: p50 {:.3} ms  p99 {:.3} ms",
        lat[lat.len() / 2].as_secs_f64() * 1e3,
        lat[lat.len() * 99 / 100].as_secs_f64() * 1e3
    );
}

/// One message appended (enqueued for one of 64 sessions, then sent and acked), as a
/// publish to a stored session costs the store.
fn publish(d: &supermq::store::durable::Durable, m: &Arc<Message>, i: u64) {
    let id = format!("s{}", i % 64);
    let delivery = Delivery {
        msg: m.clone(),
        qos: QoS::AtLeastOnce,
        retain: false,
        group: None,
        sub_ids: None,
    };
    d.append(&id, vec![Change::Enqueued(delivery)]);
}

fn ack(d: &supermq::store::durable::Durable, i: u64) {
    let id = format!("s{}", i % 64);
    let pkid = (i % 60_000 + 1) as u16;
    d.append(&id, vec![Change::Sent { pkid }, Change::Acked { pkid }]);
}

fn print_waits(what: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "durable {what}: {:>7.0} acks/s  wait for durable p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        n as f64 / elapsed.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3,
    );
}

fn durable_run() {
    use supermq::store::durable::{Durable, DurableOptions, SyncMode, DEFAULT_MAX_MEMORY};
    let dir = scratch("durable");
    let opts = DurableOptions {
        dir: dir.clone(),
        sync: SyncMode::Always,
        window: Some(64),
        max_memory: DEFAULT_MAX_MEMORY,
        max_disk: 0,
        min_free_disk: 0,
    };
    let (d, _) = Durable::open(&opts).expect("open");
    let m = Arc::new(Message::new(
        "bench/t",
        Bytes::from(vec![0x5a; VALUE]),
        QoS::AtLeastOnce,
        false,
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    // Paced: one message every 100 µs, each waiting for its fsync in a task of its own.
    let lat = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let n = rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_micros(100));
        let mut tasks = Vec::new();
        let mut i = 0u64;
        while start.elapsed() < RUN {
            tick.tick().await;
            let t = Instant::now();
            publish(&d, &m, i);
            let wait = d.durable();
            let (d2, lat) = (d.clone(), lat.clone());
            tasks.push(tokio::spawn(async move {
                if let Some(w) = wait {
                    w.await;
                }
                lat.lock().expect("lat").push(t.elapsed());
                ack(&d2, i);
            }));
            i += 1;
        }
        for t in tasks {
            let _ = t.await;
        }
        i as usize
    });
    let elapsed = start.elapsed();
    let lat = std::mem::take(&mut *lat.lock().expect("lat"));
    print_waits("paced 10k/s", n, elapsed, lat);

    // Saturated: 64 publishers, each publishing its next message once the last is durable.
    let lat = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let n = rt.block_on(async {
        let mut tasks = Vec::new();
        for p in 0..64u64 {
            let (d, m, lat) = (d.clone(), m.clone(), lat.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                let mut i = p;
                while start.elapsed() < RUN {
                    let t = Instant::now();
                    publish(&d, &m, i);
                    if let Some(w) = d.durable() {
                        w.await;
                    }
                    lat.lock().expect("lat").push(t.elapsed());
                    ack(&d, i);
                    i += 64;
                    n += 1;
                }
                n
            }));
        }
        let mut n = 0;
        for t in tasks {
            n += t.await.unwrap_or(0);
        }
        n
    });
    let elapsed = start.elapsed();
    let lat = std::mem::take(&mut *lat.lock().expect("lat"));
    print_waits("64 publishers", n, elapsed, lat);
    d.close();
    drop(d);
    let _ = fs::remove_dir_all(&dir);
}

fn main() {
    let dir = scratch("raw");
    raw_fdatasync(&dir);
    let _ = fs::remove_dir_all(&dir);
    for batch in BATCHES {
        let dir = scratch("fjall");
        fjall_run(&dir, batch).print("fjall", batch);
        let _ = fs::remove_dir_all(&dir);
        let dir = scratch("redb");
        redb_run(&dir, batch).print("redb", batch);
        let _ = fs::remove_dir_all(&dir);
    }
    durable_run();
}
