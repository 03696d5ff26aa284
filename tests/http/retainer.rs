//! `/api/v5/retainer/messages` and `/api/v5/retainer/message/{topic}`.

use supermq::codec::QoS;

use crate::common::http::*;
use crate::common::*;

#[tokio::test]
async fn lists_reads_and_deletes_retained_messages() {
    let (b, addr) = start_http(|_| {}).await;
    let mut c = Raw::connect(b.addr, "pub").await;
    c.publish("r/a", b"one", QoS::AtLeastOnce, true).await;
    c.publish("r/b/c", b"two", QoS::AtMostOnce, true).await;
    wait_until("retained", || metric(&b, |m| &m.retained_current) == 2).await;

    let v = get(addr, "/api/v5/retainer/messages").await.json();
    assert_eq!(v["meta"]["count"], 2);
    assert_eq!(v["data"][0]["topic"], "r/a");
    assert_eq!(v["data"][0]["qos"], 1);
    assert!(v["data"][0]["publish_at"].as_str().unwrap().ends_with('Z'));
    let v = get(addr, "/api/v5/retainer/messages?topic=r%2Fb%2Fc&limit=1")
        .await
        .json();
    assert_eq!(v["meta"]["count"], 1);
    get(addr, "/api/v5/retainer/messages?page=0")
        .await
        .assert_error(400, "BAD_REQUEST");

    let v = get(addr, "/api/v5/retainer/message/r%2Fb%2Fc").await.json();
    assert_eq!(v["payload"], "dHdv");
    get(addr, "/api/v5/retainer/message/r%2Fnone")
        .await
        .assert_error(404, "NOT_FOUND");
    get(addr, "/api/v5/retainer/message/r%2F%23")
        .await
        .assert_error(400, "BAD_REQUEST");

    let r = call(
        addr,
        "DELETE",
        "/api/v5/retainer/message/r%2Fa",
        Cred::Key,
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(metric(&b, |m| &m.retained_current), 1);
    let r = call(
        addr,
        "DELETE",
        "/api/v5/retainer/message/r%2Fa",
        Cred::Key,
        None,
    )
    .await;
    r.assert_error(404, "NOT_FOUND");
    // A slash left bare is understood as well.
    let r = call(
        addr,
        "DELETE",
        "/api/v5/retainer/message/r/b/c",
        Cred::Key,
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    // A new subscriber gets no retained message: the marker comes first.
    let mut s = Raw::connect(b.addr, "late").await;
    s.subscribe("r/#", QoS::AtLeastOnce).await;
    c.publish("r/marker", b"m", QoS::AtLeastOnce, false).await;
    assert_eq!(s.recv_publish().await.topic, "r/marker");
}
