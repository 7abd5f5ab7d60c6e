//! Certificates generated at test time (rcgen): CAs, server and client certificates in
//! PEM files under a fresh temporary directory, and TLS client connections with them.
// Each test binary uses its own subset; `pub` marks what the tests may use.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// A fresh directory for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "midge-test-{}-{name}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A certificate authority that signs server and client certificates.
pub struct Ca {
    cert: Certificate,
    key: KeyPair,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// Writes the CA certificate to `path`.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.cert.pem()).unwrap();
        path.to_path_buf()
    }

    /// A server certificate for `localhost` and 127.0.0.1, written to `dir/name.{pem,key}`.
    pub fn server(&self, dir: &Path, name: &str) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, dir, name)
    }

    /// A client certificate with subject `O=Midge Tests, CN=common_name`.
    pub fn client(&self, dir: &Path, name: &str, common_name: &str) -> Issued {
        self.issue(client_params(common_name), dir, name)
    }

    /// A client certificate that expired in 2021.
    pub fn expired_client(&self, dir: &Path, name: &str, common_name: &str) -> Issued {
        let mut params = client_params(common_name);
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        self.issue(params, dir, name)
    }

    fn issue(&self, params: CertificateParams, dir: &Path, name: &str) -> Issued {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let issued = Issued {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

fn client_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Midge Tests");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// How a test TLS client connects.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    /// The CA file it trusts.
    pub ca: PathBuf,
    /// Its own certificate, if any.
    pub identity: Option<Issued>,
    /// Only TLS 1.2 (else 1.2 and 1.3).
    pub tls12_only: bool,
    /// ALPN protocols offered.
    pub alpn: Vec<Vec<u8>>,
}

impl ClientTls {
    pub fn trusting(ca: &Path) -> ClientTls {
        ClientTls {
            ca: ca.to_path_buf(),
            ..ClientTls::default()
        }
    }

    pub fn with_identity(mut self, identity: &Issued) -> ClientTls {
        self.identity = Some(identity.clone());
        self
    }

    pub fn config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&self.ca).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some(identity) => {
                let chain = CertificateDer::pem_file_iter(&identity.cert)
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = PrivateKeyDer::from_pem_file(&identity.key).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Arc::new(config)
    }

    /// A TLS connection to `addr` for `localhost`; the handshake's error if it fails.
    pub async fn connect(
        &self,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let connector = TlsConnector::from(self.config());
        let name = ServerName::try_from("localhost").unwrap();
        connector.connect(name, tcp).await
    }
}
