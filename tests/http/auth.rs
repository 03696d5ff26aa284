//! API keys: which paths need one, the 401 answer, `anonymous_read`, unknown paths and
//! methods.

use crate::common::http::*;

#[tokio::test]
async fn api_needs_a_key_and_refuses_a_wrong_one() {
    let (_b, addr) = start_http(|_| {}).await;
    for path in [
        "/api/v5/clients",
        "/api/v5/openapi.json",
        "/api/v5/nope",
        "/metrics",
        "/healthz",
        "/readyz",
    ] {
        for cred in [Cred::None, Cred::Wrong] {
            let r = call(addr, "GET", path, cred, None).await;
            r.assert_error(401, "BAD_API_KEY_OR_SECRET");
            let challenge = r.headers.get("www-authenticate").expect("challenge");
            assert!(challenge.to_str().unwrap().starts_with("Basic "), "{path}");
        }
        let r = call(addr, "GET", path, Cred::Key, None).await;
        assert_ne!(r.status, 401, "{path}");
    }
    let r = call(addr, "POST", "/api/v5/publish", Cred::None, Some(b"{}")).await;
    r.assert_error(401, "BAD_API_KEY_OR_SECRET");
}

#[tokio::test]
async fn anonymous_read_opens_only_health_and_metrics() {
    let (_b, addr) = start_http(|c| c.http.anonymous_read = true).await;
    for path in ["/metrics", "/healthz", "/readyz"] {
        let r = call(addr, "GET", path, Cred::None, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
    let r = call(addr, "GET", "/api/v5/clients", Cred::None, None).await;
    r.assert_error(401, "BAD_API_KEY_OR_SECRET");
    let r = call(addr, "GET", "/api/v5/nodes", Cred::Wrong, None).await;
    r.assert_error(401, "BAD_API_KEY_OR_SECRET");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_json_errors() {
    let (_b, addr) = start_http(|_| {}).await;
    get(addr, "/api/v5/nope")
        .await
        .assert_error(404, "NOT_FOUND");
    get(addr, "/nope").await.assert_error(404, "NOT_FOUND");
    get(addr, "/api/v4/clients")
        .await
        .assert_error(404, "NOT_FOUND");
    let r = call(addr, "PUT", "/api/v5/clients", Cred::Key, None).await;
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    assert_eq!(r.headers.get("allow").unwrap(), "GET");
    let r = call(addr, "GET", "/api/v5/publish", Cred::Key, None).await;
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    let r = call(addr, "POST", "/metrics", Cred::Key, None).await;
    r.assert_error(405, "METHOD_NOT_ALLOWED");
    // A bad escape in a path segment.
    get(addr, "/api/v5/clients/%zz")
        .await
        .assert_error(400, "BAD_REQUEST");
    get(addr, "/api/v5/clients?page=%ff")
        .await
        .assert_error(400, "BAD_REQUEST");
    // Parameters a path does not take.
    for path in [
        "/api/v5/clients?pgae=2",
        "/api/v5/retainer/messages?=x",
        "/api/v5/nodes?verbose=1",
        "/api/v5/clients/x?page=1",
        "/healthz?x",
    ] {
        get(addr, path).await.assert_error(400, "BAD_REQUEST");
    }
}

#[tokio::test]
async fn openapi_document_lists_the_served_paths() {
    let (_b, addr) = start_http(|_| {}).await;
    let r = get(addr, "/api/v5/openapi.json").await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert!(v["openapi"].as_str().unwrap().starts_with("3.0"));
    assert!(v["paths"]["/api/v5/clients/{clientid}"]["delete"].is_object());
    assert_eq!(
        v["components"]["securitySchemes"]["basicAuth"]["scheme"],
        "basic"
    );
}
