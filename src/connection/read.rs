//! The read side of a connection: when a read gets a buffer, and how large.
//!
//! An idle connection holds no read buffer (memory per idle connection). A TCP connection
//! waits for readiness without one and makes its buffer only once bytes have arrived, large
//! enough for a whole burst: the first read after a pause takes everything that is there,
//! instead of a small read followed by a second one (two syscalls) or, worse, a partial
//! burst routed and written before the rest is even read (latency at low rates). Other
//! transports (TLS, WebSocket) cannot say when they are readable without being read, so
//! they read into the small buffer `read_buf` makes, then grow.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::AsyncRead;

use super::IDLE_BUFFER;

/// The largest read buffer a busy connection grows to.
const MAX_READ_CHUNK: usize = 256 * 1024;

/// What a read into a full (or absent) buffer gets on a transport that cannot wait for
/// readiness first: `read_buf` makes this much room itself.
const SMALL_READ: usize = 64;

/// The buffer a TCP read makes once the socket is readable, at least: a burst of a few
/// dozen 1 KB messages fits. It is released again after the read unless the connection
/// is busy (see [`IDLE_BUFFER`]).
const READY_READ: usize = 32 * 1024;

/// The read half of a transport.
pub trait ReadSide: AsyncRead + Unpin {
    /// `poll_readable` tells when a read would not block, without a buffer.
    const READY_FIRST: bool = false;

    /// Ready when a read would not block (or may not: a spurious wake-up only costs a read
    /// that finds nothing).
    fn poll_readable(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead> ReadSide for tokio::io::ReadHalf<T> {}

impl ReadSide for tokio::net::tcp::OwnedReadHalf {
    const READY_FIRST: bool = true;

    fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.as_ref().poll_read_ready(cx)
    }
}

/// How the next read is sized: from what the previous one returned (`last_read`) and
/// whether it used all the room it had (`filled`). Small, as it lives in every
/// connection's task.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadSize {
    last_read: u32,
    filled: bool,
}

impl ReadSize {
    /// Records what a read into `room` bytes returned.
    pub fn record(&mut self, n: usize, room: usize) {
        // Reads are at most MAX_READ_CHUNK.
        self.last_read = u32::try_from(n).unwrap_or(u32::MAX);
        self.filled = n >= room;
    }

    /// Room a busy connection reads into: twice its last read (bursts grow), at least
    /// `initial` (`engine.read_buffer_size`), and twice the buffer it had when the last
    /// read filled it. Not `clamp`: `initial` may be configured above `MAX_READ_CHUNK`,
    /// and then it wins.
    fn want(&self, initial: usize, capacity: usize) -> usize {
        let mut want = (2 * self.last_read as usize)
            .min(MAX_READ_CHUNK)
            .max(initial);
        if self.filled {
            want = want.max((2 * capacity).min(MAX_READ_CHUNK));
        }
        want
    }

    /// A connection with nothing buffered whose last read was small and left room: it
    /// keeps no buffer while it waits.
    pub fn idle(&self, buf: &BytesMut) -> bool {
        buf.is_empty() && (self.last_read as usize) < IDLE_BUFFER && !self.filled
    }

    /// Makes room in `buf` before a read; returns the room the read will have (pass it to
    /// [`read`]). An idle connection gets none now (see the module doc): on TCP the read
    /// makes it once bytes are there. A busy one always has `want` bytes free, so a read
    /// never stops short at the end of a buffer that still holds the previous burst's tail.
    pub fn reserve<R: ReadSide>(&self, buf: &mut BytesMut, initial: usize) -> usize {
        if self.idle(buf) {
            if buf.capacity() == buf.len() {
                return if R::READY_FIRST {
                    self.when_ready(initial)
                } else {
                    SMALL_READ
                };
            }
        } else {
            let want = self.want(initial, buf.capacity());
            if buf.capacity() - buf.len() < want {
                buf.reserve(want);
            }
        }
        buf.capacity() - buf.len()
    }

    /// The buffer a TCP read makes once readable.
    fn when_ready(&self, initial: usize) -> usize {
        self.want(initial, 0).max(READY_READ)
    }
}

/// Reads once into `buf`; 0 is the end of the stream. `room` is what
/// [`ReadSize::reserve`] returned. On a transport that can wait for readiness, a buffer
/// without room gets `room` bytes only once bytes are there, and loses them again if the
/// read then finds nothing (a spurious wake-up).
pub fn read<'a, R: ReadSide>(
    rd: &'a mut R,
    buf: &'a mut BytesMut,
    room: usize,
) -> impl Future<Output = io::Result<usize>> + 'a {
    std::future::poll_fn(move |cx| {
        let made = R::READY_FIRST && buf.capacity() == buf.len();
        if made {
            ready!(rd.poll_readable(cx))?;
            buf.reserve(room);
        }
        let r = tokio_util::io::poll_read_buf(Pin::new(&mut *rd), cx, buf);
        if made && r.is_pending() && buf.is_empty() {
            *buf = BytesMut::new();
        }
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Generic = tokio::io::ReadHalf<tokio::io::DuplexStream>;
    type Tcp = tokio::net::tcp::OwnedReadHalf;

    #[test]
    fn an_idle_connection_reserves_nothing() {
        let size = ReadSize::default();
        let mut buf = BytesMut::new();
        assert_eq!(size.reserve::<Generic>(&mut buf, 8192), SMALL_READ);
        assert_eq!(size.reserve::<Tcp>(&mut buf, 8192), READY_READ);
        assert_eq!(buf.capacity(), 0);
    }

    #[test]
    fn a_busy_connection_always_has_room_for_twice_its_last_read() {
        let mut size = ReadSize::default();
        size.record(12_000, 16_384);
        // The previous burst's tail is at the end of a buffer with little room left.
        let mut buf = BytesMut::with_capacity(16_384);
        buf.extend_from_slice(&[0u8; 16_000]);
        let _ = buf.split_to(15_000);
        let room = size.reserve::<Tcp>(&mut buf, 8192);
        assert!(room >= 24_000, "room {room}");
        assert_eq!(buf.len(), 1000, "the partial packet is kept");
    }

    #[test]
    fn a_read_that_fills_its_buffer_doubles_it_up_to_the_cap() {
        let mut size = ReadSize::default();
        let mut buf = BytesMut::with_capacity(65_536);
        size.record(65_536, 65_536);
        assert!(size.reserve::<Generic>(&mut buf, 8192) >= 131_072);
        let mut buf = BytesMut::with_capacity(MAX_READ_CHUNK);
        size.record(MAX_READ_CHUNK, MAX_READ_CHUNK);
        assert_eq!(size.reserve::<Generic>(&mut buf, 8192), MAX_READ_CHUNK);
    }

    #[test]
    fn a_read_buffer_size_above_the_cap_is_used_as_configured() {
        let initial = 2 * MAX_READ_CHUNK;
        let mut size = ReadSize::default();
        size.record(100_000, 100_000);
        let mut buf = BytesMut::with_capacity(100_000);
        assert!(size.reserve::<Generic>(&mut buf, initial) >= initial);
        assert_eq!(size.when_ready(initial), initial);
    }

    #[tokio::test]
    async fn tcp_reads_a_whole_burst_at_once_and_keeps_no_buffer_while_idle() {
        use tokio::io::AsyncWriteExt;
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut client = tokio::net::TcpStream::connect(l.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = l.accept().await.expect("accept");
        let (mut rd, _wr) = server.into_split();
        let mut size = ReadSize::default();
        let mut buf = BytesMut::new();

        // Nothing to read: the pending read holds no buffer.
        let pending = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            read(&mut rd, &mut buf, size.when_ready(8192)),
        )
        .await;
        assert!(pending.is_err(), "nothing was sent");
        assert_eq!(buf.capacity(), 0);

        // A 12 KB burst, more than the small read a buffer-less read would make, arrives
        // whole in one read.
        client.write_all(&[7u8; 12_000]).await.expect("write");
        let mut got = 0;
        while got < 12_000 {
            let room = size.reserve::<Tcp>(&mut buf, 8192);
            let n = read(&mut rd, &mut buf, room).await.expect("read");
            size.record(n, room);
            got += n;
            if got < 12_000 {
                // Loopback may hand the burst over in pieces; never a 64-byte one.
                assert!(n > SMALL_READ, "read {n}");
            }
        }
        assert_eq!(buf.len(), 12_000);
    }
}
