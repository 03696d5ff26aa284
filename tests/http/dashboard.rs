//! The dashboard's embedded assets: behind the API key, served with their types and a
//! content security policy that keeps them to this origin.

use crate::common::http::*;

#[tokio::test]
async fn dashboard_is_served_behind_the_key() {
    let (_b, addr) = start_http(|c| c.http.anonymous_read = true).await;
    for path in ["/", "/dashboard/app.js"] {
        call(addr, "GET", path, Cred::None, None)
            .await
            .assert_error(401, "BAD_API_KEY_OR_SECRET");
    }
    let r = get(addr, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(r.text().contains("/dashboard/app.js"));
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    for (path, ct, needle) in [
        ("/dashboard/app.js", "text/javascript", "api/v5/"),
        ("/dashboard/mqtt.js", "text/javascript", "class MiniMqtt"),
        ("/dashboard/style.css", "text/css", "body"),
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.headers["content-type"].to_str().unwrap().starts_with(ct));
        assert!(r.text().contains(needle), "{path}");
    }
    get(addr, "/dashboard/nope.js")
        .await
        .assert_error(404, "NOT_FOUND");
    let r = call(addr, "POST", "/", Cred::Key, None).await;
    r.assert_error(405, "METHOD_NOT_ALLOWED");
}
