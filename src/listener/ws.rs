//! The WebSocket upgrade for `ws` and `wss` listeners (MQTT over WebSocket, spec §6).
//!
//! Owns the HTTP side of the handshake: the path check (`ws_path`, anything else gets
//! 404) and subprotocol negotiation. A client offering `mqtt` (or the older `mqttv3.1`)
//! gets it echoed [MQTT-6.0.0-3 asks clients to offer "mqtt"]; a client offering no
//! subprotocol is accepted, for simple tools; one offering only others is refused with 400.

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Error as WsError;

use super::ws_io::WsIo;
use crate::config::ListenerConfig;

/// Subprotocols accepted, in order of preference.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// A listener's WebSocket settings.
#[derive(Debug, Clone)]
pub(super) struct WsSetup {
    path: String,
    config: WebSocketConfig,
}

impl WsSetup {
    pub(super) fn new(c: &ListenerConfig, max_packet_size: usize) -> WsSetup {
        // A frame may carry several packets, so allow some room over one packet; the MQTT
        // decoder still enforces limits.max_packet_size per packet.
        let max = max_packet_size.saturating_mul(2).max(64 * 1024);
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
            .read_buffer_size(16 * 1024)
            .write_buffer_size(0);
        WsSetup {
            path: c.ws_path.clone(),
            config,
        }
    }

    /// Reads the HTTP upgrade request and answers it.
    // The callback's error type is tungstenite's `ErrorResponse` (a whole HTTP response).
    #[allow(clippy::result_large_err)]
    pub(super) async fn accept<S>(&self, stream: S) -> Result<WsIo<S>, WsError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let callback = |req: &Request, resp: Response| negotiate(&self.path, req, resp);
        let ws =
            tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(self.config))
                .await?;
        Ok(WsIo::new(ws))
    }
}

// The signature is tungstenite's `Callback`: the error is the HTTP response to send.
#[allow(clippy::result_large_err)]
fn negotiate(path: &str, req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    if req.uri().path() != path {
        return Err(error(StatusCode::NOT_FOUND, "not found"));
    }
    let offered: Vec<&str> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Ok(resp);
    }
    let Some(chosen) = SUBPROTOCOLS.iter().find(|p| offered.contains(p)) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "unsupported WebSocket subprotocol; offer \"mqtt\"",
        ));
    };
    resp.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(chosen),
    );
    Ok(resp)
}

fn error(status: StatusCode, text: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(text.to_owned()));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(path: &str, protocols: Option<&str>) -> Request {
        let mut b = Request::builder().uri(path);
        if let Some(p) = protocols {
            b = b.header(header::SEC_WEBSOCKET_PROTOCOL, p);
        }
        b.body(()).expect("request")
    }

    fn chosen(r: &Response) -> Option<&str> {
        r.headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    #[allow(clippy::result_large_err)] // see `negotiate`
    fn negotiation() {
        let ok = |path, p| negotiate("/mqtt", &req(path, p), Response::new(()));
        let r = ok("/mqtt", Some("mqtt")).expect("mqtt");
        assert_eq!(chosen(&r), Some("mqtt"));
        let r = ok("/mqtt", Some("chat, mqttv3.1")).expect("3.1");
        assert_eq!(chosen(&r), Some("mqttv3.1"));
        let r = ok("/mqtt", Some("mqttv3.1, mqtt")).expect("prefers mqtt");
        assert_eq!(chosen(&r), Some("mqtt"));
        let r = ok("/mqtt", None).expect("none offered");
        assert_eq!(chosen(&r), None);
        let e = ok("/other", Some("mqtt")).expect_err("path");
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
        let e = ok("/mqtt", Some("chat")).expect_err("subprotocol");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }
}
