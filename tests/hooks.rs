//! The hooks seam: a recording hook sees the events of a connect, subscribe, publish,
//! delivery, unsubscribe and disconnect, in the order they happened, and a drop with its
//! reason.

mod common;

use std::sync::{Arc, Mutex};

use common::{connect_packet, start_ext, wait_until, Raw, TestBroker};
use supermq::codec::QoS;
use supermq::hooks::{Event, Hooks};
use supermq::Extensions;

/// Records each event as one line.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl Hooks for Recorder {
    fn on_event(&self, e: &Event<'_>) {
        let line = match *e {
            Event::ClientConnected {
                client_id,
                clean_session,
                session_present,
                keep_alive,
                ..
            } => format!("connected {client_id} clean={clean_session} present={session_present} ka={keep_alive}"),
            Event::ClientDisconnected {
                client_id, reason, ..
            } => {
                format!("disconnected {client_id} ({reason})")
            }
            Event::Subscribed {
                client_id,
                filter,
                qos,
            } => format!("subscribed {client_id} {filter} {}", qos as u8),
            Event::Unsubscribed { client_id, filter } => {
                format!("unsubscribed {client_id} {filter}")
            }
            Event::MessagePublished {
                client_id,
                topic,
                qos,
                retain,
                payload_len,
                ..
            } => format!(
                "published {} {topic} {} retain={retain} len={payload_len}",
                client_id.unwrap_or("-"),
                qos as u8
            ),
            Event::MessageDelivered {
                client_id,
                topic,
                qos,
                ..
            } => format!("delivered {client_id} {topic} {}", qos as u8),
            Event::MessageDropped {
                client_id,
                topic,
                reason,
                ..
            } => format!("dropped {client_id} {topic} {reason:?}"),
            Event::ClientConnack { .. } | Event::Agent { .. } => return,
        };
        self.0.lock().expect("recorder").push(line);
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("recorder").clone()
    }
}

async fn start_recorded() -> (TestBroker, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let ext = Extensions {
        hooks: Some(rec.clone()),
        ..Extensions::default()
    };
    (start_ext(ext).await, rec)
}

#[tokio::test]
async fn a_session_s_events_arrive_in_order() {
    let (b, rec) = start_recorded().await;
    let mut c = Raw::connect(b.addr, "a").await;
    c.subscribe("t/x", QoS::AtLeastOnce).await;
    c.publish("t/x", b"hello", QoS::AtLeastOnce, false).await;
    let p = c.recv_publish().await;
    assert_eq!(&p.payload[..], b"hello");
    c.unsubscribe("t/x").await;
    c.disconnect().await;
    wait_until("the disconnect is seen", || rec.lines().len() >= 6).await;
    assert_eq!(
        rec.lines(),
        [
            "connected a clean=true present=false ka=60",
            "subscribed a t/x 1",
            "published a t/x 1 retain=false len=5",
            "delivered a t/x 1",
            "unsubscribed a t/x",
            "disconnected a (client sent DISCONNECT)",
        ]
    );
}

#[tokio::test]
async fn a_drop_is_reported_with_its_reason() {
    let (b, rec) = start_recorded().await;
    // An offline persistent session with a QoS 0 subscription: QoS 0 messages are not kept
    // for it (queue_qos0_offline = false).
    let (mut off, _) = Raw::connect_with(b.addr, connect_packet("off", false)).await;
    off.subscribe("d/t", QoS::AtMostOnce).await;
    off.disconnect().await;
    wait_until("offline", || {
        rec.lines()
            .iter()
            .any(|l| l.starts_with("disconnected off"))
    })
    .await;
    let mut p = Raw::connect(b.addr, "p").await;
    p.publish("d/t", b"x", QoS::AtLeastOnce, false).await;
    wait_until("the drop is seen", || {
        rec.lines().iter().any(|l| l.starts_with("dropped"))
    })
    .await;
    let lines = rec.lines();
    let published = lines
        .iter()
        .position(|l| l == "published p d/t 1 retain=false len=1")
        .expect("published");
    let dropped = lines
        .iter()
        .position(|l| l == "dropped off d/t Offline")
        .expect("dropped with its reason");
    assert!(published < dropped, "{lines:?}");
}
