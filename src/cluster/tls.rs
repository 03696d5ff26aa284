//! Mutual TLS on routes (rustls, ring provider): every node presents its certificate and
//! verifies the peer's against the cluster CA, in both directions.
//!
//! The dialling side checks the peer's certificate against the host of the address it dialled
//! (an IP address SAN for `127.0.0.1:7883`, a DNS SAN for `node2.example:7883`), as any TLS
//! client does; the accepting side requires a client certificate from the same CA.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::ClusterError;
use crate::config::ClusterConfig;

/// Both halves of route TLS; clones share them, so a reload is seen by every holder.
#[derive(Clone)]
pub struct RouteTls {
    current: Arc<ArcSwap<Halves>>,
    files: Arc<Files>,
}

/// The server and client configurations built from one reading of the files.
struct Halves {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

/// `cluster.tls_cert_file`, `tls_key_file` and `tls_ca_file`.
struct Files {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

impl std::fmt::Debug for RouteTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTls").finish_non_exhaustive()
    }
}

fn file_err(key: &'static str, path: &Path, reason: impl std::fmt::Display) -> ClusterError {
    ClusterError::Tls {
        key,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ClusterError> {
    let bytes =
        std::fs::read(path).map_err(|e| file_err(key, path, format!("cannot read: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(key, path, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(key, path, "no PEM certificate found"));
    }
    Ok(certs)
}

impl RouteTls {
    /// Loads `cluster.tls_cert_file`, `tls_key_file` and `tls_ca_file`; `None` when unset.
    pub fn load(cfg: &ClusterConfig) -> Result<Option<RouteTls>, ClusterError> {
        let (Some(cert), Some(key), Some(ca)) =
            (&cfg.tls_cert_file, &cfg.tls_key_file, &cfg.tls_ca_file)
        else {
            return Ok(None);
        };
        let files = Files {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        };
        Ok(Some(RouteTls {
            current: Arc::new(ArcSwap::from_pointee(halves(&files)?)),
            files: Arc::new(files),
        }))
    }

    /// Reads the three files again and, if they make usable configurations, uses them for
    /// every route handshake from now on; on error the current ones stay.
    pub fn reload(&self) -> Result<(), ClusterError> {
        let fresh = halves(&self.files)?;
        self.current.store(Arc::new(fresh));
        Ok(())
    }

    /// The accepting side of a route handshake.
    pub async fn accept(
        &self,
        s: TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<TcpStream>> {
        let server = self.current.load().server.clone();
        TlsAcceptor::from(server).accept(s).await
    }

    /// The dialling side; `addr` is the `host:port` that was dialled.
    pub async fn connect(
        &self,
        addr: &str,
        s: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let host = addr
            .rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{host}: {e}"))
        })?;
        let client = self.current.load().client.clone();
        TlsConnector::from(client).connect(name, s).await
    }
}

/// Builds both halves from the files.
fn halves(files: &Files) -> Result<Halves, ClusterError> {
    let (cert_path, key_path, ca_path) = (&files.cert, &files.key, &files.ca);
    let chain = certs("cluster.tls_cert_file", cert_path)?;
    let key_bytes = std::fs::read(key_path).map_err(|e| {
        file_err(
            "cluster.tls_key_file",
            key_path,
            format!("cannot read: {e}"),
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        file_err(
            "cluster.tls_key_file",
            key_path,
            format!("no usable PEM private key: {e}"),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for c in certs("cluster.tls_ca_file", ca_path)? {
        roots.add(c).map_err(|e| {
            file_err(
                "cluster.tls_ca_file",
                ca_path,
                format!("unusable CA certificate: {e}"),
            )
        })?;
    }
    let roots = Arc::new(roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pair_err = |e: rustls::Error| {
        file_err(
            "cluster.tls_cert_file",
            cert_path,
            format!("does not match cluster.tls_key_file: {e}"),
        )
    };

    let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(|e| file_err("cluster.tls_ca_file", ca_path, e))?;
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| file_err("cluster.tls_cert_file", cert_path, e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(pair_err)?;
    let client = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| file_err("cluster.tls_cert_file", cert_path, e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(pair_err)?;
    Ok(Halves {
        server: Arc::new(server),
        client: Arc::new(client),
    })
}
