//! Delivery accounting and the final report.
//!
//! Each subscriber keeps one [`SeqTracker`] per publisher: a bitmap of the sequence numbers it
//! has seen. A bitmap (rather than "next expected + set of early arrivals") keeps loss
//! accounting O(1) per message even when a lossy QoS 0 run leaves gaps that never fill.

use std::fmt::Write as _;

/// The sequence numbers one subscriber received from one publisher.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    bits: Vec<u64>,
    /// Distinct sequence numbers seen.
    pub unique: u64,
    /// Deliveries of a sequence number already seen.
    pub duplicated: u64,
    /// Distinct deliveries that arrived after a higher sequence number.
    pub reordered: u64,
    /// One past the highest sequence number seen.
    pub high: u64,
}

/// Sequence numbers above this are treated as garbage rather than grown into (128 MiB bitmap).
const MAX_SEQ: u64 = 1 << 30;

impl SeqTracker {
    /// Notes one delivery of `seq`; false if `seq` is implausible and was ignored.
    #[inline]
    pub fn record(&mut self, seq: u64) -> bool {
        if seq >= MAX_SEQ {
            return false;
        }
        let word = (seq >> 6) as usize;
        if word >= self.bits.len() {
            let grown = (word + 1).max(self.bits.len() * 2).max(1024);
            self.bits.resize(grown, 0);
        }
        let mask = 1u64 << (seq & 63);
        if self.bits[word] & mask != 0 {
            self.duplicated += 1;
        } else {
            self.bits[word] |= mask;
            self.unique += 1;
            if seq < self.high {
                self.reordered += 1;
            }
        }
        self.high = self.high.max(seq + 1);
        true
    }
}

/// Everything a traffic run measured, ready to print.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub scenario: String,
    pub broker: String,
    pub qos: u8,
    pub size: usize,
    pub pubs: usize,
    pub subs: usize,
    pub stall_subs: usize,
    pub rate: u64,
    /// Seconds from go to the last publish.
    pub publish_s: f64,
    /// Seconds from go to the last delivery (the throughput window).
    pub elapsed_s: f64,
    pub sent: u64,
    pub acked: u64,
    pub expected: u64,
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Deliveries of our messages to a subscriber whose filters should not have matched.
    pub misrouted: u64,
    /// PUBLISH packets that were not from this run.
    pub foreign: u64,
    pub lat_p50_us: f64,
    pub lat_p99_us: f64,
    pub lat_p999_us: f64,
    pub lat_max_us: f64,
    pub lat_mean_us: f64,
    pub broker_cpu_s: Option<f64>,
    pub broker_rss_end_kb: Option<u64>,
    pub broker_rss_peak_kb: Option<u64>,
    pub loadgen_cpu_s: Option<f64>,
    pub errors: Vec<String>,
}

impl Report {
    /// Deliveries (every copy to every subscriber) per second over the throughput window.
    pub fn delivered_per_s(&self) -> f64 {
        per_s(self.delivered, self.elapsed_s)
    }

    /// Offered publish rate actually achieved.
    pub fn sent_per_s(&self) -> f64 {
        per_s(self.sent, self.publish_s)
    }

    /// Payload megabytes (10⁶ bytes) delivered per second.
    pub fn mb_per_s(&self) -> f64 {
        self.delivered_per_s() * self.size as f64 / 1e6
    }

    /// Broker CPU seconds per million delivered messages.
    pub fn cpu_per_m(&self) -> Option<f64> {
        let d = self.delivered.max(1) as f64 / 1e6;
        self.broker_cpu_s.map(|c| c / d)
    }

    /// One JSON object on one line.
    pub fn json(&self) -> String {
        let mut j = Json::default();
        j.str("scenario", &self.scenario);
        j.str("broker", &self.broker);
        j.num("qos", self.qos as u64);
        j.num("size", self.size as u64);
        j.num("pubs", self.pubs as u64);
        j.num("subs", self.subs as u64);
        j.num("stall_subs", self.stall_subs as u64);
        j.num("rate", self.rate);
        j.float("publish_s", self.publish_s);
        j.float("elapsed_s", self.elapsed_s);
        j.num("sent", self.sent);
        j.num("acked", self.acked);
        j.num("expected", self.expected);
        j.num("delivered", self.delivered);
        j.num("lost", self.lost);
        j.num("duplicated", self.duplicated);
        j.num("reordered", self.reordered);
        j.num("misrouted", self.misrouted);
        j.num("foreign", self.foreign);
        j.float("sent_per_s", self.sent_per_s());
        j.float("delivered_per_s", self.delivered_per_s());
        j.float("mb_per_s", self.mb_per_s());
        j.float("lat_p50_us", self.lat_p50_us);
        j.float("lat_p99_us", self.lat_p99_us);
        j.float("lat_p999_us", self.lat_p999_us);
        j.float("lat_max_us", self.lat_max_us);
        j.float("lat_mean_us", self.lat_mean_us);
        j.opt_float("broker_cpu_s", self.broker_cpu_s);
        j.opt_float("broker_cpu_s_per_m", self.cpu_per_m());
        j.opt_num("broker_rss_end_kb", self.broker_rss_end_kb);
        j.opt_num("broker_rss_peak_kb", self.broker_rss_peak_kb);
        j.opt_float("loadgen_cpu_s", self.loadgen_cpu_s);
        j.strs("errors", &self.errors);
        j.finish()
    }

    /// A few human-readable lines.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} qos {} size {} pubs {} subs {}{} against {}",
            self.scenario,
            self.qos,
            self.size,
            self.pubs,
            self.subs,
            if self.stall_subs > 0 {
                format!(" (+{} stalled)", self.stall_subs)
            } else {
                String::new()
            },
            self.broker
        );
        let _ = writeln!(
            s,
            "  sent       {} in {:.2} s ({:.0} msgs/s{})",
            self.sent,
            self.publish_s,
            self.sent_per_s(),
            if self.qos > 0 {
                format!(", {} acked", self.acked)
            } else {
                String::new()
            }
        );
        let _ = writeln!(
            s,
            "  delivered  {} of {} in {:.2} s: {:.0} msgs/s, {:.1} MB/s",
            self.delivered,
            self.expected,
            self.elapsed_s,
            self.delivered_per_s(),
            self.mb_per_s()
        );
        let _ = writeln!(
            s,
            "  lost {}  duplicated {}  reordered {}  misrouted {}  foreign {}",
            self.lost, self.duplicated, self.reordered, self.misrouted, self.foreign
        );
        let _ = writeln!(
            s,
            "  latency µs p50 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}  mean {:.0}",
            self.lat_p50_us, self.lat_p99_us, self.lat_p999_us, self.lat_max_us, self.lat_mean_us
        );
        if let Some(cpu) = self.broker_cpu_s {
            let _ = writeln!(
                s,
                "  broker cpu {:.2} s ({:.2} s per million delivered)  rss end {} KiB  peak {} KiB",
                cpu,
                self.cpu_per_m().unwrap_or(0.0),
                self.broker_rss_end_kb.unwrap_or(0),
                self.broker_rss_peak_kb.unwrap_or(0)
            );
        }
        if let Some(cpu) = self.loadgen_cpu_s {
            let _ = writeln!(s, "  load generator cpu {cpu:.2} s");
        }
        for e in &self.errors {
            let _ = writeln!(s, "  error: {e}");
        }
        s
    }
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// A hand-rolled writer for one flat JSON object (no serde dependency for one line).
#[derive(Debug, Default)]
pub struct Json {
    out: String,
}

impl Json {
    fn key(&mut self, k: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        quote(&mut self.out, k);
        self.out.push(':');
    }

    pub fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        quote(&mut self.out, v);
    }

    pub fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.out, "{v}");
    }

    pub fn float(&mut self, k: &str, v: f64) {
        self.key(k);
        if v.is_finite() {
            let _ = write!(self.out, "{v:.3}");
        } else {
            self.out.push_str("null");
        }
    }

    pub fn opt_num(&mut self, k: &str, v: Option<u64>) {
        match v {
            Some(v) => self.num(k, v),
            None => self.null(k),
        }
    }

    pub fn opt_float(&mut self, k: &str, v: Option<f64>) {
        match v {
            Some(v) => self.float(k, v),
            None => self.null(k),
        }
    }

    fn null(&mut self, k: &str) {
        self.key(k);
        self.out.push_str("null");
    }

    pub fn strs(&mut self, k: &str, v: &[String]) {
        self.key(k);
        self.out.push('[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            quote(&mut self.out, s);
        }
        self.out.push(']');
    }

    pub fn finish(mut self) -> String {
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        self.out
    }
}

fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
