//! Accepting HTTP connections: the bind, optional TLS, and the bounds every request meets
//! before a handler sees it (connections at once, head size and count of headers, time to
//! send the head, time to answer).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{routes, Http, HttpError};

/// HTTP connections served at once; one more is closed at accept.
pub const MAX_CONNECTIONS: usize = 256;
/// Bytes of a request head (request line and headers) hyper buffers.
const MAX_HEAD: usize = 16 * 1024;
/// Headers one request may carry.
const MAX_HEADERS: usize = 64;
/// Time to send a request head (also how long an idle keep-alive connection is kept).
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time from a request's head to its answer (body read included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Time for a TLS handshake.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish their request at shutdown.
const DRAIN: Duration = Duration::from_secs(2);

pub(super) async fn start(
    http: Arc<Http>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<SocketAddr, HttpError> {
    let c = &http.ctx.config.http;
    let tls = match (&c.cert_file, &c.key_file) {
        (Some(cert), Some(key)) => Some(crate::listener::https_acceptor(cert, key)?),
        _ => None,
    };
    let bind = c.bind;
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| HttpError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr: bind, source })?;
    tracing::info!(%addr, tls = tls.is_some(), "HTTP API listening");
    if c.api_keys.is_empty() {
        tracing::warn!("http: no [[http.api_key]] configured: every API request is refused (401)");
    }
    tracker.spawn(accept_loop(listener, http, tls, tracker.clone(), shutdown));
    Ok(addr)
}

async fn accept_loop(
    listener: TcpListener,
    http: Arc<Http>,
    tls: Option<TlsAcceptor>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("HTTP accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "HTTP connection refused: {MAX_CONNECTIONS} already open");
            continue;
        };
        let (http, tls, shutdown) = (http.clone(), tls.clone(), shutdown.clone());
        tracker.spawn(async move {
            serve(stream, http, tls, shutdown).await;
            drop(permit);
        });
    }
}

async fn serve(
    stream: TcpStream,
    http: Arc<Http>,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_io(TokioIo::new(stream), http, shutdown).await,
        Some(acc) => match tokio::time::timeout(TLS_TIMEOUT, acc.accept(stream)).await {
            Ok(Ok(s)) => serve_io(TokioIo::new(s), http, shutdown).await,
            Ok(Err(e)) => tracing::debug!("HTTP TLS handshake failed: {e}"),
            Err(_) => tracing::debug!("HTTP TLS handshake timed out"),
        },
    }
}

async fn serve_io<I>(io: I, http: Arc<Http>, shutdown: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: Request<Incoming>| {
        let http = http.clone();
        async move {
            let r = match tokio::time::timeout(REQUEST_TIMEOUT, routes::handle(&http, req)).await {
                Ok(r) => r,
                Err(_) => super::reply::ApiError {
                    status: hyper::StatusCode::SERVICE_UNAVAILABLE,
                    code: "TIMEOUT",
                    message: format!("no answer within {REQUEST_TIMEOUT:?}"),
                }
                .into_response(),
            };
            Ok::<_, Infallible>(r)
        }
    });
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    let conn = b.serve_connection(io, svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!("HTTP connection: {e}");
            }
        }
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}
