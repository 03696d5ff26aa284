//! `supermq healthcheck`: one HTTP GET of a health endpoint (`/readyz`, `/healthz`) whose
//! status becomes the exit code, for a container `HEALTHCHECK` or a load balancer's script.
//!
//! Built in, with the hyper client the broker already links, so the runtime image needs no
//! curl (fewer packages to keep patched) and the probe behaves the same everywhere.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::AUTHORIZATION;
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use thiserror::Error;

/// Most of the answer's body read (for the message printed on failure).
const MAX_BODY: usize = 4096;

/// Why the endpoint is not healthy, or could not be asked.
#[derive(Debug, Error)]
pub enum HealthError {
    #[error("{0}: must be an http:// URL with a host")]
    Url(String),
    #[error("--user must be KEY:SECRET")]
    User,
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("{url}: {source}")]
    Unreachable {
        url: String,
        source: hyper_util::client::legacy::Error,
    },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: HTTP {status} {body}")]
    Unhealthy {
        url: String,
        status: StatusCode,
        body: String,
    },
}

/// GETs `url` (with HTTP Basic credentials `user` = "key:secret" if given) and returns the
/// status when it is 2xx.
pub async fn check(
    url: &str,
    user: Option<&str>,
    timeout: Duration,
) -> Result<StatusCode, HealthError> {
    let uri: Uri = url.parse().map_err(|_| HealthError::Url(url.to_owned()))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(HealthError::Url(url.to_owned()));
    }
    let mut req = Request::get(uri);
    if let Some(user) = user {
        if !user.contains(':') {
            return Err(HealthError::User);
        }
        let token = base64::engine::general_purpose::STANDARD.encode(user);
        req = req.header(AUTHORIZATION, format!("Basic {token}"));
    }
    let req = req.body(Empty::<Bytes>::new())?;
    let client = Client::builder(TokioExecutor::new()).build_http();
    let exchange = async {
        let resp = client.request(req).await?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
            .unwrap_or_default();
        Ok::<_, hyper_util::client::legacy::Error>((status, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(HealthError::Timeout {
            url: url.to_owned(),
            timeout,
        }),
        Ok(Err(source)) => Err(HealthError::Unreachable {
            url: url.to_owned(),
            source,
        }),
        Ok(Ok((status, _))) if status.is_success() => Ok(status),
        Ok(Ok((status, body))) => Err(HealthError::Unhealthy {
            url: url.to_owned(),
            status,
            body,
        }),
    }
}
