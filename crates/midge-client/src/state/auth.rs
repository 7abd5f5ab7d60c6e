//! Enhanced authentication (5.0, §4.12), the state machine's part: the Authentication
//! Data of each CONNECT, the answers to the server's AUTH challenges before the CONNACK,
//! and re-authentication on a live connection (AUTH 0x19 … AUTH 0x00). The method itself
//! is the application's [`Authenticator`] (`auth.rs`); this file decides which AUTH may
//! come when and what goes back.

use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use midge_codec::{Auth, AuthProperties, ConnAck, Disconnect, Packet, ReasonCode};

use super::{ClientState, Completion, Phase};
use crate::auth::{AuthError, Authenticator};
use crate::error::ClientError;

/// The application's method, shared with the [`crate::ConnectOptions`] it came from.
// A std mutex: locked only inside one synchronous step of the state machine, never
// across an await, and only by the connection task.
pub(crate) type SharedAuthenticator = Arc<Mutex<dyn Authenticator>>;

fn lock(authenticator: &SharedAuthenticator) -> MutexGuard<'_, dyn Authenticator + 'static> {
    // A panic inside the application's method poisons the lock; its state is its own.
    authenticator
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<T> ClientState<T> {
    /// Starts the exchange of a new connection: the CONNECT's Authentication Data.
    pub(super) fn auth_connect(&mut self) -> Result<(), ClientError> {
        let Some(authenticator) = &self.authenticator else {
            return Ok(());
        };
        let data = lock(authenticator).start().map_err(ClientError::auth)?;
        self.connect.properties.authentication_data = data;
        Ok(())
    }

    /// Starts a re-authentication (§4.12.1): sends AUTH Re-authenticate (0x19) with the
    /// same Authentication Method as the connection's ([MQTT-4.12.1-1]). `token`
    /// completes with [`Completion::Reauthenticated`] on the server's AUTH Success, or
    /// fails. Fails at once without an [`Authenticator`] ([MQTT-4.12.0-7]), on MQTT 3.x,
    /// when not connected, or while another re-authentication runs.
    pub fn reauthenticate(&mut self, token: T) {
        let refusal = if !self.version().is_v5() {
            Some("re-authentication needs MQTT 5.0")
        } else if self.authenticator.is_none() {
            Some("[MQTT-4.12.0-7] re-authentication needs an authenticator")
        } else if self.phase != Phase::Connected {
            Some("re-authentication needs a connection")
        } else if self.reauth.is_some() {
            Some("a re-authentication is already running")
        } else {
            None
        };
        if let Some(why) = refusal {
            return self.complete(token, Err(ClientError::invalid(why)));
        }
        let started = self.authenticator.as_ref().map(|a| lock(a).start());
        match started {
            Some(Ok(data)) => {
                self.send_auth(ReasonCode::ReAuthenticate, data);
                self.reauth = Some(token);
            }
            Some(Err(e)) => self.complete(token, Err(ClientError::auth(e))),
            None => {}
        }
    }

    /// An AUTH from the server. Before the CONNACK, and during a re-authentication, a
    /// Continue Authentication (0x18) is answered with the authenticator's data
    /// ([MQTT-4.12.0-2], [MQTT-4.12.0-3]); a Success (0x00) ends a re-authentication.
    /// Anything else is a protocol error, as is another Authentication Method than ours
    /// ([MQTT-4.12.0-5]) or any AUTH when we named none ([MQTT-4.12.0-6]).
    pub(super) fn handle_auth(&mut self, auth: Auth) -> Result<(), ClientError> {
        let Some(authenticator) = self.authenticator.clone() else {
            return Err(ClientError::protocol(
                ReasonCode::ProtocolError,
                "[MQTT-4.12.0-6] AUTH received, but the CONNECT named no Authentication Method",
            ));
        };
        if auth.properties.authentication_method != self.connect.properties.authentication_method {
            return Err(ClientError::protocol(
                ReasonCode::ProtocolError,
                "[MQTT-4.12.0-5] AUTH with another Authentication Method than the CONNECT's",
            ));
        }
        let exchanging = self.phase == Phase::Connecting || self.reauth.is_some();
        let data = auth.properties.authentication_data.as_ref();
        match auth.reason_code {
            ReasonCode::ContinueAuthentication if exchanging => {
                let answer = lock(&authenticator).challenge(data);
                match answer {
                    Ok(data) => {
                        self.send_auth(ReasonCode::ContinueAuthentication, data);
                        Ok(())
                    }
                    Err(e) => Err(self.auth_failed(e)),
                }
            }
            ReasonCode::Success if self.phase == Phase::Connected && self.reauth.is_some() => {
                let finished = lock(&authenticator).finish(data);
                match finished {
                    Ok(()) => {
                        if let Some(token) = self.reauth.take() {
                            self.complete(token, Ok(Completion::Reauthenticated(Box::new(auth))));
                        }
                        Ok(())
                    }
                    Err(e) => Err(self.auth_failed(e)),
                }
            }
            code => Err(ClientError::protocol(
                ReasonCode::ProtocolError,
                format!(
                    "AUTH {:#04x} ({code}) {}",
                    code as u8,
                    if exchanging {
                        "while authenticating"
                    } else {
                        "with no authentication in progress"
                    }
                ),
            )),
        }
    }

    /// A successful CONNACK of an enhanced authentication: it must name our method
    /// ([MQTT-4.12.0-5]); its data goes to the authenticator, which may still refuse
    /// the server.
    pub(super) fn auth_connack(&mut self, ack: &ConnAck) -> Result<(), ClientError> {
        let Some(authenticator) = self.authenticator.clone() else {
            return Ok(());
        };
        if ack.properties.authentication_method != self.connect.properties.authentication_method {
            return Err(ClientError::protocol(
                ReasonCode::ProtocolError,
                "[MQTT-4.12.0-5] CONNACK without the CONNECT's Authentication Method",
            ));
        }
        let finished = lock(&authenticator).finish(ack.properties.authentication_data.as_ref());
        finished.map_err(|e| self.auth_failed(e))
    }

    /// The connection is lost or closed during a re-authentication: it fails.
    pub(super) fn abort_reauth(&mut self, error: &ClientError) {
        if let Some(token) = self.reauth.take() {
            self.complete(token, Err(error.clone()));
        }
    }

    /// The authenticator gave up: a DISCONNECT with its reason code goes out
    /// ([MQTT-4.12.0-4], [MQTT-4.12.1-2]) and the connection ends with this error.
    fn auth_failed(&mut self, error: AuthError) -> ClientError {
        self.transmit
            .push_back(Packet::Disconnect(Disconnect::new(error.reason_code())));
        let error = ClientError::auth(error);
        self.abort_reauth(&error);
        error
    }

    fn send_auth(&mut self, reason_code: ReasonCode, data: Option<Bytes>) {
        self.transmit.push_back(Packet::Auth(Auth {
            reason_code,
            properties: AuthProperties {
                authentication_method: self.connect.properties.authentication_method.clone(),
                authentication_data: data,
                ..AuthProperties::default()
            },
        }));
    }
}
