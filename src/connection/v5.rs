//! What MQTT 5 adds to a connection: the CONNECT/CONNACK negotiation, inbound topic aliases
//! and the Receive Maximum quota, message and will properties, DISCONNECT in both directions.
//!
//! Owns [`V5`], the per-connection state only an MQTT 5 client has (boxed in the connection,
//! so a 3.1.1 connection carries a null pointer), and the pure decisions on it. Where the
//! spec leaves a choice, Mosquitto 2.0's behaviour is followed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::CloseReason;
use crate::codec::{
    Connect, Disconnect, Properties, PropertyValues, ProtocolLevel, Publish, QoS, ReasonCode,
};
use crate::context::Context;
use crate::message::Message;
use crate::session::{Egress, Session, TopicAliases};

/// The largest Session Expiry Interval: the session never expires (§3.1.2.11.2).
const NEVER: u32 = u32::MAX;

/// The protocol's largest packet (§2.2.3): a limit this large need not be told.
const PROTOCOL_MAX_PACKET: usize = 1 + 4 + 268_435_455;

/// The per-connection state of an MQTT 5 client.
#[derive(Debug, Default)]
pub(super) struct V5 {
    /// Topic aliases the client set up: alias − 1 → topic (§3.3.2.3.4). At most
    /// `limits.topic_alias_maximum`, grown as aliases are used.
    aliases_in: Vec<Option<String>>,
    /// QoS 1/2 PUBLISH packets read and not yet acknowledged, for the Receive Maximum
    /// (QoS 2 ones awaiting PUBREL are counted by the session).
    pub unacked_in: u16,
    /// The CONNECT's Session Expiry Interval was 0: a DISCONNECT may not raise it
    /// [MQTT-3.14.2-2].
    expiry_was_zero: bool,
    /// The Authentication Method of the CONNECT, for re-authentication (§4.12.1).
    pub auth_method: Option<String>,
    /// A re-authentication in progress: what the client's next AUTH continues.
    pub reauth: Option<Box<dyn crate::auth::AuthExchange>>,
}

/// What the CONNECT of a client settled.
#[derive(Debug)]
pub(super) struct Negotiated {
    pub egress: Egress,
    pub v5: Option<Box<V5>>,
    /// The properties of the CONNACK (empty below level 5).
    pub connack: Properties,
    /// The keep-alive in force: the client's, or the Server Keep Alive it was told.
    pub keep_alive: u16,
    /// How long the session outlives the connection (see `SessionState::expiry`).
    pub expiry: Option<Duration>,
}

/// Settles what a CONNECT asked for against the broker's limits. `assigned` is the client
/// id the broker made up for an empty one (told to an MQTT 5 client [MQTT-3.2.2-16]).
pub(super) fn negotiate(
    c: &Connect,
    ctx: &Context,
    assigned: Option<&str>,
    vectored: bool,
) -> Negotiated {
    let config = &ctx.config;
    let limits = &config.limits;
    let cap = expiry_cap(ctx);
    let mut egress = Egress::new(c.level, vectored);
    if !c.level.is_v5() {
        // 3.1.1: CleanSession 1 ends the session with the connection; 0 keeps it for
        // `persistent_session_expiry` (or for ever).
        let expiry = if c.clean_session {
            Some(Duration::ZERO)
        } else {
            cap
        };
        return Negotiated {
            egress,
            v5: None,
            connack: Properties::new(),
            keep_alive: c.keep_alive,
            expiry,
        };
    }
    let asked = c.properties.values_or_empty();
    let mut ack = PropertyValues::default();

    // Session Expiry Interval (§3.1.2.11.2): absent is 0; capped by the broker's limit, and
    // the client told what it got when that differs [MQTT-3.2.2-... §3.2.2.3.2].
    let requested = asked.session_expiry_interval.unwrap_or(0);
    let expiry = granted_expiry(requested, cap);
    let granted = expiry.map_or(NEVER, |d| u32::try_from(d.as_secs()).unwrap_or(NEVER - 1));
    if granted != requested {
        ack.session_expiry_interval = Some(granted);
    }

    // What the client takes (§3.1.2.11.3–6): its window, its largest packet, its aliases.
    egress.receive_maximum = asked.receive_maximum.unwrap_or(u16::MAX);
    egress.max_packet = asked.maximum_packet_size.unwrap_or(u32::MAX);
    egress.aliases = TopicAliases::new(asked.topic_alias_maximum.unwrap_or(0));

    // What the broker takes, and what it offers (§3.2.2.3).
    ack.receive_maximum = Some(limits.receive_maximum);
    if limits.max_qos < 2 {
        ack.maximum_qos = QoS::from_u8(limits.max_qos);
    }
    if !config.retain.enabled {
        ack.retain_available = Some(false);
    }
    if limits.max_packet_size < PROTOCOL_MAX_PACKET {
        ack.maximum_packet_size = u32::try_from(limits.max_packet_size).ok();
    }
    ack.assigned_client_identifier = assigned.map(str::to_owned);
    if limits.topic_alias_maximum > 0 {
        ack.topic_alias_maximum = Some(limits.topic_alias_maximum);
    }
    if !config.groups.enabled {
        ack.shared_subscription_available = Some(false);
    }
    let keep_alive = server_keep_alive(c.keep_alive, ctx);
    if keep_alive != c.keep_alive {
        ack.server_keep_alive = Some(keep_alive);
    }
    Negotiated {
        egress,
        v5: Some(Box::new(V5 {
            expiry_was_zero: requested == 0,
            auth_method: asked.authentication_method.clone(),
            ..V5::default()
        })),
        connack: ack.into(),
        keep_alive,
        expiry,
    }
}

/// The most a session is kept offline: `session.persistent_session_expiry`, 0 for no limit.
fn expiry_cap(ctx: &Context) -> Option<Duration> {
    let persistent = ctx.config.session.persistent_session_expiry;
    (!persistent.is_zero()).then_some(persistent)
}

/// How long a session outlives its connection when a client asks for a Session Expiry
/// Interval of `secs` (§3.1.2.11.2: 0 ends it with the connection, 0xFFFFFFFF never), at
/// most `cap` (see `SessionState::expiry`).
fn granted_expiry(secs: u32, cap: Option<Duration>) -> Option<Duration> {
    match (secs, cap) {
        (0, _) => Some(Duration::ZERO),
        (NEVER, None) => None,
        (secs, None) => Some(Duration::from_secs(u64::from(secs))),
        (secs, Some(cap)) => Some(Duration::from_secs(u64::from(secs)).min(cap)),
    }
}

/// The keep-alive an MQTT 5 client is told to use (Server Keep Alive, §3.2.2.3.14): its own
/// when the broker's limits allow it, else the nearest they do. 3.1.1 cannot be told, so
/// there an out-of-range keep-alive is refused instead (see `connect::validate`).
fn server_keep_alive(asked: u16, ctx: &Context) -> u16 {
    let l = &ctx.config.limits;
    if asked == 0 {
        return if l.allow_zero_keep_alive {
            0
        } else {
            l.max_keep_alive
        };
    }
    asked.clamp(l.min_keep_alive.max(1), l.max_keep_alive.max(1))
}

/// The checks of an MQTT 5 PUBLISH that need the connection: its topic alias is resolved
/// (the topic is filled in, or the alias recorded) and the Receive Maximum counted.
pub(super) fn inbound_publish(
    p: &mut Publish,
    v5: &mut V5,
    session: &Session,
    ctx: &Context,
) -> Result<(), CloseReason> {
    let props = p.properties.values_or_empty();
    if !props.subscription_identifiers.is_empty() {
        return Err(violation(
            ReasonCode::ProtocolError,
            "a client's PUBLISH carries a Subscription Identifier [MQTT-3.3.4-6]",
        ));
    }
    if props
        .response_topic
        .as_deref()
        .is_some_and(|t| t.contains(['+', '#']))
    {
        return Err(violation(
            ReasonCode::ProtocolError,
            "Response Topic has a wildcard [MQTT-3.3.2-14]",
        ));
    }
    if let Some(alias) = props.topic_alias {
        let max = ctx.config.limits.topic_alias_maximum;
        // Alias 0 never gets here: the decoder refuses it (0x94 all the same).
        let slot = match alias.checked_sub(1) {
            Some(slot) if alias <= max => usize::from(slot),
            _ => {
                return Err(violation(
                    ReasonCode::TopicAliasInvalid,
                    "Topic Alias above the Topic Alias Maximum [MQTT-3.2.2-17]",
                ))
            }
        };
        if p.topic.is_empty() {
            match v5.aliases_in.get(slot).and_then(Option::as_ref) {
                Some(topic) => p.topic.clone_from(topic),
                None => {
                    return Err(violation(
                        ReasonCode::ProtocolError,
                        "Topic Alias not set up on this connection (§3.3.2.3.4)",
                    ))
                }
            }
        } else {
            if v5.aliases_in.len() <= slot {
                v5.aliases_in.resize(slot + 1, None);
            }
            v5.aliases_in[slot] = Some(p.topic.clone());
        }
    } else if p.topic.is_empty() {
        return Err(violation(
            ReasonCode::ProtocolError,
            "empty topic name without a Topic Alias [MQTT-3.3.2-1]",
        ));
    }
    if p.qos != QoS::AtMostOnce {
        // A re-sent QoS 2 PUBLISH whose PUBREL has not come is already counted.
        let (resent, awaiting_rel) = {
            let st = session.lock();
            let resent = p.qos == QoS::ExactlyOnce && st.is_receiving_qos2(p.pkid);
            (resent, st.receiving_qos2())
        };
        if !resent {
            let used = usize::from(v5.unacked_in) + awaiting_rel;
            if used >= usize::from(ctx.config.limits.receive_maximum) {
                return Err(violation(
                    ReasonCode::ReceiveMaximumExceeded,
                    "more unacknowledged QoS 1/2 PUBLISH packets than Receive Maximum [MQTT-3.3.4-7]",
                ));
            }
            v5.unacked_in = v5.unacked_in.saturating_add(1);
        }
    }
    Ok(())
}

/// A PUBLISH above `limits.max_qos` is a protocol violation at every level (MQTT 5 clients
/// were told the maximum [MQTT-3.2.2-11]; Mosquitto disconnects 3.1.1 ones alike), and so is
/// a retained one at MQTT 5 while retain is off [MQTT-3.2.2-14]. A 3.1.1 client's retained
/// message is then delivered and not stored, as before MQTT 5 existed here.
pub(super) fn check_publish_capabilities(
    p: &Publish,
    level: ProtocolLevel,
    ctx: &Context,
) -> Result<(), CloseReason> {
    if p.qos as u8 > ctx.config.limits.max_qos {
        return Err(violation(
            ReasonCode::QoSNotSupported,
            "PUBLISH above the Maximum QoS [MQTT-3.2.2-11]",
        ));
    }
    if p.retain && level.is_v5() && !ctx.config.retain.enabled {
        return Err(violation(
            ReasonCode::RetainNotSupported,
            "retained PUBLISH while Retain Available is 0 [MQTT-3.2.2-14]",
        ));
    }
    Ok(())
}

/// The message a PUBLISH carries: its properties as they travel to subscribers (no Topic
/// Alias, no Subscription Identifier [MQTT-3.3.4-6], the expiry as an instant).
pub(super) fn message_of(p: Publish, now: Instant) -> Message {
    let mut msg = Message::new(p.topic, p.payload, p.qos, p.retain);
    if let Some(mut props) = p.properties.into_values() {
        msg.expires = Message::expiry_from(props.message_expiry_interval.take(), now);
        props.topic_alias = None;
        props.subscription_identifiers.clear();
        msg.properties = props.into();
    }
    msg
}

/// Whether an MQTT 5 payload contradicts its Payload Format Indicator (1: UTF-8 text);
/// the broker checks, as Mosquitto does, and answers 0x99 (§3.3.2.3.2).
pub(super) fn payload_format_invalid(msg: &Message) -> bool {
    msg.properties.values().is_some_and(|v| {
        v.payload_format_indicator == Some(crate::codec::PayloadFormat::Utf8)
            && std::str::from_utf8(&msg.payload).is_err()
    })
}

/// A client's DISCONNECT: how the connection ends, and its new Session Expiry Interval
/// applied to `session` (MQTT 5.0 §3.14.2.2.2).
pub(super) fn client_disconnect(
    d: &Disconnect,
    v5: Option<&V5>,
    session: &Arc<Session>,
    ctx: &Context,
) -> CloseReason {
    let Some(v5) = v5 else {
        return CloseReason::ClientDisconnect;
    };
    if let Some(secs) = d
        .properties
        .values()
        .and_then(|v| v.session_expiry_interval)
    {
        if v5.expiry_was_zero && secs != 0 {
            return violation(
                ReasonCode::ProtocolError,
                "DISCONNECT sets a Session Expiry Interval after CONNECT set 0 [MQTT-3.14.2-2]",
            );
        }
        session
            .lock()
            .set_expiry(granted_expiry(secs, expiry_cap(ctx)));
    }
    if d.reason == ReasonCode::DisconnectWithWillMessage {
        CloseReason::ClientDisconnectWithWill
    } else {
        CloseReason::ClientDisconnect
    }
}

/// The reason code of the DISCONNECT the broker sends an MQTT 5 client as it closes the
/// connection for `reason` (§3.14.2.1); `None` when the client ended it, or the socket is
/// gone.
pub(super) fn server_disconnect(reason: &CloseReason, level: ProtocolLevel) -> Option<ReasonCode> {
    if !level.is_v5() {
        return None;
    }
    Some(match reason {
        // A CONNECT of another level after the first is a second CONNECT: a protocol error
        // (0x84 exists only in CONNACK).
        CloseReason::Malformed(e) => match e.reason_code() {
            ReasonCode::UnsupportedProtocolVersion => ReasonCode::ProtocolError,
            code => code,
        },
        CloseReason::Protocol(_) => ReasonCode::ProtocolError,
        CloseReason::Violation { code, .. } => *code,
        CloseReason::KeepAliveTimeout => ReasonCode::KeepAliveTimeout,
        CloseReason::TakenOver => ReasonCode::SessionTakenOver,
        CloseReason::SlowConsumer => ReasonCode::QuotaExceeded,
        CloseReason::Shutdown => ReasonCode::ServerShuttingDown,
        CloseReason::Kicked => ReasonCode::AdministrativeAction,
        CloseReason::ClientDisconnect
        | CloseReason::ClientDisconnectWithWill
        | CloseReason::PeerClosed
        | CloseReason::Io(_)
        | CloseReason::ConnectTimeout
        | CloseReason::ConnectRefused(_) => return None,
    })
}

fn violation(code: ReasonCode, rule: &'static str) -> CloseReason {
    CloseReason::Violation { code, rule }
}
