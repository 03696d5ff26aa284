//! TLS for the tests: a test PKI made with rcgen (a CA that signs server, client and cluster
//! node certificates), the files a TLS listener or route needs, and TLS client connections
//! (byte streams, which the raw client [`super::Raw`] runs over as it does over TCP).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::process::write;
use super::WAIT;

/// A CA that signs server, client and cluster node certificates.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate with its key, as PEM and DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("ca key");
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).expect("self-signed CA");
        Ca { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    fn leaf(&self, sans: Vec<String>, cn: &str, usages: Vec<ExtendedKeyUsagePurpose>) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut p = CertificateParams::new(sans).expect("params");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = usages;
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A server certificate for `localhost`.
    pub fn server(&self) -> Leaf {
        self.leaf(
            vec!["localhost".to_owned()],
            "localhost",
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )
    }

    /// A client certificate whose subject CN is `cn`.
    pub fn client(&self, cn: &str) -> Leaf {
        self.leaf(Vec::new(), cn, vec![ExtendedKeyUsagePurpose::ClientAuth])
    }

    /// A cluster node certificate (server and client use, SAN 127.0.0.1) for `node`, written
    /// to `dir` with its key and this CA: (cert, key, ca) paths.
    pub fn node_files(&self, dir: &Path, node: &str) -> (PathBuf, PathBuf, PathBuf) {
        let leaf = self.leaf(
            vec!["127.0.0.1".to_owned()],
            node,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        );
        (
            write(dir, &format!("{node}.crt"), &leaf.cert_pem),
            write(dir, &format!("{node}.key"), &leaf.key_pem),
            write(dir, &format!("{node}-ca.crt"), &self.pem()),
        )
    }
}

/// CA, server certificate and key written to `dir`: (ca, cert, key) paths.
pub fn write_server_files(dir: &Path, ca: &Ca) -> (PathBuf, PathBuf, PathBuf) {
    let server = ca.server();
    (
        write(dir, "ca.crt", &ca.pem()),
        write(dir, "server.crt", &server.cert_pem),
        write(dir, "server.key", &server.key_pem),
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client trusting `server_ca`, presenting `client` if given.
pub fn tls_connector(server_ca: &Ca, client: Option<&Leaf>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(server_ca.der()).expect("root");
    let b = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let cfg = match client {
        None => b.with_no_client_auth(),
        Some(leaf) => b
            .with_client_auth_cert(
                vec![leaf.cert_der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone())),
            )
            .expect("client cert"),
    };
    TlsConnector::from(Arc::new(cfg))
}

/// TCP connect plus TLS handshake to `localhost` at `addr`.
pub async fn tls_connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("name");
    tokio::time::timeout(WAIT, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}
