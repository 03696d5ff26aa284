//! The process's own resources for `/metrics`, read from `/proc/self` (Linux; elsewhere
//! they are left out).

/// Resident memory, CPU seconds (user + system) and open file descriptors.
#[derive(Debug, Default)]
pub struct ProcessStats {
    pub rss_bytes: Option<u64>,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<u64>,
}

/// Clock ticks per second of `/proc/self/stat` (USER_HZ: 100 on every Linux architecture
/// the broker builds for).
const TICKS: f64 = 100.0;

pub fn read() -> ProcessStats {
    let rss_bytes = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        });
    // Fields after the command name (which may hold spaces, so cut at its last ')'):
    // utime and stime are the 12th and 13th of those.
    let cpu_seconds = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ut: u64 = f.get(11)?.parse().ok()?;
            let st: u64 = f.get(12)?.parse().ok()?;
            Some((ut + st) as f64 / TICKS)
        });
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as u64);
    ProcessStats {
        rss_bytes,
        cpu_seconds,
        open_fds,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn reads_this_process() {
        let p = super::read();
        assert!(p.rss_bytes.unwrap() > 0);
        assert!(p.cpu_seconds.unwrap() >= 0.0);
        assert!(p.open_fds.unwrap() >= 3);
    }
}
