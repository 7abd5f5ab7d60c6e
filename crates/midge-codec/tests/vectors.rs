//! Hand-written byte vectors for every MQTT control packet in MQTT 3.1 (protocol level 3,
//! name "MQIsdp"), 3.1.1 and 5.0, laid out by hand from the field tables and figures of the
//! OASIS specifications (chapter 3 of each) and annotated group by group.
//!
//! Each vector is checked both ways: the bytes decode to the expected [`Packet`] with the
//! decoder of the side that receives it (a server decoder that has first seen a CONNECT of
//! the same version for packets clients send, `Decoder::client(version)` for packets
//! servers send, both for packets either side sends), and encoding the packet gives exactly
//! the bytes. Where the specification allows a longer form than the encoder writes (a
//! 5.0 PUBACK with an explicit Success reason code, say), the long form is checked to
//! decode to the same packet and the encoder's shorter form is spelled out too.
//!
//! Property order: the specification leaves it free; the vectors list properties in the
//! order the encoder writes them, and `properties_decode_in_any_order` checks that the
//! decoder does not care.
//!
//! # Layout
//! This file holds the helpers; the vectors live in `vectors/`: `connect.rs` (CONNECT,
//! CONNACK), `publish.rs` (PUBLISH and its four acknowledgements, property order),
//! `subscribe.rs` (SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK), `control.rs` (PINGREQ,
//! PINGRESP, DISCONNECT, AUTH) and `incremental.rs` (incremental decoding, STYLE.md rule 1).

use bytes::{Bytes, BytesMut};
use midge_codec::{
    Ack, AckProperties, Auth, AuthProperties, ByteString, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, DecodeError, Decoder, Disconnect, DisconnectProperties, LastWill, Packet,
    PacketId, ProtocolVersion, Publish, PublishProperties, QoS, ReasonCode, RetainHandling, SubAck,
    Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    Unsubscribe, UnsubscribeProperties, WillProperties,
};

use ProtocolVersion::{V5, V31, V311};

/// Concatenates byte groups (arrays and byte-string literals) into one vector, so that each
/// group of a vector can carry its own comment.
macro_rules! wire {
    ($($part:expr),* $(,)?) => {{
        let mut bytes: Vec<u8> = Vec::new();
        $( bytes.extend_from_slice(&$part[..]); )*
        bytes
    }};
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn s(value: &'static str) -> ByteString {
    ByteString::from_static(value)
}

fn b(value: &'static [u8]) -> Bytes {
    Bytes::from_static(value)
}

fn topic(name: &'static str) -> TopicName {
    TopicName::new(s(name)).unwrap()
}

fn filter(name: &'static str) -> TopicFilter {
    TopicFilter::new(s(name)).unwrap()
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

fn pair(name: &'static str, value: &'static str) -> (ByteString, ByteString) {
    (s(name), s(value))
}

/// The smallest CONNECT of each version: clean start, keep alive 60, client id "x".
fn minimal_connect(version: ProtocolVersion) -> Vec<u8> {
    match version {
        V31 => wire! {
            [0x10, 0x0f],             // CONNECT, remaining length 15
            [0x00, 0x06], b"MQIsdp",  // protocol name
            [0x03],                   // protocol level 3
            [0x02],                   // flags: clean session
            [0x00, 0x3c],             // keep alive 60
            [0x00, 0x01], b"x",       // client identifier
        },
        V311 => wire! {
            [0x10, 0x0d],             // CONNECT, remaining length 13
            [0x00, 0x04], b"MQTT",    // protocol name
            [0x04],                   // protocol level 4
            [0x02],                   // flags: clean session
            [0x00, 0x3c],             // keep alive 60
            [0x00, 0x01], b"x",       // client identifier
        },
        V5 => wire! {
            [0x10, 0x0e],             // CONNECT, remaining length 14
            [0x00, 0x04], b"MQTT",    // protocol name
            [0x05],                   // protocol level 5
            [0x02],                   // flags: clean start
            [0x00, 0x3c],             // keep alive 60
            [0x00],                   // property length 0
            [0x00, 0x01], b"x",       // client identifier
        },
    }
}

/// A server-side decoder that has decoded a CONNECT of `version` and so speaks it.
fn connected_server(version: ProtocolVersion) -> Decoder {
    let mut decoder = Decoder::server();
    assert_eq!(decoder.version(), None);
    let packet = decode_one(&mut decoder, &minimal_connect(version));
    assert_eq!(
        packet,
        Packet::Connect(Box::new(Connect::new(version, "x")))
    );
    assert_eq!(decoder.version(), Some(version));
    decoder
}

/// Decodes exactly one whole packet from `bytes`, which it must consume entirely.
#[track_caller]
fn decode_one(decoder: &mut Decoder, bytes: &[u8]) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = match decoder.decode(&mut buf) {
        Ok(Some(packet)) => packet,
        Ok(None) => panic!("incomplete: {bytes:02x?}"),
        Err(e) => panic!("{e:?} ({e}) decoding {bytes:02x?}"),
    };
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    packet
}

/// `packet` encodes for `version` to exactly `bytes`, and says so in `encoded_len`.
#[track_caller]
fn assert_encodes(version: ProtocolVersion, packet: &Packet, bytes: &[u8]) {
    let mut out = BytesMut::new();
    packet.encode(version, &mut out).unwrap();
    assert_eq!(&out[..], bytes, "encoding {packet:?} for {version}");
    assert_eq!(packet.encoded_len(version).unwrap(), bytes.len());
}

/// A CONNECT: decoded by a fresh server decoder, which learns the version from it.
#[track_caller]
fn connect_vector(bytes: &[u8], connect: Connect) {
    let mut decoder = Decoder::server();
    let version = connect.protocol;
    let packet = Packet::Connect(Box::new(connect));
    assert_eq!(decode_one(&mut decoder, bytes), packet);
    assert_eq!(decoder.version(), Some(version));
    assert_encodes(version, &packet, bytes);
}

/// A packet that clients send: decoded by a server decoder after CONNECT.
#[track_caller]
fn client_vector(version: ProtocolVersion, bytes: &[u8], packet: Packet) {
    assert_eq!(decode_one(&mut connected_server(version), bytes), packet);
    assert_encodes(version, &packet, bytes);
}

/// A packet that servers send: decoded by a client decoder.
#[track_caller]
fn server_vector(version: ProtocolVersion, bytes: &[u8], packet: Packet) {
    assert_eq!(decode_one(&mut Decoder::client(version), bytes), packet);
    assert_encodes(version, &packet, bytes);
}

/// A packet that either side sends: checked with both decoders.
#[track_caller]
fn both_ways_vector(version: ProtocolVersion, bytes: &[u8], packet: Packet) {
    assert_eq!(decode_one(&mut Decoder::client(version), bytes), packet);
    client_vector(version, bytes, packet);
}

/// A longer form that the specification allows: decodes (both ways) to `packet`, which
/// the encoder writes as `canonical`.
#[track_caller]
fn long_form_vector(version: ProtocolVersion, long: &[u8], canonical: &[u8], packet: Packet) {
    assert_eq!(decode_one(&mut Decoder::client(version), long), packet);
    assert_eq!(decode_one(&mut connected_server(version), long), packet);
    assert_encodes(version, &packet, canonical);
}

#[path = "vectors/connect.rs"]
mod connect;
#[path = "vectors/control.rs"]
mod control;
#[path = "vectors/incremental.rs"]
mod incremental;
#[path = "vectors/publish.rs"]
mod publish;
#[path = "vectors/subscribe.rs"]
mod subscribe;
