//! What the packages rely on, tested on the built binary: systemd's readiness protocol
//! (`READY=1` once serving, `STOPPING=1` at shutdown, on a datagram socket set as
//! `NOTIFY_SOCKET`), a real SIGHUP reloading a TLS certificate (and a bad one kept out), the
//! packaged config and unit, and `supermq healthcheck` (the container's HEALTHCHECK).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::process::{exit_within, signal, supermq_command, temp_dir, write, TempFile};
use common::tls::{tls_connect, tls_connector, Ca};
use common::*;
use rustls::pki_types::CertificateDer;
use supermq::codec::QoS;

/// How long the broker may take to start, reload or exit.
const PROCESS_WAIT: Duration = Duration::from_secs(15);

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The broker as a child process whose standard error is read line by line.
struct Broker {
    child: Child,
    lines: mpsc::Receiver<String>,
    _config: TempFile,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Broker {
    /// Starts `supermq -c <config>`, with `NOTIFY_SOCKET` set to `notify`.
    fn spawn(config: &str, notify: &str) -> Broker {
        let config = TempFile::config("packaging", config);
        let mut child = supermq_command()
            .arg("-c")
            .arg(config.path())
            .env("NOTIFY_SOCKET", notify)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn supermq");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Broker {
            child,
            lines,
            _config: config,
        }
    }

    /// Waits for a line of standard error containing `needle`; that line.
    fn wait_line(&self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + PROCESS_WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("no log line with {needle:?}; got: {seen:#?}"),
            }
        }
    }

    /// Sends SIGTERM and asserts exit status 0.
    async fn terminate(mut self) {
        signal(self.child.id(), "-TERM");
        let status = exit_within(&mut self.child, PROCESS_WAIT)
            .await
            .expect("exit after SIGTERM");
        assert_eq!(status.code(), Some(0), "{status}");
    }
}

/// The next datagram on `sock` (whose read timeout is set), as text.
fn datagram(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn config(port: u16, store: &Path, extra: &str) -> String {
    format!(
        "[[listener]]\nname = \"tcp\"\nbind = \"127.0.0.1:{port}\"\n\n{extra}\n\n[log]\nlevel = \"info\"\n\n[sys]\ninterval = \"0s\"\n\n[persistence]\nenabled = true\ndir = \"{}\"\n\n[http]\nenabled = false\n",
        store.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_is_told_ready_once_serving_and_stopping_at_shutdown() {
    let dir = temp_dir("notify");
    // A socket path, and a Linux abstract name (`@...`), as systemd may hand out either.
    let path = dir.join("notify.sock");
    let mut sockets = vec![(
        UnixDatagram::bind(&path).expect("bind notify socket"),
        path.display().to_string(),
    )];
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        let abstract_name = format!("supermq-test-notify-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name)
            .expect("abstract address");
        sockets.push((
            UnixDatagram::bind_addr(&addr).expect("bind abstract socket"),
            format!("@{abstract_name}"),
        ));
    }
    for (i, (sock, name)) in sockets.iter().enumerate() {
        sock.set_read_timeout(Some(PROCESS_WAIT)).expect("timeout");
        let port = free_port();
        let store = dir.join(format!("store{i}"));
        let broker = Broker::spawn(&config(port, &store, ""), name);
        assert_eq!(datagram(sock), "READY=1", "{name}");
        // Ready means serving: the listener answers at once and the store is open.
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut c = Raw::connect(addr, "after-ready").await;
        assert_eq!(c.subscribe("ready/t", QoS::AtLeastOnce).await, 1);
        c.publish("ready/t", b"up", QoS::AtLeastOnce, false).await;
        assert_eq!(&c.recv_publish().await.payload[..], b"up");
        assert!(store.is_dir(), "store directory made before READY=1");
        let pid = broker.child.id();
        signal(pid, "-TERM");
        assert_eq!(datagram(sock), "STOPPING=1", "{name}");
        broker.terminate().await;
    }
}

/// The leaf certificate a new TLS handshake with `addr` is shown.
async fn served_cert(addr: SocketAddr, ca: &Ca) -> CertificateDer<'static> {
    let tls = tls_connect(addr, &tls_connector(ca, None))
        .await
        .expect("TLS handshake");
    let chain = tls.get_ref().1.peer_certificates().expect("certificates");
    chain[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_tls_certificate_of_the_running_binary() {
    let dir = temp_dir("sighup-tls");
    let ca = Ca::new("sighup CA");
    let (a, b) = (ca.server(), ca.server());
    let cert = write(&dir, "server.crt", &a.cert_pem);
    let key = write(&dir, "server.key", &a.key_pem);
    let (port, tls_port) = (free_port(), free_port());
    let tls = format!(
        "[[listener]]\nname = \"tls\"\nprotocol = \"tls\"\nbind = \"127.0.0.1:{tls_port}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        cert.display(),
        key.display()
    );
    let notify = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&notify).expect("bind");
    sock.set_read_timeout(Some(PROCESS_WAIT)).expect("timeout");
    let broker = Broker::spawn(
        &config(port, &dir.join("store"), &tls),
        notify.to_str().expect("utf-8"),
    );
    assert_eq!(datagram(&sock), "READY=1");
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    assert_eq!(served_cert(tls_addr, &ca).await, a.cert_der);

    write(&dir, "server.crt", &b.cert_pem);
    write(&dir, "server.key", &b.key_pem);
    signal(broker.child.id(), "-HUP");
    let line = broker.wait_line("SIGHUP: reloaded");
    assert!(line.contains("listener(s) tls"), "{line}");
    assert_eq!(served_cert(tls_addr, &ca).await, b.cert_der);

    // A broken certificate file: logged with its path, the running certificate kept.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").expect("write");
    signal(broker.child.id(), "-HUP");
    let line = broker.wait_line("reload failed");
    assert!(
        line.contains(&cert.display().to_string()) && line.contains("cert_file"),
        "{line}"
    );
    assert_eq!(served_cert(tls_addr, &ca).await, b.cert_der);
    broker.terminate().await;
}

#[test]
fn packaged_config_passes_the_check() {
    let conf = repo_file("packaging/supermq.conf");
    let out = supermq_command()
        .args(["-t", "-c"])
        .arg(&conf)
        .output()
        .expect("run supermq");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&conf).expect("read");
    assert!(
        text.contains("dir = \"/var/lib/supermq\""),
        "store in the state directory"
    );
}

/// The unit keeps the agreed paths and the behaviour the broker implements (notify, HUP).
#[test]
fn packaged_unit_matches_the_binary_and_the_package() {
    let unit = std::fs::read_to_string(repo_file("packaging/supermq.service")).expect("unit");
    let lines: Vec<&str> = unit.lines().map(str::trim).collect();
    for want in [
        "Type=notify",
        "ExecStart=/usr/bin/supermq -c /etc/supermq/supermq.conf",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=supermq",
        "Group=supermq",
        "StateDirectory=supermq",
        "ProtectSystem=strict",
        "ProtectHome=true",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "LimitNOFILE=1048576",
        "Restart=on-failure",
    ] {
        assert!(lines.contains(&want), "the unit lacks {want:?}");
    }
    let cargo = std::fs::read_to_string(repo_file("Cargo.toml")).expect("Cargo.toml");
    for asset in [
        "\"etc/supermq/supermq.conf\"",
        "\"lib/systemd/system/supermq.service\"",
        "conf-files = [\"/etc/supermq/supermq.conf\"]",
    ] {
        assert!(
            cargo.contains(asset),
            "Cargo.toml's deb metadata lacks {asset}"
        );
    }
}

/// An HTTP server answering each request with the next of `statuses`; the request heads it
/// read come back on the channel.
fn http_server(statuses: &'static [&'static str]) -> (SocketAddr, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for status in statuses {
            let Ok((mut s, _)) = l.accept() else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                if s.read(&mut byte).unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let body = "{\"status\":\"x\"}";
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        }
    });
    (addr, rx)
}

#[test]
fn healthcheck_exit_code_follows_the_http_status() {
    let (addr, heads) = http_server(&["200 OK", "503 Service Unavailable"]);
    let url = format!("http://{addr}/readyz");
    let ok = supermq_command()
        .args(["healthcheck", "--url", &url])
        .env_remove("SUPERMQ_HEALTHCHECK_USER")
        .output()
        .expect("run");
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    let head = heads.recv_timeout(WAIT).expect("request");
    assert!(head.starts_with("GET /readyz HTTP/1.1\r\n"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("authorization"),
        "{head}"
    );

    // An API key from the environment goes as HTTP Basic; a 503 fails the check.
    let down = supermq_command()
        .args(["healthcheck", "--url", &url])
        .env("SUPERMQ_HEALTHCHECK_USER", "ops:s3cret")
        .output()
        .expect("run");
    assert_eq!(down.status.code(), Some(1), "{down:?}");
    assert!(String::from_utf8_lossy(&down.stderr).contains("503"));
    let head = heads.recv_timeout(WAIT).expect("request");
    assert!(
        head.to_ascii_lowercase().contains(
            "authorization: basic b3bzonmzy3jldA=="
                .to_ascii_lowercase()
                .as_str()
        ),
        "{head}"
    );

    // Nobody listening, and a URL it cannot use: exit 1 with a reason.
    let closed = format!("http://127.0.0.1:{}/readyz", free_port());
    for (url, reason) in [
        (closed.as_str(), "127.0.0.1"),
        ("https://x/readyz", "http://"),
    ] {
        let out = supermq_command()
            .args(["healthcheck", "--url", url, "--timeout", "2"])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(1), "{url}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(reason),
            "{out:?}"
        );
    }
}
