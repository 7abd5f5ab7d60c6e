//! Enhanced authentication (5.0 §4.12): challenges before the CONNACK, the method's
//! checks, failures, and re-authentication on a live connection.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use midge_codec::{
    Auth, AuthProperties, ByteString, ConnAck, ConnAckProperties, Disconnect, Packet, QoS,
    ReasonCode,
};

use super::*;
use crate::{AuthError, Authenticator, ConnectOptions};

/// A toy method: starts with "hello", answers a challenge `n` with `n` doubled, and
/// accepts the server only if its final data is "ok". Records every call.
#[derive(Debug, Default, Clone)]
struct Doubler {
    calls: Arc<Mutex<Vec<String>>>,
    refuse_challenge: bool,
}

impl Authenticator for Doubler {
    fn method(&self) -> ByteString {
        "x-doubler".into()
    }

    fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
        self.calls.lock().unwrap().push("start".into());
        Ok(Some(Bytes::from_static(b"hello")))
    }

    fn challenge(&mut self, data: Option<&Bytes>) -> Result<Option<Bytes>, AuthError> {
        let n = data.and_then(|d| d.first().copied()).unwrap_or(0);
        self.calls.lock().unwrap().push(format!("challenge {n}"));
        if self.refuse_challenge {
            return Err(
                AuthError::new("no").with_reason_code(ReasonCode::ImplementationSpecificError)
            );
        }
        Ok(Some(Bytes::from(vec![n.wrapping_mul(2)])))
    }

    fn finish(&mut self, data: Option<&Bytes>) -> Result<(), AuthError> {
        self.calls.lock().unwrap().push("finish".into());
        match data.map(|d| &d[..]) {
            Some(b"ok") => Ok(()),
            _ => Err(AuthError::new("the server did not prove itself")),
        }
    }
}

fn harness(doubler: &Doubler) -> Harness {
    Harness::new(
        ConnectOptions::new()
            .client_id("c")
            .authenticator(doubler.clone()),
    )
}

/// Connected through the doubler's method (no challenge), the outputs taken.
fn connected(doubler: &Doubler) -> Harness {
    let mut h = harness(doubler);
    h.start();
    h.recv(connack_ok()).unwrap();
    h.outputs();
    h
}

fn auth(code: ReasonCode, method: &str, data: &[u8]) -> Packet {
    Packet::Auth(Auth {
        reason_code: code,
        properties: AuthProperties {
            authentication_method: Some(method.into()),
            authentication_data: Some(Bytes::copy_from_slice(data)),
            ..AuthProperties::default()
        },
    })
}

/// A Continue Authentication of the doubler's method with the number `n`.
fn challenge(n: u8) -> Packet {
    auth(ReasonCode::ContinueAuthentication, "x-doubler", &[n])
}

/// What was sent is one AUTH with `code`, the doubler's method and `data`.
fn assert_one_auth(sent: Vec<Packet>, code: ReasonCode, data: &[u8]) {
    match sent.as_slice() {
        [Packet::Auth(a)] => {
            assert_eq!(a.reason_code, code);
            assert_eq!(
                a.properties.authentication_method.as_deref(),
                Some("x-doubler")
            );
            assert_eq!(a.properties.authentication_data.as_deref(), Some(data));
        }
        other => panic!("expected one AUTH, got {other:?}"),
    }
}

/// What was sent is one DISCONNECT with `code`.
fn assert_disconnects(h: &mut Harness, code: ReasonCode) {
    assert_eq!(h.sent(), [Packet::Disconnect(Disconnect::new(code))]);
}

/// The one request completed since the last call is `token`, failed; its error.
fn only_failure(h: &mut Harness, token: u32) -> crate::ClientError {
    match <[_; 1]>::try_from(h.completed()) {
        Ok([(t, Err(e))]) if t == token => e,
        other => panic!("expected request {token} to fail, alone: {other:?}"),
    }
}

fn connack_ok() -> Packet {
    Packet::ConnAck(Box::new(ConnAck {
        properties: ConnAckProperties {
            authentication_method: Some("x-doubler".into()),
            authentication_data: Some(Bytes::from_static(b"ok")),
            ..ConnAckProperties::default()
        },
        ..ConnAck::default()
    }))
}

/// The CONNECT names the method with the first data; each Continue Authentication is
/// answered with one; nothing else goes out before the CONNACK.
///
/// conformance: v5 MQTT-4.12.0-3
/// conformance: v5 MQTT-3.1.2-30
#[test]
fn challenges_are_answered_until_the_connack() {
    let doubler = Doubler::default();
    let mut h = harness(&doubler);
    let connect = h.start();
    assert_eq!(
        connect.properties.authentication_method.as_deref(),
        Some("x-doubler")
    );
    assert_eq!(
        connect.properties.authentication_data.as_deref(),
        Some(&b"hello"[..])
    );
    h.publish("waits", QoS::AtLeastOnce, 1);
    for (n, answer) in [(3u8, 6u8), (5, 10)] {
        h.recv(challenge(n)).unwrap();
        assert_one_auth(h.sent(), ReasonCode::ContinueAuthentication, &[answer]);
    }
    assert!(!h.state.is_connected());
    h.recv(connack_ok()).unwrap();
    assert!(h.state.is_connected());
    // The publication waited for the CONNACK.
    assert_eq!(only_publish(h.sent()).topic.as_str(), "waits");
    assert_eq!(
        *doubler.calls.lock().unwrap(),
        ["start", "challenge 3", "challenge 5", "finish"]
    );
}

/// Every connection starts the exchange afresh.
#[test]
fn a_reconnect_starts_a_new_exchange() {
    let doubler = Doubler::default();
    let mut h = connected(&doubler);
    h.lose_connection();
    let connect = h.start();
    assert_eq!(
        connect.properties.authentication_data.as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(*doubler.calls.lock().unwrap(), ["start", "finish", "start"]);
}

#[test]
fn another_method_in_auth_or_connack_is_a_protocol_error() {
    for (case, packet) in [
        (
            "AUTH",
            auth(ReasonCode::ContinueAuthentication, "x-other", b"\x01"),
        ),
        ("CONNACK without a method", Packet::ConnAck(Box::default())),
    ] {
        let mut h = harness(&Doubler::default());
        h.start();
        let e = h.recv(packet).unwrap_err();
        assert!(e.is_protocol(), "{case}: {e}");
        assert!(!h.state.is_connected(), "{case}");
    }
}

#[test]
fn auth_without_a_method_is_a_protocol_error() {
    let mut h = Harness::v5();
    h.start();
    let e = h.recv(challenge(1)).unwrap_err();
    assert!(e.is_protocol(), "{e}");
    h.connect(false);
    let e = h
        .recv(auth(ReasonCode::Success, "x-doubler", b""))
        .unwrap_err();
    assert!(e.is_protocol(), "{e}");
    // Connected: a 5.0 DISCONNECT says why.
    assert_disconnects(&mut h, ReasonCode::ProtocolError);
}

/// The method gives up: a DISCONNECT with its reason code, and an auth error.
///
/// conformance: v5 MQTT-4.12.0-4
#[test]
fn a_refusing_method_disconnects_with_its_reason() {
    let doubler = Doubler {
        refuse_challenge: true,
        ..Doubler::default()
    };
    let mut h = harness(&doubler);
    h.start();
    let e = h.recv(challenge(1)).unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert_eq!(
        e.reason_code(),
        Some(ReasonCode::ImplementationSpecificError)
    );
    assert_disconnects(&mut h, ReasonCode::ImplementationSpecificError);

    // A server that does not prove itself in its CONNACK is refused too.
    let mut h = harness(&Doubler::default());
    h.start();
    let mut ack = ConnAck::default();
    ack.properties.authentication_method = Some("x-doubler".into());
    let e = h.recv(Packet::ConnAck(Box::new(ack))).unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert!(!h.state.is_connected());
    assert_disconnects(&mut h, ReasonCode::NotAuthorized);
}

/// AUTH 0x19 with the connection's method, challenges answered, AUTH Success completes
/// the request; publications go on meanwhile.
///
/// conformance: v5 MQTT-4.12.1-1
#[test]
fn reauthentication_completes_on_auth_success() {
    let mut h = connected(&Doubler::default());
    h.sent();
    h.state.reauthenticate(7);
    assert_one_auth(h.sent(), ReasonCode::ReAuthenticate, b"hello");
    h.publish("meanwhile", QoS::AtMostOnce, 8);
    assert_eq!(only_publish(h.sent()).topic.as_str(), "meanwhile");
    h.recv(challenge(4)).unwrap();
    assert_one_auth(h.sent(), ReasonCode::ContinueAuthentication, &[8]);
    h.recv(auth(ReasonCode::Success, "x-doubler", b"ok"))
        .unwrap();
    let done: Vec<_> = h.completed().into_iter().filter(|(t, _)| *t == 7).collect();
    assert!(
        matches!(&done[..], [(7, Ok(Completion::Reauthenticated(a)))] if a.reason_code == ReasonCode::Success),
        "{done:?}"
    );
    // A second Success with nothing under way is a protocol error.
    let e = h
        .recv(auth(ReasonCode::Success, "x-doubler", b"ok"))
        .unwrap_err();
    assert!(e.is_protocol(), "{e}");
}

/// conformance: v5 MQTT-4.12.0-7
#[test]
fn reauthentication_needs_an_authenticator_and_a_connection() {
    let mut without_method = Harness::v5();
    without_method.connect(false);
    let without_connection = harness(&Doubler::default());
    for (mut h, token, case) in [
        (without_method, 1, "without a method"),
        (without_connection, 2, "without a connection"),
    ] {
        h.state.reauthenticate(token);
        assert!(h.sent().is_empty(), "no AUTH {case}");
        let e = only_failure(&mut h, token);
        assert!(e.is_invalid(), "{case}: {e}");
    }
}

/// A lost connection or a server DISCONNECT fails the re-authentication under way.
#[test]
fn reauthentication_fails_with_the_connection() {
    let mut h = connected(&Doubler::default());
    h.state.reauthenticate(1);
    h.sent();
    let e = h
        .recv(Packet::Disconnect(Disconnect::new(
            ReasonCode::NotAuthorized,
        )))
        .unwrap_err();
    assert!(e.is_server_disconnect());
    let e = only_failure(&mut h, 1);
    assert_eq!(e.reason_code(), Some(ReasonCode::NotAuthorized), "{e}");

    let mut h = connected(&Doubler::default());
    h.state.reauthenticate(2);
    h.lose_connection();
    let e = only_failure(&mut h, 2);
    assert!(e.is_connection_lost(), "{e}");
}
