//! Which path goes where, who may see it (API key or `anonymous_read`), and which methods
//! each path answers.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request, StatusCode};

use super::reply::{ApiError, Resp};
use super::{
    auth, clients, dashboard, health, nodes, openapi, publish, retainer, subscriptions, url, Http,
};

/// Largest request body read (`POST /api/v5/publish`: a payload up to `limits.max_packet_size`
/// fits only up to this; base64 grows it by a third).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Answers one request.
pub async fn handle(http: &Http, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_owned();
    let cfg = &http.ctx.config.http;
    let authed = auth::allowed(req.headers(), &cfg.api_keys);
    let r = match path.as_str() {
        "/healthz" | "/readyz" | "/metrics" => {
            if !authed && !cfg.anonymous_read {
                return auth::challenge();
            }
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                return not_allowed("GET");
            }
            let checked = url::query(req.uri().query())
                .map_err(ApiError::from)
                .and_then(|q| known(&q, &[]));
            if let Err(e) = checked {
                return e.into_response();
            }
            match path.as_str() {
                "/healthz" => Ok(health::healthz()),
                "/readyz" => Ok(health::readyz(http)),
                _ => Ok(http.metrics.render()),
            }
        }
        p if p == "/" || p == "/dashboard" || p.starts_with("/dashboard/") => {
            if !authed {
                return auth::challenge();
            }
            if !matches!(*req.method(), Method::GET | Method::HEAD) {
                return not_allowed("GET");
            }
            dashboard::asset(p)
        }
        p if p.starts_with("/api/") => {
            if !authed {
                return auth::challenge();
            }
            if let Err(e) = same_origin(&req) {
                return e.into_response();
            }
            api(http, req).await
        }
        _ => Err(ApiError::not_found(format!("no such path: {path}"))),
    };
    r.unwrap_or_else(|e| {
        if e.status == StatusCode::METHOD_NOT_ALLOWED {
            let allow = e.message.trim_start_matches("allowed: ").to_owned();
            let mut r = e.into_response();
            if let Ok(v) = HeaderValue::from_str(&allow) {
                r.headers_mut().insert(ALLOW, v);
            }
            r
        } else {
            e.into_response()
        }
    })
}

fn not_allowed(allow: &'static str) -> Resp {
    let mut r = ApiError::method_not_allowed(allow).into_response();
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// A browser holding the API key (the dashboard's Basic credentials) sends it to this
/// server whatever page asks: a change (POST, DELETE) is refused when the browser says it
/// comes from another origin. Cross-origin DELETE needs a preflight this server never
/// grants, and `POST /api/v5/publish` takes only `application/json`, which a plain form
/// cannot send; this closes the rest.
fn same_origin(req: &Request<Incoming>) -> Result<(), ApiError> {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return Ok(());
    }
    let Some(origin) = req.headers().get(hyper::header::ORIGIN) else {
        return Ok(());
    };
    let host = req.headers().get(hyper::header::HOST);
    let same = match (origin.to_str(), host.and_then(|h| h.to_str().ok())) {
        (Ok(o), Some(h)) => {
            let o = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            o == Some(h)
        }
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "FORBIDDEN",
            message: "cross-origin changes are refused".to_owned(),
        })
    }
}

/// `/api/v5/...`.
async fn api(http: &Http, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/api/v5/") else {
        return Err(ApiError::not_found(format!("no such path: {path}")));
    };
    let q = url::query(req.uri().query())?;
    let m = req.method().clone();
    let get = |allow: &'static str| -> Result<(), ApiError> {
        if m == Method::GET || m == Method::HEAD {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(allow))
        }
    };
    let segs: Vec<&str> = rest.split('/').collect();
    known(&q, allowed_query(&segs))?;
    match segs.as_slice() {
        ["openapi.json"] => get("GET").map(|()| openapi::document()),
        ["clients"] => get("GET").and_then(|()| clients::list(http, &q)),
        ["clients", id] => {
            let id = url::decode(id, false)?;
            match m {
                Method::GET | Method::HEAD => clients::get(http, &id),
                Method::DELETE => clients::kick(http, &id).await,
                _ => Err(ApiError::method_not_allowed("GET, DELETE")),
            }
        }
        ["clients", id, "subscriptions"] => {
            get("GET")?;
            subscriptions::of_client(http, &url::decode(id, false)?)
        }
        ["subscriptions"] => get("GET").and_then(|()| subscriptions::list(http, &q)),
        ["topics"] => get("GET").and_then(|()| subscriptions::topics(http, &q)),
        ["publish"] => {
            if m != Method::POST {
                return Err(ApiError::method_not_allowed("POST"));
            }
            let json = req
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(ApiError {
                    status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code: "UNSUPPORTED_MEDIA_TYPE",
                    message: "the body must be application/json".to_owned(),
                });
            }
            let body = read_body(req).await?;
            publish::publish(http, &body)
        }
        ["retainer", "messages"] => get("GET").and_then(|()| retainer::list(http, &q)),
        ["retainer", "message", ..] if segs.len() > 2 => {
            // The topic is percent-encoded (its '/' as %2F); a client that sends them bare
            // is understood too.
            let raw = rest.strip_prefix("retainer/message/").unwrap_or_default();
            let topic = url::decode(raw, false)?;
            match m {
                Method::GET | Method::HEAD => retainer::get(http, &topic),
                Method::DELETE => retainer::delete(http, &topic),
                _ => Err(ApiError::method_not_allowed("GET, DELETE")),
            }
        }
        ["nodes"] => get("GET").map(|()| nodes::nodes(http)),
        ["stats"] => get("GET").map(|()| nodes::stats(http)),
        ["listeners"] => get("GET").map(|()| nodes::listeners(http)),
        _ => Err(ApiError::not_found(format!("no such path: {path}"))),
    }
}

/// The query parameters each path takes (a list's paging and filters); any other is a 400.
fn allowed_query(segs: &[&str]) -> &'static [&'static str] {
    match segs {
        ["clients"] => &[
            "page",
            "limit",
            "clientid",
            "username",
            "like_clientid",
            "like_username",
            "conn_state",
        ],
        ["subscriptions"] => &["page", "limit", "clientid", "topic", "qos"],
        ["topics"] | ["retainer", "messages"] => &["page", "limit", "topic"],
        _ => &[],
    }
}

/// Refuses a query parameter the path does not take.
fn known(q: &[(String, String)], allowed: &[&str]) -> Result<(), ApiError> {
    match q.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some((k, _)) => Err(ApiError::bad_request(format!(
            "unknown query parameter \"{k}\""
        ))),
    }
}

/// The request body, refused with 413 past [`MAX_BODY`].
async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let too_large = || ApiError {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        code: "PAYLOAD_TOO_LARGE",
        message: format!("the request body is over {MAX_BODY} bytes"),
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!("reading the body: {e}"))),
    }
}
