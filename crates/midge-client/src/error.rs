//! The client's one public error type, [`ClientError`]: an opaque struct queried with
//! `is_*()` methods (STYLE.md rule 6, after hyper's `Error`), so that new failure kinds
//! can be added without breaking callers. The state machine (`state.rs`) and the driver
//! (`eventloop.rs`) build it; `client.rs` hands it to the application.

use std::fmt;
use std::sync::Arc;

use midge_codec::{DecodeError, Disconnect, EncodeError, ReasonCode};

/// An error of the MQTT client.
///
/// Ask what went wrong with the `is_*()` queries and [`ClientError::reason_code`]. The
/// message text (`Display`) is meant for people and logs: it is **not** a stable API and
/// may change in any release.
///
/// Cloning is cheap: one failure (a lost connection) may be reported to many waiting
/// requests at once.
#[derive(Clone)]
pub struct ClientError {
    /// Boxed so that `Result<T, ClientError>` stays one pointer wide.
    inner: Box<Inner>,
}

#[derive(Debug, Clone)]
struct Inner {
    kind: Kind,
    /// The MQTT 5.0 reason code the server sent, where one explains the error.
    reason_code: Option<ReasonCode>,
    /// Free text: what was being done, a reason string from the server, the rule broken.
    detail: Option<String>,
    /// The underlying error, if another layer reported it.
    source: Option<Source>,
    /// The server's DISCONNECT, with its properties (Server Reference, user properties).
    disconnect: Option<Disconnect>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Io,
    Lookup,
    Auth,
    Proxy,
    Tls,
    WebSocket,
    Timeout,
    Refused,
    Rejected,
    ServerDisconnect,
    Protocol,
    ConnectionLost,
    Closed,
    Invalid,
}

/// The errors of other layers that a [`ClientError`] may wrap.
#[derive(Debug, Clone, thiserror::Error)]
enum Source {
    /// `io::Error` is not `Clone`; an `Arc` lets the error be shared.
    #[error(transparent)]
    Io(Arc<std::io::Error>),
    #[error(transparent)]
    Decode(DecodeError),
    #[error(transparent)]
    Encode(EncodeError),
}

impl ClientError {
    fn new(kind: Kind) -> Self {
        ClientError {
            inner: Box::new(Inner {
                kind,
                reason_code: None,
                detail: None,
                source: None,
                disconnect: None,
            }),
        }
    }

    fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.inner.detail = Some(detail.into());
        self
    }

    fn with_reason(mut self, reason: ReasonCode) -> Self {
        self.inner.reason_code = Some(reason);
        self
    }

    pub(crate) fn io(error: std::io::Error) -> Self {
        let mut e = ClientError::new(Kind::Io);
        e.inner.source = Some(Source::Io(Arc::new(error)));
        e
    }

    /// A name (the server's, or the local address to bind to) could not be resolved.
    pub(crate) fn lookup(name: &str, error: std::io::Error) -> Self {
        let mut e = ClientError::new(Kind::Lookup).with_detail(format!("cannot resolve {name}"));
        e.inner.source = Some(Source::Io(Arc::new(error)));
        e
    }

    /// The SOCKS5 proxy refused or failed.
    pub(crate) fn proxy(error: std::io::Error) -> Self {
        let mut e = ClientError::new(Kind::Proxy);
        e.inner.source = Some(Source::Io(Arc::new(error)));
        e
    }

    /// TLS could not be set up: a file, a setting.
    pub(crate) fn tls(detail: impl Into<String>) -> Self {
        ClientError::new(Kind::Tls).with_detail(detail)
    }

    /// The TLS handshake failed (an untrusted or misnamed certificate, no common
    /// version, the server hung up).
    pub(crate) fn tls_handshake(error: std::io::Error) -> Self {
        let mut e = ClientError::new(Kind::Tls).with_detail("handshake failed");
        e.inner.source = Some(Source::Io(Arc::new(error)));
        e
    }

    /// The WebSocket handshake failed.
    pub(crate) fn websocket(detail: impl Into<String>) -> Self {
        ClientError::new(Kind::WebSocket).with_detail(detail)
    }

    /// The application's [`crate::Authenticator`] gave up.
    pub(crate) fn auth(error: crate::auth::AuthError) -> Self {
        ClientError::new(Kind::Auth)
            .with_reason(error.reason_code())
            .with_detail(error.detail())
    }

    pub(crate) fn timeout(what: impl Into<String>) -> Self {
        ClientError::new(Kind::Timeout).with_detail(what)
    }

    /// The server refused the connection in its CONNACK.
    pub(crate) fn refused(reason: ReasonCode, reason_string: Option<&str>) -> Self {
        let e = ClientError::new(Kind::Refused).with_reason(reason);
        match reason_string {
            Some(text) => e.with_detail(text),
            None => e,
        }
    }

    /// The server answered a request with a failure reason code (0x80 and above).
    pub(crate) fn rejected(reason: ReasonCode, reason_string: Option<&str>) -> Self {
        let e = ClientError::new(Kind::Rejected).with_reason(reason);
        match reason_string {
            Some(text) => e.with_detail(text),
            None => e,
        }
    }

    /// The server sent DISCONNECT.
    pub(crate) fn server_disconnect(disconnect: Disconnect) -> Self {
        let mut e = ClientError::new(Kind::ServerDisconnect).with_reason(disconnect.reason_code);
        if let Some(text) = &disconnect.properties.reason_string {
            e = e.with_detail(text.to_string());
        }
        e.inner.disconnect = Some(disconnect);
        e
    }

    /// The server broke a rule of the protocol; `reason` is what a 5.0 client tells it
    /// in its DISCONNECT.
    pub(crate) fn protocol(reason: ReasonCode, rule: impl Into<String>) -> Self {
        ClientError::new(Kind::Protocol)
            .with_reason(reason)
            .with_detail(rule)
    }

    pub(crate) fn decode(error: DecodeError) -> Self {
        let mut e = ClientError::new(Kind::Protocol).with_reason(error.reason_code());
        e.inner.source = Some(Source::Decode(error));
        e
    }

    pub(crate) fn connection_lost(detail: impl Into<String>) -> Self {
        ClientError::new(Kind::ConnectionLost).with_detail(detail)
    }

    pub(crate) fn closed() -> Self {
        ClientError::new(Kind::Closed)
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        ClientError::new(Kind::Invalid).with_detail(detail)
    }

    pub(crate) fn encode(error: EncodeError) -> Self {
        let mut e = ClientError::new(Kind::Invalid);
        e.inner.source = Some(Source::Encode(error));
        e
    }

    /// An I/O error on the socket: connecting, reading or writing.
    pub fn is_io(&self) -> bool {
        self.inner.kind == Kind::Io
    }

    /// The SOCKS5 proxy ([`crate::ConnectOptions::socks5_proxy`]) failed: it refused
    /// the credentials or the connection to the server, or broke the handshake.
    pub fn is_proxy(&self) -> bool {
        self.inner.kind == Kind::Proxy
    }

    /// TLS failed: a certificate or key file could not be read, or the handshake
    /// failed (an untrusted or misnamed server certificate, a refused client
    /// certificate, no common version or ALPN protocol).
    pub fn is_tls(&self) -> bool {
        self.inner.kind == Kind::Tls
    }

    /// The WebSocket handshake failed (wrong path, no `mqtt` subprotocol, not a
    /// WebSocket server).
    pub fn is_websocket(&self) -> bool {
        self.inner.kind == Kind::WebSocket
    }

    /// A name could not be resolved: the server's host, or the local bind address.
    pub fn is_lookup(&self) -> bool {
        self.inner.kind == Kind::Lookup
    }

    /// Our [`crate::Authenticator`] gave up during enhanced authentication (on
    /// connecting or re-authenticating); [`ClientError::reason_code`] is the one our
    /// DISCONNECT carried. A server that refuses the authentication answers with a CONNACK
    /// ([`ClientError::is_refused`]) or a DISCONNECT ([`ClientError::is_server_disconnect`]).
    pub fn is_auth(&self) -> bool {
        self.inner.kind == Kind::Auth
    }

    /// Something took too long: the TCP connection or the CONNACK (the connect timeout),
    /// or the server did not answer a PINGREQ within the keep alive.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == Kind::Timeout
    }

    /// The server refused the connection: its CONNACK carried a failure
    /// ([`ClientError::reason_code`] says which).
    pub fn is_refused(&self) -> bool {
        self.inner.kind == Kind::Refused
    }

    /// The server refused a request: a PUBACK or PUBREC with a reason code of 0x80 or
    /// above, or a SUBACK or UNSUBACK that refused the filter.
    pub fn is_rejected(&self) -> bool {
        self.inner.kind == Kind::Rejected
    }

    /// The server closed the connection with a DISCONNECT packet (MQTT 5.0).
    pub fn is_server_disconnect(&self) -> bool {
        self.inner.kind == Kind::ServerDisconnect
    }

    /// The server broke the protocol: a malformed packet, or one it must not send.
    pub fn is_protocol(&self) -> bool {
        self.inner.kind == Kind::Protocol
    }

    /// The connection was lost and is not coming back: reconnecting is off or gave up, so
    /// requests that were waiting on it fail with this error.
    pub fn is_connection_lost(&self) -> bool {
        self.inner.kind == Kind::ConnectionLost
    }

    /// The client is closed: it was disconnected, every handle was dropped, or its
    /// connection task ended.
    pub fn is_closed(&self) -> bool {
        self.inner.kind == Kind::Closed
    }

    /// The request or the options are invalid, or exceed what the server accepts (a
    /// packet over its Maximum Packet Size, a QoS above its Maximum QoS, a retained
    /// message where retain is not available, a topic that is not a valid topic name).
    pub fn is_invalid(&self) -> bool {
        self.inner.kind == Kind::Invalid
    }

    /// The DISCONNECT packet the server closed the connection with (5.0), with all its
    /// properties; see [`ClientError::is_server_disconnect`].
    pub fn disconnect_packet(&self) -> Option<&Disconnect> {
        self.inner.disconnect.as_ref()
    }

    /// The reason code behind the error, where the server sent one (refused, rejected,
    /// server disconnect) or the client sends one (protocol errors).
    pub fn reason_code(&self) -> Option<ReasonCode> {
        self.inner.reason_code
    }
}

impl fmt::Debug for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ClientError");
        d.field("kind", &self.inner.kind);
        if let Some(reason) = self.inner.reason_code {
            d.field("reason_code", &reason);
        }
        if let Some(detail) = &self.inner.detail {
            d.field("detail", detail);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.inner.kind {
            Kind::Io => "I/O error",
            Kind::Lookup => "name lookup failed",
            Kind::Auth => "enhanced authentication failed",
            Kind::Proxy => "the proxy failed",
            Kind::Tls => "TLS failed",
            Kind::WebSocket => "the WebSocket handshake failed",
            Kind::Timeout => "timed out",
            Kind::Refused => "connection refused by the server",
            Kind::Rejected => "request rejected by the server",
            Kind::ServerDisconnect => "the server closed the connection",
            Kind::Protocol => "protocol error by the server",
            Kind::ConnectionLost => "connection lost",
            Kind::Closed => "the client is closed",
            Kind::Invalid => "invalid request",
        })?;
        if let Some(reason) = self.inner.reason_code {
            write!(f, ": {reason}")?;
        }
        if let Some(detail) = &self.inner.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(source) = &self.inner.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.source {
            Some(Source::Io(e)) => Some(&**e),
            Some(Source::Decode(e)) => Some(e),
            Some(Source::Encode(e)) => Some(e),
            None => None,
        }
    }
}

/// An invalid topic name or filter given to a request.
impl From<DecodeError> for ClientError {
    fn from(error: DecodeError) -> Self {
        ClientError::invalid(error.to_string())
    }
}

/// Lets requests take an already validated [`midge_codec::TopicName`] or
/// [`midge_codec::TopicFilter`] wherever they take a string.
impl From<std::convert::Infallible> for ClientError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_text() {
        let e = ClientError::rejected(ReasonCode::NotAuthorized, Some("no"));
        assert!(e.is_rejected() && !e.is_refused());
        assert_eq!(e.reason_code(), Some(ReasonCode::NotAuthorized));
        assert!(e.to_string().contains("Not authorized"));
        let io = ClientError::io(std::io::Error::other("boom"));
        assert!(io.is_io());
        assert!(std::error::Error::source(&io).is_some());
        assert_eq!(
            std::mem::size_of::<ClientError>(),
            std::mem::size_of::<usize>()
        );
    }
}
