//! A WebSocket connection as a byte stream (`AsyncRead + AsyncWrite`), so MQTT over
//! WebSocket goes through the same connection driver as plain TCP.
//!
//! MQTT packets travel in binary messages, but their boundaries need not line up: a packet
//! may span messages and a message may carry several packets (spec §6.0), so reads hand out
//! message bytes as a stream. A text message is a protocol error [MQTT-6.0.0-1]; a close
//! message is end of stream; pings are answered by tungstenite itself.
//!
//! Each write becomes one binary message and completes only once the message has been
//! handed to the underlying transport, so the driver sees the same backpressure as on a
//! socket and nothing is left sitting in a buffer nobody flushes.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// A byte-stream view of a server-side WebSocket.
#[derive(Debug)]
pub struct WsIo<S> {
    ws: WebSocketStream<S>,
    /// What is left of the last binary message.
    rd: Bytes,
    /// Length of the message queued by `poll_write` and not yet flushed; reported as
    /// written once the flush completes (the caller retries with the same bytes).
    pending: Option<usize>,
}

impl<S> WsIo<S> {
    /// Wraps an accepted WebSocket.
    pub fn new(ws: WebSocketStream<S>) -> Self {
        WsIo {
            ws,
            rd: Bytes::new(),
            pending: None,
        }
    }
}

fn to_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed")
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.rd.is_empty() {
                let n = self.rd.len().min(buf.remaining());
                buf.put_slice(&self.rd[..n]);
                self.rd.advance(n);
                return Poll::Ready(Ok(()));
            }
            let next = ready!(Pin::new(&mut self.ws).poll_next(cx));
            match next {
                // An empty binary message carries nothing; a zero-byte read would mean EOF.
                Some(Ok(Message::Binary(b))) => self.rd = b,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "text WebSocket message; MQTT travels in binary ones [MQTT-6.0.0-1]",
                    )))
                }
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Poll::Ready(Ok(()))
                }
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.pending.is_none() {
            ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(to_io)?;
            let msg = Message::Binary(Bytes::copy_from_slice(buf));
            Pin::new(&mut self.ws).start_send(msg).map_err(to_io)?;
            self.pending = Some(buf.len());
        }
        ready!(Pin::new(&mut self.ws).poll_flush(cx)).map_err(to_io)?;
        let n = self.pending.take().unwrap_or(0);
        Poll::Ready(Ok(n.min(buf.len())))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(Pin::new(&mut self.ws).poll_close(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::protocol::Role;

    async fn pair() -> (
        WsIo<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let server = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
        let client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        (WsIo::new(server), client)
    }

    #[tokio::test]
    async fn messages_read_as_a_byte_stream() {
        let (mut io, mut client) = pair().await;
        for m in [&b"ab"[..], b"", b"cde"] {
            client
                .send(Message::Binary(Bytes::copy_from_slice(m)))
                .await
                .expect("send");
        }
        client
            .send(Message::Ping(Bytes::new()))
            .await
            .expect("ping");
        let mut got = [0u8; 5];
        io.read_exact(&mut got).await.expect("read");
        assert_eq!(&got, b"abcde");
        client.send(Message::Text("x".into())).await.expect("text");
        let e = io.read(&mut got).await.expect_err("text is refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn writes_are_binary_messages_and_close_is_eof() {
        let (mut io, mut client) = pair().await;
        io.write_all(b"hello").await.expect("write");
        match client.next().await {
            Some(Ok(Message::Binary(b))) => assert_eq!(&b[..], b"hello"),
            other => panic!("expected binary, got {other:?}"),
        }
        client.close(None).await.expect("close");
        let mut buf = [0u8; 4];
        assert_eq!(io.read(&mut buf).await.expect("eof"), 0);
    }
}
