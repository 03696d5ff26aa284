//! A real broker running in the test process on 127.0.0.1:0, its counters, and waiting for a
//! condition with a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use supermq::{Broker, Config, Extensions};
use tokio_util::sync::CancellationToken;

/// How long any single expected event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A broker running in this test process; shut down when dropped.
pub struct TestBroker {
    pub broker: Broker,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A config bound to 127.0.0.1:0 with $SYS off and no durable store (tests of the store
/// give it a directory of their own), for tests to adjust.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.listeners[0].bind = "127.0.0.1:0".parse().expect("addr");
    c.sys.interval = Duration::ZERO;
    c.persistence.enabled = false;
    // The HTTP server's default port would be shared by every test broker; HTTP tests turn
    // it on at 127.0.0.1:0.
    c.http.enabled = false;
    c
}

/// Starts a broker with the test config changed by `f`.
pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestBroker {
    let mut c = test_config();
    f(&mut c);
    start_config(c, Extensions::default()).await
}

/// Starts a broker on the test config with what a test plugs in (hooks, a journal).
pub async fn start_ext(ext: Extensions) -> TestBroker {
    start_config(test_config(), ext).await
}

async fn start_config(c: Config, ext: Extensions) -> TestBroker {
    let shutdown = CancellationToken::new();
    let broker = Broker::start_with(c, ext, shutdown.clone())
        .await
        .expect("broker starts");
    let addr = broker.local_addr();
    TestBroker {
        broker,
        addr,
        shutdown,
    }
}

/// Starts a broker on the default test config.
pub async fn start() -> TestBroker {
    start_with(|_| {}).await
}

/// Reads a counter.
pub fn metric(
    b: &TestBroker,
    f: impl Fn(&supermq::Metrics) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    supermq::metrics::get(f(b.broker.metrics()))
}

/// Polls `cond` until it holds, failing the test after `WAIT`.
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A loopback port that was free a moment ago: bind port 0, read the port, release it. For
/// a listener whose address must be known before it starts (a config file, a seed list).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// [`free_port`] on 127.0.0.1, as an address.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}
