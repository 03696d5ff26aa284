//! SUBSCRIBE, SUBACK and UNSUBSCRIBE bodies (spec §3.8–3.10) at 3.1 and 3.1.1.
//!
//! Owns the rules of a subscription request and its answer: at least one filter, the
//! reserved bits of the options byte, the SUBACK return codes. Filters are only checked as
//! strings here; where wildcards may go is the topic layer's call (it answers 0x80).

use super::reader::Reader;
use super::RULE_EMPTY_SUBACK;
use crate::codec::error::DecodeError;
use crate::codec::packet::{
    QoS, SubAck, Subscribe, SubscribeFilter, SubscriptionOptions, Unsubscribe,
};
use crate::codec::reason::ReasonCode;

/// SUBSCRIBE (§3.8): packet id, then one or more (filter, requested QoS) pairs.
pub(super) fn decode_subscribe(r: &mut Reader<'_>) -> Result<Subscribe, DecodeError> {
    let pkid = r.pkid()?;
    let mut filters = Vec::new();
    while r.has_more() {
        // Wildcard placement is the topic layer's call: it answers 0x80 for a bad filter
        // rather than dropping the connection.
        let filter = r.topic_filter()?;
        let options = subscription_options(r.u8()?)?;
        filters.push(SubscribeFilter { filter, options });
    }
    // [MQTT-3.8.3-3].
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(Subscribe::new(pkid, filters))
}

/// The requested-QoS byte of a 3.1.1 SUBSCRIBE entry (§3.8.3.1): the QoS, and the 3.1.1
/// meaning of every option MQTT 5 later put in the bits 3.1.1 reserves.
fn subscription_options(byte: u8) -> Result<SubscriptionOptions, DecodeError> {
    // [MQTT-3.8.3-4]: upper 6 bits reserved, QoS 3 malformed.
    if byte & 0xFC != 0 {
        return Err(DecodeError::InvalidSubscribeOptions(byte));
    }
    let qos = QoS::from_u8(byte).ok_or(DecodeError::InvalidQoS)?;
    Ok(SubscriptionOptions::new(qos))
}

/// SUBACK (§3.9): packet id, then one return code per requested filter.
pub(super) fn decode_suback(r: &mut Reader<'_>) -> Result<SubAck, DecodeError> {
    let pkid = r.pkid()?;
    let raw = r.take(r.left())?;
    // A SUBSCRIBE has at least one filter, so its SUBACK has at least one code (§3.9.3).
    if raw.is_empty() {
        return Err(DecodeError::Malformed(RULE_EMPTY_SUBACK));
    }
    let reasons = raw
        .iter()
        .map(|&b| match b {
            // The one failure code of 3.1.1.
            0x80 => Ok(ReasonCode::UnspecifiedError),
            // [MQTT-3.9.3-2]: anything but 0, 1, 2 and 0x80 is reserved.
            _ => QoS::from_u8(b)
                .map(ReasonCode::granted)
                .ok_or(DecodeError::InvalidSubackCode(b)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SubAck::new(pkid, reasons))
}

/// UNSUBSCRIBE (§3.10): packet id, then one or more topic filters.
pub(super) fn decode_unsubscribe(r: &mut Reader<'_>) -> Result<Unsubscribe, DecodeError> {
    let pkid = r.pkid()?;
    let mut filters = Vec::new();
    while r.has_more() {
        filters.push(r.topic_filter()?);
    }
    // [MQTT-3.10.3-2].
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(Unsubscribe::new(pkid, filters))
}
