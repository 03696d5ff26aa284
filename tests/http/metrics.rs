//! `/metrics` read by a Prometheus-format parser (`prometheus-parse`): every broker counter
//! present with HELP and TYPE, and the numbers moving with traffic.

use prometheus_parse::{Scrape, Value};
use supermq::codec::QoS;

use crate::common::http::*;
use crate::common::*;

async fn scrape(addr: std::net::SocketAddr) -> (Scrape, String) {
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, 200);
    let ct = r.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.text();
    let s = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    (s, text)
}

fn value(s: &Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    let found = s
        .samples
        .iter()
        .find(|x| x.metric == name && label.map_or(true, |(k, v)| x.labels.get(k) == Some(v)))
        .unwrap_or_else(|| panic!("{name} {label:?} missing"));
    match &found.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{name}: {other:?}"),
    }
}

#[tokio::test]
async fn every_counter_is_exported_and_moves_with_traffic() {
    let (b, addr) = start_http(|_| {}).await;
    let (before, text) = scrape(addr).await;
    for (name, _) in b.broker.metrics().snapshot() {
        let (family, sample) = match name.strip_suffix("_current") {
            Some(g) => (format!("supermq_{g}"), format!("supermq_{g}")),
            None => (format!("supermq_{name}"), format!("supermq_{name}_total")),
        };
        assert!(before.docs.contains_key(&family), "# HELP for {family}");
        let kind = if name.ends_with("_current") {
            "gauge"
        } else {
            "counter"
        };
        assert!(
            text.contains(&format!("# TYPE {family} {kind}\n")),
            "# TYPE {family}"
        );
        value(&before, &sample, None);
    }
    assert_eq!(value(&before, "supermq_publish_received_total", None), 0.0);

    let mut sub = Raw::connect(b.addr, "sub").await;
    sub.subscribe("m/#", QoS::AtLeastOnce).await;
    let mut publ = Raw::connect(b.addr, "pub").await;
    for _ in 0..5 {
        publ.publish("m/1", b"x", QoS::AtLeastOnce, false).await;
        let _ = sub.recv_publish().await;
    }
    let (after, text) = scrape(addr).await;
    assert_eq!(value(&after, "supermq_publish_received_total", None), 5.0);
    assert_eq!(value(&after, "supermq_publish_sent_total", None), 5.0);
    assert_eq!(value(&after, "supermq_clients_connected", None), 2.0);
    assert_eq!(
        value(
            &after,
            "supermq_listener_connections",
            Some(("listener", "tcp"))
        ),
        2.0
    );
    assert!(value(&after, "supermq_bytes_received_total", None) > 0.0);
    // Drops by reason: one family, a sample per drop counter.
    assert!(text.contains("# TYPE supermq_messages_dropped counter"));
    assert_eq!(
        value(
            &after,
            "supermq_messages_dropped_total",
            Some(("reason", "queue_full"))
        ),
        0.0
    );
    // Process figures.
    assert!(value(&after, "supermq_process_resident_memory_bytes", None) > 0.0);
    assert!(value(&after, "supermq_process_open_fds", None) > 0.0);
    value(&after, "supermq_process_cpu_seconds_total", None);
    // The latency histogram saw the deliveries.
    let h = after
        .samples
        .iter()
        .find(|x| x.metric == "supermq_deliver_latency_seconds")
        .expect("histogram");
    let Value::Histogram(buckets) = &h.value else {
        panic!("{:?}", h.value)
    };
    let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
    assert!(text.contains("supermq_deliver_latency_seconds_bucket{le=\"+Inf\"}"));
    assert!(inf.count >= 1.0, "{buckets:?}");
    // Cumulative: the +Inf bucket is the count.
    assert_eq!(
        value(&after, "supermq_deliver_latency_seconds_count", None),
        inf.count
    );
    assert!(
        buckets.windows(2).all(|w| w[0].count <= w[1].count),
        "{buckets:?}"
    );
}

#[tokio::test]
async fn drops_are_labelled_by_reason() {
    let (b, addr) = start_http(|c| c.session.max_queued_messages = 1).await;
    // An offline persistent session with a QoS 0 subscription: QoS 0 is not queued for it.
    let (mut s, _) = Raw::connect_with(b.addr, connect_packet("away", false)).await;
    s.subscribe("d/#", QoS::AtMostOnce).await;
    s.disconnect().await;
    wait_until("offline", || {
        metric(&b, |m| &m.clients_connected_current) == 0
    })
    .await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("d/1", b"x", QoS::AtLeastOnce, false).await;
    wait_until("dropped", || metric(&b, |m| &m.dropped_qos0_offline) == 1).await;
    let (after, _) = scrape(addr).await;
    assert_eq!(
        value(
            &after,
            "supermq_messages_dropped_total",
            Some(("reason", "qos0_offline"))
        ),
        1.0
    );
    assert_eq!(
        value(&after, "supermq_dropped_qos0_offline_total", None),
        1.0
    );
}
