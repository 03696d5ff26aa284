//! The durable-store seam: every change to a persistent session reaches the session journal,
//! in order; clean sessions, which no store keeps, record nothing.

mod common;

use std::sync::{Arc, Mutex};

use common::{connect_packet, start_ext, wait_until, Raw};
use supermq::codec::QoS;
use supermq::session::Change;
use supermq::store::SessionJournal;
use supermq::Extensions;

/// Records each appended change as one line.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl SessionJournal for Recorder {
    fn append(&self, client_id: &str, changes: Vec<Change>) {
        let mut v = self.0.lock().expect("recorder");
        for c in changes {
            v.push(match c {
                Change::Subscribed { filter, grant } => {
                    format!(
                        "{client_id} subscribed {filter} {}",
                        grant.options.qos as u8
                    )
                }
                Change::Unsubscribed { filter } => format!("{client_id} unsubscribed {filter}"),
                Change::Enqueued(d) => format!("{client_id} enqueued {}", d.msg.topic),
                Change::Backlogged(d) => format!("{client_id} backlogged {}", d.msg.topic),
                Change::DroppedOldest => format!("{client_id} dropped oldest"),
                Change::Sent { pkid } => format!("{client_id} sent {pkid}"),
                Change::Acked { pkid } => format!("{client_id} acked {pkid}"),
                Change::Received { pkid } => format!("{client_id} received {pkid}"),
                Change::Qos2Arrived { pkid } => format!("{client_id} qos2 arrived {pkid}"),
                Change::Released { pkid } => format!("{client_id} released {pkid}"),
                Change::WillSet(w) => format!(
                    "{client_id} will {}",
                    w.map_or("none".to_owned(), |w| w.topic)
                ),
                Change::ExpirySet(e) => format!("{client_id} expiry {e:?}"),
                Change::Attached { .. } => format!("{client_id} attached"),
                Change::Detached { .. } => format!("{client_id} detached"),
                Change::Ended => format!("{client_id} ended"),
            });
        }
    }
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.0.lock().expect("recorder").clone()
    }
}

#[tokio::test]
async fn a_persistent_session_s_changes_reach_the_journal_in_order() {
    let rec = Arc::new(Recorder::default());
    let ext = Extensions {
        journal: Some(rec.clone()),
        ..Extensions::default()
    };
    let b = start_ext(ext).await;
    let addr = b.addr;
    let (mut s, _) = Raw::connect_with(addr, connect_packet("keep", false)).await;
    s.subscribe("j/t", QoS::AtLeastOnce).await;
    // A clean publisher: nothing of its own is journaled.
    let mut p = Raw::connect(addr, "clean-pub").await;
    p.publish("j/t", b"1", QoS::ExactlyOnce, false).await;
    let m = s.recv_publish().await;
    assert_eq!(m.pkid, 1);
    s.unsubscribe("j/t").await;
    s.disconnect().await;
    wait_until("the last change is appended", || {
        rec.lines().last().is_some_and(|l| l == "keep will none")
            && rec.lines().iter().any(|l| l == "keep detached")
    })
    .await;
    assert_eq!(
        rec.lines(),
        [
            "keep attached",
            "keep will none",
            "keep subscribed j/t 1",
            "keep enqueued j/t",
            "keep sent 1",
            "keep acked 1",
            "keep unsubscribed j/t",
            "keep detached",
            // The will is spent at a DISCONNECT: a restart must not publish it.
            "keep will none",
        ]
    );
}
