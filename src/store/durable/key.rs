//! A record's key as the writer is handed it: kept inline when short (most are: a client id
//! and a sequence number or packet id), so staging a write allocates nothing for its key.
//! Several keys are staged per message on the message path, and freed on the writer's
//! thread; inline, neither costs anything.

use std::fmt;

/// Bytes kept inline: a 36-character client id (a UUID) with its separator and an 8-byte
/// sequence number fits.
const INLINE: usize = 54;

#[derive(Clone)]
pub(super) enum Key {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Vec<u8>),
}

impl Key {
    /// A per-session key: the client id, 0, then `suffix` (see `record::session_key`).
    pub fn session(client_id: &str, suffix: &[u8]) -> Key {
        Key::of(&[client_id.as_bytes(), &[0], suffix])
    }

    /// The key made of `parts` end to end: inline when it fits.
    fn of(parts: &[&[u8]]) -> Key {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > INLINE {
            return Key::Heap(parts.concat());
        }
        let mut buf = [0u8; INLINE];
        let mut at = 0;
        for p in parts {
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        Key::Inline {
            len: len as u8,
            buf,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..usize::from(*len)],
            Key::Heap(v) => v,
        }
    }
}

impl From<&[u8]> for Key {
    fn from(b: &[u8]) -> Key {
        Key::of(&[b])
    }
}

impl From<Vec<u8>> for Key {
    fn from(v: Vec<u8>) -> Key {
        Key::Heap(v)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_same_bytes_inline_or_not() {
        for id in ["", "a", &"c".repeat(45), &"l".repeat(46), &"x".repeat(300)] {
            let want = super::super::record::session_key(id, &7u64.to_be_bytes());
            assert_eq!(Key::session(id, &7u64.to_be_bytes()).as_slice(), &want[..]);
            assert_eq!(Key::from(&want[..]).as_slice(), &want[..]);
            assert_eq!(Key::from(want.clone()).as_slice(), &want[..]);
        }
    }
}
