//! The `supermq` binary itself: command-line flags, configuration errors and their exit
//! codes, serving MQTT on the configured (or `-p`) port, and a clean exit on SIGTERM/SIGINT.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use common::process::{exit_within, signal, supermq_command, TempFile};
use common::*;
use supermq::codec::QoS;

/// How long the broker may take to exit after a signal.
const EXIT_WAIT: Duration = Duration::from_secs(10);

fn run(args: &[&str]) -> Output {
    supermq_command().args(args).output().expect("run supermq")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A config file for the binary, removed when dropped.
fn temp_config(contents: &str) -> TempFile {
    TempFile::config("cli", contents)
}

/// The path of `f` as a command-line argument.
fn arg(f: &TempFile) -> &str {
    f.path().to_str().expect("utf-8 temp path")
}

/// A config for a broker on 127.0.0.1:`port`, quiet logs, no $SYS, no durable store.
fn broker_config(port: u16) -> String {
    format!(
        "[[listener]]\nbind = \"127.0.0.1:{port}\"\n\n[log]\nlevel = \"warn\"\n\n[sys]\ninterval = \"0s\"\n\n[persistence]\nenabled = false\n\n[http]\nenabled = false\n"
    )
}

/// A broker process, killed on drop if a failing test left it running.
struct Running {
    child: Child,
    addr: SocketAddr,
    _config: TempFile,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    /// Starts the binary with `-c <config>` plus `extra` args and waits until `port`
    /// accepts TCP connections.
    async fn start(config: &str, extra: &[&str], port: u16) -> Running {
        let config = temp_config(config);
        let child = supermq_command()
            .args(["-c", arg(&config)])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn supermq");
        let mut r = Running {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _config: config,
        };
        r.wait_listening().await;
        r
    }

    /// [`Running::start`] with [`broker_config`] on a free port.
    async fn on_free_port() -> Running {
        let port = free_port();
        Running::start(&broker_config(port), &[], port).await
    }

    async fn wait_listening(&mut self) {
        let deadline = tokio::time::Instant::now() + EXIT_WAIT;
        loop {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!("broker exited early with {status}: {}", self.stderr());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "broker not listening on {} in time",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    /// Sends `sig` and asserts a clean exit (status 0) in time.
    async fn stop_with(mut self, sig: &str) {
        signal(self.child.id(), sig);
        let status = exit_within(&mut self.child, EXIT_WAIT)
            .await
            .unwrap_or_else(|| panic!("broker still running {EXIT_WAIT:?} after {sig}"));
        assert_eq!(
            status.code(),
            Some(0),
            "exit after {sig}: {status}; stderr: {}",
            self.stderr()
        );
    }
}

/// A full MQTT exchange with the running broker: CONNECT/CONNACK, SUBSCRIBE, PUBLISH and
/// delivery back.
async fn round_trip(addr: SocketAddr) {
    let mut c = Raw::connect(addr, "cli-client").await;
    assert_eq!(c.subscribe("cli/t", QoS::AtLeastOnce).await, 1);
    c.publish("cli/t", b"hello", QoS::AtLeastOnce, false).await;
    let p = c.recv_publish().await;
    assert_eq!((&p.topic[..], &p.payload[..]), ("cli/t", &b"hello"[..]));
    c.disconnect().await;
}

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert!(out.status.success(), "{:?}", out.status);
    assert_eq!(text(&out.stdout).trim(), "supermq 0.1.0");

    let out = run(&["--help"]);
    assert!(out.status.success(), "{:?}", out.status);
    let help = text(&out.stdout);
    for flag in ["--config", "--test-config", "--port"] {
        assert!(help.contains(flag), "--help lacks {flag}: {help}");
    }
}

#[test]
fn shipped_config_passes_the_check() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/appserver.conf");
    let out = run(&["-t", "-c", conf.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("configuration ok"));
}

/// Config errors exit with 2 and a message naming the key and its line, both when only
/// checking (`-t`) and when starting for real.
#[test]
fn bad_configs_exit_2_naming_key_and_line() {
    let cases = [
        (
            "unknown key",
            "# line 1\n[limits]\nmax_conections = 5\n",
            "limits.max_conections",
            "line 3",
        ),
        (
            "out of range",
            "[limits]\nmax_connections = 10\n\n[session]\nmax_inflight = 0\n",
            "session.max_inflight",
            "line 5",
        ),
        (
            "bad policy",
            "[session]\nqueue_full_policy = \"drop_all\"\n",
            "session.queue_full_policy",
            "line 2",
        ),
    ];
    for (name, contents, key, line) in cases {
        let conf = temp_config(contents);
        for check_only in [true, false] {
            let mut args = vec!["-c", arg(&conf)];
            if check_only {
                args.push("-t");
            }
            let out = run(&args);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {err}");
            assert!(
                err.contains(key) && err.contains(line),
                "{name} {args:?}: stderr should name {key} and {line}: {err}"
            );
        }
    }
}

#[test]
fn missing_config_file_exits_2() {
    let missing = std::env::temp_dir().join(format!(
        "supermq-cli-test-{}-does-not-exist.conf",
        std::process::id()
    ));
    let out = run(&["-t", "-c", missing.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read config file"));
}

#[tokio::test]
async fn serves_mqtt_and_exits_0_on_sigterm() {
    let b = Running::on_free_port().await;
    round_trip(b.addr).await;
    b.stop_with("-TERM").await;
}

#[tokio::test]
async fn serves_mqtt_and_exits_0_on_sigint() {
    let b = Running::on_free_port().await;
    round_trip(b.addr).await;
    b.stop_with("-INT").await;
}

/// Connected clients (one mid-session, one that never sent CONNECT) do not hold up
/// shutdown, and they see their connections closed.
#[tokio::test]
async fn sigterm_with_clients_connected_still_exits_0() {
    let b = Running::on_free_port().await;
    let mut c = Raw::connect(b.addr, "stays").await;
    c.subscribe("x", QoS::AtLeastOnce).await;
    c.ping().await;
    let mut silent = Raw::open(b.addr).await;
    b.stop_with("-TERM").await;
    assert_eq!(c.expect_closed().await, vec![]);
    assert_eq!(silent.expect_closed().await, vec![]);
}

/// `engine.transparent_huge_pages` (off by default) reaches the process: the kernel reports
/// it in `/proc/PID/status` (`THP_enabled`, Linux 6.x).
#[tokio::test]
async fn transparent_huge_pages_follow_the_config() {
    fn thp_enabled(pid: u32) -> Option<String> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .map(|v| v.trim().to_owned())
    }
    if thp_enabled(std::process::id()).is_none() {
        // A kernel that does not report it: nothing to observe.
        return;
    }
    let b = Running::on_free_port().await;
    assert_eq!(
        thp_enabled(b.child.id()).as_deref(),
        Some("0"),
        "off by default"
    );
    b.stop_with("-TERM").await;

    let port = free_port();
    let on = format!(
        "{}\n[engine]\ntransparent_huge_pages = true\n",
        broker_config(port)
    );
    let b = Running::start(&on, &[], port).await;
    // On only as far as the system allows (it reports 0 when THP is "never").
    let system =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if !system.contains("[never]") {
        assert_eq!(
            thp_enabled(b.child.id()).as_deref(),
            Some("1"),
            "on when configured"
        );
    }
    b.stop_with("-TERM").await;
}

/// `-p` replaces the port of the TCP listener: the configured port 1 is never bound.
#[tokio::test]
async fn port_flag_overrides_the_configured_port() {
    let port = free_port();
    let port_arg = port.to_string();
    let b = Running::start(&broker_config(1), &["-p", &port_arg], port).await;
    round_trip(b.addr).await;
    assert!(
        tokio::net::TcpStream::connect("127.0.0.1:1").await.is_err(),
        "the configured port must not be bound"
    );
    b.stop_with("-TERM").await;
}

/// What SIGTERM and SIGINT trigger, observed from inside: cancelling the broker's shutdown
/// token closes every connection as a shutdown. The broker's rule (`CloseReason::
/// publishes_will`) is that a shutdown is not the client's fault, so no will is published,
/// and no connection was taken over by another with its client id [MQTT-3.1.4-2], so none
/// may be counted as one. Many clients, so that a shutdown misread as another close reason
/// on even a few connections cannot go unnoticed.
#[tokio::test]
async fn shutdown_closes_clients_without_wills_or_takeovers() {
    const CLIENTS: usize = 32;
    let b = start().await;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut c = connect_packet(&format!("w{i}"), true);
        c.will = Some(will(&format!("will/{i}"), "gone", QoS::AtLeastOnce, false));
        clients.push(Raw::connect_with(b.addr, c).await.0);
    }
    for c in &mut clients {
        c.ping().await;
    }
    b.shutdown.cancel();
    for c in &mut clients {
        assert_eq!(c.expect_closed().await, vec![]);
    }
    wait_until("every connection closed", || {
        metric(&b, |m| &m.clients_connected_current) == 0
    })
    .await;
    assert_eq!(metric(&b, |m| &m.wills_published), 0, "wills on shutdown");
    assert_eq!(
        metric(&b, |m| &m.takeovers),
        0,
        "shutdown counted as take-over"
    );
}
