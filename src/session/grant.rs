//! What one subscription was granted: its options and, at MQTT 5, its identifier.
//!
//! Owns [`Grant`], the value the session's subscription map, the router's trie and the
//! consumer groups keep per subscription, and [`SubIds`], the identifiers one delivery
//! carries (MQTT 5.0 §3.8.2.1.2, §3.3.4).

use std::num::NonZeroU32;

use crate::codec::{QoS, SubscriptionOptions};

/// A subscription as granted: the options of its SUBSCRIBE entry (the QoS already capped at
/// what the broker grants) and the Subscription Identifier of its SUBSCRIBE, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Grant {
    pub options: SubscriptionOptions,
    /// 1 to 268,435,455 (§3.8.2.1.2); sent back with every message the subscription
    /// matches [MQTT-3.3.4-3].
    pub id: Option<NonZeroU32>,
}

impl Grant {
    /// A 3.1.1 subscription at `qos`: default options and no identifier.
    pub fn qos(qos: QoS) -> Grant {
        Grant {
            options: SubscriptionOptions::new(qos),
            id: None,
        }
    }

    /// The granted QoS.
    pub fn max_qos(&self) -> QoS {
        self.options.qos
    }
}

/// The Subscription Identifiers one delivery is sent with: those of every subscription of
/// the session that the topic matched [MQTT-3.3.4-3, MQTT-3.3.4-5]. Boxed and absent when
/// there is none (every 3.1.1 delivery), so a queued delivery pays one null pointer.
pub type SubIds = Option<Box<[u32]>>;
