//! HTTP answers: JSON bodies, the EMQX-style error body `{"code","message"}`, paging of
//! lists, and RFC 3339 timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::url;

/// Every answer the server gives.
pub type Resp = Response<Full<Bytes>>;

/// The most entries one page of a list may hold (`limit`).
pub const MAX_LIMIT: usize = 10_000;
/// `limit` when the request gives none (EMQX's default).
pub const DEFAULT_LIMIT: usize = 100;

/// A request the API refuses: its status, an EMQX error code and a message.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "BAD_REQUEST",
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
            message: message.into(),
        }
    }

    pub fn method_not_allowed(allow: &str) -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "METHOD_NOT_ALLOWED",
            message: format!("allowed: {allow}"),
        }
    }

    pub fn into_response(self) -> Resp {
        json(
            self.status,
            &json!({"code": self.code, "message": self.message}),
        )
    }
}

impl From<url::UrlError> for ApiError {
    fn from(e: url::UrlError) -> Self {
        ApiError::bad_request(format!("URL: {e}"))
    }
}

/// A JSON answer.
pub fn json(status: StatusCode, v: &Value) -> Resp {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// 200 with a JSON body.
pub fn ok(v: &Value) -> Resp {
    json(StatusCode::OK, v)
}

/// 204, no body.
pub fn no_content() -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

/// A body of `content_type` with status 200.
pub fn body(content_type: &'static str, b: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(b.into()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// `page` (from 1) and `limit` of a list request.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: usize,
    pub limit: usize,
}

impl Paging {
    /// Reads `page` and `limit` from the query; anything else is left to the caller.
    pub fn from_query(q: &[(String, String)]) -> Result<Paging, ApiError> {
        let mut p = Paging {
            page: 1,
            limit: DEFAULT_LIMIT,
        };
        for (k, v) in q {
            match k.as_str() {
                "page" => p.page = int(k, v, 1, 1_000_000_000)?,
                "limit" => p.limit = int(k, v, 1, MAX_LIMIT)?,
                _ => {}
            }
        }
        Ok(p)
    }

    /// One page of `items` (already filtered and ordered), with EMQX's `meta`.
    pub fn page<T>(&self, items: Vec<T>, f: impl Fn(&T) -> Value) -> Value {
        let count = items.len();
        let start = (self.page - 1).saturating_mul(self.limit).min(count);
        let end = start.saturating_add(self.limit).min(count);
        let data: Vec<Value> = items[start..end].iter().map(f).collect();
        json!({
            "data": data,
            "meta": {"page": self.page, "limit": self.limit, "count": count, "hasnext": end < count},
        })
    }
}

/// A query integer in `min..=max`, or a 400 naming it.
pub fn int(name: &str, v: &str, min: usize, max: usize) -> Result<usize, ApiError> {
    v.parse::<usize>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            ApiError::bad_request(format!("{name} must be an integer from {min} to {max}"))
        })
}

/// RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:00:00.000Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// A time given in µs since the Unix epoch, as RFC 3339.
pub fn rfc3339_us(us: u64) -> String {
    rfc3339(UNIX_EPOCH + Duration::from_micros(us))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56.789Z");
    }

    #[test]
    fn pages_with_meta() {
        let p = Paging { page: 2, limit: 2 };
        let v = p.page(vec![1, 2, 3, 4, 5], |n| json!(n));
        assert_eq!(v["data"], json!([3, 4]));
        assert_eq!(
            v["meta"],
            json!({"page": 2, "limit": 2, "count": 5, "hasnext": true})
        );
        let v = Paging { page: 9, limit: 2 }.page(vec![1], |n| json!(n));
        assert_eq!(v["data"], json!([]));
        assert_eq!(v["meta"]["hasnext"], json!(false));
    }
}
