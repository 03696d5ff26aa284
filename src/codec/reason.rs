//! Reason codes: why an acknowledgement or a disconnect says what it says.
//!
//! Owns [`ReasonCode`], every code of the MQTT 5.0 table (§2.4, table 2-6), and
//! [`ConnectReturnCode`], the six CONNACK return codes of 3.1.1 (§3.2.2.3, table 3.1) with
//! the mapping between the two. The packet model speaks MQTT 5 reason codes at every level;
//! at 3.1 and 3.1.1 the encoder writes what those revisions can say (a SUBACK failure is
//! 0x80, a CONNACK refusal one of return codes 1–5) and leaves out what they cannot (the
//! reason of a PUBACK, an UNSUBACK or a DISCONNECT).

use super::packet::QoS;

/// Declares [`ReasonCode`] and its byte table from one list, so the two cannot disagree.
macro_rules! reason_codes {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        /// An MQTT 5.0 reason code (§2.4, table 2-6): below 0x80 success, from 0x80 failure.
        ///
        /// 0x00 has three names in the table: [`ReasonCode::Success`], and the associated
        /// constants [`ReasonCode::NormalDisconnection`] and [`ReasonCode::GrantedQoS0`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum ReasonCode {
            $($(#[$doc])* $name = $value,)*
        }

        impl ReasonCode {
            /// Every reason code, in the order of table 2-6.
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$name,)*];

            /// Parses a reason code byte; `None` for the values table 2-6 leaves undefined.
            pub const fn from_u8(v: u8) -> Option<ReasonCode> {
                match v {
                    $($value => Some(ReasonCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

reason_codes! {
    /// 0x00: success (CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK, AUTH).
    Success = 0x00,
    /// SUBACK: the subscription was granted at QoS 1.
    GrantedQoS1 = 0x01,
    /// SUBACK: the subscription was granted at QoS 2.
    GrantedQoS2 = 0x02,
    /// DISCONNECT: close, but publish the will.
    DisconnectWithWillMessage = 0x04,
    /// PUBACK, PUBREC: accepted, but no subscriber matched.
    NoMatchingSubscribers = 0x10,
    /// UNSUBACK: there was no such subscription.
    NoSubscriptionExisted = 0x11,
    /// AUTH: continue the authentication exchange.
    ContinueAuthentication = 0x18,
    /// AUTH: start a re-authentication.
    ReAuthenticate = 0x19,
    /// Failure with no more specific code.
    UnspecifiedError = 0x80,
    /// CONNACK, DISCONNECT: the packet could not be parsed.
    MalformedPacket = 0x81,
    /// CONNACK, DISCONNECT: a well-formed packet broke the protocol.
    ProtocolError = 0x82,
    /// Valid, but refused by this implementation.
    ImplementationSpecificError = 0x83,
    /// CONNACK: the protocol level is not supported.
    UnsupportedProtocolVersion = 0x84,
    /// CONNACK: the client identifier is well-formed but not allowed.
    ClientIdentifierNotValid = 0x85,
    /// CONNACK: the user name or password was refused.
    BadUserNameOrPassword = 0x86,
    /// Not authorized.
    NotAuthorized = 0x87,
    /// CONNACK: the server is not available.
    ServerUnavailable = 0x88,
    /// CONNACK, DISCONNECT: the server is busy.
    ServerBusy = 0x89,
    /// CONNACK: this client is banned.
    Banned = 0x8A,
    /// DISCONNECT: the server is shutting down.
    ServerShuttingDown = 0x8B,
    /// CONNACK, DISCONNECT: the authentication method is not supported.
    BadAuthenticationMethod = 0x8C,
    /// DISCONNECT: nothing arrived within 1.5 × the keep-alive.
    KeepAliveTimeout = 0x8D,
    /// DISCONNECT: another connection took the session over.
    SessionTakenOver = 0x8E,
    /// SUBACK, UNSUBACK, DISCONNECT: the topic filter is well-formed but not accepted.
    TopicFilterInvalid = 0x8F,
    /// The topic name is well-formed but not accepted.
    TopicNameInvalid = 0x90,
    /// The packet identifier is already in use.
    PacketIdentifierInUse = 0x91,
    /// PUBREL, PUBCOMP: the packet identifier is not known.
    PacketIdentifierNotFound = 0x92,
    /// DISCONNECT: more QoS > 0 publications in flight than Receive Maximum allows.
    ReceiveMaximumExceeded = 0x93,
    /// DISCONNECT: the topic alias is 0 or above Topic Alias Maximum.
    TopicAliasInvalid = 0x94,
    /// CONNACK, DISCONNECT: the packet exceeds the maximum packet size.
    PacketTooLarge = 0x95,
    /// DISCONNECT: the data rate is too high.
    MessageRateTooHigh = 0x96,
    /// An implementation or administrative quota was exceeded.
    QuotaExceeded = 0x97,
    /// DISCONNECT: closed by an administrative action.
    AdministrativeAction = 0x98,
    /// The payload does not match the payload format indicator.
    PayloadFormatInvalid = 0x99,
    /// CONNACK, DISCONNECT: retained messages are not supported.
    RetainNotSupported = 0x9A,
    /// CONNACK, DISCONNECT: the QoS is above Maximum QoS.
    QoSNotSupported = 0x9B,
    /// CONNACK, DISCONNECT: the client should use another server for now.
    UseAnotherServer = 0x9C,
    /// CONNACK, DISCONNECT: the client should use another server from now on.
    ServerMoved = 0x9D,
    /// SUBACK, DISCONNECT: shared subscriptions are not supported.
    SharedSubscriptionsNotSupported = 0x9E,
    /// CONNACK, DISCONNECT: connections from this client come too fast.
    ConnectionRateExceeded = 0x9F,
    /// DISCONNECT: the connection's authorised time is over.
    MaximumConnectTime = 0xA0,
    /// SUBACK, DISCONNECT: subscription identifiers are not supported.
    SubscriptionIdentifiersNotSupported = 0xA1,
    /// SUBACK, DISCONNECT: wildcard subscriptions are not supported.
    WildcardSubscriptionsNotSupported = 0xA2,
}

// Table 2-6 names 0x00 differently per packet; these keep the call sites in its words.
#[allow(non_upper_case_globals)]
impl ReasonCode {
    /// DISCONNECT 0x00: close without publishing the will.
    pub const NormalDisconnection: ReasonCode = ReasonCode::Success;
    /// SUBACK 0x00: the subscription was granted at QoS 0.
    pub const GrantedQoS0: ReasonCode = ReasonCode::Success;
}

impl ReasonCode {
    /// The wire byte.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }

    /// Whether this code reports a failure: 0x80 and above (§2.4).
    pub const fn is_error(self) -> bool {
        self.to_u8() >= 0x80
    }

    /// The SUBACK code granting `qos`: 0x00, 0x01 or 0x02 (§3.9.3).
    pub const fn granted(qos: QoS) -> ReasonCode {
        match qos {
            QoS::AtMostOnce => ReasonCode::GrantedQoS0,
            QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        }
    }

    /// The QoS a SUBACK code grants; `None` for anything but 0x00, 0x01 and 0x02.
    pub const fn granted_qos(self) -> Option<QoS> {
        match self {
            ReasonCode::GrantedQoS0 => Some(QoS::AtMostOnce),
            ReasonCode::GrantedQoS1 => Some(QoS::AtLeastOnce),
            ReasonCode::GrantedQoS2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

impl Default for ReasonCode {
    /// 0x00: success, normal disconnection, granted QoS 0.
    fn default() -> ReasonCode {
        ReasonCode::Success
    }
}

/// A CONNACK return code of MQTT 3.1.1 and 3.1 (§3.2.2.3, table 3.1): the wire form of a
/// CONNACK [`ReasonCode`] at those levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectReturnCode {
    Accepted = 0,
    UnacceptableProtocolVersion = 1,
    IdentifierRejected = 2,
    ServerUnavailable = 3,
    BadUsernameOrPassword = 4,
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// Parses a return code byte; 6–255 are reserved.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Accepted,
            1 => Self::UnacceptableProtocolVersion,
            2 => Self::IdentifierRejected,
            3 => Self::ServerUnavailable,
            4 => Self::BadUsernameOrPassword,
            5 => Self::NotAuthorized,
            _ => return None,
        })
    }

    /// The 3.1.1 return code that says what `reason` says, as closely as 3.1.1 can.
    ///
    /// Each of the five MQTT 5 codes the return codes became maps back to it; a refusal
    /// 3.1.1 has no word for maps to the nearest one (a refused authentication method to
    /// 4, a ban to 5) and otherwise to 3, "server unavailable": only [`ReasonCode::Success`]
    /// accepts a connection, so no other code may map to 0.
    pub fn from_reason(reason: ReasonCode) -> ConnectReturnCode {
        match reason {
            ReasonCode::Success => Self::Accepted,
            ReasonCode::UnsupportedProtocolVersion => Self::UnacceptableProtocolVersion,
            ReasonCode::ClientIdentifierNotValid => Self::IdentifierRejected,
            ReasonCode::BadUserNameOrPassword | ReasonCode::BadAuthenticationMethod => {
                Self::BadUsernameOrPassword
            }
            ReasonCode::NotAuthorized | ReasonCode::Banned => Self::NotAuthorized,
            _ => Self::ServerUnavailable,
        }
    }
}

impl From<ConnectReturnCode> for ReasonCode {
    /// The MQTT 5 CONNACK code that means what each 3.1.1 return code means (MQTT 5.0
    /// §3.2.2.2, table 3-1).
    fn from(code: ConnectReturnCode) -> ReasonCode {
        match code {
            ConnectReturnCode::Accepted => ReasonCode::Success,
            ConnectReturnCode::UnacceptableProtocolVersion => {
                ReasonCode::UnsupportedProtocolVersion
            }
            ConnectReturnCode::IdentifierRejected => ReasonCode::ClientIdentifierNotValid,
            ConnectReturnCode::ServerUnavailable => ReasonCode::ServerUnavailable,
            ConnectReturnCode::BadUsernameOrPassword => ReasonCode::BadUserNameOrPassword,
            ConnectReturnCode::NotAuthorized => ReasonCode::NotAuthorized,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_or_is_unknown() {
        assert_eq!(
            ReasonCode::ALL.len(),
            43,
            "table 2-6 has 43 distinct values"
        );
        let mut known = 0;
        for v in 0..=u8::MAX {
            if let Some(code) = ReasonCode::from_u8(v) {
                known += 1;
                assert_eq!(code.to_u8(), v);
                assert!(ReasonCode::ALL.contains(&code));
                assert_eq!(code.is_error(), v >= 0x80, "{code:?}");
            }
        }
        assert_eq!(known, ReasonCode::ALL.len());
        // Spot checks against table 2-6.
        assert_eq!(ReasonCode::NormalDisconnection.to_u8(), 0x00);
        assert_eq!(ReasonCode::GrantedQoS0.to_u8(), 0x00);
        assert_eq!(ReasonCode::NoSubscriptionExisted.to_u8(), 0x11);
        assert_eq!(ReasonCode::ServerShuttingDown.to_u8(), 0x8B);
        assert_eq!(ReasonCode::WildcardSubscriptionsNotSupported.to_u8(), 0xA2);
    }

    #[test]
    fn granted_codes_are_the_qos() {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let code = ReasonCode::granted(qos);
            assert_eq!(code.to_u8(), qos as u8);
            assert_eq!(code.granted_qos(), Some(qos));
            assert!(!code.is_error());
        }
        assert_eq!(ReasonCode::UnspecifiedError.granted_qos(), None);
        assert_eq!(ReasonCode::DisconnectWithWillMessage.granted_qos(), None);
    }

    #[test]
    fn connect_return_codes_map_both_ways() {
        for v in 0..=5 {
            let code = ConnectReturnCode::from_u8(v).expect("0-5 are defined");
            assert_eq!(code as u8, v);
            assert_eq!(ConnectReturnCode::from_reason(ReasonCode::from(code)), code);
        }
        assert_eq!(ConnectReturnCode::from_u8(6), None);
        // Only success accepts; every other code is some refusal.
        for &reason in ReasonCode::ALL {
            let code = ConnectReturnCode::from_reason(reason);
            assert_eq!(
                code == ConnectReturnCode::Accepted,
                reason == ReasonCode::Success,
                "{reason:?}"
            );
        }
        assert_eq!(
            ConnectReturnCode::from_reason(ReasonCode::Banned),
            ConnectReturnCode::NotAuthorized
        );
        assert_eq!(
            ConnectReturnCode::from_reason(ReasonCode::ServerBusy),
            ConnectReturnCode::ServerUnavailable
        );
    }
}
