//! The fuzz input as a cursor: bytes, numbers and picks from fixed pools, with zeros past
//! the end (so every input, however short, is a complete run).

use supermq::codec::QoS;

/// Input cursor: reads past the end give zeros.
pub(crate) struct Input<'a>(pub(crate) &'a [u8]);

impl<'a> Input<'a> {
    pub(crate) fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }
    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    pub(crate) fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// An entry of `pool`, or (for bytes from 0xF0) a short string from the input.
    pub(crate) fn pick(&mut self, pool: &[&str]) -> String {
        let b = self.byte();
        if b >= 0xF0 {
            let n = usize::from(self.byte() % 32);
            String::from_utf8_lossy(self.bytes(n)).into_owned()
        } else {
            pool[usize::from(b) % pool.len()].to_owned()
        }
    }
    pub(crate) fn qos(&mut self) -> QoS {
        QoS::from_u8(self.byte() % 3).unwrap_or_default()
    }
}
