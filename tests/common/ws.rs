//! WebSocket for the tests: the client handshake (path and subprotocols chosen by the test)
//! and a [`Transport`] over binary messages whose boundaries the test controls, so that the
//! raw client ([`super::Raw`]) can split or join MQTT packets across frames.

use std::net::SocketAddr;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::WebSocketStream;

use super::raw::{Raw, Transport};
use super::WAIT;

/// A WebSocket connection carrying MQTT in binary messages.
pub struct Ws<S> {
    pub ws: WebSocketStream<S>,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
}

/// Runs the client handshake for `path` over `io`, offering `protocols` (comma-separated);
/// the raw client over the upgraded connection.
pub async fn ws_handshake<S>(
    io: S,
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
) -> Result<Raw<Ws<S>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut req = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    if let Some(p) = protocols {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(p).expect("header"),
        );
    }
    let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, io))
        .await
        .expect("handshake in time")?;
    let protocol = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok(Raw::new(Ws { ws, protocol }))
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Transport for Ws<S> {
    async fn read_into(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                    buf.extend_from_slice(&b);
                    return Ok(b.len());
                }
                Some(Ok(Message::Text(_))) => panic!("broker sent a text frame"),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(0),
                Some(Ok(_)) => {}
            }
        }
    }

    async fn write_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .map_err(std::io::Error::other)
    }

    async fn close(&mut self) -> std::io::Result<()> {
        self.ws.close(None).await.map_err(std::io::Error::other)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Raw<Ws<S>> {
    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&str> {
        self.stream.protocol.as_deref()
    }

    /// Sends `bytes` as binary messages cut at `cuts` (offsets into `bytes`).
    pub async fn send_frames(&mut self, bytes: &[u8], cuts: &[usize]) {
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
            self.send_raw(&bytes[start..end]).await;
            start = end;
        }
    }
}
