//! TLS for `tls` and `wss` listeners (rustls with the ring provider).
//!
//! Owns loading the PEM certificate chain, key and client CA at startup (every failure names
//! the listener and the file), the server handshake, and reading the subject CN of a
//! verified client certificate for `use_cn_as_username`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::ListenerError;
use crate::config::ListenerConfig;

/// Why one client's TLS session did not start.
#[derive(Debug, Error)]
pub(super) enum HandshakeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the client certificate has no subject CN (use_cn_as_username)")]
    NoCommonName,
}

/// A listener's TLS server configuration.
#[derive(Clone)]
pub(super) struct TlsSetup {
    acceptor: TlsAcceptor,
    use_cn_as_username: bool,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("use_cn_as_username", &self.use_cn_as_username)
            .finish_non_exhaustive()
    }
}

impl TlsSetup {
    /// Reads the listener's certificate, key and optional CA files.
    pub(super) fn load(c: &ListenerConfig) -> Result<TlsSetup, ListenerError> {
        let tls_err = |reason: String| ListenerError::Tls {
            name: c.name.clone(),
            reason,
        };
        // The config check guarantees both paths on tls/wss listeners.
        let (Some(cert_path), Some(key_path)) = (&c.cert_file, &c.key_file) else {
            return Err(tls_err("cert_file and key_file are required".to_owned()));
        };
        let certs = read_certs(c, "cert_file", cert_path)?;
        let key_bytes = read_file(c, "key_file", key_path)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
            file_err(
                c,
                "key_file",
                key_path,
                format!("no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
            )
        })?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(format!("TLS setup: {e}")))?;
        let builder = match &c.ca_file {
            None => builder.with_no_client_auth(),
            Some(ca_path) => {
                let mut roots = RootCertStore::empty();
                for cert in read_certs(c, "ca_file", ca_path)? {
                    roots.add(cert).map_err(|e| {
                        file_err(
                            c,
                            "ca_file",
                            ca_path,
                            format!("unusable CA certificate: {e}"),
                        )
                    })?;
                }
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if !c.require_client_cert {
                    // A client may still present a certificate; it is verified if it does.
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier
                    .build()
                    .map_err(|e| file_err(c, "ca_file", ca_path, e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(certs, key).map_err(|e| {
            tls_err(format!(
                "cert_file {} and key_file {} do not make a usable pair: {e}",
                cert_path.display(),
                key_path.display()
            ))
        })?;
        Ok(TlsSetup {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            use_cn_as_username: c.use_cn_as_username,
        })
    }

    /// The acceptor alone (for the HTTP server, which has no MQTT username to take).
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        self.acceptor.clone()
    }

    /// Runs the server handshake; with `use_cn_as_username`, also returns the verified
    /// client certificate's CN (a certificate without one is refused).
    pub(super) async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Option<String>), HandshakeError> {
        let tls = self.acceptor.accept(stream).await?;
        if !self.use_cn_as_username {
            return Ok((tls, None));
        }
        let cn = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| common_name(leaf));
        match cn {
            Some(cn) => Ok((tls, Some(cn))),
            None => Err(HandshakeError::NoCommonName),
        }
    }
}

/// The first subject CN of a DER certificate.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str()
        .ok()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn file_err(c: &ListenerConfig, what: &'static str, path: &Path, reason: String) -> ListenerError {
    ListenerError::TlsFile {
        name: c.name.clone(),
        what,
        path: path.to_owned(),
        reason,
    }
}

fn read_file(
    c: &ListenerConfig,
    what: &'static str,
    path: &Path,
) -> Result<Vec<u8>, ListenerError> {
    std::fs::read(path).map_err(|e| file_err(c, what, path, format!("cannot read: {e}")))
}

fn read_certs(
    c: &ListenerConfig,
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ListenerError> {
    let bytes = read_file(c, what, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(c, what, path, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(
            c,
            what,
            path,
            "no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned(),
        ));
    }
    Ok(certs)
}
