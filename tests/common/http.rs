//! A broker with its HTTP server on 127.0.0.1:0 and API keys, and a real HTTP/1.1 client
//! (hyper) to call it with.

use std::net::SocketAddr;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use supermq::config::ApiKey;
use supermq::Config;
use tokio::net::TcpStream;

use super::broker::{start_with, TestBroker, WAIT};

pub const KEY: &str = "ops";
pub const SECRET: &str = "test-secret-1";

/// Credentials a request carries.
#[derive(Debug, Clone, Copy)]
pub enum Cred {
    None,
    Key,
    Wrong,
}

/// A broker with `[http]` on at 127.0.0.1:0 and the API key `ops`, config changed by `f`.
pub async fn start_http(f: impl FnOnce(&mut Config)) -> (TestBroker, SocketAddr) {
    let b = start_with(|c| {
        c.http.enabled = true;
        c.http.bind = "127.0.0.1:0".parse().expect("addr");
        c.http.api_keys = vec![ApiKey {
            key: KEY.into(),
            secret: SECRET.into(),
        }];
        f(c)
    })
    .await;
    let addr = b.broker.http_addr().expect("http on");
    (b, addr)
}

/// An answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts the EMQX error shape and code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        let v = self.json();
        assert_eq!(v["code"], code, "{v}");
        assert!(v["message"].is_string(), "{v}");
    }
}

pub fn basic(user: &str, pass: &str) -> String {
    let e = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {e}")
}

/// One request on a fresh connection.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cred: Cred,
    body: Option<&[u8]>,
) -> Reply {
    let go = async {
        let stream = TcpStream::connect(addr).await.expect("http connect");
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).expect("method"))
            .uri(path)
            .header(HOST, "localhost");
        match cred {
            Cred::None => {}
            Cred::Key => req = req.header(AUTHORIZATION, basic(KEY, SECRET)),
            Cred::Wrong => req = req.header(AUTHORIZATION, basic(KEY, "not-the-secret")),
        }
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Full::new(Bytes::copy_from_slice(body.unwrap_or_default())))
            .expect("request");
        let resp = tx.send_request(req).await.expect("response");
        let (parts, b) = resp.into_parts();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: b.collect().await.expect("body").to_bytes(),
        }
    };
    tokio::time::timeout(WAIT, go)
        .await
        .expect("HTTP answer in time")
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    call(addr, "GET", path, Cred::Key, None).await
}
