//! MQTT 5 enhanced authentication (MQTT 5.0 §4.12): the pluggable, pure model of an
//! authentication method and the registry of the methods this broker serves.
//!
//! Owns [`AuthMethod`] (one method, e.g. `SCRAM-SHA-512`), [`AuthExchange`] (one exchange in
//! progress), [`Step`] (what to answer next) and [`EnhancedAuth`] (name → method). Nothing
//! here does I/O or awaits: the connection layer drives an exchange packet by packet.
//!
//! How the connection layer drives it (§4.12):
//! - CONNECT with Authentication Method (0x15) `m`: `enhanced.method(m)`; `None` → CONNACK
//!   0x8C (Bad authentication method). Otherwise `method.start(client_id, data)` with the
//!   CONNECT's Authentication Data (0x16).
//! - [`Step::Continue`]: send AUTH 0x18 with `data` and method `m`; keep `state`; on the
//!   client's AUTH 0x18 (same method, else protocol error) call `state.next(data)`.
//! - [`Step::Success`]: CONNACK 0x00 with `data` as its Authentication Data (when `Some`).
//! - [`Step::Failure`]: CONNACK with that reason code (0x87 Not authorized, ...).
//! - Re-authentication (§4.12.1): the client's AUTH 0x19 with the same method starts a new
//!   exchange with `method.start(client_id, data)`; `Continue` → AUTH 0x18 as above;
//!   `Success` → AUTH 0x00 with `data`; `Failure` → DISCONNECT with the reason code.

use std::fmt::Debug;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::ReasonCode;

/// What the server answers next in an exchange.
#[derive(Debug)]
pub enum Step {
    /// Send AUTH 0x18 (Continue authentication) with `data`; the client's next AUTH goes
    /// to `state`.
    Continue {
        data: Bytes,
        state: Box<dyn AuthExchange>,
    },
    /// Authenticated as `username`: CONNACK 0x00 (or AUTH 0x00 when re-authenticating),
    /// carrying `data` as Authentication Data when `Some`.
    Success {
        data: Option<Bytes>,
        username: Arc<str>,
    },
    /// Refused: CONNACK (or DISCONNECT when re-authenticating) with this reason code.
    Failure(ReasonCode),
}

/// One exchange in progress: consumed by each step, so a finished exchange cannot be
/// driven again.
pub trait AuthExchange: Send + Debug {
    /// The client's next Authentication Data (from AUTH 0x18).
    fn next(self: Box<Self>, data: Option<&[u8]>) -> Step;
}

/// One authentication method, served under [`AuthMethod::name`].
pub trait AuthMethod: Send + Sync + Debug {
    /// The Authentication Method (0x15) string, e.g. `SCRAM-SHA-512`.
    fn name(&self) -> &str;
    /// Starts an exchange with the CONNECT's (or AUTH 0x19's) Authentication Data.
    fn start(&self, client_id: &str, data: Option<&[u8]>) -> Step;
}

/// The enhanced authentication methods this broker serves; empty when none is configured.
#[derive(Debug, Default, Clone)]
pub struct EnhancedAuth {
    methods: Vec<Arc<dyn AuthMethod>>,
}

impl EnhancedAuth {
    /// No method: every CONNECT with an Authentication Method gets CONNACK 0x8C.
    pub fn none() -> EnhancedAuth {
        EnhancedAuth::default()
    }

    /// Serves `methods`; a later method with the same name as an earlier one is ignored.
    pub fn new(methods: impl IntoIterator<Item = Arc<dyn AuthMethod>>) -> EnhancedAuth {
        let mut out: Vec<Arc<dyn AuthMethod>> = Vec::new();
        for m in methods {
            if !out.iter().any(|o| o.name() == m.name()) {
                out.push(m);
            }
        }
        EnhancedAuth { methods: out }
    }

    /// The method served as `name` (compared exactly, as §3.1.2.11.9 gives no folding).
    pub fn method(&self, name: &str) -> Option<&dyn AuthMethod> {
        self.methods
            .iter()
            .find(|m| m.name() == name)
            .map(|m| m.as_ref())
    }

    /// The names served, in configuration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.methods.iter().map(|m| m.name())
    }

    /// Whether no method is served.
    pub fn is_empty(&self) -> bool {
        self.methods.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Accepts the data "ok" at once, or "more" then "ok".
    #[derive(Debug)]
    struct Echo;
    #[derive(Debug)]
    struct EchoMore;

    impl AuthExchange for EchoMore {
        fn next(self: Box<Self>, data: Option<&[u8]>) -> Step {
            Echo.start("", data)
        }
    }

    impl AuthMethod for Echo {
        fn name(&self) -> &str {
            "ECHO"
        }
        fn start(&self, _client_id: &str, data: Option<&[u8]>) -> Step {
            match data {
                Some(b"ok") => Step::Success {
                    data: None,
                    username: "u".into(),
                },
                Some(b"more") => Step::Continue {
                    data: Bytes::from_static(b"go on"),
                    state: Box::new(EchoMore),
                },
                _ => Step::Failure(ReasonCode::NotAuthorized),
            }
        }
    }

    #[test]
    fn registry_finds_methods_by_exact_name_and_drives_steps() {
        let e = EnhancedAuth::new([Arc::new(Echo) as Arc<dyn AuthMethod>, Arc::new(Echo)]);
        assert_eq!(e.names().collect::<Vec<_>>(), ["ECHO"]);
        assert!(e.method("echo").is_none());
        assert!(EnhancedAuth::none().method("ECHO").is_none());
        let m = e.method("ECHO").expect("served");
        let Step::Continue { data, state } = m.start("c", Some(b"more")) else {
            panic!("continue expected")
        };
        assert_eq!(&data[..], b"go on");
        assert!(matches!(state.next(Some(b"ok")), Step::Success { .. }));
        assert!(matches!(
            m.start("c", None),
            Step::Failure(ReasonCode::NotAuthorized)
        ));
    }
}
