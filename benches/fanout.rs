//! Fan-out micro-benchmarks: the broker's in-memory publish path, without sockets.
//!
//! A real [`Context`] is built from the default configuration and N sessions are attached and
//! subscribed to topic `t`, as connections would do. Then:
//! - `route/qos{0,1}/N` times `router.publish` alone: match, per-session merge, enqueue and
//!   wake-up. Queues are drained between timed batches of 64 messages, outside the timing,
//!   so they never fill up.
//! - `route_and_fill/qos0/N` times publish plus draining every session into its write buffer
//!   (`session.fill`: PUBLISH header encoding and payload copy), i.e. the broker's whole
//!   per-message CPU path except the socket write.
//!
//! Throughput is in deliveries (messages × subscribers). QoS 1 queues are reset with
//! `take_undelivered` after filling, which stands in for the subscribers' PUBACKs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use supermq::codec::{ProtocolLevel, QoS};
use supermq::message::Message;
use supermq::session::{ConnLink, Outbox, Session};
use supermq::{Config, Context};

/// Messages published between two drains.
const BATCH: u64 = 64;
const PAYLOAD: usize = 1024;

struct Fixture {
    ctx: Arc<Context>,
    sessions: Vec<Arc<Session>>,
    payload: Bytes,
    buf: Outbox,
}

impl Fixture {
    fn new(n: usize, qos: QoS) -> Fixture {
        let ctx = Context::new(Config::default()).expect("default config has no files to load");
        let sessions = (0..n)
            .map(|i| {
                let link = ConnLink::new(ctx.sessions.next_gen());
                let attached = ctx
                    .sessions
                    .attach(
                        &format!("bench-{i}"),
                        true,
                        Some(std::time::Duration::ZERO),
                        link,
                    )
                    .expect("session store has room");
                ctx.router
                    .subscribe(
                        &attached.session,
                        "t",
                        supermq::session::Grant::qos(qos),
                        None,
                    )
                    .expect("valid filter");
                attached.session
            })
            .collect();
        Fixture {
            ctx,
            sessions,
            payload: Bytes::from(vec![0xA5; PAYLOAD]),
            buf: Outbox::default(),
        }
    }

    fn publish(&self, qos: QoS) -> usize {
        let msg = Message::new("t", self.payload.clone(), qos, false);
        self.ctx
            .router
            .publish(msg, supermq::router::Origin::broker(), Instant::now())
            .queued
    }

    /// Empties every queue (and the QoS 1 in-flight window).
    fn drain(&mut self) {
        for s in &self.sessions {
            let mut st = s.lock();
            self.buf.buf().clear();
            // Copied in, as for a TLS or WebSocket client (1 KB payloads are copied anyway).
            st.fill(
                &mut self.buf,
                usize::MAX,
                &mut supermq::session::Egress::new(ProtocolLevel::V311, false),
                Instant::now(),
            );
            drop(st.take_undelivered());
        }
    }
}

fn bench_route(c: &mut Criterion) {
    let mut g = c.benchmark_group("route");
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        for n in [1usize, 20, 1000] {
            let mut f = Fixture::new(n, qos);
            g.throughput(Throughput::Elements(n as u64));
            let id = BenchmarkId::new(format!("qos{}", qos as u8), n);
            g.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let k = left.min(BATCH);
                        let t = Instant::now();
                        for _ in 0..k {
                            std::hint::black_box(f.publish(qos));
                        }
                        timed += t.elapsed();
                        f.drain();
                        left -= k;
                    }
                    timed
                })
            });
        }
    }
    g.finish();
}

fn bench_route_and_fill(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_and_fill");
    for n in [1usize, 20, 1000] {
        let mut f = Fixture::new(n, QoS::AtMostOnce);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("qos0", n), |b| {
            b.iter(|| {
                f.publish(QoS::AtMostOnce);
                f.drain();
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = bench_route, bench_route_and_fill
}
criterion_main!(benches);
