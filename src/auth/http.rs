//! The HTTP authentication hook: POSTs a client's credentials as JSON to a configured
//! `http://` URL and caches the answer.
//!
//! Body: `{"clientid": "...", "username": "...", "password": "...", "peer": "ip:port"}` (the
//! password as UTF-8, invalid bytes replaced). A 2xx status accepts; any other status
//! denies; no answer within `timeout`, or a transport error, counts as the hook being
//! unavailable. Definite answers are cached for `cache_ttl` under a SHA-512 digest of
//! (client id, username, password), so no password is kept in memory; the peer address is
//! not part of the key (its port changes on every connection).
//!
//! Plain HTTP only: the hook is meant for a local sidecar or a trusted network.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use parking_lot::Mutex;

use crate::config::HttpAuthConfig;

/// Largest answer body read (and ignored) so the connection can be reused.
const MAX_BODY: usize = 64 * 1024;

/// The hook's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Allow,
    Deny,
    /// Timeout or transport error.
    Unavailable,
}

type Key = [u8; 64];

/// A configured hook with its answer cache.
pub(super) struct HttpHook {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    timeout: Duration,
    ttl: Duration,
    capacity: usize,
    /// Cached answers and when they were received. Held only for lookups and inserts,
    /// never across an await.
    cache: Mutex<HashMap<Key, (bool, Instant)>>,
}

impl std::fmt::Debug for HttpHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHook")
            .field("uri", &self.uri)
            .field("timeout", &self.timeout)
            .field("ttl", &self.ttl)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl HttpHook {
    /// Builds the client; `Err` is the reason the URL is unusable.
    pub(super) fn new(cfg: &HttpAuthConfig) -> Result<HttpHook, String> {
        let uri: Uri = cfg.url.parse().map_err(|e| format!("{e}"))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err("must be an http:// URL with a host".to_owned());
        }
        let client = Client::builder(TokioExecutor::new()).build_http();
        Ok(HttpHook {
            client,
            uri,
            timeout: cfg.timeout,
            ttl: cfg.cache_ttl,
            capacity: cfg.cache_size,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Asks the hook (or its cache) about these credentials.
    pub(super) async fn check(
        &self,
        client_id: &str,
        username: &str,
        password: Option<&[u8]>,
        peer: SocketAddr,
    ) -> Verdict {
        let key = cache_key(client_id, username, password);
        if let Some(v) = self.cached(&key) {
            return v;
        }
        let body = serde_json::json!({
            "clientid": client_id,
            "username": username,
            "password": password.map(String::from_utf8_lossy),
            "peer": peer.to_string(),
        })
        .to_string();
        let req = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)));
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("auth hook: cannot build the request: {e}");
                return Verdict::Unavailable;
            }
        };
        let exchange = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            // Read (a bounded amount of) the body so the connection goes back to the pool.
            let _ = Limited::new(resp.into_body(), MAX_BODY).collect().await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        let verdict = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(status)) if status.is_success() => Verdict::Allow,
            Ok(Ok(status)) => {
                tracing::debug!(client_id, username, %status, "auth hook denied");
                Verdict::Deny
            }
            Ok(Err(e)) => {
                tracing::warn!(client_id, username, "auth hook unavailable: {e}");
                return Verdict::Unavailable;
            }
            Err(_) => {
                tracing::warn!(client_id, username, timeout = ?self.timeout, "auth hook did not answer in time");
                return Verdict::Unavailable;
            }
        };
        self.remember(key, verdict == Verdict::Allow);
        verdict
    }

    fn cached(&self, key: &Key) -> Option<Verdict> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock();
        let (allowed, at) = cache.get(key)?;
        (at.elapsed() < self.ttl).then_some(if *allowed {
            Verdict::Allow
        } else {
            Verdict::Deny
        })
    }

    fn remember(&self, key: Key, allowed: bool) {
        if self.ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = self.cache.lock();
        if cache.len() >= self.capacity && !cache.contains_key(&key) {
            // Bounded: expired answers go first, then the oldest one.
            cache.retain(|_, (_, at)| now.duration_since(*at) < self.ttl);
            if cache.len() >= self.capacity {
                if let Some(oldest) = cache.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k) {
                    cache.remove(&oldest);
                }
            }
        }
        cache.insert(key, (allowed, now));
    }

    /// Answers currently cached.
    #[cfg(test)]
    fn cached_len(&self) -> usize {
        self.cache.lock().len()
    }
}

/// Length-prefixed fields, so ("ab", "c") and ("a", "bc") differ.
fn cache_key(client_id: &str, username: &str, password: Option<&[u8]>) -> Key {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA512);
    for field in [
        client_id.as_bytes(),
        username.as_bytes(),
        password.unwrap_or(b"\xff-none"),
    ] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field);
    }
    let mut key = [0u8; 64];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(ttl: Duration, capacity: usize) -> HttpHook {
        let mut cfg = HttpAuthConfig::new("http://127.0.0.1:9/auth");
        cfg.cache_ttl = ttl;
        cfg.cache_size = capacity;
        HttpHook::new(&cfg).expect("hook")
    }

    #[test]
    fn keys_separate_fields() {
        assert_ne!(
            cache_key("ab", "c", Some(b"p")),
            cache_key("a", "bc", Some(b"p"))
        );
        assert_ne!(cache_key("a", "b", None), cache_key("a", "b", Some(b"")));
        assert_eq!(
            cache_key("a", "b", Some(b"p")),
            cache_key("a", "b", Some(b"p"))
        );
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let h = hook(Duration::from_secs(60), 2);
        let k = |i: u8| [i; 64];
        h.remember(k(1), true);
        h.remember(k(2), false);
        h.remember(k(3), true);
        assert_eq!(h.cached_len(), 2);
        assert_eq!(h.cached(&k(1)), None, "oldest evicted");
        assert_eq!(h.cached(&k(2)), Some(Verdict::Deny));
        assert_eq!(h.cached(&k(3)), Some(Verdict::Allow));

        let h = hook(Duration::ZERO, 10);
        h.remember(k(1), true);
        assert_eq!(h.cached(&k(1)), None, "ttl 0 disables the cache");
    }

    #[test]
    fn only_http_urls() {
        assert!(HttpHook::new(&HttpAuthConfig::new("ftp://x/")).is_err());
        assert!(HttpHook::new(&HttpAuthConfig::new("/relative")).is_err());
    }
}
