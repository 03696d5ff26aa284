//! Helpers for `tests/security.rs`: a test PKI (rcgen), TLS and WebSocket clients that speak
//! MQTT bytes, temporary files, and a tiny HTTP server for the auth hook.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use supermq::codec::{self, Connect, ConnectReturnCode, DecodeLimits, Packet, ProtocolLevel};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::common::WAIT;

/// A fresh directory for one test's files.
pub fn temp_dir(test: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "supermq-security-{}-{test}-{n}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

// ---------------------------------------------------------------------------------------
// Test PKI
// ---------------------------------------------------------------------------------------

/// A CA that signs server and client certificates.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate with its key, as PEM and DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("ca key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).expect("self-signed CA");
        Ca { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn leaf(&self, sans: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![usage];
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A server certificate for `localhost`.
    pub fn server(&self) -> Leaf {
        self.leaf(
            vec!["localhost".to_owned()],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose subject CN is `cn`.
    pub fn client(&self, cn: &str) -> Leaf {
        self.leaf(Vec::new(), cn, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// CA, server certificate and key written to `dir`: (ca, cert, key) paths.
pub fn write_server_files(dir: &Path, ca: &Ca) -> (PathBuf, PathBuf, PathBuf) {
    let server = ca.server();
    (
        write(dir, "ca.crt", &ca.pem()),
        write(dir, "server.crt", &server.cert_pem),
        write(dir, "server.key", &server.key_pem),
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client trusting `server_ca`, presenting `client` if given.
pub fn tls_connector(server_ca: &Ca, client: Option<&Leaf>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(server_ca.der()).expect("root");
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match client {
        None => b.with_no_client_auth(),
        Some(leaf) => b
            .with_client_auth_cert(
                vec![leaf.cert_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .expect("client cert"),
    };
    TlsConnector::from(Arc::new(cfg))
}

/// TCP connect plus TLS handshake to `localhost` at `addr`.
pub async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

// ---------------------------------------------------------------------------------------
// MQTT over any byte stream
// ---------------------------------------------------------------------------------------

/// An MQTT client over any transport (TLS here; plain TCP is `common::Raw`).
pub struct Stream<S> {
    pub io: S,
    buf: BytesMut,
    next_id: u16,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream<S> {
    pub fn new(io: S) -> Self {
        Stream {
            io,
            buf: BytesMut::new(),
            next_id: 0,
        }
    }

    pub async fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        codec::encode(p, ProtocolLevel::V311, &mut out);
        self.io.write_all(&out).await.expect("write");
        self.io.flush().await.expect("flush");
    }

    /// The next packet; `None` when the broker closed the connection (or it failed).
    pub async fn try_recv(&mut self) -> Option<Packet> {
        let read = async {
            loop {
                match codec::decode(&mut self.buf, &DecodeLimits::default(), ProtocolLevel::V311) {
                    Ok(Some(p)) => return Some(p),
                    Ok(None) => {}
                    Err(e) => panic!("broker sent a malformed packet: {e}"),
                }
                match self.io.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .unwrap_or_else(|_| panic!("nothing from the broker within {WAIT:?}"))
    }

    pub async fn recv(&mut self) -> Packet {
        self.try_recv().await.expect("connection closed")
    }

    /// Sends CONNECT; returns the CONNACK code, or `None` when the connection closed first.
    pub async fn connect(&mut self, c: Connect) -> Option<ConnectReturnCode> {
        self.send(&Packet::from(c)).await;
        match self.try_recv().await? {
            Packet::ConnAck(a) => Some(a.return_code()),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub fn pkid(&mut self) -> u16 {
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.next_id
    }
}

// ---------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------

/// A WebSocket MQTT client that controls frame boundaries itself.
pub struct Ws<S> {
    pub ws: WebSocketStream<S>,
    buf: BytesMut,
    /// The subprotocol the server chose.
    pub protocol: Option<String>,
}

/// Runs the client handshake for `path` over `io`, offering `protocols` (comma-separated).
pub async fn ws_handshake<S>(
    io: S,
    addr: SocketAddr,
    path: &str,
    protocols: Option<&str>,
) -> Result<Ws<S>, tokio_tungstenite::tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
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
    Ok(Ws {
        ws,
        buf: BytesMut::new(),
        protocol,
    })
}

impl<S: AsyncRead + AsyncWrite + Unpin> Ws<S> {
    /// Sends `bytes` as binary messages cut at `cuts` (offsets into `bytes`).
    pub async fn send_frames(&mut self, bytes: &[u8], cuts: &[usize]) {
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let chunk = bytes[start..end].to_vec();
            self.ws
                .send(Message::Binary(chunk.into()))
                .await
                .expect("send");
            start = end;
        }
    }

    pub async fn send(&mut self, p: &Packet) {
        let mut out = BytesMut::new();
        codec::encode(p, ProtocolLevel::V311, &mut out);
        self.send_frames(&out, &[]).await;
    }

    /// The next packet from binary messages; `None` when closed.
    pub async fn try_recv(&mut self) -> Option<Packet> {
        let read = async {
            loop {
                match codec::decode(&mut self.buf, &DecodeLimits::default(), ProtocolLevel::V311) {
                    Ok(Some(p)) => return Some(p),
                    Ok(None) => {}
                    Err(e) => panic!("broker sent a malformed packet: {e}"),
                }
                match self.ws.next().await {
                    Some(Ok(Message::Binary(b))) => self.buf.extend_from_slice(&b),
                    Some(Ok(Message::Text(_))) => panic!("broker sent a text frame"),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                    Some(Ok(_)) => {}
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .unwrap_or_else(|_| panic!("nothing from the broker within {WAIT:?}"))
    }

    pub async fn recv(&mut self) -> Packet {
        self.try_recv().await.expect("connection closed")
    }
}

// ---------------------------------------------------------------------------------------
// HTTP hook server
// ---------------------------------------------------------------------------------------

/// A minimal HTTP/1.1 server standing in for an auth service: answers by username
/// (`"good"` → 200, `"slow"` → never, anything else → 403) and records request bodies.
pub struct HookServer {
    pub addr: SocketAddr,
    pub bodies: Arc<parking_lot::Mutex<Vec<serde_json::Value>>>,
}

impl HookServer {
    pub async fn start() -> HookServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let bodies = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = bodies.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                tokio::spawn(serve_hook(s, seen.clone()));
            }
        });
        HookServer { addr, bodies }
    }

    pub fn url(&self) -> String {
        format!("http://{}/mqtt/auth", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.bodies.lock().len()
    }
}

async fn serve_hook(mut s: TcpStream, seen: Arc<parking_lot::Mutex<Vec<serde_json::Value>>>) {
    let mut buf = Vec::new();
    loop {
        // One request at a time on a kept-alive connection.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: serde_json::Value =
            serde_json::from_slice(&buf[head_end..head_end + len]).expect("json body");
        buf.drain(..head_end + len);
        let user = body["username"].as_str().unwrap_or_default().to_owned();
        seen.lock().push(body);
        let status = match user.as_str() {
            "good" => "200 OK",
            "slow" => {
                // Never answer; keep the connection open until the broker gives up.
                let mut sink = [0u8; 64];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            _ => "403 Forbidden",
        };
        let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}
