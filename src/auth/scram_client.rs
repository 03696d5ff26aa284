//! A minimal SCRAM client (RFC 5802 §3, §5.1), for the broker's own tests and integration
//! tests: not part of the broker's supported API (hidden from the docs).
//!
//! Lives in the library rather than `tests/` so the unit tests and the integration tests
//! drive the server with one implementation that shares [`ScramHash`] with it.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use thiserror::Error;

use super::scram::{check_nonce, random_nonce, ScramHash};

/// Largest iteration count the client computes (a hostile server could ask for more).
const MAX_ITERATIONS: u32 = 1_000_000;

/// Why the client refused a server message.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    #[error("the server's nonce does not extend ours")]
    Nonce,
    #[error("the server's signature is wrong")]
    Signature,
}

/// A SCRAM client exchange.
pub struct ScramClient {
    hash: ScramHash,
    password: Vec<u8>,
    nonce: String,
    first_bare: String,
    /// After the client-final: the AuthMessage and ServerKey, to check the server.
    expect: Option<(String, Vec<u8>)>,
}

impl std::fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("first_bare", &self.first_bare)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Starts as `user` (escaped as a saslname) with a random nonce.
    pub fn new(hash: ScramHash, user: &str, password: &[u8]) -> ScramClient {
        ScramClient::with_nonce(hash, user, password, &random_nonce())
    }

    /// Starts with the given nonce (test vectors).
    pub fn with_nonce(hash: ScramHash, user: &str, password: &[u8], nonce: &str) -> ScramClient {
        let user = user.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            password: password.to_vec(),
            nonce: nonce.to_owned(),
            first_bare: format!("n={user},r={nonce}"),
            expect: None,
        }
    }

    /// The client-first-message.
    pub fn first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client-final-message answering `server_first`.
    pub fn finish(&mut self, server_first: &[u8]) -> Result<String, ClientError> {
        let s = std::str::from_utf8(server_first).map_err(|_| ClientError::Malformed("utf-8"))?;
        let mut attrs = s.split(',');
        let mut field = |p: &'static str| {
            attrs
                .next()
                .and_then(|a| a.strip_prefix(p))
                .ok_or(ClientError::Malformed(p))
        };
        let nonce = field("r=")?;
        let salt = B64
            .decode(field("s=")?)
            .map_err(|_| ClientError::Malformed("salt"))?;
        let iterations = field("i=")?
            .parse::<u32>()
            .ok()
            .filter(|i| *i <= MAX_ITERATIONS)
            .and_then(NonZeroU32::new)
            .ok_or(ClientError::Malformed("iterations"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ClientError::Nonce);
        }
        check_nonce(nonce).map_err(|_| ClientError::Nonce)?;
        let h = self.hash;
        let salted = h.salted_password(&self.password, &salt, iterations);
        let client_key = h.hmac(&salted, &[b"Client Key"]);
        let stored_key = h.h(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{s},{without_proof}", self.first_bare);
        let signature = h.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.expect = Some((auth_message, h.hmac(&salted, &[b"Server Key"])));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Checks the server-final-message (`v=`): the server knew the password too.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ClientError> {
        let (auth_message, server_key) = self
            .expect
            .as_ref()
            .ok_or(ClientError::Malformed("no client-final sent"))?;
        let v = std::str::from_utf8(server_final)
            .ok()
            .and_then(|s| s.strip_prefix("v="))
            .and_then(|v| B64.decode(v).ok())
            .ok_or(ClientError::Malformed("v="))?;
        let expected = self.hash.hmac(server_key, &[auth_message.as_bytes()]);
        if bool::from(v.ct_eq(&expected)) {
            Ok(())
        } else {
            Err(ClientError::Signature)
        }
    }
}
