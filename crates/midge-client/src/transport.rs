//! Transports: how the driver (`eventloop.rs`) gets a byte stream to the server. A
//! connection is built in layers: a TCP socket (direct or through the SOCKS5 proxy of
//! `socks.rs`) or a Unix domain socket; then TLS if [`TlsOptions`] are set; then the
//! WebSocket handshake if a WebSocket path is set (`ws://`, or `wss://` over TLS). The
//! MQTT bytes above are the same on every transport; the state machine never knows.
//!
//! TLS is rustls with the ring provider, as in the broker. WebSocket frames are only
//! byte carriers ([MQTT-6.0.0-2]): packets may span frames, and each write is one
//! binary frame ([MQTT-6.0.0-1]); the adapter is midge-ws's `WsStream`, shared with the
//! broker.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use midge_ws::WsStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::{ClientConfig, WebPkiServerVerifier};
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};

use crate::error::ClientError;

/// The oldest TLS version a connection may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersion {
    /// TLS 1.2 or 1.3 (the default).
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// How to connect over TLS: whom to trust, the client certificate, the versions, ALPN.
///
/// The server's certificate is checked against the CAs of [`TlsOptions::ca_file`],
/// [`TlsOptions::ca_path`] and, with [`TlsOptions::use_os_roots`], the system's store;
/// its name against the server's host name (or [`TlsOptions::server_name`]).
///
/// ```
/// use midge_client::{ConnectOptions, TlsOptions, TlsVersion};
///
/// let options = ConnectOptions::new().server("broker.example:8883").tls(
///     TlsOptions::new()
///         .ca_file("ca.crt")
///         .client_certificate("client.crt", "client.key")
///         .min_version(TlsVersion::Tls13)
///         .alpn("mqtt"),
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM file of CA certificates.
    ca_file: Option<PathBuf>,
    /// Directory whose files hold PEM CA certificates.
    ca_path: Option<PathBuf>,
    /// Whether the system's trust store is added.
    os_roots: bool,
    /// PEM certificate chain and key for mutual TLS.
    client_certificate: Option<(PathBuf, PathBuf)>,
    /// Whether a certificate for another name is accepted (its chain is still checked).
    insecure: bool,
    /// Oldest version offered.
    min_version: Option<TlsVersion>,
    /// ALPN protocols offered.
    alpn: Vec<Vec<u8>>,
    /// The name checked against the certificate, when not the server's host.
    server_name: Option<String>,
}

impl TlsOptions {
    /// No CA yet: add one with [`TlsOptions::ca_file`], [`TlsOptions::ca_path`] or
    /// [`TlsOptions::use_os_roots`].
    pub fn new() -> Self {
        TlsOptions::default()
    }

    /// Trusts the CA certificates of this PEM file.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Trusts the CA certificates of every PEM file in this directory.
    pub fn ca_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_path = Some(path.into());
        self
    }

    /// Trusts the system's CA store too (default `false`).
    pub fn use_os_roots(mut self, enabled: bool) -> Self {
        self.os_roots = enabled;
        self
    }

    /// Presents this certificate chain (PEM) with its private key (PEM) when the server
    /// asks (mutual TLS).
    pub fn client_certificate(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        self.client_certificate = Some((certificate.into(), key.into()));
        self
    }

    /// Accepts a server certificate issued for another name (Mosquitto's `--insecure`).
    /// The chain must still lead to a trusted CA. For tests only: anyone with a
    /// certificate from the same CA can pose as the server.
    pub fn insecure_skip_name_check(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// The oldest TLS version offered (default [`TlsVersion::Tls12`]).
    pub fn min_version(mut self, version: TlsVersion) -> Self {
        self.min_version = Some(version);
        self
    }

    /// Offers this ALPN protocol (may be called more than once, in preference order).
    pub fn alpn(mut self, protocol: impl Into<Vec<u8>>) -> Self {
        self.alpn.push(protocol.into());
        self
    }

    /// Checks the certificate against this name instead of the server's host.
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The rustls configuration; reads the files.
    fn client_config(&self) -> Result<ClientConfig, ClientError> {
        let provider = Arc::new(ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self.min_version {
            Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
            _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let roots = Arc::new(self.roots()?);
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| ClientError::tls(format!("TLS versions: {e}")))?;
        let builder = if self.insecure {
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| ClientError::tls(format!("CA certificates: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyName(inner)))
        } else {
            builder.with_root_certificates(roots)
        };
        let mut config = match &self.client_certificate {
            Some((cert, key)) => {
                let chain = read_certificates(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| file_error(key, "a PEM private key", e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| ClientError::tls(format!("client certificate: {e}")))?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        Ok(config)
    }

    fn roots(&self) -> Result<RootCertStore, ClientError> {
        let mut roots = RootCertStore::empty();
        if let Some(file) = &self.ca_file {
            for certificate in read_certificates(file)? {
                roots
                    .add(certificate)
                    .map_err(|e| ClientError::tls(format!("{}: {e}", file.display())))?;
            }
        }
        if let Some(dir) = &self.ca_path {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| ClientError::tls(format!("{}: {e}", dir.display())))?;
            let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            files.sort();
            for file in files.iter().filter(|f| f.is_file()) {
                // Files that are not PEM certificates are skipped, as OpenSSL does.
                if let Ok(certificates) = read_certificates(file) {
                    roots.add_parsable_certificates(certificates);
                }
            }
        }
        if self.os_roots {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
        if roots.is_empty() {
            return Err(ClientError::tls("no trusted CA certificate"));
        }
        Ok(roots)
    }
}

fn file_error(path: &Path, what: &str, e: rustls::pki_types::pem::Error) -> ClientError {
    let why = match e {
        rustls::pki_types::pem::Error::NoItemsFound => format!("no {what} in it"),
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        other => format!("{other:?}"),
    };
    ClientError::tls(format!("{}: {why}", path.display()))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, "PEM certificate", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, "PEM certificate", e))?;
    if certificates.is_empty() {
        return Err(file_error(
            path,
            "PEM certificate",
            rustls::pki_types::pem::Error::NoItemsFound,
        ));
    }
    Ok(certificates)
}

/// Checks the chain as rustls does but accepts any name (`--insecure`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The host part of `host:port` / `[v6]:port`.
pub(crate) fn host_of(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// What a TLS handshake needs, read from the files before the socket is opened, so
/// that a bad file is reported as such rather than as a network error.
#[derive(Debug)]
pub(crate) struct TlsSetup {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl TlsSetup {
    /// The configuration for a server whose host is `host`.
    pub(crate) fn new(tls: &TlsOptions, host: &str) -> Result<Self, ClientError> {
        let config = Arc::new(tls.client_config()?);
        let name = tls.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(name.to_owned())
            .map_err(|_| ClientError::tls(format!("invalid server name {name:?}")))?;
        Ok(TlsSetup { config, name })
    }
}

/// The TLS handshake over `stream`.
pub(crate) async fn tls_connect(
    stream: Connection,
    setup: TlsSetup,
) -> Result<Connection, ClientError> {
    let stream = TlsConnector::from(setup.config)
        .connect(setup.name, stream)
        .await
        .map_err(ClientError::tls_handshake)?;
    Ok(Connection::Boxed(Box::new(stream)))
}

/// The WebSocket handshake over `stream`: `GET path` with the subprotocol `mqtt`.
/// Frames and messages are limited to `max_message` bytes, so that a server cannot
/// make the client buffer without bound.
pub(crate) async fn ws_connect(
    stream: Connection,
    secure: bool,
    server: &str,
    path: &str,
    max_message: usize,
) -> Result<Connection, ClientError> {
    let scheme = if secure { "wss" } else { "ws" };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let mut request = format!("{scheme}://{server}{path}")
        .into_client_request()
        .map_err(|e| ClientError::websocket(e.to_string()))?;
    request.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static("mqtt"),
    );
    let limits = midge_ws::config(max_message);
    let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(limits))
        .await
        .map_err(|e| ClientError::websocket(e.to_string()))?;
    Ok(Connection::Boxed(Box::new(WsStream::new(ws))))
}

/// A byte stream of any transport.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + std::fmt::Debug> Io for T {}

/// An open connection. Plain TCP stays unboxed so that it splits without a lock.
#[derive(Debug)]
pub(crate) enum Connection {
    Tcp(TcpStream),
    Boxed(Box<dyn Io>),
}

impl Connection {
    /// Read and write halves, to read and write at once.
    pub(crate) fn split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Connection::Tcp(stream) => {
                let (rd, wr) = stream.into_split();
                (ReadHalf::Tcp(rd), WriteHalf::Tcp(wr))
            }
            Connection::Boxed(stream) => {
                let (rd, wr) = tokio::io::split(stream);
                (ReadHalf::Boxed(rd), WriteHalf::Boxed(wr))
            }
        }
    }

    /// Whether written bytes may wait in a buffer until flushed (TLS, WebSocket).
    pub(crate) fn buffers_writes(&self) -> bool {
        matches!(self, Connection::Boxed(_))
    }
}

/// The reading half of a [`Connection`].
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Tcp(OwnedReadHalf),
    Boxed(tokio::io::ReadHalf<Box<dyn Io>>),
}

/// The writing half of a [`Connection`].
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Tcp(OwnedWriteHalf),
    Boxed(tokio::io::WriteHalf<Box<dyn Io>>),
}

/// `AsyncRead` for enums of a `Tcp` and a `Boxed` stream, by delegation.
macro_rules! delegate_read {
    ($($type:ty),*) => {$(
        impl AsyncRead for $type {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_read(cx, buf),
                    Self::Boxed(s) => Pin::new(s).poll_read(cx, buf),
                }
            }
        }
    )*};
}

/// `AsyncWrite` for enums of a `Tcp` and a `Boxed` stream, by delegation.
macro_rules! delegate_write {
    ($($type:ty),*) => {$(
        impl AsyncWrite for $type {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_write(cx, buf),
                    Self::Boxed(s) => Pin::new(s).poll_write(cx, buf),
                }
            }
            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_flush(cx),
                    Self::Boxed(s) => Pin::new(s).poll_flush(cx),
                }
            }
            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    Self::Tcp(s) => Pin::new(s).poll_shutdown(cx),
                    Self::Boxed(s) => Pin::new(s).poll_shutdown(cx),
                }
            }
        }
    )*};
}

delegate_read!(Connection, ReadHalf);
delegate_write!(Connection, WriteHalf);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_the_port_and_brackets() {
        assert_eq!(host_of("broker.example:8883"), "broker.example");
        assert_eq!(host_of("[::1]:8883"), "::1");
        assert_eq!(host_of("127.0.0.1:1883"), "127.0.0.1");
        assert_eq!(host_of("localhost"), "localhost");
    }

    #[test]
    fn a_missing_or_empty_ca_is_a_tls_error() {
        let e = TlsOptions::new().client_config().unwrap_err();
        assert!(e.is_tls() && e.to_string().contains("no trusted CA"), "{e}");
        let dir = std::env::temp_dir().join(format!("midge-client-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let e = TlsOptions::new()
            .ca_file(&empty)
            .client_config()
            .unwrap_err();
        assert!(
            e.is_tls() && e.to_string().contains("no PEM certificate"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
