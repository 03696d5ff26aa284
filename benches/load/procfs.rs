//! What the load generator reads from `/proc`: a process's CPU time and resident memory, the
//! clock tick, and the open-files limit (raised with `prlimit(1)` when too low).
//!
//! Everything here is Linux-only and best effort: a missing file yields `None`, and the
//! report simply leaves that measure out.

use std::fs;
use std::process::Command;

/// `AT_CLKTCK` in the auxiliary vector: the kernel's `sysconf(_SC_CLK_TCK)`.
const AT_CLKTCK: u64 = 17;

/// Clock ticks per second used by `/proc/PID/stat`.
///
/// Read from `/proc/self/auxv` (what libc's `sysconf` returns) so no FFI is needed;
/// 100 is the value on every mainstream Linux configuration.
pub fn clock_ticks() -> u64 {
    let Ok(aux) = fs::read("/proc/self/auxv") else {
        return 100;
    };
    for pair in aux.chunks_exact(16) {
        let key = u64::from_ne_bytes(pair[..8].try_into().unwrap_or_default());
        let val = u64::from_ne_bytes(pair[8..].try_into().unwrap_or_default());
        if key == AT_CLKTCK && val > 0 {
            return val;
        }
    }
    100
}

/// User plus system CPU time of `pid` in clock ticks (fields 14 and 15 of `/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time of this process in clock ticks.
pub fn self_cpu_ticks() -> Option<u64> {
    cpu_ticks(std::process::id())
}

/// A `kB` field of `/proc/PID/status`, such as `VmRSS` or `VmHWM`.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.split_whitespace().next()?.parse().ok()
    })
}

/// Resident set size of `pid` in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmRSS")
}

/// Peak resident set size of `pid` in KiB since it started (the kernel's own high-water
/// mark, which catches spikes a 100 ms sampler can miss).
pub fn hwm_kb(pid: u32) -> Option<u64> {
    status_kb(pid, "VmHWM")
}

/// The (soft, hard) open-files limit of this process, from `/proc/self/limits`.
pub fn nofile_limits() -> Option<(u64, u64)> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut nums = line["Max open files".len()..].split_whitespace().map(|v| {
        if v == "unlimited" {
            Some(u64::MAX)
        } else {
            v.parse().ok()
        }
    });
    Some((nums.next()??, nums.next()??))
}

/// Makes sure at least `want` file descriptors can be open, raising the soft limit up to the
/// hard limit if needed. Returns the soft limit in force afterwards.
///
/// Setting a limit needs `setrlimit(2)`; `prlimit(1)` (util-linux) does it for a running
/// process, which keeps this tool free of FFI.
pub fn ensure_nofile(want: u64) -> Option<u64> {
    let (soft, hard) = nofile_limits()?;
    if soft >= want || soft >= hard {
        return Some(soft);
    }
    // Only the soft limit changes ("N:" leaves the hard one alone); the hard limit is the
    // most an unprivileged process may ask for.
    let limit = if hard == u64::MAX { want } else { hard };
    let ok = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={limit}:"))
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "supermq-load: could not raise the open-files limit ({soft}); use `ulimit -n {limit}`"
        );
    }
    nofile_limits().map(|(s, _)| s)
}
