//! How PUBLISH packets are written to the client a session is connected to.
//!
//! Owns [`Egress`]: the connection's protocol level and, at MQTT 5, what the client set in
//! its CONNECT that bounds what the server sends it: its Receive Maximum (the in-flight
//! window), its Maximum Packet Size, and its Topic Alias Maximum, with the topic aliases
//! this connection has assigned ([`TopicAliases`]). The session's queue outlives
//! connections; an `Egress` lives and dies with one (aliases do not survive a reconnect,
//! MQTT 5.0 §3.3.2.3.4).

use std::collections::HashMap;
use std::time::Instant;

use super::outbox::Outbox;
use crate::codec::{self, ProtocolLevel, PublishHeader};
use crate::message::Delivery;

/// Topic aliases assigned towards one client, at most this many whatever the client allows:
/// assigning one costs a scan of the table for the least recently used entry when it is
/// full, and the table is per connection.
pub const MAX_OUTBOUND_ALIASES: u16 = 128;

/// The connection a session writes to.
#[derive(Debug)]
pub struct Egress {
    pub level: ProtocolLevel,
    /// Whether the writer takes vectored writes natively (see [`Outbox::put_payload`]).
    pub vectored: bool,
    /// QoS 1/2 PUBLISH packets the client takes unacknowledged at once: its Receive Maximum
    /// [MQTT-3.3.4-9] (65,535 when it set none, and always at 3.1.1). The session's own
    /// `max_inflight` bounds it further.
    pub receive_maximum: u16,
    /// The client's Maximum Packet Size: a PUBLISH larger than this is not sent
    /// [MQTT-3.1.2-25]. `u32::MAX` when it set none (the protocol's limit is lower).
    pub max_packet: u32,
    /// Aliases assigned towards the client (MQTT 5, when it allows any). Boxed: every
    /// connection's task carries an `Egress`, few carry aliases.
    pub aliases: Option<Box<TopicAliases>>,
}

impl Egress {
    /// A connection at `level` that set no MQTT 5 limit.
    pub fn new(level: ProtocolLevel, vectored: bool) -> Egress {
        Egress {
            level,
            vectored,
            receive_maximum: u16::MAX,
            max_packet: u32::MAX,
            aliases: None,
        }
    }

    /// Writes one PUBLISH for `d` with the shared payload; false (nothing written) when the
    /// packet would exceed the client's Maximum Packet Size, in which case the message is
    /// discarded as if sent [MQTT-3.1.2-25]. `now` counts down the message's expiry.
    pub fn write_publish(
        &mut self,
        out: &mut Outbox,
        d: &Delivery,
        pkid: u16,
        dup: bool,
        now: Instant,
    ) -> bool {
        let m = &d.msg;
        let v5 = self.level.is_v5();
        let mut header = PublishHeader {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic: &m.topic,
            pkid,
            payload_len: m.payload.len(),
            properties: &m.properties,
            // The time left, not the interval published [MQTT-3.3.2-6].
            message_expiry: if v5 { m.remaining_expiry(now) } else { None },
            topic_alias: None,
            subscription_ids: if v5 {
                d.sub_ids.as_deref().unwrap_or(&[])
            } else {
                &[]
            },
        };
        // Measured only for a client that set a maximum (the measure walks the properties).
        if v5
            && self.max_packet != u32::MAX
            && codec::publish_header_len(&header, self.level) > self.max_packet as usize
        {
            return false;
        }
        let alias = match self.aliases.as_mut() {
            Some(a) if !dup => a.assign(&m.topic),
            _ => None,
        };
        if let Some((alias, known)) = alias {
            header.topic_alias = Some(alias);
            if known {
                // The client maps the alias to the topic already (§3.3.2.3.4).
                header.topic = "";
            }
        }
        codec::encode_publish_header(&header, self.level, out.buf());
        out.put_payload(m, self.vectored);
        true
    }
}

/// The topic aliases of one connection towards its client (MQTT 5.0 §3.3.2.3.4): topic →
/// alias, at most the client's Topic Alias Maximum [MQTT-3.3.2-9] (and
/// [`MAX_OUTBOUND_ALIASES`]). When every alias is taken the least recently used one is
/// reassigned, so a client that publishes to a few topics over and over saves their bytes
/// on every message after the first.
#[derive(Debug)]
pub struct TopicAliases {
    by_topic: HashMap<String, u16>,
    /// Alias − 1 → its topic and when it was last used.
    slots: Vec<(String, u64)>,
    max: u16,
    clock: u64,
}

impl TopicAliases {
    /// Aliases up to `client_max` (the client's Topic Alias Maximum); `None` when it allows
    /// none, as the spec's default of 0 says [MQTT-3.3.2-9].
    pub fn new(client_max: u16) -> Option<Box<TopicAliases>> {
        let max = client_max.min(MAX_OUTBOUND_ALIASES);
        (max > 0).then(|| {
            Box::new(TopicAliases {
                by_topic: HashMap::new(),
                slots: Vec::new(),
                max,
                clock: 0,
            })
        })
    }

    /// The alias to send `topic` with, and whether the client knows it already (then the
    /// topic name can be left out).
    pub fn assign(&mut self, topic: &str) -> Option<(u16, bool)> {
        self.clock += 1;
        if let Some(&alias) = self.by_topic.get(topic) {
            self.slots[usize::from(alias - 1)].1 = self.clock;
            return Some((alias, true));
        }
        let alias = if self.slots.len() < usize::from(self.max) {
            self.slots.push((topic.to_owned(), self.clock));
            self.slots.len() as u16
        } else {
            let (i, _) = self
                .slots
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, used))| *used)?;
            let slot = &mut self.slots[i];
            self.by_topic.remove(&slot.0);
            *slot = (topic.to_owned(), self.clock);
            i as u16 + 1
        };
        self.by_topic.insert(topic.to_owned(), alias);
        Some((alias, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_reused_and_the_least_recent_is_replaced() {
        assert!(TopicAliases::new(0).is_none());
        let mut a = TopicAliases::new(2).expect("aliases");
        assert_eq!(a.assign("a"), Some((1, false)));
        assert_eq!(a.assign("b"), Some((2, false)));
        assert_eq!(a.assign("a"), Some((1, true)));
        // "b" is the least recently used: "c" takes its alias, and "b" must be sent again.
        assert_eq!(a.assign("c"), Some((2, false)));
        assert_eq!(a.assign("a"), Some((1, true)));
        assert_eq!(a.assign("b"), Some((2, false)));
        assert_eq!(a.assign("c"), Some((1, false)));
    }

    #[test]
    fn outbound_aliases_are_capped() {
        let a = TopicAliases::new(u16::MAX).expect("aliases");
        assert_eq!(a.max, MAX_OUTBOUND_ALIASES);
    }
}
