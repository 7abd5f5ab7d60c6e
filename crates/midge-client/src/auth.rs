//! Enhanced authentication (MQTT 5.0, §4.12) on the client's side: the [`Authenticator`]
//! trait the application implements for its method (SCRAM, Kerberos, a token scheme…).
//! The exchange itself — which packet may come when, and what to send back — is the
//! state machine's (`state/auth.rs`); this file only defines what it asks the method.

use bytes::Bytes;
use midge_codec::{ByteString, ReasonCode};

/// One authentication method, asked by the client at each step of the exchange.
///
/// The exchange on connecting ([MQTT-4.12.0-1]): the CONNECT carries the
/// Authentication Method ([`Authenticator::method`]) and the data of
/// [`Authenticator::start`]; each AUTH with Continue Authentication (0x18) from the
/// server is answered with an AUTH 0x18 carrying the data of
/// [`Authenticator::challenge`]; the CONNACK ends it, its data given to
/// [`Authenticator::finish`]. A re-authentication ([`crate::Client::reauthenticate`],
/// §4.12.1) runs the same steps, starting with an AUTH Re-authenticate (0x19) and ending
/// with the server's AUTH Success (0x00).
///
/// Every step may fail with an [`AuthError`]: the client then sends a DISCONNECT with its
/// reason code and the connection (or the re-authentication) fails with
/// [`crate::ClientError::is_auth`]. The methods run on the connection task: they must
/// not block.
///
/// ```
/// use bytes::Bytes;
/// use midge_client::{AuthError, Authenticator, ConnectOptions};
/// use midge_codec::ByteString;
///
/// /// A challenge-response toy: the server sends a number, we answer its double.
/// #[derive(Debug)]
/// struct Doubler;
///
/// impl Authenticator for Doubler {
///     fn method(&self) -> ByteString {
///         "x-doubler".into()
///     }
///     fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
///         Ok(None)
///     }
///     fn challenge(&mut self, data: Option<&Bytes>) -> Result<Option<Bytes>, AuthError> {
///         let n = data.and_then(|d| d.first()).ok_or_else(|| AuthError::new("no number"))?;
///         Ok(Some(Bytes::from(vec![n.wrapping_mul(2)])))
///     }
/// }
///
/// let options = ConnectOptions::new().authenticator(Doubler);
/// assert_eq!(
///     options.get_properties().authentication_method.as_deref(),
///     Some("x-doubler")
/// );
/// ```
pub trait Authenticator: Send + std::fmt::Debug {
    /// The Authentication Method, the same for every step and every connection.
    fn method(&self) -> ByteString;

    /// Starts an exchange (a new connection, or a re-authentication): the
    /// Authentication Data of the CONNECT, or of the AUTH Re-authenticate.
    fn start(&mut self) -> Result<Option<Bytes>, AuthError>;

    /// Answers the server's challenge (the data of its AUTH Continue Authentication):
    /// the data of our AUTH Continue Authentication.
    fn challenge(&mut self, data: Option<&Bytes>) -> Result<Option<Bytes>, AuthError>;

    /// The server accepted (its CONNACK, or its AUTH Success after a
    /// re-authentication), with the Authentication Data it sent, if any: a method that
    /// authenticates the server too (SCRAM's server signature) checks it here. By
    /// default, accepts.
    fn finish(&mut self, data: Option<&Bytes>) -> Result<(), AuthError> {
        let _ = data;
        Ok(())
    }
}

/// Why an [`Authenticator`] gave up: the reason code of the DISCONNECT the client sends
/// (Not authorized, 0x87, unless said otherwise) and a text for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("authentication failed: {detail}")]
pub struct AuthError {
    reason_code: ReasonCode,
    detail: String,
}

impl AuthError {
    /// A failure with reason code Not authorized (0x87).
    pub fn new(detail: impl Into<String>) -> Self {
        AuthError {
            reason_code: ReasonCode::NotAuthorized,
            detail: detail.into(),
        }
    }

    /// The reason code of the DISCONNECT instead (Implementation specific error 0x83,
    /// …); one that a DISCONNECT may not carry (Table 3-10; 0x8C Bad authentication
    /// method is not among them) leaves Not authorized.
    pub fn with_reason_code(mut self, reason_code: ReasonCode) -> Self {
        if reason_code.is_error() && reason_code.is_valid_for(midge_codec::PacketType::Disconnect) {
            self.reason_code = reason_code;
        }
        self
    }

    /// The reason code of the DISCONNECT the client sends.
    pub fn reason_code(&self) -> ReasonCode {
        self.reason_code
    }

    /// The text given.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}
