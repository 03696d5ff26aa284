//! A stand-in for the HTTP authentication service behind `auth.http`: a minimal HTTP/1.1
//! server that answers by user name and records what the broker asked.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
