//! API keys: HTTP Basic authentication against `[[http.api_key]]` (as EMQX's API keys).
//!
//! Every configured key is compared, in constant time, whatever matched before: how long
//! a refusal takes says nothing about which part of a guess was right.

use base64::Engine;
use hyper::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{HeaderMap, StatusCode};
use serde_json::json;
use subtle::ConstantTimeEq;

use super::reply::{self, Resp};
use crate::config::ApiKey;

/// Longest `Authorization` value looked at (a key and a secret are at most 256 bytes each).
const MAX_AUTHORIZATION: usize = 1024;

/// Whether the request carries the Basic credentials of one of `keys`.
pub fn allowed(headers: &HeaderMap, keys: &[ApiKey]) -> bool {
    let Some(v) = headers.get(AUTHORIZATION) else {
        return false;
    };
    let v = v.as_bytes();
    if v.len() > MAX_AUTHORIZATION || v.len() < 6 || !v[..6].eq_ignore_ascii_case(b"basic ") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(v[6..].trim_ascii()) else {
        return false;
    };
    let Some(colon) = decoded.iter().position(|&b| b == b':') else {
        return false;
    };
    let (user, secret) = (&decoded[..colon], &decoded[colon + 1..]);
    let mut ok = subtle::Choice::from(0);
    for k in keys {
        ok |= k.key.as_bytes().ct_eq(user) & k.secret.as_bytes().ct_eq(secret);
    }
    ok.into()
}

/// 401 with the challenge a browser answers with its login prompt.
pub fn challenge() -> Resp {
    let mut r = reply::json(
        StatusCode::UNAUTHORIZED,
        &json!({"code": "BAD_API_KEY_OR_SECRET", "message": "an API key is required (HTTP Basic)"}),
    );
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"supermq\", charset=\"UTF-8\""),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    fn basic(user: &str, pass: &str) -> String {
        let e = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {e}")
    }

    #[test]
    fn matches_any_configured_key() {
        let keys = vec![
            ApiKey {
                key: "ops".into(),
                secret: "s3cret-one".into(),
            },
            ApiKey {
                key: "ci".into(),
                secret: "s3cret-two".into(),
            },
        ];
        assert!(allowed(&headers(&basic("ops", "s3cret-one")), &keys));
        assert!(allowed(&headers(&basic("ci", "s3cret-two")), &keys));
        assert!(allowed(
            &headers(&basic("ci", "s3cret-two").replace("Basic", "basic")),
            &keys
        ));
        assert!(!allowed(&headers(&basic("ops", "s3cret-two")), &keys));
        assert!(!allowed(&headers(&basic("ops", "")), &keys));
        assert!(!allowed(&headers("Bearer x"), &keys));
        assert!(!allowed(&headers("Basic !!!"), &keys));
        assert!(!allowed(&HeaderMap::new(), &keys));
        assert!(!allowed(&headers(&basic("ops", "s3cret-one")), &[]));
    }
}
