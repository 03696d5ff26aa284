//! The server's own bounds and transports: HTTPS with `cert_file`/`key_file`, an oversized
//! request head, and an over-large body without a declared length.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::http::*;
use crate::common::tls::{tls_connect, tls_connector, write_server_files, Ca};
use crate::common::WAIT;

#[tokio::test]
async fn https_when_cert_and_key_are_set() {
    let dir = std::env::temp_dir().join(format!("supermq-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = Ca::new("http-test-ca");
    let (_, cert, key) = write_server_files(&dir, &ca);
    let (_b, addr) = start_http(|c| {
        c.http.cert_file = Some(cert.clone());
        c.http.key_file = Some(key.clone());
    })
    .await;
    let tls = tls_connect(addr, &tls_connector(&ca, None))
        .await
        .expect("TLS");
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let req = Request::get("/api/v5/nodes")
        .header("host", "localhost")
        .header("authorization", basic(KEY, SECRET))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(WAIT, tx.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v[0]["node_status"], "running");
    // Plain HTTP on the HTTPS port gets no answer.
    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, plain.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(!buf[..n].starts_with(b"HTTP/1.1 200"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends raw bytes, returns what comes back until the server closes (or 64 KiB). Written
/// from another task while this one reads: a server that answers before it has read
/// everything is heard before its close can reset the connection.
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let (mut s, mut w) = TcpStream::connect(addr).await.unwrap().into_split();
    let bytes = bytes.to_vec();
    tokio::spawn(async move {
        let _ = w.write_all(&bytes).await;
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 || out.len() > 65536 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn oversized_heads_and_bodies_are_refused() {
    let (b, addr) = start_http(|_| {}).await;
    // A 64 KiB header: over the 16 KiB head bound.
    let head = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let r = raw(addr, head.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    // 100 headers: over the 64-header bound.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nhost: x\r\n");
    for i in 0..100 {
        many.push_str(&format!("x-h{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let r = raw(addr, many.as_bytes()).await;
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    // A chunked body that grows past the 4 MiB bound: 413 without reading it all.
    let mut req = format!(
        "POST /api/v5/publish HTTP/1.1\r\nhost: x\r\nauthorization: {}\r\n\
         content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        basic(KEY, SECRET)
    )
    .into_bytes();
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..5 {
        req.extend_from_slice(b"100000\r\n");
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    let r = raw(addr, &req).await;
    assert!(r.starts_with("HTTP/1.1 413"), "{}", &r[..r.len().min(200)]);
    // The broker is unaffected.
    assert_eq!(get(addr, "/healthz").await.status, 200);
    drop(b);
}
