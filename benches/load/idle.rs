//! The idle scenario: open many MQTT connections that then do nothing, and measure what each
//! costs the broker in resident memory.
//!
//! Connections come from 127.0.N.2, 127.0.N.3, … (`--per-source` each, N chosen at random
//! per run) when the broker is on loopback, so neither the ephemeral port range nor ports
//! lingering in TIME_WAIT from an earlier run limit how many can be opened (runs back to back
//! from one set of addresses ran out of ports: "Address already in use").

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use crate::cli::Cli;
use crate::procfs;
use crate::scenario::connect_many;
use crate::stats::Json;

/// File descriptors kept free for everything else the process opens.
pub const SPARE_FDS: u64 = 64;

/// What the idle scenario measured.
#[derive(Debug, Default)]
pub struct IdleReport {
    pub broker: String,
    pub requested: usize,
    pub attempted: usize,
    pub opened: usize,
    pub connect_s: f64,
    pub rss_before_kb: Option<u64>,
    pub rss_after_kb: Option<u64>,
    pub errors: Vec<String>,
}

impl IdleReport {
    /// Broker memory per open connection, in bytes.
    pub fn bytes_per_conn(&self) -> Option<f64> {
        let (b, a) = self.rss_before_kb.zip(self.rss_after_kb)?;
        (self.opened > 0).then(|| (a as f64 - b as f64) * 1024.0 / self.opened as f64)
    }

    pub fn json(&self) -> String {
        let mut j = Json::default();
        j.str("scenario", "idle");
        j.str("broker", &self.broker);
        j.num("conns_requested", self.requested as u64);
        j.num("conns_attempted", self.attempted as u64);
        j.num("conns_opened", self.opened as u64);
        j.float("connect_s", self.connect_s);
        j.opt_num("broker_rss_before_kb", self.rss_before_kb);
        j.opt_num("broker_rss_after_kb", self.rss_after_kb);
        j.opt_float("bytes_per_conn", self.bytes_per_conn());
        j.strs("errors", &self.errors);
        j.finish()
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "idle against {}: {} of {} connections open ({} attempted) in {:.2} s",
            self.broker, self.opened, self.requested, self.attempted, self.connect_s
        );
        if let (Some(b), Some(a)) = (self.rss_before_kb, self.rss_after_kb) {
            let _ = writeln!(
                s,
                "  broker rss {b} KiB → {a} KiB: {:.0} bytes per connection",
                self.bytes_per_conn().unwrap_or(0.0)
            );
        }
        for e in &self.errors {
            let _ = writeln!(s, "  error: {e}");
        }
        s
    }
}

/// Opens `--conns` connections, waits `--settle`, measures, then closes them all.
pub async fn run(cli: &Cli, addr: SocketAddr) -> IdleReport {
    let mut r = IdleReport {
        broker: addr.to_string(),
        requested: cli.conns,
        ..IdleReport::default()
    };
    // Each connection is one descriptor here; ask for no more than the limit allows.
    let soft = procfs::nofile_limits().map_or(1024, |(s, _)| s);
    let n = cli.conns.min(soft.saturating_sub(SPARE_FDS) as usize);
    if n < cli.conns {
        r.errors.push(format!(
            "open-files limit {soft} allows only {n} connections (raise it with ulimit -n)"
        ));
    }
    r.attempted = n;
    let loopback = matches!(addr.ip(), IpAddr::V4(ip) if ip.is_loopback());
    let sources = n.div_ceil(cli.per_source as usize);
    if loopback && sources > 250 {
        r.errors.push(format!(
            "{n} connections need {sources} source addresses; at most 250"
        ));
        return r;
    }
    let nonce = rand::random::<u32>();
    // All of 127/8 is loopback on Linux: a run's third octet comes from its nonce.
    let net = 1 + (nonce % 250) as u8;
    let specs = (0..n)
        .map(|i| {
            let source = loopback.then(|| {
                let k = 2 + (i as u64 / cli.per_source) as u8;
                IpAddr::V4(Ipv4Addr::new(127, 0, net, k))
            });
            (format!("si{nonce:08x}-{i}"), Vec::new(), source)
        })
        .collect();

    r.rss_before_kb = cli.broker_pid.and_then(procfs::rss_kb);
    let t0 = Instant::now();
    let results = connect_many(
        addr,
        specs,
        cli.qos(),
        cli.connect_concurrency,
        cli.keep_alive,
        cli.level(),
        false,
    )
    .await;
    r.connect_s = t0.elapsed().as_secs_f64();
    let mut open = Vec::with_capacity(results.len());
    let mut failed = 0u64;
    for res in results {
        match res {
            Ok(s) => open.push(s),
            Err(e) => {
                failed += 1;
                if r.errors.len() < 10 {
                    r.errors.push(e);
                }
            }
        }
    }
    if failed > 0 {
        r.errors.push(format!("{failed} connections failed"));
    }
    r.opened = open.len();
    tokio::time::sleep(cli.settle).await;
    r.rss_after_kb = cli.broker_pid.and_then(procfs::rss_kb);
    drop(open);
    r
}
