//! Shared harness for the integration tests, one file per concern:
//!
//! - [`broker`]: a real broker in this process on 127.0.0.1:0, its counters, and waiting
//!   for a condition with a timeout;
//! - [`raw`]: the one raw-socket MQTT test client, over TCP, TLS or WebSocket: it speaks
//!   exact bytes, waits on events with timeouts and never sleeps;
//! - [`wire`]: a raw packet encoder, for bytes the codec's own encoder would refuse;
//! - [`tls`]: a test PKI (rcgen) and TLS client connections;
//! - [`ws`]: WebSocket client connections that control frame boundaries;
//! - [`cluster`]: cluster nodes in this process and their route links;
//! - [`http`]: a broker with its HTTP server on, and an HTTP client to call it;
//! - [`hook_server`]: a real HTTP server that collects webhook bodies;
//! - [`process`]: the `supermq` binary as a child process, with its temporary files, ports
//!   and signals;
//! - [`stored`]: the binary with a durable store: started, killed with SIGKILL, its memory.
//!
//! The items of `broker`, `raw` and `wire` are re-exported here, so `use common::*;` gives
//! a test the broker and the client; the others are used by their module path.
//!
//! Every test binary includes this module with `mod common;` and uses only part of it, so
//! dead code is allowed here (and only here), and so are re-exports a binary does not use.
#![allow(dead_code)]

pub mod broker;
pub mod cluster;
pub mod hook_server;
pub mod http;
pub mod process;
pub mod raw;
pub mod stored;
pub mod tls;
pub mod wire;
pub mod ws;

#[allow(unused_imports)]
pub use broker::*;
#[allow(unused_imports)]
pub use raw::*;
#[allow(unused_imports)]
pub use wire::*;
