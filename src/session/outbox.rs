//! The bytes waiting to be written to one client, in order.
//!
//! Owns: the connection's write buffer. Small packets and PUBLISH headers are encoded into
//! one contiguous buffer; a payload of [`REF_MIN`] bytes or more is not copied there but
//! referenced (its message's `Arc`) at its place in the stream, and the socket gets the
//! pieces in one vectored write. A fan-out of one message to many subscribers so costs each
//! of them a header and a reference instead of a copy of the payload; the kernel's copy into
//! the socket is the only one. TLS takes the pieces as they are (rustls copies them into its
//! records); a writer without native vectored writes (the WebSocket adapter) gets every
//! payload copied in, as before.
//!
//! A reference is held only until its bytes are written, and referenced bytes count toward
//! the buffer's length, which the session stops filling at `engine.write_buffer_size`: the
//! references add nothing beyond that bound.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWrite;

use crate::message::Message;

/// Payloads this long or longer are referenced, shorter ones copied. Measured on loopback
/// (`benches/`, A/B against copying everything): 16 KB payloads went 124k -> 146k msgs/s 1:1
/// at QoS 1 with 15 % less broker CPU per message. Referenced 1 KB payloads were within noise
/// in fan-in and fan-out, 7 % slower 1:1 at QoS 1 and cost 15 % more CPU at 10,000 msgs/s (a
/// `writev` of many small pieces costs the kernel more than one `send` of a copied buffer),
/// so they are copied.
pub const REF_MIN: usize = 4096;

/// At most this many pieces go to one `writev` (Linux allows 1,024); the rest waits for the
/// next write.
const MAX_SLICES: usize = 1024;

/// Writes of up to this many pieces build their list on the stack.
const SMALL_WRITE: usize = 32;

/// A payload referenced in the stream.
#[derive(Debug)]
struct Ref {
    /// Its position in the stream of inline bytes: it goes out after the inline bytes
    /// before `at` and before those from `at` on.
    at: u64,
    msg: Arc<Message>,
    /// Bytes of it already written.
    skip: usize,
}

/// A connection's write buffer (see the module doc).
#[derive(Debug, Default)]
pub struct Outbox {
    inline: BytesMut,
    /// Made with the first reference, dropped with the buffers: most connections never
    /// reference a payload, and this sits in every connection's task.
    refs: Option<Box<Refs>>,
}

/// The referenced payloads of an outbox.
#[derive(Debug, Default)]
struct Refs {
    list: VecDeque<Ref>,
    /// Stream position of `inline[0]` (inline bytes written so far).
    base: u64,
    /// Unwritten bytes of the referenced payloads.
    bytes: usize,
}

impl Outbox {
    /// Unwritten bytes.
    pub fn len(&self) -> usize {
        self.inline.len() + self.refs.as_ref().map_or(0, |r| r.bytes)
    }

    pub fn is_empty(&self) -> bool {
        self.inline.is_empty() && self.refs.as_ref().map_or(true, |r| r.list.is_empty())
    }

    /// Where packets are encoded; bytes appended here go out after everything before them.
    pub fn buf(&mut self) -> &mut BytesMut {
        &mut self.inline
    }

    /// Appends a PUBLISH's payload (its header is already in [`Outbox::buf`]);
    /// `vectored`: whether the writer takes vectored writes natively (a TCP socket does),
    /// else it is copied in.
    pub fn put_payload(&mut self, msg: &Arc<Message>, vectored: bool) {
        let len = msg.payload.len();
        if !vectored || len < REF_MIN {
            self.inline.extend_from_slice(&msg.payload);
            return;
        }
        let refs = self.refs.get_or_insert_with(Box::default);
        refs.list.push_back(Ref {
            at: refs.base + self.inline.len() as u64,
            msg: msg.clone(),
            skip: 0,
        });
        refs.bytes += len;
    }

    /// Drops the buffers of an empty outbox (an idle connection keeps none).
    pub fn release(&mut self) {
        debug_assert!(self.is_empty());
        *self = Outbox::default();
    }

    /// Fills `dst` with the unwritten bytes, in order; returns how many slices were used.
    fn slices<'a>(&'a self, refs: &'a Refs, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        // Offset into `inline` of the next inline byte to go out.
        let mut k = 0;
        for r in &refs.list {
            let upto = (r.at - refs.base) as usize;
            if upto > k {
                if n == dst.len() {
                    return n;
                }
                dst[n] = IoSlice::new(&self.inline[k..upto]);
                n += 1;
                k = upto;
            }
            if n == dst.len() {
                return n;
            }
            dst[n] = IoSlice::new(&r.msg.payload[r.skip..]);
            n += 1;
        }
        if k < self.inline.len() && n < dst.len() {
            dst[n] = IoSlice::new(&self.inline[k..]);
            n += 1;
        }
        n
    }

    /// Marks `n` bytes from the front as written.
    pub fn advance(&mut self, mut n: usize) {
        let Some(refs) = self.refs.as_deref_mut() else {
            self.inline.advance(n);
            return;
        };
        while n > 0 {
            let Some(r) = refs.list.front_mut() else {
                self.inline.advance(n);
                refs.base += n as u64;
                return;
            };
            let before = (r.at - refs.base) as usize;
            if before > 0 {
                let k = before.min(n);
                self.inline.advance(k);
                refs.base += k as u64;
                n -= k;
                continue;
            }
            let k = (r.msg.payload.len() - r.skip).min(n);
            r.skip += k;
            n -= k;
            refs.bytes -= k;
            if r.skip == r.msg.payload.len() {
                refs.list.pop_front();
            }
        }
    }

    /// One write of as much as the writer takes; the caller advances by the count.
    pub fn poll_write<W: AsyncWrite + Unpin>(
        &self,
        w: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let refs = match self.refs.as_deref() {
            Some(r) if !r.list.is_empty() => r,
            _ => return Pin::new(w).poll_write(cx, &self.inline),
        };
        // At most two pieces per reference, and one for the inline bytes after the last.
        let pieces = (2 * refs.list.len() + 1).min(MAX_SLICES);
        if pieces <= SMALL_WRITE {
            let mut slices = [IoSlice::new(&[]); SMALL_WRITE];
            let n = self.slices(refs, &mut slices[..pieces]);
            Pin::new(w).poll_write_vectored(cx, &slices[..n])
        } else {
            // A large write: one allocation is cheap next to it.
            let mut slices = vec![IoSlice::new(&[]); pieces];
            let n = self.slices(refs, &mut slices);
            Pin::new(w).poll_write_vectored(cx, &slices[..n])
        }
    }

    /// Writes everything (used when closing).
    pub async fn write_all<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> io::Result<()> {
        while !self.is_empty() {
            let n = std::future::poll_fn(|cx| self.poll_write(w, cx)).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.advance(n);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::codec::QoS;

    fn msg(byte: u8, len: usize) -> Arc<Message> {
        Arc::new(Message::new(
            "t",
            Bytes::from(vec![byte; len]),
            QoS::AtMostOnce,
            false,
        ))
    }

    /// The bytes `slices` would write, joined.
    fn pending(o: &Outbox) -> Vec<u8> {
        let Some(refs) = o.refs.as_deref() else {
            return o.inline.to_vec();
        };
        let mut s = [IoSlice::new(&[]); MAX_SLICES];
        let n = o.slices(refs, &mut s);
        s[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    /// An outbox holding: "ab", 600 x 1, "cd", 4 x 2 (copied), 700 x 3, "e".
    fn mixed(vectored: bool) -> (Outbox, Vec<u8>) {
        let mut o = Outbox::default();
        let mut want = Vec::new();
        o.buf().extend_from_slice(b"ab");
        want.extend_from_slice(b"ab");
        o.put_payload(&msg(1, REF_MIN + 100), vectored);
        want.extend(std::iter::repeat(1).take(REF_MIN + 100));
        o.buf().extend_from_slice(b"cd");
        want.extend_from_slice(b"cd");
        o.put_payload(&msg(2, 4), vectored);
        want.extend(std::iter::repeat(2).take(4));
        o.put_payload(&msg(3, REF_MIN + 200), vectored);
        want.extend(std::iter::repeat(3).take(REF_MIN + 200));
        o.buf().extend_from_slice(b"e");
        want.push(b'e');
        (o, want)
    }

    #[test]
    fn pieces_keep_stream_order() {
        let (o, want) = mixed(true);
        assert_eq!(o.len(), want.len());
        assert_eq!(
            o.refs.as_ref().map_or(0, |r| r.list.len()),
            2,
            "the two large payloads are referenced"
        );
        assert_eq!(pending(&o), want);
    }

    #[test]
    fn a_writer_without_vectored_writes_gets_copies() {
        let (o, want) = mixed(false);
        assert!(o.refs.is_none());
        assert_eq!(&o.inline[..], &want[..]);
    }

    #[test]
    fn partial_writes_resume_at_any_byte() {
        // Every split point, including inside a referenced payload and at its edges.
        let (_, want) = mixed(true);
        for cut in 0..=want.len() {
            let (mut o, _) = mixed(true);
            o.advance(cut);
            assert_eq!(o.len(), want.len() - cut, "cut {cut}");
            assert_eq!(pending(&o), &want[cut..], "cut {cut}");
            assert_eq!(o.is_empty(), cut == want.len());
        }
    }

    #[test]
    fn appending_after_a_partial_write_lands_at_the_end() {
        let (mut o, mut want) = mixed(true);
        o.advance(300);
        o.buf().extend_from_slice(b"zz");
        o.put_payload(&msg(4, REF_MIN), true);
        want.extend_from_slice(b"zz");
        want.extend(std::iter::repeat(4).take(REF_MIN));
        assert_eq!(pending(&o), &want[300..]);
        o.advance(want.len() - 300);
        assert!(o.is_empty());
        o.release();
        o.put_payload(&msg(5, REF_MIN), true);
        assert_eq!(
            pending(&o),
            vec![5; REF_MIN],
            "positions stay right after a release"
        );
    }

    #[test]
    fn one_write_takes_at_most_max_slices() {
        let mut o = Outbox::default();
        for _ in 0..MAX_SLICES {
            o.buf().extend_from_slice(b"h");
            o.put_payload(&msg(7, REF_MIN), true);
        }
        let refs = o.refs.as_deref().expect("referenced");
        let mut s = [IoSlice::new(&[]); MAX_SLICES];
        assert_eq!(o.slices(refs, &mut s), MAX_SLICES);
        // Advancing by what those slices held leaves the rest, in order.
        let first: usize = s.iter().map(|s| s.len()).sum();
        let total = o.len();
        o.advance(first);
        assert_eq!(o.len(), total - first);
        let rest = pending(&o);
        assert_eq!(rest.len(), total - first);
        assert_eq!(rest[0], b'h');
    }

    #[tokio::test]
    async fn write_all_sends_every_byte_in_order() {
        let (mut o, want) = mixed(true);
        let (mut a, mut b) = tokio::io::duplex(64);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got)
                .await
                .map(|_| got)
        });
        o.write_all(&mut a).await.expect("write");
        drop(a);
        assert_eq!(reader.await.expect("join").expect("read"), want);
        assert!(o.is_empty());
    }
}
