//! The `[http]` section: the operations HTTP server (REST API, `/metrics`, health, the
//! dashboard) and the API keys that open it.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::de;

/// The operations HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "an [http] table")]
pub struct HttpConfig {
    /// Whether the HTTP server runs at all.
    pub enabled: bool,
    #[serde(deserialize_with = "de::socket_addr")]
    pub bind: SocketAddr,
    /// PEM certificate chain and key: HTTPS when both are set.
    #[serde(deserialize_with = "de::opt_path")]
    pub cert_file: Option<PathBuf>,
    #[serde(deserialize_with = "de::opt_path")]
    pub key_file: Option<PathBuf>,
    /// `/healthz`, `/readyz` and `/metrics` readable without an API key (never `/api/` or
    /// the dashboard).
    pub anonymous_read: bool,
    /// `/readyz` answers 503 until at least this many cluster route links are up.
    #[serde(deserialize_with = "de::int::<_, _, 0, 65535>")]
    pub ready_min_links: usize,
    /// `[[http.api_key]]`: the HTTP Basic credentials the API accepts.
    #[serde(rename = "api_key")]
    pub api_keys: Vec<ApiKey>,
}

/// One API key: HTTP Basic user `key`, password `secret`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[http.api_key]] table")]
pub struct ApiKey {
    pub key: String,
    pub secret: String,
}

/// The secret stays out of logs and `-t` output.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 18083)),
            cert_file: None,
            key_file: None,
            anonymous_read: false,
            ready_min_links: 0,
            api_keys: Vec::new(),
        }
    }
}

/// Longest API key or secret accepted (a Basic header is bounded by the server anyway).
const MAX_CREDENTIAL_LEN: usize = 256;

impl HttpConfig {
    /// Cross-checks: both TLS files or neither; every API key usable in a Basic header and
    /// unique. `Err((index, field, reason))`, `index` naming the `[[http.api_key]]` entry.
    pub(super) fn check(&self) -> Result<(), (Option<usize>, &'static str, String)> {
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => {
                return Err((None, "cert_file", "needs key_file too (HTTPS)".to_owned()))
            }
            (None, Some(_)) => {
                return Err((None, "key_file", "needs cert_file too (HTTPS)".to_owned()))
            }
            _ => {}
        }
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.key.is_empty() || k.key.contains(':') || k.key.len() > MAX_CREDENTIAL_LEN {
                return Err((
                    Some(i),
                    "key",
                    format!(
                        "must be 1 to {MAX_CREDENTIAL_LEN} bytes without ':' (it is the HTTP \
                         Basic user name)"
                    ),
                ));
            }
            if k.key.chars().any(char::is_control) || k.secret.chars().any(char::is_control) {
                return Err((
                    Some(i),
                    "secret",
                    "must not contain control characters".to_owned(),
                ));
            }
            if k.secret.len() < 8 || k.secret.len() > MAX_CREDENTIAL_LEN {
                return Err((
                    Some(i),
                    "secret",
                    format!("must be 8 to {MAX_CREDENTIAL_LEN} bytes"),
                ));
            }
            if self.api_keys[..i].iter().any(|e| e.key == k.key) {
                return Err((Some(i), "key", format!("duplicate API key \"{}\"", k.key)));
            }
        }
        Ok(())
    }
}
