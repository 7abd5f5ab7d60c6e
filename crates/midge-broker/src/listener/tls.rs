//! TLS listeners: rustls (ring provider), TLS 1.2 and 1.3.
//!
//! [`TlsServer`] builds a rustls `ServerConfig` from a listener's Mosquitto-named
//! settings (`certfile`, `keyfile`, `cafile`, `capath`, `require_certificate`,
//! `tls_version`) and keeps it behind a swappable handle: [`TlsServer::reload`] (SIGHUP)
//! reads the files again and puts the new configuration in force for new handshakes;
//! established connections keep theirs. A reload that fails keeps the previous one.
//!
//! Handshakes read the ClientHello first: a client that offers ALPN `mqtt` (or, on a
//! WebSocket listener, `http/1.1`) is answered with it; one that offers other protocols
//! only, or none, gets no ALPN rather than a refusal, as Mosquitto (which offers none)
//! accepts it. After the handshake, the client certificate's Common Name or RFC 2253
//! subject becomes the user name where the listener asks for it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{Acceptor, WebPkiClientVerifier};
use tokio_rustls::rustls::{self, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

use super::{CertUsername, StreamBox};
use crate::config::{ListenerConfig, ListenerProtocol, TlsVersion};

/// Why a listener's TLS settings could not be put in force; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file that cannot be read or holds nothing usable.
    #[error("{key} {}: {problem}", path.display())]
    File {
        /// `certfile`, `keyfile`, `cafile` or `capath`.
        key: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// rustls refused the combination (a key that does not match the certificate, …).
    #[error("TLS settings of the listener on {bind}: {problem}")]
    Settings {
        /// The listener.
        bind: String,
        /// rustls' reason.
        problem: String,
    },
}

/// One TLS listener's server configuration, reloadable.
#[derive(Debug)]
pub(crate) struct TlsServer {
    settings: ListenerConfig,
    /// A std `RwLock`: read for the moment it takes to clone the `Arc` (each handshake),
    /// written only by a reload; never held across an await.
    current: RwLock<Arc<ServerConfig>>,
}

impl TlsServer {
    /// Reads the listener's certificate, key and CA files.
    pub(crate) fn load(settings: &ListenerConfig) -> Result<Self, TlsError> {
        Ok(TlsServer {
            current: RwLock::new(Arc::new(server_config(settings)?)),
            settings: settings.clone(),
        })
    }

    /// Reads the files again; on error keeps the configuration in force.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.settings)?);
        *self.current.write().expect("tls lock poisoned") = config;
        Ok(())
    }

    /// The listener's address, for log lines.
    pub(crate) fn bind(&self) -> String {
        self.settings.name()
    }

    /// The server side of a TLS handshake over `stream`, and the user name the client
    /// certificate gives where the listener takes it from there.
    pub(crate) async fn accept<S: StreamBox>(
        &self,
        stream: S,
        listener: &ListenerConfig,
    ) -> io::Result<(TlsStream<S>, CertUsername)> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        let ours: &[u8] = match listener.protocol {
            ListenerProtocol::Mqtt => b"mqtt",
            ListenerProtocol::Websockets => b"http/1.1",
        };
        let offered = start
            .client_hello()
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ours));
        let mut config = self.current.read().expect("tls lock poisoned").clone();
        if offered {
            let mut with_alpn = (*config).clone();
            with_alpn.alpn_protocols = vec![ours.to_vec()];
            config = Arc::new(with_alpn);
        }
        let stream = start.into_stream(config).await?;
        let username = if listener.use_identity_as_username || listener.use_subject_as_username {
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first());
            certificate
                .and_then(|c| certificate_username(c, listener.use_subject_as_username))
                .map_or(CertUsername::Missing, CertUsername::Name)
        } else {
            CertUsername::NotUsed
        };
        Ok((stream, username))
    }
}

fn server_config(settings: &ListenerConfig) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.tls_version {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        Some(TlsVersion::Tls12) | None => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let rustls_error = |e: &dyn std::fmt::Display| TlsError::Settings {
        bind: settings.name(),
        problem: e.to_string(),
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| rustls_error(&e))?;
    let roots = ca_certificates(settings)?;
    let builder = match roots {
        Some(roots) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if settings.require_certificate {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| rustls_error(&e))?)
        }
        None => builder.with_no_client_auth(),
    };
    let certfile = settings.certfile.as_deref().unwrap_or(Path::new(""));
    let keyfile = settings.keyfile.as_deref().unwrap_or(Path::new(""));
    builder
        .with_single_cert(certificates("certfile", certfile)?, private_key(keyfile)?)
        .map_err(|e| rustls_error(&e))
}

/// Every certificate in a PEM file; at least one.
fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |problem: String| TlsError::File {
        key,
        path: path.to_path_buf(),
        problem,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certificates.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certificates)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::File {
        key: "keyfile",
        path: path.to_path_buf(),
        problem: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in it".into(),
            e => e.to_string(),
        },
    })
}

/// The CAs of `cafile` and of every file in `capath`; `None` when neither is set.
fn ca_certificates(settings: &ListenerConfig) -> Result<Option<RootCertStore>, TlsError> {
    if settings.cafile.is_none() && settings.capath.is_none() {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    let mut add = |key: &'static str, path: &Path, certificates: Vec<CertificateDer<'static>>| {
        for certificate in certificates {
            roots.add(certificate).map_err(|e| TlsError::File {
                key,
                path: path.to_path_buf(),
                problem: e.to_string(),
            })?;
        }
        Ok::<_, TlsError>(())
    };
    if let Some(cafile) = &settings.cafile {
        add("cafile", cafile, certificates("cafile", cafile)?)?;
    }
    if let Some(capath) = &settings.capath {
        let bad = |e: io::Error| TlsError::File {
            key: "capath",
            path: capath.clone(),
            problem: e.to_string(),
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(capath)
            .map_err(bad)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(bad)?;
        files.sort();
        for file in files.iter().filter(|f| f.is_file()) {
            // Files that hold no certificate (a README, a CRL) are skipped.
            if let Ok(certificates) = certificates("capath", file) {
                add("capath", file, certificates)?;
            }
        }
    }
    if let (true, Some(capath)) = (roots.is_empty(), &settings.capath) {
        return Err(TlsError::File {
            key: "capath",
            path: capath.clone(),
            problem: "no CA certificate in it".into(),
        });
    }
    Ok(Some(roots))
}

/// The client certificate's Common Name, or (`subject`) its whole subject in RFC 2253
/// form as OpenSSL prints it for Mosquitto's `use_subject_as_username`: the last RDN
/// first, `,` between RDNs, short attribute names.
pub(crate) fn certificate_username(certificate: &[u8], subject: bool) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, certificate) = X509Certificate::from_der(certificate).ok()?;
    let name = certificate.subject();
    if !subject {
        return name
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
    }
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attribute| {
                    let oid = attribute.attr_type();
                    let key = match x509_parser::objects::oid2abbrev(oid, registry) {
                        Ok("Email") => "emailAddress".to_string(),
                        Ok(abbrev) => abbrev.to_string(),
                        Err(_) => oid.to_id_string(),
                    };
                    let value = attribute
                        .as_str()
                        .map(escape_rfc2253)
                        .unwrap_or_else(|_| hex_value(attribute.as_slice()));
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    let subject: Vec<String> = rdns.into_iter().rev().collect();
    Some(subject.join(","))
}

/// RFC 2253 §2.4: `,+"\<>;` escaped with a backslash, as are a leading `#` or space and
/// a trailing space.
fn escape_rfc2253(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && matches!(c, '#' | ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A value that is not a string: `#` and its bytes in hex (RFC 2253 §2.4).
fn hex_value(bytes: &[u8]) -> String {
    let mut out = String::from("#");
    for b in bytes {
        out.push_str(&format!("{b:02X}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_rfc2253;

    #[test]
    fn rfc2253_escapes_specials() {
        assert_eq!(escape_rfc2253("plain"), "plain");
        assert_eq!(escape_rfc2253("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape_rfc2253("#x "), "\\#x\\ ");
        assert_eq!(escape_rfc2253("<\"q\";>"), "\\<\\\"q\\\"\\;\\>");
    }
}
