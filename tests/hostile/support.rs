//! The hostile suite's harness: the real binary with a config of its own, the bystander
//! check (the process lives and still serves), and the outcomes an attack may have. The raw
//! packet encoder is `common::wire`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::process::{exit_within, signal, supermq_command, TempFile};
use crate::common::{barrier, subscribe_raw, until_barrier, Bystander, Raw, WAIT};
use supermq::codec::{ConnectReturnCode, Packet, QoS, ReasonCode, SubAck};
use tokio::time::Instant;

/// How long the broker may take to start listening, and to exit after SIGTERM.
pub(crate) const PROCESS_WAIT: Duration = Duration::from_secs(10);

/// `n` levels named `level`, joined by '/'.
pub(crate) fn levels(n: usize, level: &str) -> String {
    vec![level; n].join("/")
}

// --- The broker process -------------------------------------------------------------------

/// The config text: one TCP listener on 127.0.0.1:0, info logs (the "listening" line names
/// the bound address), $SYS off, no durable store (many of these brokers run at once),
/// plus `settings` as (table, `key = value` line) pairs. A setting for `log` or `sys`
/// replaces that table's default.
pub(crate) fn config_text(settings: &[(&str, &str)]) -> String {
    let mut tables: Vec<(&str, Vec<&str>)> = vec![
        ("log", vec!["level = \"info\""]),
        ("sys", vec!["interval = \"0s\""]),
        ("persistence", vec!["enabled = false"]),
        ("http", vec!["enabled = false"]),
    ];
    let mut overridden = Vec::new();
    for &(table, line) in settings {
        match tables.iter_mut().find(|(t, _)| *t == table) {
            Some((t, lines)) => {
                if matches!(*t, "log" | "sys") && !overridden.contains(t) {
                    lines.clear();
                    overridden.push(*t);
                }
                lines.push(line);
            }
            None => tables.push((table, vec![line])),
        }
    }
    let mut out = String::from("[[listener]]\nbind = \"127.0.0.1:0\"\n");
    for (table, lines) in tables {
        out.push_str(&format!("\n[{table}]\n"));
        for l in lines {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// A running `supermq` process; killed (and its log tail printed, if the test failed) on drop.
pub(crate) struct Broker {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    /// Every line the broker wrote to standard error so far.
    pub(crate) log: Arc<Mutex<Vec<String>>>,
    pub(crate) reader: Option<JoinHandle<()>>,
    /// Removed when the broker is dropped.
    pub(crate) _config: TempFile,
}

impl Broker {
    /// Starts the binary with the config of `config_text(settings)` and waits for it to
    /// report its bound address.
    pub(crate) async fn start(settings: &[(&str, &str)]) -> Broker {
        let config = TempFile::config("hostile", &config_text(settings));
        let mut child = supermq_command()
            .arg("-c")
            .arg(config.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn supermq");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let reader = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("listening") {
                        if let Some(addr) = line
                            .split_whitespace()
                            .find_map(|w| w.strip_prefix("addr="))
                            .and_then(|a| a.parse::<SocketAddr>().ok())
                        {
                            let _ = tx.send(addr);
                        }
                    }
                    log.lock().expect("log lock").push(line);
                }
            })
        };
        let mut b = Broker {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            log,
            reader: Some(reader),
            _config: config,
        };
        let deadline = Instant::now() + PROCESS_WAIT;
        b.addr = loop {
            match rx.try_recv() {
                Ok(addr) => break addr,
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    let st = b.child.wait().expect("wait");
                    panic!("broker exited before listening ({st}):\n{}", b.tail());
                }
            }
            if let Some(st) = b.child.try_wait().expect("try_wait") {
                panic!("broker exited before listening ({st}):\n{}", b.tail());
            }
            assert!(
                Instant::now() < deadline,
                "broker did not report its address in time:\n{}",
                b.tail()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        b
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the broker's log.
    pub(crate) fn tail(&self) -> String {
        let log = self.log.lock().expect("log lock");
        let from = log.len().saturating_sub(40);
        log[from..].join("\n")
    }

    /// Fails the test if the process has exited.
    pub(crate) fn assert_alive(&mut self, after: &str) {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            // Let the reader thread collect the last words (e.g. a stack overflow report).
            if let Some(r) = self.reader.take() {
                let _ = r.join();
            }
            panic!("broker died ({st}) after {after}:\n{}", self.tail());
        }
    }

    /// Resident memory in KiB (Linux).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// SIGTERM; the process must exit 0 in time, having logged no panic.
    pub(crate) async fn stop(mut self) {
        self.assert_alive("the test, before SIGTERM");
        signal(self.pid(), "-TERM");
        let Some(status) = exit_within(&mut self.child, PROCESS_WAIT).await else {
            panic!(
                "broker still running {PROCESS_WAIT:?} after SIGTERM:\n{}",
                self.tail()
            );
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        assert_eq!(
            status.code(),
            Some(0),
            "exit after SIGTERM: {status}:\n{}",
            self.tail()
        );
        let panics: Vec<String> = self
            .log
            .lock()
            .expect("log lock")
            .iter()
            .filter(|l| l.contains("panicked"))
            .cloned()
            .collect();
        assert!(panics.is_empty(), "the broker logged panics: {panics:#?}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let running = matches!(self.child.try_wait(), Ok(None));
        if std::thread::panicking() {
            let status = match self.child.try_wait() {
                Ok(Some(st)) => st.to_string(),
                _ => "still running".to_owned(),
            };
            eprintln!(
                "--- supermq (pid {}, {status}) log tail ---\n{}\n---",
                self.pid(),
                self.tail()
            );
        }
        if running {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// --- Clients ------------------------------------------------------------------------------

/// The bystander check after each hostile action.
pub(crate) trait Check {
    /// The process lives and the bystander's QoS 1 round trip works.
    async fn check(&mut self, b: &mut Broker, after: &str);
}

impl Check for Bystander {
    async fn check(&mut self, b: &mut Broker, after: &str) {
        b.assert_alive(after);
        self.echo(after).await;
        b.assert_alive(after);
    }
}

/// Writes `bytes`, ignoring a failure: the broker may already have closed the connection.
pub(crate) async fn send_lenient(r: &mut Raw, bytes: &[u8]) {
    let _ = r.try_send_raw(bytes).await;
}

/// Whether `p` is the broker accepting something (rather than refusing it).
pub(crate) fn is_refusal(p: &Packet) -> bool {
    matches!(p, Packet::ConnAck(a) if a.return_code() != ConnectReturnCode::Accepted)
}

/// Sends `bytes` and asserts the broker closes the connection, sending at most a refusing
/// CONNACK first (no PUBACK, UNSUBACK, CONNACK 0, ...).
pub(crate) async fn expect_cut(r: &mut Raw, bytes: &[u8], what: &str) {
    send_lenient(r, bytes).await;
    let got = r.expect_closed().await;
    assert!(
        got.iter().all(is_refusal),
        "{what}: the broker answered {got:?} before closing"
    );
}

/// Sends `bytes` and asserts the broker closes the connection without sending anything.
pub(crate) async fn expect_silent_close(r: &mut Raw, bytes: &[u8], what: &str) {
    send_lenient(r, bytes).await;
    let got = r.expect_closed().await;
    assert!(
        got.is_empty(),
        "{what}: the broker sent {got:?} before closing"
    );
}

/// Outcome of a SUBSCRIBE the broker must not honour.
pub(crate) enum Refused {
    /// The connection was closed.
    Closed,
    /// SUBACK with 0x80 for every filter; the connection is still open.
    Failure(Raw),
}

/// Sends a SUBSCRIBE of `filters` that the broker must refuse: it closes the connection, or
/// answers 0x80 for every filter.
pub(crate) async fn subscribe_refused(mut r: Raw, filters: &[&[u8]], what: &str) -> Refused {
    send_lenient(&mut r, &subscribe_raw(7, filters)).await;
    let first = tokio::time::timeout(WAIT, r.try_recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: no SUBACK and no close within {WAIT:?}"));
    match first {
        None => Refused::Closed,
        Some(Packet::SubAck(SubAck {
            pkid: 7, reasons, ..
        })) => {
            assert_eq!(
                reasons,
                vec![ReasonCode::UnspecifiedError; filters.len()],
                "{what}: SUBACK must refuse every filter"
            );
            Refused::Failure(r)
        }
        Some(other) => panic!("{what}: expected SUBACK 0x80 or a close, got {other:?}"),
    }
}

/// Asserts that `sub` receives nothing published on `topic`: `publisher` sends a QoS 1
/// message there and then a barrier to `barrier_topic`, to which `sub` is subscribed.
pub(crate) async fn assert_not_delivered(
    publisher: &mut Raw,
    sub: &mut Raw,
    topic: &str,
    barrier_topic: &str,
    what: &str,
) {
    publisher
        .publish(topic, b"must not arrive", QoS::AtLeastOnce, false)
        .await;
    barrier(publisher, barrier_topic).await;
    let got = until_barrier(sub, barrier_topic).await;
    let leaked: Vec<&str> = got.iter().map(|p| &p.topic[..]).collect();
    assert!(
        got.is_empty(),
        "{what}: received {} message(s) on {} topic(s) (first topic {} bytes long)",
        got.len(),
        leaked.len(),
        leaked.first().map_or(0, |t| t.len())
    );
}

/// `$SYS/broker/subscriptions_current` as it is now: a fresh watcher subscribes to it and
/// takes the third value it gets (the retained one, then two new publications, the last of
/// which was made after this call began). The watcher's own subscription is counted.
pub(crate) async fn sys_subscriptions(addr: SocketAddr) -> u64 {
    let mut watcher = Raw::connect(addr, "sys-watcher").await;
    assert_eq!(
        watcher
            .subscribe("$SYS/broker/subscriptions_current", QoS::AtMostOnce)
            .await,
        0
    );
    let mut value = None;
    for _ in 0..3 {
        let p = watcher.recv_publish().await;
        assert_eq!(p.topic, "$SYS/broker/subscriptions_current");
        value = Some(
            std::str::from_utf8(&p.payload)
                .expect("utf-8")
                .parse()
                .expect("a number"),
        );
    }
    watcher.disconnect().await;
    value.expect("three values")
}

// --- Deep topics and filters --------------------------------------------------------------

/// The deep topic names of the brief: "/" x 65,534 (65,535 empty levels) and "a/" x 30,000.
pub(crate) fn deep_topics() -> Vec<(&'static str, String)> {
    vec![
        ("\"/\" x 65534", "/".repeat(65534)),
        ("\"a/\" x 30000", "a/".repeat(30000)),
    ]
}

/// The deep filters: the topics, plus "+/" x 30,000 then "#".
pub(crate) fn deep_filters() -> Vec<(&'static str, String)> {
    let mut f = deep_topics();
    f.push(("\"+/\" x 30000 + \"#\"", format!("{}#", "+/".repeat(30000))));
    f
}
