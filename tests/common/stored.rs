//! The `supermq` binary with a durable store, as a child process: started on a free port and
//! waited for, killed with SIGKILL (`kill -9`), its resident memory read from `/proc`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::process::supermq_command;
use super::WAIT;

/// A broker process on a store directory, killed (SIGKILL) on drop.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts the binary on `conf` and waits until it accepts connections.
pub async fn start(conf: &Path, port: u16) -> Proc {
    let child = supermq_command()
        .args(["-c", conf.to_str().expect("utf-8 path")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn supermq");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut p = Proc { child, addr };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return p;
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("the broker exited on start: {status}");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker not listening"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `kill -9` and wait for the process to be gone.
pub fn kill9(p: &mut Proc) {
    let _ = p.child.kill();
    let _ = p.child.wait();
}

/// The resident set size of the process, in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss(p: &Proc) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.child.id()))
        .expect("read /proc/PID/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    kb * 1024
}
