//! `/healthz` and `/readyz`.

use crate::common::http::*;

#[tokio::test]
async fn healthy_and_ready_when_serving() {
    let (_b, addr) = start_http(|_| {}).await;
    let r = get(addr, "/healthz").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
    let r = get(addr, "/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "ready");
    assert_eq!(v["listeners"], 1);
    assert_eq!(v["store"], "memory");
}

#[tokio::test]
async fn not_ready_without_enough_cluster_links() {
    let (_b, addr) = start_http(|c| c.http.ready_min_links = 2).await;
    let r = get(addr, "/readyz").await;
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["status"], "not_ready");
    assert_eq!(v["links"], 0);
    assert!(v["not_ready"][0]
        .as_str()
        .unwrap()
        .contains("ready_min_links"));
    // Alive all the same.
    assert_eq!(get(addr, "/healthz").await.status, 200);
}

#[tokio::test]
async fn ready_with_the_durable_store_open() {
    let dir = std::env::temp_dir().join(format!("supermq-http-ready-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (b, addr) = start_http(|c| {
        c.persistence.enabled = true;
        c.persistence.dir = dir.clone();
    })
    .await;
    let v = get(addr, "/readyz").await.json();
    assert_eq!(v["store"], "open", "{v}");
    drop(b);
    let _ = std::fs::remove_dir_all(&dir);
}
