//! The `supermq` binary as a child process, and what starting one takes: temporary files and
//! directories no other test (or test run) uses, signals, and waiting for the exit.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// The `supermq` binary built for these tests. `RUST_LOG` is removed, so the configured log
/// level applies whatever the environment running the tests says.
pub fn supermq_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_supermq"));
    c.env_remove("RUST_LOG");
    c
}

/// A name no other call in this process returns, with the process id in it.
fn unique(prefix: &str, name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("supermq-{prefix}-{}-{name}{n}", std::process::id()))
}

/// A fresh, empty directory for one test's files.
pub fn temp_dir(test: &str) -> PathBuf {
    let dir = unique("test", &format!("{test}-"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Writes `text` to `dir/name`; the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}

/// A file under the temp directory that no other test (or run) uses, removed when dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    /// A `.conf` file holding `contents`; `kind` names the suite that wrote it.
    pub fn config(kind: &str, contents: &str) -> TempFile {
        let mut path = unique(kind, "");
        path.set_extension("conf");
        std::fs::write(&path, contents).expect("write temp config");
        TempFile(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sends `sig` (e.g. `-TERM`) to process `pid` with kill(1), which must succeed.
pub fn signal(pid: u32, sig: &str) {
    let pid = pid.to_string();
    let st = Command::new("kill")
        .args([sig, &pid])
        .status()
        .expect("run kill");
    assert!(st.success(), "kill {sig} {pid}");
}

/// The exit status of `child` once it has exited, or `None` if it still runs after `within`.
pub async fn exit_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
