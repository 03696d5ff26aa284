//! `GET /metrics`: the Prometheus exposition (OpenMetrics text, by `prometheus-client`).
//!
//! Every counter of [`Metrics`](crate::metrics::Metrics) is exported by iterating its
//! snapshot, so a counter added to the `metrics!` macro appears here without a change:
//! `supermq_<name>_total` for counters, `supermq_<name>` (less `_current`) for the
//! `*_current` gauges. Besides them: every drop counter again as one family labelled by
//! reason, open connections per listener, each route link's counters labelled by peer, the
//! process's memory, CPU and descriptors, and the publish-to-deliver latency histogram.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::reply::{self, Resp};
use super::ListenerInfo;
use crate::cluster::Cluster;
use crate::context::Context;
use crate::metrics::{get, Metrics};

/// The registry, built once; the collector reads the broker's state at each scrape.
pub struct Exposition {
    registry: Registry,
}

impl std::fmt::Debug for Exposition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exposition")
    }
}

impl Exposition {
    pub fn new(
        ctx: Arc<Context>,
        cluster: Option<Arc<Cluster>>,
        listeners: &[ListenerInfo],
    ) -> Exposition {
        let mut registry = Registry::with_prefix("supermq");
        registry.register_collector(Box::new(Broker {
            ctx,
            cluster,
            listeners: listeners.iter().map(|l| l.name.clone()).collect(),
        }));
        Exposition { registry }
    }

    pub fn render(&self) -> Resp {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::warn!("/metrics: encoding failed: {e}");
        }
        reply::body(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            out,
        )
    }
}

#[derive(Debug)]
struct Broker {
    ctx: Arc<Context>,
    cluster: Option<Arc<Cluster>>,
    listeners: Vec<String>,
}

/// The reason a drop counter names: `dropped_<reason>` or `<reason>_dropped`.
fn drop_reason(name: &str) -> Option<&str> {
    name.strip_prefix("dropped_")
        .or_else(|| name.strip_suffix("_dropped"))
}

fn help_of(name: &str) -> String {
    Metrics::HELP
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, h)| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| name.replace('_', " "))
}

type Labels = Vec<(String, String)>;

fn label(k: &str, v: &str) -> Labels {
    vec![(k.to_owned(), v.to_owned())]
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn gauge_f(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for Broker {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let snapshot = self.ctx.metrics.snapshot();
        for (name, v) in &snapshot {
            let help = help_of(name);
            match name.strip_suffix("_current") {
                Some(g) => gauge(&mut e, g, &help, as_i64(*v))?,
                None => counter(&mut e, name, &help, *v)?,
            }
        }
        {
            let mut m = e.encode_descriptor(
                "messages_dropped",
                "Messages not delivered, by reason (each reason is also a counter of its own)",
                None,
                MetricType::Counter,
            )?;
            for (name, v) in &snapshot {
                if let Some(reason) = drop_reason(name) {
                    let l = label("reason", reason);
                    ConstCounter::new(*v).encode(m.encode_family(&l)?)?;
                }
            }
        }
        {
            let mut m = e.encode_descriptor(
                "listener_connections",
                "Network connections open on each MQTT listener",
                None,
                MetricType::Gauge,
            )?;
            for (i, name) in self.listeners.iter().enumerate() {
                let idx = self
                    .ctx
                    .config
                    .listeners
                    .iter()
                    .position(|c| c.name == *name)
                    .unwrap_or(i);
                let v = self.ctx.listener_connections.get(idx).map_or(0, get);
                let l = label("listener", name);
                ConstGauge::new(as_i64(v)).encode(m.encode_family(&l)?)?;
            }
        }
        if let Some(c) = &self.cluster {
            let links = c.link_stats();
            let mut up = e.encode_descriptor(
                "route_link_up",
                "1 for each peer whose route link is up",
                None,
                MetricType::Gauge,
            )?;
            for (peer, _) in &links {
                ConstGauge::new(1i64).encode(up.encode_family(&label("peer", peer))?)?;
            }
            type Pick = fn(&crate::cluster::LinkStats) -> &std::sync::atomic::AtomicU64;
            let families: [(&str, &str, Pick); 4] = [
                (
                    "route_messages_in",
                    "Messages received from each peer",
                    |s| &s.msgs_in,
                ),
                ("route_messages_out", "Messages sent to each peer", |s| {
                    &s.msgs_out
                }),
                ("route_bytes_in", "Bytes received from each peer", |s| {
                    &s.bytes_in
                }),
                ("route_bytes_out", "Bytes sent to each peer", |s| {
                    &s.bytes_out
                }),
            ];
            for (name, help, pick) in families {
                let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
                for (peer, st) in &links {
                    let l = label("peer", peer);
                    ConstCounter::new(get(pick(st))).encode(m.encode_family(&l)?)?;
                }
            }
        }
        let p = super::process::read();
        if let Some(v) = p.rss_bytes {
            gauge(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory",
                as_i64(v),
            )?;
        }
        if let Some(v) = p.cpu_seconds {
            let c = ConstCounter::new(v);
            let help = "CPU time used by the process (user and system)";
            c.encode(e.encode_descriptor("process_cpu_seconds", help, None, c.metric_type())?)?;
        }
        if let Some(v) = p.open_fds {
            gauge(
                &mut e,
                "process_open_fds",
                "Open file descriptors",
                as_i64(v),
            )?;
        }
        gauge_f(
            &mut e,
            "uptime_seconds",
            "Seconds since the broker started",
            self.ctx.started.elapsed().as_secs_f64(),
        )?;
        if let Some(l) = &self.ctx.latency {
            let (sum, count, buckets) = l.snapshot();
            let mut m = e.encode_descriptor(
                "deliver_latency_seconds",
                "Publish-to-deliver latency within the broker (routed to written to the \
                 subscriber's buffer), one sample per write batch",
                None,
                MetricType::Histogram,
            )?;
            m.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reasons_from_names() {
        assert_eq!(drop_reason("dropped_queue_full"), Some("queue_full"));
        assert_eq!(drop_reason("route_frames_dropped"), Some("route_frames"));
        assert_eq!(drop_reason("publish_sent"), None);
    }

    #[test]
    fn every_counter_has_help() {
        for (name, _) in Metrics::default().snapshot() {
            assert!(!help_of(name).is_empty(), "{name}");
        }
        assert!(help_of("publish_sent").contains("PUBLISH packets sent"));
    }
}
