//! TLS for `tls` and `wss` listeners (rustls with the ring provider).
//!
//! Owns loading the PEM certificate chain, key and client CA at startup (every failure names
//! the listener and the file), reloading them (SIGHUP), the server handshake, and reading the
//! subject CN of a verified client certificate for `use_cn_as_username`.
//!
//! The server configuration sits behind an `ArcSwap`: a reload builds a whole new one (chain,
//! key and client CA together, so they always match) and swaps it in; each handshake takes
//! whichever is current when it starts, so established sessions keep the one they began with.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;

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

/// A listener's TLS server configuration; clones share it, so a reload through one is seen
/// by the accept loop holding another.
#[derive(Clone)]
pub struct TlsSetup {
    current: Arc<ArcSwap<ServerConfig>>,
    /// The listener's settings, to read the same files again on reload.
    source: Arc<ListenerConfig>,
    use_cn_as_username: bool,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSetup")
            .field("listener", &self.source.name)
            .field("use_cn_as_username", &self.use_cn_as_username)
            .finish_non_exhaustive()
    }
}

impl TlsSetup {
    /// Reads the listener's certificate, key and optional CA files.
    pub(super) fn load(c: &ListenerConfig) -> Result<TlsSetup, ListenerError> {
        Ok(TlsSetup {
            current: Arc::new(ArcSwap::from_pointee(server_config(c)?)),
            source: Arc::new(c.clone()),
            use_cn_as_username: c.use_cn_as_username,
        })
    }

    /// The acceptor of the current configuration (for the HTTP server, which has no MQTT
    /// username to take).
    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.load_full())
    }

    /// The name of the listener this is for.
    pub fn listener(&self) -> &str {
        &self.source.name
    }

    /// Reads the certificate, key and CA files again and, if they make a usable
    /// configuration, serves new handshakes with it; on error the current one stays.
    pub fn reload(&self) -> Result<(), ListenerError> {
        let fresh = server_config(&self.source)?;
        self.current.store(Arc::new(fresh));
        Ok(())
    }

    /// Runs the server handshake; with `use_cn_as_username`, also returns the verified
    /// client certificate's CN (a certificate without one is refused).
    pub(super) async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, Option<String>), HandshakeError> {
        let acceptor = TlsAcceptor::from(self.current.load_full());
        let tls = acceptor.accept(stream).await?;
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

/// Builds a listener's server configuration from its files.
fn server_config(c: &ListenerConfig) -> Result<ServerConfig, ListenerError> {
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
    builder.with_single_cert(certs, key).map_err(|e| {
        tls_err(format!(
            "cert_file {} and key_file {} do not make a usable pair: {e}",
            cert_path.display(),
            key_path.display()
        ))
    })
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
