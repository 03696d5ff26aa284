//! `route_frame`: the cluster route wire format, `supermq::cluster::frame`, on untrusted bytes
//! (what a peer, or anything else that reaches the route port, may send).
//!
//! The first input byte is a selector: bit 0 says whether the stream starts with the
//! connection preamble (`SMQR` and the version, checked by `decode_preamble`) or directly
//! with frames; bits 4–7 pick the chunk size (1–16 bytes) for the incremental check.
//!
//! Checked, besides "never panics" (and no allocation the bytes do not back, which libFuzzer's
//! `-rss_limit_mb`/`-malloc_limit_mb` would report):
//! - `Ok(None)` and `Ok(false)` ("need more bytes") leave the buffer untouched, and feeding the
//!   stream in chunks yields exactly the frames and the error that decoding it whole does;
//! - every decoded frame re-encodes to bytes that decode to the same frame, and to the very
//!   input bytes when the input used minimal varints.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use supermq::cluster::frame::{self, Frame, FrameError};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let preamble = selector & 1 != 0;
    let chunk = usize::from(selector >> 4) + 1;

    let mut whole = Vec::new();
    let mut buf = BytesMut::from(rest);
    let mut at_frames = !preamble;
    let clean = step(&mut buf, &mut at_frames, &mut whole);

    let mut offset = if preamble && at_frames { 5 } else { 0 };
    for (result, consumed) in &whole {
        let original = &rest[offset..offset + consumed];
        offset += consumed;
        if let Ok(f) = result {
            round_trip(f, original);
        }
    }

    let mut pieces = Vec::new();
    let mut inc = BytesMut::new();
    let mut inc_at_frames = !preamble;
    let mut inc_clean = true;
    for part in rest.chunks(chunk) {
        inc.extend_from_slice(part);
        if !step(&mut inc, &mut inc_at_frames, &mut pieces) {
            inc_clean = false;
            break;
        }
    }
    let a: Vec<_> = whole.iter().map(|(r, _)| r).collect();
    let b: Vec<_> = pieces.iter().map(|(r, _)| r).collect();
    assert_eq!(a, b, "chunked decoding differs from whole");
    assert_eq!(clean, inc_clean);
    if clean {
        assert_eq!(at_frames, inc_at_frames);
        assert_eq!(buf.len(), inc.len(), "different leftover");
    }
});

/// One decode result and the bytes it consumed.
type Step = (Result<Frame, FrameError>, usize);

/// Checks the preamble if still due, then decodes frames until more bytes are needed
/// (`true`) or one fails (`false`).
fn step(buf: &mut BytesMut, at_frames: &mut bool, steps: &mut Vec<Step>) -> bool {
    if !*at_frames {
        let before = buf.len();
        match frame::decode_preamble(buf) {
            Ok(true) => {
                assert_eq!(before - buf.len(), 5, "preamble is 5 bytes");
                *at_frames = true;
            }
            Ok(false) => {
                assert_eq!(buf.len(), before, "Ok(false) consumed input");
                return true;
            }
            Err(e) => {
                steps.push((Err(e), 0));
                return false;
            }
        }
    }
    loop {
        let before = buf.len();
        match frame::decode(buf) {
            Ok(Some(f)) => steps.push((Ok(f), before - buf.len())),
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed input");
                return true;
            }
            Err(e) => {
                steps.push((Err(e), 0));
                return false;
            }
        }
    }
}

fn round_trip(f: &Frame, original: &[u8]) {
    let mut out = BytesMut::new();
    frame::encode(f, &mut out);
    if out.len() == original.len() {
        assert_eq!(&out[..], original, "re-encoding of {f:?} differs");
    } else {
        assert!(out.len() < original.len(), "re-encoding of {f:?} grew");
    }
    let again = frame::decode(&mut out);
    assert_eq!(again, Ok(Some(f.clone())), "re-decoding");
    assert!(out.is_empty(), "re-decoding left bytes");
}
