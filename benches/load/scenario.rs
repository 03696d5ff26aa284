//! Traffic scenarios: who publishes where and who subscribes to what, and the run itself —
//! connect everyone, publish for a duration or a count, drain the tail, account for every
//! message.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use supermq::topic::matches;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::{Cli, Scenario};
use crate::client::{self, Link, Run, Setup};
use crate::histogram::Histogram;
use crate::procfs;
use crate::reader::{self, SubState};
use crate::stats::Report;
use crate::writer::{self, PubPlan};

/// Time allowed for one connection's CONNECT/CONNACK or SUBSCRIBE/SUBACK.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often broker memory and progress are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One client of a scenario.
#[derive(Debug, Clone, Default)]
pub struct ClientPlan {
    /// Publisher index and topic.
    pub publish: Option<(u32, String)>,
    pub subscribe: Vec<String>,
    /// Subscribes, then never reads.
    pub stalled: bool,
}

/// The clients of a scenario and the topic of each publisher.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub clients: Vec<ClientPlan>,
    pub topics: Vec<String>,
}

impl Plan {
    /// Builds the topology of `cli.scenario`; topics carry the run's nonce.
    pub fn new(cli: &Cli, nonce: u32) -> Plan {
        let base = format!("{}/{nonce:08x}", cli.prefix);
        let topic = |i: usize| format!("{base}/{i}");
        let all = format!("{base}/+");
        let (pubs, subs) = (cli.pub_count(), cli.sub_count());
        let mut clients = Vec::new();
        let subscriber = |f: String| ClientPlan {
            subscribe: vec![f],
            ..ClientPlan::default()
        };
        let publisher = |i: usize| ClientPlan {
            publish: Some((i as u32, topic(i))),
            ..ClientPlan::default()
        };
        match cli.scenario {
            Scenario::OneToOne | Scenario::FanOut => {
                clients.extend((0..subs).map(|_| subscriber(topic(0))));
                clients.push(publisher(0));
            }
            Scenario::FanIn => {
                clients.push(subscriber(all.clone()));
                clients.extend((0..pubs).map(publisher));
            }
            Scenario::Mesh => clients.extend((0..pubs).map(|i| ClientPlan {
                subscribe: vec![all.clone()],
                ..publisher(i)
            })),
            Scenario::Pairs => {
                clients.extend((0..pubs).map(|i| subscriber(topic(i))));
                clients.extend((0..pubs).map(publisher));
            }
            Scenario::Idle => {}
        }
        let first = clients
            .iter()
            .find(|c| !c.subscribe.is_empty())
            .map(|c| c.subscribe.clone())
            .unwrap_or_default();
        let stalled = (0..cli.stall_subs).map(|_| ClientPlan {
            subscribe: first.clone(),
            stalled: true,
            ..ClientPlan::default()
        });
        clients.extend(stalled);
        Plan {
            clients,
            topics: (0..pubs).map(topic).collect(),
        }
    }

    /// Whether `client` (a live subscriber) should receive publisher `p`'s messages.
    pub fn receives(&self, client: usize, p: usize) -> bool {
        let c = &self.clients[client];
        !c.stalled && c.subscribe.iter().any(|f| matches(f, &self.topics[p]))
    }
}

/// Connects many clients, at most `concurrency` at a time; one result per entry of
/// `clients` (client id, filters to subscribe, source address), in order.
pub async fn connect_many(
    addr: SocketAddr,
    clients: Vec<(String, Vec<String>, Option<IpAddr>)>,
    qos: supermq::codec::QoS,
    concurrency: usize,
    keep_alive: u16,
    level: supermq::codec::ProtocolLevel,
    persistent: bool,
) -> Vec<Result<Setup, String>> {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut set = JoinSet::new();
    let n = clients.len();
    for (i, (id, filters, source)) in clients.into_iter().enumerate() {
        let limit = limit.clone();
        set.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let r = async {
                let clean = !persistent || filters.is_empty();
                let mut s =
                    client::connect(addr, source, &id, keep_alive, SETUP_TIMEOUT, level, clean)
                        .await?;
                if !filters.is_empty() {
                    client::subscribe(&mut s, &filters, qos, SETUP_TIMEOUT).await?;
                }
                Ok(s)
            };
            (i, r.await.map_err(|e: String| format!("client {id}: {e}")))
        });
    }
    let mut out: Vec<Result<Setup, String>> = (0..n).map(|_| Err("not run".into())).collect();
    while let Some(j) = set.join_next().await {
        match j {
            Ok((i, r)) => out[i] = r,
            // Entries of a task that panicked stay "not run".
            Err(e) => eprintln!("supermq-load: connection task failed: {e}"),
        }
    }
    out
}

/// Peak broker memory seen by the sampler.
#[derive(Debug, Default)]
struct Peak {
    rss_kb: AtomicU64,
}

/// Samples broker RSS every 100 ms and stops publishing when nothing moves for
/// `stall_timeout` (a stalled broker would otherwise hang a `--count` run).
///
/// Runs on a thread of its own: reading `/proc/PID/status` takes tens of microseconds, and
/// on the runtime's thread it would hold up the clients ten times a second, which at 10,000
/// msgs/s is the latency of one message in a hundred: the measured p99.
fn sample(run: Arc<Run>, pid: Option<u32>, peak: Arc<Peak>, stall_timeout: Duration) {
    let mut last = (u64::MAX, Instant::now());
    loop {
        std::thread::sleep(SAMPLE_EVERY);
        if run.finish.is_cancelled() {
            return;
        }
        if let Some(kb) = pid.and_then(procfs::rss_kb) {
            peak.rss_kb.fetch_max(kb, Ordering::Relaxed);
        }
        let progress = run.sent.load(Ordering::Relaxed) + run.received.load(Ordering::Relaxed);
        if progress != last.0 {
            last = (progress, Instant::now());
        } else if run.publishing.load(Ordering::Acquire) > 0
            && !run.stop_pub.is_cancelled()
            && last.1.elapsed() >= stall_timeout
        {
            run.error(format!(
                "stall: nothing sent or delivered for {:.1} s at t={:.1} s; publishing stopped",
                last.1.elapsed().as_secs_f64(),
                run.start.elapsed().as_secs_f64()
            ));
            run.stop_pub.cancel();
        }
    }
}

/// A client after setup, with its tasks.
struct Live {
    sub: Option<tokio::task::JoinHandle<Option<SubState>>>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

/// Runs a traffic scenario and measures it.
pub async fn run(cli: &Cli, addr: SocketAddr) -> Result<Report, String> {
    let run = Arc::new(Run::new(rand::random::<u32>(), cli.level()));
    let plan = Plan::new(cli, run.nonce);
    let qos = cli.qos();
    let size = cli.size as usize;
    let pubs = plan.topics.len();

    // Subscribers first, so nothing published is missed; publishers after.
    let ids: Vec<String> = (0..plan.clients.len())
        .map(|i| format!("sl{:08x}-{i}", run.nonce))
        .collect();
    let mut setups: Vec<Option<Setup>> = (0..plan.clients.len()).map(|_| None).collect();
    for subscribers in [true, false] {
        let idx: Vec<usize> = (0..plan.clients.len())
            .filter(|&i| plan.clients[i].subscribe.is_empty() != subscribers)
            .collect();
        let specs = idx
            .iter()
            .map(|&i| (ids[i].clone(), plan.clients[i].subscribe.clone(), None))
            .collect();
        let target = match cli.sub_port {
            Some(port) if subscribers => SocketAddr::new(addr.ip(), port),
            _ => addr,
        };
        let done = connect_many(
            target,
            specs,
            qos,
            cli.connect_concurrency,
            cli.keep_alive,
            cli.level(),
            cli.persistent,
        )
        .await;
        for (i, r) in idx.into_iter().zip(done) {
            setups[i] = Some(r?);
        }
    }

    let ticks = procfs::clock_ticks() as f64;
    let cpu0 = cli.broker_pid.and_then(procfs::cpu_ticks);
    let self0 = procfs::self_cpu_ticks();
    let peak = Arc::new(Peak::default());
    let _sampler = {
        let (run, pid, peak, stall) =
            (run.clone(), cli.broker_pid, peak.clone(), cli.stall_timeout);
        std::thread::Builder::new()
            .name("sampler".into())
            .spawn(move || sample(run, pid, peak, stall))
            .map_err(|e| format!("cannot start the sampler thread: {e}"))?
    };

    let go = Instant::now();
    let go_ns = run.ns(go);
    let deadline = cli.count.is_none().then(|| go + cli.duration);
    let mut live = Vec::new();
    let mut pub_links: Vec<(usize, Arc<Link>)> = Vec::new();
    let mut held: Vec<TcpStream> = Vec::new();
    for (i, (c, setup)) in plan.clients.iter().zip(setups).enumerate() {
        let Some(setup) = setup else {
            return Err(format!("client {i} was not set up"));
        };
        if c.stalled {
            held.push(setup.stream);
            continue;
        }
        let link = Arc::new(Link::default());
        // MQTT 5: never more in flight than the broker takes [MQTT-3.3.4-7].
        let window = (cli.window as usize).min(usize::from(setup.receive_maximum));
        let (rd, wr) = setup.stream.into_split();
        let sub = (!c.subscribe.is_empty()).then(|| SubState::new(pubs, run.nonce, size));
        let pub_plan = c.publish.as_ref().map(|(idx, topic)| PubPlan {
            publisher: (u64::from(run.nonce) << 32) | u64::from(*idx),
            topic: topic.clone(),
            qos,
            size,
            rate: cli.rate as f64 / pubs.max(1) as f64,
            count: cli.count,
            deadline,
            window,
            level: run.level,
            go,
        });
        if let Some((idx, _)) = &c.publish {
            pub_links.push((*idx as usize, link.clone()));
        }
        // Only publishers get a writer task; a subscriber's reader writes its own acks.
        let (writer, direct) = if pub_plan.is_some() {
            run.publishing.fetch_add(1, Ordering::AcqRel);
            let w = writer::write_loop(wr, link.clone(), pub_plan, run.clone());
            (Some(tokio::spawn(w)), None)
        } else {
            (None, Some(wr))
        };
        let r = reader::read_loop(rd, setup.leftover, link.clone(), sub, run.clone(), direct);
        live.push(Live {
            sub: Some(tokio::spawn(r)),
            writer,
        });
    }

    wait_publishers(&run, cli, deadline).await;
    let pub_end = Instant::now();

    // The tail: until everything sent has been delivered (and acknowledged), or nothing has
    // arrived for the drain time (a broker still delivering is slow, not lossy), or the
    // drain cap has passed.
    let receivers: Vec<u64> = (0..pubs)
        .map(|p| {
            (0..plan.clients.len())
                .filter(|&c| plan.receives(c, p))
                .count() as u64
        })
        .collect();
    let cap = pub_end + cli.drain_max.max(cli.drain);
    let mut last = (u64::MAX, Instant::now());
    loop {
        let expected: u64 = pub_links
            .iter()
            .map(|(p, l)| l.sent.load(Ordering::Relaxed) * receivers[*p])
            .sum();
        let (received, acked) = (
            run.received.load(Ordering::Relaxed),
            run.acked.load(Ordering::Relaxed),
        );
        let all_acked =
            qos == supermq::codec::QoS::AtMostOnce || acked >= run.sent.load(Ordering::Relaxed);
        let now = Instant::now();
        if received + acked != last.0 {
            last = (received + acked, now);
        }
        if (received >= expected && all_acked) || now - last.1 >= cli.drain || now >= cap {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let cpu1 = cli.broker_pid.and_then(procfs::cpu_ticks);
    let self1 = procfs::self_cpu_ticks();
    let rss_end = cli.broker_pid.and_then(procfs::rss_kb);
    let hwm = cli.broker_pid.and_then(procfs::hwm_kb);
    run.finish.cancel();

    let mut subs: Vec<(usize, SubState)> = Vec::new();
    let live_idx = (0..plan.clients.len()).filter(|&i| !plan.clients[i].stalled);
    let mut sent_by: Vec<u64> = vec![0; pubs];
    for (p, l) in &pub_links {
        sent_by[*p] = l.sent.load(Ordering::Relaxed);
    }
    for (i, mut l) in live_idx.zip(live) {
        if let Some(h) = l.sub.take() {
            if let Ok(Ok(Some(s))) = tokio::time::timeout(Duration::from_secs(2), h).await {
                subs.push((i, s));
            }
        }
        if let Some(w) = l.writer.take() {
            w.abort();
        }
    }
    drop(held);

    let mut r = Report {
        scenario: cli.scenario.name().into(),
        broker: addr.to_string(),
        qos: cli.qos,
        size,
        pubs,
        subs: cli.sub_count(),
        stall_subs: cli.stall_subs,
        rate: cli.rate,
        ..Report::default()
    };
    // A message cut off mid-write at the end may still have reached a subscriber.
    for (_, s) in &subs {
        for (p, t) in s.trackers.iter().enumerate() {
            sent_by[p] = sent_by[p].max(t.high);
        }
    }
    let mut latency = Histogram::default();
    for (c, s) in &subs {
        for (p, t) in s.trackers.iter().enumerate() {
            if plan.receives(*c, p) {
                r.delivered += t.unique + t.duplicated;
                r.lost += sent_by[p].saturating_sub(t.unique);
                r.duplicated += t.duplicated;
                r.reordered += t.reordered;
            } else {
                r.misrouted += t.unique + t.duplicated;
            }
        }
        r.foreign += s.foreign;
        latency.merge(&s.latency);
        if s.corrupted > 0 {
            run.error(format!(
                "{} deliveries with a payload length other than {size}",
                s.corrupted
            ));
        }
    }
    r.sent = sent_by.iter().sum();
    r.acked = run.acked.load(Ordering::Relaxed);
    r.expected = sent_by.iter().zip(&receivers).map(|(s, n)| s * n).sum();
    let secs = |ns: u64| ns.saturating_sub(go_ns) as f64 / 1e9;
    r.publish_s = secs(run.last_tx_ns.load(Ordering::Relaxed));
    r.elapsed_s = secs(run.last_rx_ns.load(Ordering::Relaxed));
    let us = |ns: u64| ns as f64 / 1e3;
    r.lat_p50_us = us(latency.percentile(50.0));
    r.lat_p99_us = us(latency.percentile(99.0));
    r.lat_p999_us = us(latency.percentile(99.9));
    r.lat_max_us = us(latency.max());
    r.lat_mean_us = latency.mean() / 1e3;
    r.broker_cpu_s = cpu0.zip(cpu1).map(|(a, b)| (b - a) as f64 / ticks);
    r.loadgen_cpu_s = self0.zip(self1).map(|(a, b)| (b - a) as f64 / ticks);
    r.broker_rss_end_kb = rss_end;
    let sampled = peak.rss_kb.load(Ordering::Relaxed);
    r.broker_rss_peak_kb = hwm
        .map(|h| h.max(sampled))
        .or((sampled > 0).then_some(sampled));
    if subs.len() < live_subscribers(&plan) {
        run.error("some subscribers did not report (reader task hung or panicked)".into());
    }
    let unexpected = run.unexpected_acks.load(Ordering::Relaxed);
    if unexpected > 0 {
        run.error(format!(
            "{unexpected} PUBACK/PUBCOMP for packet ids not in flight"
        ));
    }
    r.errors = run.errors();
    Ok(r)
}

fn live_subscribers(plan: &Plan) -> usize {
    plan.clients
        .iter()
        .filter(|c| !c.stalled && !c.subscribe.is_empty())
        .count()
}

/// Waits until every publisher has stopped. A publisher blocked in a write (the broker
/// stopped reading) gets the drain time past its deadline, then is left behind.
async fn wait_publishers(run: &Run, cli: &Cli, deadline: Option<Instant>) {
    let mut limit = deadline.map(|d| d + cli.drain);
    loop {
        if run.publishing.load(Ordering::Acquire) == 0 {
            return;
        }
        if limit.is_none() && run.stop_pub.is_cancelled() {
            limit = Some(Instant::now() + cli.drain);
        }
        if limit.is_some_and(|l| Instant::now() >= l) {
            run.error(format!(
                "{} publishers still blocked writing {:?} after publishing should have ended",
                run.publishing.load(Ordering::Acquire),
                cli.drain
            ));
            run.stop_pub.cancel();
            return;
        }
        tokio::select! {
            _ = run.changed.notified() => {}
            _ = tokio::time::sleep(SAMPLE_EVERY) => {}
        }
    }
}
