//! SCRAM (RFC 5802, RFC 7677) server side, as an MQTT 5 enhanced authentication method.
//!
//! Owns the parsing of the client's messages, the server's messages and the proof check.
//! Generic over the hash through [`ScramHash`] (SHA-256 for the RFC 7677 vectors, SHA-512
//! for what is served); every primitive comes from `ring`, comparisons from `subtle`.
//!
//! The broker serves `SCRAM-SHA-512` over the password file: a `$7$` entry's hash is
//! PBKDF2-HMAC-SHA512(password, salt, iterations, 64) — SCRAM-SHA-512's SaltedPassword
//! (RFC 5802 §3) — so the keys derive from it without the plaintext. Decisions:
//! - the GS2 header must be `n,,`: channel binding (`p=`, or `y`) and an authorization
//!   identity (`a=`) are refused (RFC 5802 §5.1, §6);
//! - usernames and passwords are not SASLprepped (RFC 5802 §2.2): the password file holds
//!   names as given, and `$7$` hashes were made over the raw password bytes;
//! - an unknown user, and a `$6$` entry (SHA-512 of password ‖ salt: no SaltedPassword to
//!   derive keys from), get a salt and iteration count derived from the name and a
//!   per-process secret, and fail at the proof like a wrong password (RFC 5802 §9), with
//!   0x87 Not authorized;
//! - every failure, malformed input included, is 0x87; the reason is logged at debug.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use rand::{Rng, RngCore};
use ring::{digest, hmac, pbkdf2};
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::enhanced::{AuthExchange, AuthMethod, Step};
use crate::codec::ReasonCode;

/// Longest client message accepted (either of the two); real ones are ~100–300 bytes.
pub const MAX_MESSAGE: usize = 2048;
/// Longest client nonce accepted.
pub const MAX_NONCE: usize = 256;
/// Length of the server's nonce part, in printable characters.
const SERVER_NONCE_LEN: usize = 24;
/// Salt length and iteration count shown for users that cannot be authenticated (those of
/// `supermq passwd` entries, so they look alike).
const FAKE_SALT_LEN: usize = 12;
const FAKE_ITERATIONS: u32 = super::passwd::ITERATIONS;

/// A hash SCRAM is instantiated with (RFC 5802 §2.2 `H`, `HMAC`, `Hi`).
#[derive(Clone, Copy)]
pub struct ScramHash {
    /// The method name, e.g. `SCRAM-SHA-512`.
    pub name: &'static str,
    digest: &'static digest::Algorithm,
    hmac: &'static hmac::Algorithm,
    pbkdf2: &'static pbkdf2::Algorithm,
}

impl fmt::Debug for ScramHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// SCRAM-SHA-256 (RFC 7677).
pub static SHA256: ScramHash = ScramHash {
    name: "SCRAM-SHA-256",
    digest: &digest::SHA256,
    hmac: &hmac::HMAC_SHA256,
    pbkdf2: &pbkdf2::PBKDF2_HMAC_SHA256,
};

/// SCRAM-SHA-512 (same construction with SHA-512).
pub static SHA512: ScramHash = ScramHash {
    name: "SCRAM-SHA-512",
    digest: &digest::SHA512,
    hmac: &hmac::HMAC_SHA512,
    pbkdf2: &pbkdf2::PBKDF2_HMAC_SHA512,
};

impl ScramHash {
    /// Output length in bytes.
    pub fn output_len(&self) -> usize {
        self.digest.output_len()
    }

    /// `HMAC(key, parts…)`.
    pub(crate) fn hmac(&self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let key = hmac::Key::new(*self.hmac, key);
        let mut ctx = hmac::Context::with_key(&key);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign().as_ref().to_vec()
    }

    /// `H(data)`.
    pub(crate) fn h(&self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.digest, data).as_ref().to_vec()
    }

    /// `Hi(password, salt, i)` = SaltedPassword (RFC 5802 §2.2).
    pub fn salted_password(&self, password: &[u8], salt: &[u8], i: NonZeroU32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        pbkdf2::derive(*self.pbkdf2, i, salt, password, &mut out);
        out
    }
}

/// What a credential store knows about a user, for one hash.
#[derive(Clone)]
pub enum Credential {
    /// SaltedPassword for this hash, with the salt and iteration count that made it.
    Salted {
        salt: Vec<u8>,
        iterations: NonZeroU32,
        salted_password: Vec<u8>,
    },
    /// Listed, but in a form SCRAM cannot use (a `$6$` entry).
    Unsupported,
    /// Not listed.
    Unknown,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SaltedPassword is as good as the password for SCRAM: never printed.
        match self {
            Credential::Salted { iterations, .. } => write!(f, "Salted({iterations} rounds)"),
            Credential::Unsupported => f.write_str("Unsupported"),
            Credential::Unknown => f.write_str("Unknown"),
        }
    }
}

/// Where SCRAM looks users up; asked at each exchange's start, so a reloaded password file
/// is seen by the next exchange.
pub trait CredentialStore: Send + Sync + fmt::Debug {
    fn credential(&self, user: &str) -> Credential;
}

/// Produces the server's nonce part (random; fixed in the RFC vector tests).
type NonceFn = Arc<dyn Fn() -> String + Send + Sync>;

/// Why a SCRAM exchange failed (logged at debug; the client sees 0x87).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("no authentication data")]
    NoData,
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLong,
    #[error("message is not UTF-8")]
    NotUtf8,
    #[error("channel binding is not supported (GS2 header must be \"n,,\")")]
    ChannelBinding,
    #[error("an authorization identity (a=) is not supported")]
    Authzid,
    #[error("mandatory extension (m=) not supported")]
    Extension,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    #[error("nonce is empty, too long, or has a character that is not printable or is ','")]
    BadNonce,
    #[error("the client-final nonce does not extend the server's")]
    NonceMismatch,
    #[error("channel binding data is not \"biws\"")]
    BadBinding,
    #[error("invalid proof")]
    InvalidProof,
}

/// The SCRAM server for one hash over one credential store.
#[derive(Clone)]
pub struct Scram {
    hash: ScramHash,
    store: Arc<dyn CredentialStore>,
    /// Per-process secret behind the fake salts of unknown users (RFC 5802 §9).
    secret: [u8; 32],
    nonce: NonceFn,
}

impl fmt::Debug for Scram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scram")
            .field("method", &self.hash.name)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Scram {
    /// SCRAM with `hash` over `store`, with random server nonces.
    pub fn new(hash: ScramHash, store: Arc<dyn CredentialStore>) -> Scram {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Scram {
            hash,
            store,
            secret,
            nonce: Arc::new(random_nonce),
        }
    }

    /// The same with a fixed server nonce (test vectors only).
    #[doc(hidden)]
    pub fn with_fixed_nonce(mut self, nonce: &str) -> Scram {
        let nonce = nonce.to_owned();
        self.nonce = Arc::new(move || nonce.clone());
        self
    }

    /// Answers a client-first-message with the server-first-message (RFC 5802 §5.1).
    fn first(&self, data: Option<&[u8]>) -> Result<(String, ServerFinal), ScramError> {
        let msg = text(data)?;
        let bare = msg.strip_prefix("n,,").ok_or_else(|| gs2_error(msg))?;
        let mut attrs = bare.split(',');
        let user = match attrs.next() {
            Some(a) if a.starts_with("m=") => return Err(ScramError::Extension),
            Some(a) => a
                .strip_prefix("n=")
                .ok_or(ScramError::Malformed("username (n=) expected"))?,
            None => return Err(ScramError::Malformed("empty message")),
        };
        let user = unescape_name(user)?;
        let client_nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("nonce (r=) expected"))?;
        check_nonce(client_nonce)?;
        // Further attributes are optional extensions (RFC 5802 §5.1): ignored, but part of
        // the AuthMessage the proof covers.
        let (salt, iterations, keys) = self.keys_for(&user);
        let nonce = format!("{client_nonce}{}", (self.nonce)());
        let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        let auth_prefix = format!("{bare},{server_first},");
        Ok((
            server_first,
            ServerFinal {
                hash: self.hash,
                user: user.into(),
                keys,
                nonce,
                auth_prefix,
            },
        ))
    }

    /// Salt, iteration count and keys for `user`; a deterministic fake for users that
    /// cannot authenticate, indistinguishable on the wire (RFC 5802 §9).
    /// The fake keys go through the same derivation and proof check as real ones (the
    /// same work, so the same time), and `known` is false so they never succeed.
    fn keys_for(&self, user: &str) -> (Vec<u8>, NonZeroU32, Keys) {
        let (salt, iterations, salted_password, known) = match self.store.credential(user) {
            Credential::Salted {
                salt,
                iterations,
                salted_password,
            } if salted_password.len() == self.hash.output_len() => {
                (salt, iterations, salted_password, true)
            }
            other => {
                tracing::debug!(user, credential = ?other, "SCRAM for a user without a usable entry");
                let mut salt = self.hash.hmac(&self.secret, &[b"salt\0", user.as_bytes()]);
                salt.truncate(FAKE_SALT_LEN);
                let iterations = NonZeroU32::new(FAKE_ITERATIONS).unwrap_or(NonZeroU32::MIN);
                let fake = self.hash.hmac(&self.secret, &[b"key\0", user.as_bytes()]);
                (salt, iterations, fake, false)
            }
        };
        let client_key = self.hash.hmac(&salted_password, &[b"Client Key"]);
        let keys = Keys {
            stored_key: self.hash.h(&client_key),
            server_key: self.hash.hmac(&salted_password, &[b"Server Key"]),
            known,
        };
        (salt, iterations, keys)
    }
}

impl AuthMethod for Scram {
    fn name(&self) -> &str {
        self.hash.name
    }

    fn start(&self, client_id: &str, data: Option<&[u8]>) -> Step {
        match self.first(data) {
            Ok((server_first, state)) => Step::Continue {
                data: Bytes::from(server_first),
                state: Box::new(state),
            },
            Err(e) => fail(client_id, self.hash.name, &e),
        }
    }
}

/// The keys SCRAM checks a proof with (RFC 5802 §3).
struct Keys {
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    /// False for the fake keys of a user that cannot authenticate.
    known: bool,
}

/// The exchange after the server-first-message: waits for the client-final-message.
struct ServerFinal {
    hash: ScramHash,
    user: Arc<str>,
    keys: Keys,
    /// The combined nonce the client must echo.
    nonce: String,
    /// `client-first-message-bare "," server-first-message ","` of the AuthMessage.
    auth_prefix: String,
}

impl fmt::Debug for ServerFinal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServerFinal")
            .field("method", &self.hash.name)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl ServerFinal {
    /// Checks a client-final-message (RFC 5802 §5.1, §3) and returns the
    /// server-final-message.
    fn check(&self, data: Option<&[u8]>) -> Result<String, ScramError> {
        let msg = text(data)?;
        let (without_proof, proof) = msg
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("proof (p=) expected last"))?;
        let mut attrs = without_proof.split(',');
        let binding = attrs
            .next()
            .and_then(|a| a.strip_prefix("c="))
            .ok_or(ScramError::Malformed("channel binding (c=) expected"))?;
        // base64("n,,"): no channel binding, no authzid.
        if binding != "biws" {
            return Err(ScramError::BadBinding);
        }
        let nonce = attrs
            .next()
            .and_then(|a| a.strip_prefix("r="))
            .ok_or(ScramError::Malformed("nonce (r=) expected"))?;
        if !bool::from(nonce.as_bytes().ct_eq(self.nonce.as_bytes())) {
            return Err(ScramError::NonceMismatch);
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        if proof.len() != self.hash.output_len() {
            return Err(ScramError::Malformed("proof has the wrong length"));
        }
        let auth_message = format!("{}{without_proof}", self.auth_prefix);
        // A fake key set for unknown users keeps the work (and time) the same.
        let Keys {
            stored_key,
            server_key,
            known,
        } = &self.keys;
        let signature = self.hash.hmac(stored_key, &[auth_message.as_bytes()]);
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        let matches = self.hash.h(&client_key).ct_eq(stored_key) & u8::from(*known).ct_eq(&1);
        if !bool::from(matches) {
            return Err(ScramError::InvalidProof);
        }
        let server_signature = self.hash.hmac(server_key, &[auth_message.as_bytes()]);
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

impl AuthExchange for ServerFinal {
    fn next(self: Box<Self>, data: Option<&[u8]>) -> Step {
        match self.check(data) {
            Ok(server_final) => Step::Success {
                data: Some(Bytes::from(server_final)),
                username: self.user.clone(),
            },
            Err(e) => fail(&self.user, self.hash.name, &e),
        }
    }
}

fn fail(who: &str, method: &str, e: &ScramError) -> Step {
    tracing::debug!(who, method, error = %e, "SCRAM authentication failed");
    Step::Failure(ReasonCode::NotAuthorized)
}

/// The data as a bounded UTF-8 message.
fn text(data: Option<&[u8]>) -> Result<&str, ScramError> {
    let data = data.ok_or(ScramError::NoData)?;
    if data.len() > MAX_MESSAGE {
        return Err(ScramError::TooLong);
    }
    std::str::from_utf8(data).map_err(|_| ScramError::NotUtf8)
}

fn gs2_error(msg: &str) -> ScramError {
    if msg.starts_with("p=") || msg.starts_with("y,") {
        ScramError::ChannelBinding
    } else if msg.starts_with("n,a=") {
        ScramError::Authzid
    } else {
        ScramError::Malformed("GS2 header \"n,,\" expected")
    }
}

/// A `saslname` with `=2C` and `=3D` decoded (RFC 5802 §5.1); any other `=` is invalid.
fn unescape_name(s: &str) -> Result<String, ScramError> {
    if s.is_empty() {
        return Err(ScramError::Malformed("empty username"));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3);
        match esc {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(ScramError::Malformed("invalid '=' escape in username")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `printable = %x21-2B / %x2D-7E` (RFC 5802 §7), bounded.
pub(crate) fn check_nonce(n: &str) -> Result<(), ScramError> {
    let ok = !n.is_empty()
        && n.len() <= MAX_NONCE
        && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',');
    if ok {
        Ok(())
    } else {
        Err(ScramError::BadNonce)
    }
}

/// A random printable nonce without ','.
pub(crate) fn random_nonce() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rngs::OsRng;
    (0..SERVER_NONCE_LEN)
        .map(|_| char::from(CHARS[rng.gen_range(0..CHARS.len())]))
        .collect()
}

#[cfg(test)]
#[path = "scram_tests.rs"]
mod tests;
