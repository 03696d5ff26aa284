//! The read check at delivery: whether one subscriber may receive a message on a topic.
//!
//! With an ACL file, a subscription is granted when its filter only overlaps a denied area
//! (as Mosquitto does: a monitoring client's `#` keeps working beside a `deny` line), so the
//! denied topics are withheld message by message instead. One gate is made per connection and
//! shared by its subscriptions; it caches its verdict per topic, and a reload of the ACL
//! (a new generation) empties the cache. Without an ACL file there is no gate at all, and
//! delivery pays nothing.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{Auth, Op};
use crate::metrics;

/// Verdicts kept per gate before the cache starts over: bounds the memory one subscriber
/// with a wide filter can make the broker hold.
const CACHE_MAX: usize = 1024;

#[derive(Debug, Default)]
struct Cache {
    generation: u64,
    verdicts: HashMap<Box<str>, bool>,
}

/// One client's read permission, checked per delivered message.
#[derive(Debug)]
pub struct ReadGate {
    auth: Arc<Auth>,
    client_id: Arc<str>,
    username: Option<Arc<str>>,
    // Protects the verdict cache; held for one look-up or one insert, never across a check.
    cache: Mutex<Cache>,
}

impl ReadGate {
    pub(super) fn new(auth: Arc<Auth>, client_id: Arc<str>, username: Option<Arc<str>>) -> Self {
        ReadGate {
            auth,
            client_id,
            username,
            cache: Mutex::default(),
        }
    }

    /// Whether the client may receive a message on `topic`; a refusal is counted in
    /// `acl_denied_read`.
    pub fn allows(&self, topic: &str) -> bool {
        let ok = self.may_read(topic);
        if !ok {
            metrics::inc(&self.auth.metrics.acl_denied_read);
            tracing::debug!(client_id = %self.client_id, topic, "delivery withheld by the ACL");
        }
        ok
    }

    /// [`ReadGate::allows`] without counting: for choosing among consumer-group members.
    pub fn may_read(&self, topic: &str) -> bool {
        let generation = self.auth.generation();
        let cached = {
            let c = self.cache.lock();
            (c.generation == generation)
                .then(|| c.verdicts.get(topic).copied())
                .flatten()
        };
        let ok = cached.unwrap_or_else(|| {
            let ok = self.auth.allows(
                &self.client_id,
                self.username.as_deref(),
                Op::Receive(topic),
            );
            let mut c = self.cache.lock();
            if c.generation != generation || c.verdicts.len() >= CACHE_MAX {
                c.verdicts.clear();
                c.generation = generation;
            }
            c.verdicts.insert(topic.into(), ok);
            ok
        });
        ok
    }
}
