//! One `[[webhook]]`: the hook that filters and queues events (on the broker's threads,
//! never waiting), and the task that POSTs them in batches (JSON arrays) with a timeout and
//! retries with exponential backoff.
//!
//! Counted in `webhook_sent` (events a 2xx answer took), `webhook_failed` (events of a batch
//! given up after its retries) and `webhook_dropped` (events refused by a full queue). A
//! slow or dead endpoint only fills its own queue: MQTT traffic never waits for it.
//!
//! Plain HTTP only, as the authentication hook: a local collector or a trusted network.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::CONTENT_TYPE;
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::json;
use super::queue::{self, Drain, Queue};
use super::NotifyError;
use crate::config::{HookEvent, WebhookConfig};
use crate::hooks::{Event, Hooks};
use crate::metrics::{self, Metrics};
use crate::topic::matches;

/// Largest answer body read (and ignored) so the connection can be reused.
const MAX_ANSWER: usize = 64 * 1024;
/// The first retry waits this long; each next one twice as long, up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The filling side of one webhook.
#[derive(Debug)]
pub(super) struct WebhookHook {
    /// The configured events, as [`HookEvent::bit`]s.
    events: u16,
    /// Filters a message event's topic must match.
    topics: Vec<String>,
    node: Arc<str>,
    queue: Queue<Value>,
    metrics: Arc<Metrics>,
}

/// The sending side of one webhook, run by [`Sender::run`].
pub(super) struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    timeout: Duration,
    batch_max: usize,
    retries: u32,
    drain: Drain<Value>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("uri", &self.uri)
            .field("timeout", &self.timeout)
            .field("batch_max", &self.batch_max)
            .field("retries", &self.retries)
            .finish_non_exhaustive()
    }
}

/// Builds one webhook's hook and sender.
pub(super) fn build(
    cfg: &WebhookConfig,
    node: Arc<str>,
    metrics: &Arc<Metrics>,
) -> Result<(WebhookHook, Sender), NotifyError> {
    let bad = |reason: &str| NotifyError::Url {
        url: cfg.url.clone(),
        reason: reason.to_owned(),
    };
    let uri: Uri = cfg.url.parse().map_err(|_| bad("not a URL"))?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() {
        return Err(bad("must be an http:// URL with a host"));
    }
    let (queue, drain) = queue::bounded(cfg.queue_size);
    let hook = WebhookHook {
        events: cfg.event_set(),
        topics: cfg.topics.clone(),
        node,
        queue,
        metrics: metrics.clone(),
    };
    let sender = Sender {
        client: Client::builder(TokioExecutor::new()).build_http(),
        uri,
        timeout: cfg.timeout,
        batch_max: cfg.batch_max,
        retries: cfg.retries,
        drain,
        metrics: metrics.clone(),
    };
    Ok((hook, sender))
}

impl Hooks for WebhookHook {
    fn on_event(&self, e: &Event<'_>) {
        if self.events & json::kind(e).bit() == 0 {
            return;
        }
        if let Some(topic) = json::topic_of(e) {
            if !self.topics.iter().any(|f| matches(f, topic)) {
                return;
            }
        }
        let body = json::body(e, &self.node, json::now_ms());
        if self.queue.push(body, json::cost(e)).is_err() {
            metrics::inc(&self.metrics.webhook_dropped);
        }
    }

    fn wants_messages(&self) -> bool {
        HookEvent::ALL
            .iter()
            .any(|(_, k)| k.is_message() && self.events & k.bit() != 0)
    }
}

/// Why one POST failed.
#[derive(Debug, thiserror::Error)]
enum PostError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Transport(String),
    #[error("answered {0}")]
    Status(hyper::StatusCode),
}

impl Sender {
    /// Sends queued events until `shutdown`, then for at most [`super::CLOSING_GRACE`] the
    /// events of the connections the shutdown closes (one try each, no retries), so a
    /// receiver hears of them; whatever is left then is not sent.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        let mut closing = None;
        while let Some(batch) = self.next_batch(&shutdown, &mut closing).await {
            self.deliver(&batch, &shutdown, &mut closing).await;
        }
    }

    /// The next batch (up to `batch_max` events): `None` once closing is over.
    async fn next_batch(
        &mut self,
        shutdown: &CancellationToken,
        closing: &mut Option<Instant>,
    ) -> Option<Vec<Value>> {
        let first = loop {
            match *closing {
                None => tokio::select! {
                    _ = shutdown.cancelled() => *closing = Some(super::closing_deadline()),
                    v = self.drain.recv() => break v?,
                },
                Some(deadline) => {
                    // While connections are still closing, their events may still come;
                    // once none is left, only what is already queued.
                    let open = metrics::get(&self.metrics.clients_connected_current) > 0;
                    let until = if open {
                        deadline
                    } else {
                        deadline.min(Instant::now() + super::CLOSING_IDLE)
                    };
                    break tokio::time::timeout_at(until.into(), self.drain.recv())
                        .await
                        .ok()??;
                }
            }
        };
        let mut batch = vec![first];
        while batch.len() < self.batch_max {
            match self.drain.try_recv() {
                Some(v) => batch.push(v),
                None => break,
            }
        }
        Some(batch)
    }

    /// POSTs `batch`, retrying with backoff (one try only once closing), and counts it.
    async fn deliver(
        &self,
        batch: &[Value],
        shutdown: &CancellationToken,
        closing: &mut Option<Instant>,
    ) {
        let n = batch.len() as u64;
        let body = match serde_json::to_vec(batch) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                // A Value always serializes; kept as a counted failure all the same.
                tracing::warn!(uri = %self.uri, "webhook batch not encoded: {e}");
                metrics::add(&self.metrics.webhook_failed, n);
                return;
            }
        };
        let mut attempt = 0u32;
        let result = loop {
            let r = match *closing {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.post(body.clone(), self.timeout.min(left)).await
                }
                None => tokio::select! {
                    _ = shutdown.cancelled() => {
                        *closing = Some(super::closing_deadline());
                        continue;
                    }
                    r = self.post(body.clone(), self.timeout) => r,
                },
            };
            match r {
                Ok(()) => break Ok(()),
                Err(e) if attempt >= self.retries || closing.is_some() => break Err(e),
                Err(e) => {
                    tracing::debug!(uri = %self.uri, attempt, "webhook POST failed, retrying: {e}");
                    let wait = backoff(attempt);
                    attempt += 1;
                    tokio::select! {
                        _ = shutdown.cancelled() => *closing = Some(super::closing_deadline()),
                        _ = tokio::time::sleep(wait) => {}
                    }
                }
            }
        };
        match result {
            Ok(()) => metrics::add(&self.metrics.webhook_sent, n),
            Err(e) => {
                tracing::warn!(uri = %self.uri, events = n, "webhook POST failed, events dropped: {e}");
                metrics::add(&self.metrics.webhook_failed, n);
            }
        }
    }

    /// One POST of `body`, its answer read, within the timeout; a 2xx answer is success.
    async fn post(&self, body: Bytes, timeout: Duration) -> Result<(), PostError> {
        let req = Request::post(self.uri.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| PostError::Transport(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| PostError::Transport(e.to_string()))?;
            let status = resp.status();
            // Read (and ignore) a bounded answer so the connection can be reused.
            let _ = Limited::new(resp.into_body(), MAX_ANSWER).collect().await;
            if status.is_success() {
                Ok(())
            } else {
                Err(PostError::Status(status))
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| PostError::Timeout(timeout))?
    }
}

/// The wait before retry `attempt` (0-based): doubling from [`BACKOFF_MIN`], at most
/// [`BACKOFF_MAX`].
fn backoff(attempt: u32) -> Duration {
    BACKOFF_MIN
        .saturating_mul(1 << attempt.min(16))
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(20), BACKOFF_MAX);
    }
}
