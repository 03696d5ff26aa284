//! The dashboard at `GET /`: plain HTML, JavaScript and CSS embedded in the binary (no build
//! step, nothing fetched from elsewhere), behind the API key like the API it polls. Its
//! WebSocket test client is a minimal MQTT 3.1.1 encoder and decoder (`dashboard/mqtt.js`).

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY};

use super::reply::{self, ApiError, Resp};

const INDEX: &str = include_str!("dashboard/index.html");
const APP: &str = include_str!("dashboard/app.js");
const MQTT: &str = include_str!("dashboard/mqtt.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// `/` and `/dashboard/<asset>`.
pub fn asset(path: &str) -> Result<Resp, ApiError> {
    let (ct, body) = match path {
        "/" | "/dashboard" | "/dashboard/" => ("text/html; charset=utf-8", INDEX),
        "/dashboard/app.js" => ("text/javascript; charset=utf-8", APP),
        "/dashboard/mqtt.js" => ("text/javascript; charset=utf-8", MQTT),
        "/dashboard/style.css" => ("text/css; charset=utf-8", STYLE),
        _ => return Err(ApiError::not_found(format!("no such path: {path}"))),
    };
    let mut r = reply::body(ct, body);
    let h = r.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Only this origin's scripts and styles, and WebSocket connections to any host (the
    // MQTT listener is on another port).
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
             frame-ancestors 'none'",
        ),
    );
    Ok(r)
}
