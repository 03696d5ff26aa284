//! The CONNECT phase: the first packet, its validation and the CONNACK decision (spec §3.1–3.2).

use std::sync::Arc;

use rand::Rng;

use crate::codec::{Connect, ConnectReturnCode, ProtocolLevel};
use crate::context::Context;

/// Checks a CONNECT against the protocol rules and the broker's limits; returns the client
/// id to use (generated when the client sent an empty one with CleanSession 1).
pub fn validate(c: &Connect, ctx: &Arc<Context>) -> Result<String, ConnectReturnCode> {
    let limits = &ctx.config.limits;
    let id = if c.client_id.is_empty() {
        // 3.1 requires 1–23 characters; 3.1.1 allows an empty id only with CleanSession 1
        // [MQTT-3.1.3-7, MQTT-3.1.3-8] and then the server assigns one [MQTT-3.1.3-6].
        if c.level == ProtocolLevel::V31 || !c.clean_session {
            return Err(ConnectReturnCode::IdentifierRejected);
        }
        generated_id()
    } else {
        if c.level == ProtocolLevel::V31 && c.client_id.chars().count() > 23 {
            return Err(ConnectReturnCode::IdentifierRejected);
        }
        if c.client_id.len() > limits.max_client_id_len {
            return Err(ConnectReturnCode::IdentifierRejected);
        }
        c.client_id.clone()
    };
    // 3.1.1 has no way to tell a client another keep-alive, so an out-of-range one is
    // refused as Mosquitto does (identifier rejected).
    let ka = c.keep_alive;
    if (ka == 0 && !limits.allow_zero_keep_alive)
        || (ka != 0 && (ka < limits.min_keep_alive || ka > limits.max_keep_alive))
    {
        return Err(ConnectReturnCode::IdentifierRejected);
    }
    // Credentials (and allow_anonymous) are checked after this, by `auth::Auth::admit`.
    Ok(id)
}

fn generated_id() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("auto-{n:016x}")
}
