//! MQTT 5 property blocks on the wire (MQTT 5.0 §2.2.2): what a packet writes, in one fixed
//! order, and how long that is.
//!
//! Owns the one walk over the properties that both the length and the bytes come from, so
//! the two cannot disagree, and the filter that writes a property only where table 2-4
//! allows it: a packet the broker builds with a stray property still decodes.

use bytes::{BufMut, BytesMut};

use super::{put_remaining_length, remaining_length_len};
use crate::codec::packet::PublishHeader;
use crate::codec::properties::{id, Properties, PropertyContext, PropertyValues};

/// The properties one packet (or will) writes.
pub(super) struct Props<'a> {
    ctx: PropertyContext,
    values: &'a PropertyValues,
    /// For PUBLISH these three come from the delivery, not from `values` (§3.3.2.3).
    message_expiry: Option<u32>,
    topic_alias: Option<u16>,
    subscription_ids: &'a [u32],
}

impl<'a> Props<'a> {
    /// The properties of a packet of kind `ctx`, all from `properties`.
    pub(super) fn of(ctx: PropertyContext, properties: &'a Properties) -> Props<'a> {
        let values = properties.values_or_empty();
        Props {
            ctx,
            values,
            message_expiry: values.message_expiry_interval,
            topic_alias: values.topic_alias,
            subscription_ids: &values.subscription_identifiers,
        }
    }

    /// The properties of a PUBLISH: the message's, with the per-delivery Message Expiry
    /// Interval, Topic Alias and Subscription Identifiers of `h` (see [`PublishHeader`]).
    pub(super) fn publish(h: &PublishHeader<'a>) -> Props<'a> {
        Props {
            ctx: PropertyContext::Publish,
            values: h.properties.values_or_empty(),
            message_expiry: h.message_expiry,
            topic_alias: h.topic_alias,
            subscription_ids: h.subscription_ids,
        }
    }

    /// The bytes of the properties themselves, without the length in front.
    pub(super) fn body_len(&self) -> usize {
        let mut len = Len(0);
        self.walk(&mut len);
        len.0
    }

    /// The whole block: the Variable Byte Integer length and the properties.
    pub(super) fn block_len(&self) -> usize {
        let body = self.body_len();
        remaining_length_len(body) + body
    }

    /// Writes the whole block; `body_len` is [`Props::body_len`].
    pub(super) fn put(&self, out: &mut BytesMut, body_len: usize) {
        put_remaining_length(out, body_len);
        let before = out.len();
        self.walk(&mut Put(out));
        debug_assert_eq!(out.len() - before, body_len, "property length");
    }

    /// Every property to write, in the order of table 2-4's identifiers (User Properties at
    /// 0x26, in their given order), each only if `ctx` allows it.
    fn walk(&self, s: &mut impl Sink) {
        let v = self.values;
        let ok = |pid| self.ctx.allows(pid);
        if let Some(f) = v
            .payload_format_indicator
            .filter(|_| ok(id::PAYLOAD_FORMAT_INDICATOR))
        {
            s.u8(id::PAYLOAD_FORMAT_INDICATOR, f as u8);
        }
        if let Some(n) = self
            .message_expiry
            .filter(|_| ok(id::MESSAGE_EXPIRY_INTERVAL))
        {
            s.u32(id::MESSAGE_EXPIRY_INTERVAL, n);
        }
        str_prop(s, id::CONTENT_TYPE, &v.content_type, ok);
        str_prop(s, id::RESPONSE_TOPIC, &v.response_topic, ok);
        if let Some(b) = v
            .correlation_data
            .as_ref()
            .filter(|_| ok(id::CORRELATION_DATA))
        {
            s.bytes(id::CORRELATION_DATA, b);
        }
        if ok(id::SUBSCRIPTION_IDENTIFIER) {
            // SUBSCRIBE carries at most one (§3.8.2.1.2).
            let n = if self.ctx == PropertyContext::Publish {
                self.subscription_ids.len()
            } else {
                self.subscription_ids.len().min(1)
            };
            for &sid in &self.subscription_ids[..n] {
                s.vbi(id::SUBSCRIPTION_IDENTIFIER, sid);
            }
        }
        u32_prop(
            s,
            id::SESSION_EXPIRY_INTERVAL,
            v.session_expiry_interval,
            ok,
        );
        str_prop(
            s,
            id::ASSIGNED_CLIENT_IDENTIFIER,
            &v.assigned_client_identifier,
            ok,
        );
        u16_prop(s, id::SERVER_KEEP_ALIVE, v.server_keep_alive, ok);
        str_prop(s, id::AUTHENTICATION_METHOD, &v.authentication_method, ok);
        if let Some(b) = v
            .authentication_data
            .as_ref()
            .filter(|_| ok(id::AUTHENTICATION_DATA))
        {
            s.bytes(id::AUTHENTICATION_DATA, b);
        }
        flag_prop(
            s,
            id::REQUEST_PROBLEM_INFORMATION,
            v.request_problem_information,
            ok,
        );
        u32_prop(s, id::WILL_DELAY_INTERVAL, v.will_delay_interval, ok);
        flag_prop(
            s,
            id::REQUEST_RESPONSE_INFORMATION,
            v.request_response_information,
            ok,
        );
        str_prop(s, id::RESPONSE_INFORMATION, &v.response_information, ok);
        str_prop(s, id::SERVER_REFERENCE, &v.server_reference, ok);
        str_prop(s, id::REASON_STRING, &v.reason_string, ok);
        u16_prop(s, id::RECEIVE_MAXIMUM, v.receive_maximum, ok);
        u16_prop(s, id::TOPIC_ALIAS_MAXIMUM, v.topic_alias_maximum, ok);
        u16_prop(s, id::TOPIC_ALIAS, self.topic_alias, ok);
        if let Some(q) = v.maximum_qos.filter(|_| ok(id::MAXIMUM_QOS)) {
            s.u8(id::MAXIMUM_QOS, q as u8);
        }
        flag_prop(s, id::RETAIN_AVAILABLE, v.retain_available, ok);
        if ok(id::USER_PROPERTY) {
            for (name, value) in &v.user_properties {
                s.pair(id::USER_PROPERTY, name, value);
            }
        }
        u32_prop(s, id::MAXIMUM_PACKET_SIZE, v.maximum_packet_size, ok);
        flag_prop(
            s,
            id::WILDCARD_SUBSCRIPTION_AVAILABLE,
            v.wildcard_subscription_available,
            ok,
        );
        flag_prop(
            s,
            id::SUBSCRIPTION_IDENTIFIER_AVAILABLE,
            v.subscription_identifiers_available,
            ok,
        );
        flag_prop(
            s,
            id::SHARED_SUBSCRIPTION_AVAILABLE,
            v.shared_subscription_available,
            ok,
        );
    }
}

fn str_prop(s: &mut impl Sink, pid: u8, v: &Option<String>, ok: impl Fn(u8) -> bool) {
    if let Some(v) = v.as_ref().filter(|_| ok(pid)) {
        s.bytes(pid, v.as_bytes());
    }
}

fn u16_prop(s: &mut impl Sink, pid: u8, v: Option<u16>, ok: impl Fn(u8) -> bool) {
    if let Some(v) = v.filter(|_| ok(pid)) {
        s.u16(pid, v);
    }
}

fn u32_prop(s: &mut impl Sink, pid: u8, v: Option<u32>, ok: impl Fn(u8) -> bool) {
    if let Some(v) = v.filter(|_| ok(pid)) {
        s.u32(pid, v);
    }
}

fn flag_prop(s: &mut impl Sink, pid: u8, v: Option<bool>, ok: impl Fn(u8) -> bool) {
    if let Some(v) = v.filter(|_| ok(pid)) {
        s.u8(pid, u8::from(v));
    }
}

/// Where the walk goes: a length count or the output buffer. Each value follows its
/// identifier byte (§2.2.2.2).
trait Sink {
    fn u8(&mut self, pid: u8, v: u8);
    fn u16(&mut self, pid: u8, v: u16);
    fn u32(&mut self, pid: u8, v: u32);
    fn vbi(&mut self, pid: u8, v: u32);
    /// A UTF-8 string or binary data, with its two-byte length.
    fn bytes(&mut self, pid: u8, v: &[u8]);
    fn pair(&mut self, pid: u8, name: &str, value: &str);
}

struct Len(usize);

impl Sink for Len {
    fn u8(&mut self, _: u8, _: u8) {
        self.0 += 2;
    }
    fn u16(&mut self, _: u8, _: u16) {
        self.0 += 3;
    }
    fn u32(&mut self, _: u8, _: u32) {
        self.0 += 5;
    }
    fn vbi(&mut self, _: u8, v: u32) {
        self.0 += 1 + remaining_length_len(v as usize);
    }
    fn bytes(&mut self, _: u8, v: &[u8]) {
        self.0 += 1 + 2 + v.len();
    }
    fn pair(&mut self, _: u8, name: &str, value: &str) {
        self.0 += 1 + 2 + name.len() + 2 + value.len();
    }
}

struct Put<'o>(&'o mut BytesMut);

impl Sink for Put<'_> {
    fn u8(&mut self, pid: u8, v: u8) {
        self.0.put_u8(pid);
        self.0.put_u8(v);
    }
    fn u16(&mut self, pid: u8, v: u16) {
        self.0.put_u8(pid);
        self.0.put_u16(v);
    }
    fn u32(&mut self, pid: u8, v: u32) {
        self.0.put_u8(pid);
        self.0.put_u32(v);
    }
    fn vbi(&mut self, pid: u8, v: u32) {
        self.0.put_u8(pid);
        put_remaining_length(self.0, v as usize);
    }
    fn bytes(&mut self, pid: u8, v: &[u8]) {
        self.0.put_u8(pid);
        super::put_binary(self.0, v);
    }
    fn pair(&mut self, pid: u8, name: &str, value: &str) {
        self.0.put_u8(pid);
        super::put_str(self.0, name);
        super::put_str(self.0, value);
    }
}
