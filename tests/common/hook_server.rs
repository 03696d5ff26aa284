//! A real HTTP server (hyper) on 127.0.0.1:0 standing in for a webhook receiver: it records
//! every event of every JSON-array body POSTed to it, and can be told to fail the next
//! requests (503) or to hang (never answer).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::broker::WAIT;

#[derive(Default)]
struct State {
    events: parking_lot::Mutex<Vec<Value>>,
    /// Bodies received (each a batch), answered or not.
    requests: AtomicUsize,
    /// Requests still to answer 503.
    fail_next: AtomicUsize,
    hang: AtomicBool,
}

/// The receiver; it stops with the test's runtime.
pub struct Collector {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Collector {
    pub async fn start() -> Collector {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(State::default());
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| answer(st.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        Collector { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Every event received so far, in arrival order.
    pub fn events(&self) -> Vec<Value> {
        self.state.events.lock().clone()
    }

    /// POSTs received (answered or not).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Answers the next `n` requests with 503 (and records nothing of them).
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Never answers from now on.
    pub fn hang(&self) {
        self.state.hang.store(true, Ordering::SeqCst);
    }

    /// Waits for an event with `event` name for which `pred` holds, and returns it.
    pub async fn wait_event(&self, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(v) = self
                .events()
                .into_iter()
                .find(|v| v["event"] == event && pred(v))
            {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for a {event} event; got {:#?}",
                self.events()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}

async fn answer(
    st: Arc<State>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    st.requests.fetch_add(1, Ordering::SeqCst);
    if st.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let json = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    let body = req.into_body().collect().await?.to_bytes();
    let failing = st
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(events)) if json => {
                st.events.lock().extend(events);
                StatusCode::OK
            }
            _ => StatusCode::BAD_REQUEST,
        }
    };
    Ok(Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .expect("response"))
}
