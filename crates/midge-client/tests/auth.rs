//! Enhanced authentication (5.0 §4.12) over a real socket, against a scripted server
//! (the broker refuses authentication methods it does not know): a SCRAM-like
//! challenge before the CONNACK, a re-authentication on the live connection, and a
//! server that refuses the re-authentication. The packet observer sees every packet.

mod common;

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use common::within;
use midge_client::{AuthError, Authenticator, Client, ConnectOptions, Direction, ReconnectPolicy};
use midge_codec::{
    Auth, AuthProperties, ByteString, ConnAck, ConnAckProperties, Decoder, Disconnect, Packet,
    PacketType, ProtocolVersion, QoS, ReasonCode,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers a challenge with its bytes reversed.
#[derive(Debug)]
struct Reverser;

impl Authenticator for Reverser {
    fn method(&self) -> ByteString {
        "x-reverse".into()
    }

    fn start(&mut self) -> Result<Option<Bytes>, AuthError> {
        Ok(Some(Bytes::from_static(b"client-first")))
    }

    fn challenge(&mut self, data: Option<&Bytes>) -> Result<Option<Bytes>, AuthError> {
        let mut answer = data.map(|d| d.to_vec()).unwrap_or_default();
        answer.reverse();
        Ok(Some(Bytes::from(answer)))
    }
}

/// One scripted connection: reads and writes whole packets.
struct Peer {
    stream: TcpStream,
    decoder: Decoder,
    rbuf: BytesMut,
}

impl Peer {
    async fn accept(listener: &TcpListener) -> Peer {
        let (stream, _) = within(listener.accept()).await.unwrap();
        Peer {
            stream,
            decoder: Decoder::server(),
            rbuf: BytesMut::new(),
        }
    }

    async fn recv(&mut self) -> Packet {
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.rbuf).unwrap() {
                return packet;
            }
            let n = within(self.stream.read_buf(&mut self.rbuf)).await.unwrap();
            assert!(n > 0, "the client closed the connection");
        }
    }

    async fn send(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet.encode(ProtocolVersion::V5, &mut buf).unwrap();
        self.stream.write_all(&buf).await.unwrap();
    }

    /// The next packet must be an AUTH; returns its reason code and data.
    async fn recv_auth(&mut self) -> (ReasonCode, Option<Bytes>) {
        match self.recv().await {
            Packet::Auth(a) => {
                assert_eq!(
                    a.properties.authentication_method.as_deref(),
                    Some("x-reverse")
                );
                (a.reason_code, a.properties.authentication_data)
            }
            other => panic!("expected AUTH, got {other:?}"),
        }
    }
}

fn auth(code: ReasonCode, data: &'static [u8]) -> Packet {
    Packet::Auth(Auth {
        reason_code: code,
        properties: AuthProperties {
            authentication_method: Some("x-reverse".into()),
            authentication_data: Some(Bytes::from_static(data)),
            ..AuthProperties::default()
        },
    })
}

/// CONNECT with method and data, AUTH 0x18 both ways, CONNACK; then a re-authentication
/// (AUTH 0x19, 0x18 both ways, 0x00), and one the server refuses with DISCONNECT.
///
/// conformance: v5 MQTT-4.12.0-3
/// conformance: v5 MQTT-4.12.1-1
#[tokio::test]
async fn challenge_then_reauthentication_over_a_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let options = ConnectOptions::new()
        .server(addr)
        .client_id("auth-1")
        .reconnect(ReconnectPolicy::never())
        .authenticator(Reverser)
        .observe_packets(move |d: Direction, id: &str, p: &Packet| {
            log.lock()
                .unwrap()
                .push(format!("{id} {d:?} {}", p.packet_type()));
        });
    let server = tokio::spawn(async move {
        let mut peer = Peer::accept(&listener).await;
        match peer.recv().await {
            Packet::Connect(c) => {
                assert_eq!(
                    c.properties.authentication_method.as_deref(),
                    Some("x-reverse")
                );
                assert_eq!(
                    c.properties.authentication_data.as_deref(),
                    Some(&b"client-first"[..])
                );
            }
            other => panic!("expected CONNECT, got {other:?}"),
        }
        peer.send(auth(ReasonCode::ContinueAuthentication, b"abc"))
            .await;
        assert_eq!(
            peer.recv_auth().await,
            (
                ReasonCode::ContinueAuthentication,
                Some(Bytes::from_static(b"cba"))
            )
        );
        peer.send(Packet::ConnAck(Box::new(ConnAck {
            properties: ConnAckProperties {
                authentication_method: Some("x-reverse".into()),
                ..ConnAckProperties::default()
            },
            ..ConnAck::default()
        })))
        .await;
        // Re-authentication.
        assert_eq!(
            peer.recv_auth().await,
            (
                ReasonCode::ReAuthenticate,
                Some(Bytes::from_static(b"client-first"))
            )
        );
        peer.send(auth(ReasonCode::ContinueAuthentication, b"xyz"))
            .await;
        assert_eq!(
            peer.recv_auth().await,
            (
                ReasonCode::ContinueAuthentication,
                Some(Bytes::from_static(b"zyx"))
            )
        );
        peer.send(auth(ReasonCode::Success, b"")).await;
        // Then a refused re-authentication: DISCONNECT 0x87.
        let (code, _) = peer.recv_auth().await;
        assert_eq!(code, ReasonCode::ReAuthenticate);
        peer.send(Packet::Disconnect(Disconnect::new(
            ReasonCode::NotAuthorized,
        )))
        .await;
    });

    let (client, _events) = within(Client::connect(options)).await.expect("connects");
    let done = within(client.reauthenticate())
        .await
        .expect("re-authenticated");
    assert_eq!(done.reason_code, ReasonCode::Success);
    let e = within(client.reauthenticate()).await.unwrap_err();
    assert!(e.is_server_disconnect(), "{e}");
    assert_eq!(e.reason_code(), Some(ReasonCode::NotAuthorized));
    within(server).await.unwrap();
    assert_eq!(
        seen.lock().unwrap()[..5],
        [
            "auth-1 Sent CONNECT",
            "auth-1 Received AUTH",
            "auth-1 Sent AUTH",
            "auth-1 Received CONNACK",
            "auth-1 Sent AUTH",
        ]
    );
}

/// A server that refuses in its CONNACK fails the connection with its reason code, and
/// a client without an authenticator cannot re-authenticate against the broker.
///
/// conformance: v5 MQTT-4.12.0-7
#[tokio::test]
async fn refusals() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut peer = Peer::accept(&listener).await;
        assert_eq!(peer.recv().await.packet_type(), PacketType::Connect);
        peer.send(Packet::ConnAck(Box::new(ConnAck {
            reason_code: ReasonCode::BadAuthenticationMethod,
            ..ConnAck::default()
        })))
        .await;
    });
    let options = ConnectOptions::new()
        .server(addr)
        .reconnect(ReconnectPolicy::never())
        .authenticator(Reverser);
    let e = within(Client::connect(options)).await.unwrap_err();
    assert!(e.is_refused(), "{e}");
    assert_eq!(e.reason_code(), Some(ReasonCode::BadAuthenticationMethod));
    within(server).await.unwrap();

    // The broker's own refusal of an unknown method (its CONNACK 0x8C).
    let broker = common::broker().await;
    let options = common::options(broker.local_addr(), "auth-2")
        .reconnect(ReconnectPolicy::never())
        .authenticator(Reverser);
    let e = within(Client::connect(options)).await.unwrap_err();
    assert!(e.is_refused(), "{e}");

    let (client, _events) = common::connect(common::options(broker.local_addr(), "auth-3")).await;
    let e = within(client.reauthenticate()).await.unwrap_err();
    assert!(e.is_invalid(), "{e}");
    client
        .publish("still/fine", QoS::AtLeastOnce, "x")
        .await
        .unwrap();
    broker.shutdown().await;
}
