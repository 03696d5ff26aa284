//! The CONNECT phase: the first packet, its validation and the CONNACK decision (spec §3.1–3.2).

use std::sync::Arc;

use rand::Rng;

use crate::codec::{Connect, ProtocolLevel, ReasonCode};
use crate::context::Context;

/// Checks a CONNECT against the protocol rules and the broker's limits; returns the client
/// id to use, and whether the broker assigned it (the client sent an empty one).
pub fn validate(c: &Connect, ctx: &Arc<Context>) -> Result<(String, bool), ReasonCode> {
    let limits = &ctx.config.limits;
    let refused = ReasonCode::ClientIdentifierNotValid;
    let id = if c.client_id.is_empty() {
        // 3.1 requires 1–23 characters; 3.1.1 allows an empty id only with CleanSession 1
        // [MQTT-3.1.3-7, MQTT-3.1.3-8]; MQTT 5 allows it with either Clean Start, and then
        // tells the client the id it got [MQTT-3.1.3-6, MQTT-3.2.2-16].
        if c.level == ProtocolLevel::V31 || (!c.clean_session && !c.level.is_v5()) {
            return Err(refused);
        }
        return Ok((generated_id(), true));
    } else {
        if c.level == ProtocolLevel::V31 && c.client_id.chars().count() > 23 {
            return Err(refused);
        }
        if c.client_id.len() > limits.max_client_id_len {
            return Err(refused);
        }
        // A stored session's keys hold its client id, and the store's keys are at most
        // 65,535 bytes: an id within a few bytes of the protocol's own limit cannot be kept.
        if ctx.sessions.keeps() && c.client_id.len() > crate::store::durable::MAX_CLIENT_ID {
            return Err(refused);
        }
        c.client_id.clone()
    };
    // 3.1.1 has no way to tell a client another keep-alive, so an out-of-range one is
    // refused as Mosquitto does (identifier rejected); MQTT 5 clients are told the keep-alive
    // to use instead (Server Keep Alive, see `v5::negotiate`).
    let ka = c.keep_alive;
    if !c.level.is_v5()
        && ((ka == 0 && !limits.allow_zero_keep_alive)
            || (ka != 0 && (ka < limits.min_keep_alive || ka > limits.max_keep_alive)))
    {
        return Err(refused);
    }
    // Credentials (and allow_anonymous) are checked after this, by `auth::Auth::admit`.
    Ok((id, false))
}

fn generated_id() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("auto-{n:016x}")
}
