//! systemd's service notification protocol (`sd_notify`): with `Type=notify` systemd sets
//! `$NOTIFY_SOCKET` to a Unix datagram socket and waits for `READY=1` before it counts the
//! service as started; `STOPPING=1` tells it shutdown has begun.
//!
//! Written here rather than taken from a crate: it is one datagram to a path (or, when the
//! name starts with `@`, a Linux abstract address), which std sends without unsafe code.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The service finished starting: listeners bound, store open.
pub const READY: &str = "READY=1";
/// The service is shutting down.
pub const STOPPING: &str = "STOPPING=1";

/// Sends `state` to `$NOTIFY_SOCKET`; `Ok(false)` when the variable is unset (not run by
/// systemd with `Type=notify`), `Ok(true)` once sent.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let addr = socket_addr(path.as_encoded_bytes())?;
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(state.as_bytes(), &addr)?;
    Ok(true)
}

fn socket_addr(name: &[u8]) -> io::Result<SocketAddr> {
    match name.strip_prefix(b"@") {
        Some(abstract_name) => abstract_addr(abstract_name),
        None => {
            let path = std::str::from_utf8(name)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NOTIFY_SOCKET"))?;
            SocketAddr::from_pathname(path)
        }
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract NOTIFY_SOCKET addresses exist only on Linux",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_abstract_names_are_told_apart() {
        let p = socket_addr(b"/run/systemd/notify").expect("path");
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let a = socket_addr(b"@supermq/notify").expect("abstract");
            assert_eq!(a.as_abstract_name(), Some(&b"supermq/notify"[..]));
            assert!(a.as_pathname().is_none());
        }
    }
}
