//! The bounds-checked cursor every packet body is read with, and the string and topic rules
//! its fields share (spec §1.5.3, §4.7).
//!
//! Owns "is this field well-formed?" for the field types that recur across packets: packet
//! identifiers, UTF-8 strings, binary data, topic names and topic filters, including the
//! configured topic limits.

use std::str;

use bytes::Bytes;

use super::DecodeLimits;
use crate::codec::error::DecodeError;

/// Topic name rules shared by PUBLISH and the CONNECT will topic.
pub(super) fn check_topic_name(s: &str, limits: &DecodeLimits) -> Result<(), DecodeError> {
    // [MQTT-4.7.3-1].
    if s.is_empty() {
        return Err(DecodeError::InvalidTopicName);
    }
    check_topic_length(s, limits)?;
    // One fused pass for the three forbidden bytes and the level separators: topics are
    // short, so this beats separate memchr scans. Multi-byte UTF-8 sequences only contain
    // bytes >= 0x80, so a byte search cannot hit inside a character.
    let mut levels = 1usize;
    for b in s.bytes() {
        match b {
            b'/' => levels += 1,
            // [MQTT-1.5.3-2].
            0 => return Err(DecodeError::InvalidUtf8),
            // [MQTT-3.3.2-2].
            b'+' | b'#' => return Err(DecodeError::InvalidTopicName),
            _ => {}
        }
    }
    check_topic_levels(levels, limits)
}

/// `limits.max_topic_length` for a topic name or filter.
fn check_topic_length(s: &str, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if s.len() > limits.max_topic_length {
        return Err(DecodeError::TopicTooLong {
            len: s.len(),
            max: limits.max_topic_length,
        });
    }
    Ok(())
}

/// `limits.max_topic_levels` for a topic name or filter of `levels` levels.
fn check_topic_levels(levels: usize, limits: &DecodeLimits) -> Result<(), DecodeError> {
    if levels > limits.max_topic_levels {
        return Err(DecodeError::TopicTooDeep {
            levels,
            max: limits.max_topic_levels,
        });
    }
    Ok(())
}

/// A well-formed MQTT string: valid UTF-8 (which excludes surrogates) [MQTT-1.5.3-1] and no
/// U+0000 [MQTT-1.5.3-2]. U+FEFF is a plain character here [MQTT-1.5.3-3].
fn mqtt_str(raw: &[u8]) -> Result<&str, DecodeError> {
    let s = str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
    // `<[u8]>::contains` on bytes is a memchr search, not a per-byte loop.
    if raw.contains(&0) {
        return Err(DecodeError::InvalidUtf8);
    }
    Ok(s)
}

/// A bounds-checked cursor over one complete packet. Every read checks against the frame,
/// whose length is the announced remaining length, so a field that runs past it is
/// `Truncated` and nothing is ever allocated from a length that the bytes do not back.
pub(super) struct Reader<'a> {
    frame: &'a [u8],
    pos: usize,
    limits: &'a DecodeLimits,
}

impl<'a> Reader<'a> {
    /// A cursor over the complete packet `frame`, starting at `pos` (after the fixed header).
    pub(super) fn new(frame: &'a [u8], pos: usize, limits: &'a DecodeLimits) -> Reader<'a> {
        Reader { frame, pos, limits }
    }

    pub(super) fn left(&self) -> usize {
        self.frame.len() - self.pos
    }

    pub(super) fn has_more(&self) -> bool {
        self.pos < self.frame.len()
    }

    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let frame: &'a [u8] = self.frame;
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let bytes = frame.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    pub(super) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.frame.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Two-byte integers are big-endian (§1.5.2).
    pub(super) fn u16(&mut self) -> Result<u16, DecodeError> {
        let bytes: [u8; 2] = self
            .take(2)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(u16::from_be_bytes(bytes))
    }

    /// Four-byte integers are big-endian (MQTT 5.0 §1.5.3).
    pub(super) fn u32(&mut self) -> Result<u32, DecodeError> {
        let bytes: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| DecodeError::Truncated)?;
        Ok(u32::from_be_bytes(bytes))
    }

    /// A Variable Byte Integer (MQTT 5.0 §1.5.5): the remaining-length encoding, at most 4
    /// bytes [MQTT-1.5.5-1], so at most 268,435,455.
    pub(super) fn vbi(&mut self) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::MalformedVariableByteInteger)
    }

    /// A cursor over `frame`, a field of this packet (a property block), with the same limits.
    pub(super) fn nested(&self, frame: &'a [u8]) -> Reader<'a> {
        Reader::new(frame, 0, self.limits)
    }

    /// The limits topics are checked against.
    pub(super) fn limits(&self) -> &'a DecodeLimits {
        self.limits
    }

    /// [MQTT-2.3.1-1]: packet identifiers are non-zero.
    pub(super) fn pkid(&mut self) -> Result<u16, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::ZeroPacketId),
            id => Ok(id),
        }
    }

    /// The bytes of a 2-byte-length-prefixed field (§1.5.3).
    pub(super) fn length_prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    /// Binary data (will message, password), copied out of the frame.
    pub(super) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        self.length_prefixed().map(Bytes::copy_from_slice)
    }

    /// A UTF-8 string field: one validation, one allocation.
    pub(super) fn string(&mut self) -> Result<String, DecodeError> {
        let raw = self.length_prefixed()?;
        mqtt_str(raw).map(String::from)
    }

    /// A topic name: one UTF-8 validation, one fused scan, one allocation.
    pub(super) fn topic_name(&mut self) -> Result<String, DecodeError> {
        let raw = self.length_prefixed()?;
        let s = str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        check_topic_name(s, self.limits)?;
        Ok(String::from(s))
    }

    /// An MQTT 5 PUBLISH topic name: as [`Reader::topic_name`], but it may be empty, which the
    /// caller allows only with a Topic Alias (MQTT 5.0 §3.3.2.3.4).
    pub(super) fn topic_name_or_empty(&mut self) -> Result<String, DecodeError> {
        let raw = self.length_prefixed()?;
        let s = str::from_utf8(raw).map_err(|_| DecodeError::InvalidUtf8)?;
        if !s.is_empty() {
            check_topic_name(s, self.limits)?;
        }
        Ok(String::from(s))
    }

    /// A topic filter: a non-empty string [MQTT-4.7.3-1]; wildcards are allowed here.
    pub(super) fn topic_filter(&mut self) -> Result<String, DecodeError> {
        let raw = self.length_prefixed()?;
        let s = mqtt_str(raw)?;
        if s.is_empty() {
            return Err(DecodeError::EmptyTopicFilter);
        }
        check_topic_length(s, self.limits)?;
        // A `$share/<group>/` prefix counts too: the bound is on what the client sent.
        let levels = 1 + s.bytes().filter(|&b| b == b'/').count();
        check_topic_levels(levels, self.limits)?;
        Ok(String::from(s))
    }

    /// Everything up to the end of the packet, copied out of the frame.
    pub(super) fn rest(&mut self) -> Bytes {
        let rest = Bytes::copy_from_slice(&self.frame[self.pos..]);
        self.pos = self.frame.len();
        rest
    }

    /// The fields must account for the whole remaining length (§2.2.3).
    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        if self.has_more() {
            Err(DecodeError::TrailingBytes)
        } else {
            Ok(())
        }
    }
}
