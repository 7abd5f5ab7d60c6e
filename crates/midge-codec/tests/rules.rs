//! One test per validation rule of the decoder (and the encoder's refusals), each naming
//! the specification statements it checks with `conformance:` markers (see
//! shared/spec/README.md) and asserting both the exact [`DecodeError`] and the reason code
//! a broker closes the connection with: 0x81 Malformed Packet, 0x82 Protocol Error,
//! 0x84 Unsupported Protocol Version.
//!
//! Rules the specification states without a numbered id carry no marker; their doc
//! comments cite the section instead. Packets are built with small helpers (`frame`,
//! `connect`, `publish`, …) so that each test shows only the bytes that break its rule;
//! the helpers' output for valid input is pinned by the vectors in `tests/vectors.rs`.
//!
//! # Layout
//! This file holds the helpers; the tests live in `rules/`, one file per area:
//! `header.rs` (fixed header, remaining length), `strings.rs` (UTF-8), `topics.rs` (topic
//! names and filters), `qos_and_ids.rs` (packet identifiers, QoS, DUP), `properties.rs`,
//! `subscription_options.rs` (SUBSCRIBE and UNSUBSCRIBE payloads), `connect_connack.rs`,
//! `reason_codes.rs`, `direction.rs` (who sends what, CONNECT first) and `encode.rs`.

use bytes::{Bytes, BytesMut};
use midge_codec::{
    Auth, ByteString, Connect, DecodeError, Decoder, EncodeError, LastWill, Packet, PacketId,
    PacketType, PropertyId, ProtocolVersion, Publish, PublishProperties, QoS, ReasonCode, Role,
    Subscribe, SubscribeProperties, TopicFilter, TopicName, Unsubscribe, UnsubscribeProperties,
    WillProperties,
};

use PacketType as T;
use ProtocolVersion::{V5, V31, V311};

const MALFORMED: ReasonCode = ReasonCode::MalformedPacket;
const PROTOCOL_ERROR: ReasonCode = ReasonCode::ProtocolError;
const UNSUPPORTED_VERSION: ReasonCode = ReasonCode::UnsupportedProtocolVersion;

type Decoded = Result<Option<Packet>, DecodeError>;

/// Concatenates byte groups into one vector.
macro_rules! cat {
    ($($part:expr),* $(,)?) => {{
        let mut bytes: Vec<u8> = Vec::new();
        $( bytes.extend_from_slice(&$part[..]); )*
        bytes
    }};
}

// ---------------------------------------------------------------------------------------
// Helpers: building packets
// ---------------------------------------------------------------------------------------

/// A fixed header (first byte and Variable Byte Integer remaining length) and `body`.
fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![first];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        bytes.push(byte);
        if len == 0 {
            break;
        }
    }
    bytes.extend_from_slice(body);
    bytes
}

/// A two-byte-length-prefixed string or binary field.
fn str16(data: &[u8]) -> Vec<u8> {
    let mut bytes = (data.len() as u16).to_be_bytes().to_vec();
    bytes.extend_from_slice(data);
    bytes
}

/// A property block: its length (one byte here) and the properties.
fn block(props: &[u8]) -> Vec<u8> {
    assert!(props.len() < 128);
    cat!([props.len() as u8], props)
}

/// The protocol name and level of `version`.
fn protocol(version: ProtocolVersion) -> Vec<u8> {
    match version {
        V31 => cat!(str16(b"MQIsdp"), [3]),
        V311 => cat!(str16(b"MQTT"), [4]),
        V5 => cat!(str16(b"MQTT"), [5]),
    }
}

/// A CONNECT: protocol, `flags`, keep alive 60, (5.0) the properties `props`, then
/// `payload` (client identifier onwards).
fn connect(version: ProtocolVersion, flags: u8, props: &[u8], payload: &[u8]) -> Vec<u8> {
    let props = if version.is_v5() {
        block(props)
    } else {
        Vec::new()
    };
    frame(
        0x10,
        &cat!(protocol(version), [flags, 0x00, 0x3c], props, payload),
    )
}

/// A CONNECT with client id "c" and a will on `will_topic` with `will_props` (5.0).
fn connect_with_will(version: ProtocolVersion, will_topic: &[u8], will_props: &[u8]) -> Vec<u8> {
    let will_props = if version.is_v5() {
        block(will_props)
    } else {
        Vec::new()
    };
    let payload = cat!(str16(b"c"), will_props, str16(will_topic), str16(b"bye"));
    connect(version, 0x06, &[], &payload)
}

/// A PUBLISH with these fixed-header `flags`, `topic`, packet id, (5.0) `props` and
/// payload "p".
fn publish(
    version: ProtocolVersion,
    flags: u8,
    topic: &[u8],
    packet_id: Option<u16>,
    props: &[u8],
) -> Vec<u8> {
    let packet_id = packet_id.map_or(Vec::new(), |id| id.to_be_bytes().to_vec());
    let props = if version.is_v5() {
        block(props)
    } else {
        Vec::new()
    };
    frame(0x30 | flags, &cat!(str16(topic), packet_id, props, b"p"))
}

/// A SUBSCRIBE with packet id, (5.0) `props` and (filter, options byte) pairs.
fn subscribe(
    version: ProtocolVersion,
    packet_id: u16,
    props: &[u8],
    filters: &[(&[u8], u8)],
) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if version.is_v5() {
        body.extend(block(props));
    }
    for (filter, options) in filters {
        body.extend(str16(filter));
        body.push(*options);
    }
    frame(0x82, &body)
}

/// An UNSUBSCRIBE with packet id, (5.0) `props` and filters.
fn unsubscribe(
    version: ProtocolVersion,
    packet_id: u16,
    props: &[u8],
    filters: &[&[u8]],
) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    if version.is_v5() {
        body.extend(block(props));
    }
    for filter in filters {
        body.extend(str16(filter));
    }
    frame(0xa2, &body)
}

/// A one-filter SUBSCRIBE with default options and one UNSUBSCRIBE of `filter`.
fn subscribe_and_unsubscribe(version: ProtocolVersion, filter: &[u8]) -> [Vec<u8>; 2] {
    [
        subscribe(version, 1, &[], &[(filter, 0x00)]),
        unsubscribe(version, 1, &[], &[filter]),
    ]
}

/// A 5.0 CONNACK (Success) with `props`.
fn connack_v5(props: &[u8]) -> Vec<u8> {
    frame(0x20, &cat!([0x00, 0x00], block(props)))
}

/// A user property `name`=`value`.
fn user_property(name: &[u8], value: &[u8]) -> Vec<u8> {
    cat!([0x26], str16(name), str16(value))
}

// ---------------------------------------------------------------------------------------
// Helpers: decoding and asserting
// ---------------------------------------------------------------------------------------

/// A server decoder that has seen a CONNECT of `version`.
fn connected_server(version: ProtocolVersion) -> Decoder {
    let mut wire = BytesMut::new();
    Packet::Connect(Box::new(Connect::new(version, "x")))
        .encode(version, &mut wire)
        .unwrap();
    let mut decoder = Decoder::server();
    assert!(matches!(
        decoder.decode(&mut wire),
        Ok(Some(Packet::Connect(_)))
    ));
    assert_eq!(decoder.version(), Some(version));
    decoder
}

fn decode_with(decoder: &mut Decoder, bytes: &[u8]) -> Decoded {
    decoder.decode(&mut BytesMut::from(bytes))
}

/// Decodes `bytes` as sent by a client, on a server connection that speaks `version`.
fn from_client(version: ProtocolVersion, bytes: &[u8]) -> Decoded {
    decode_with(&mut connected_server(version), bytes)
}

/// Decodes `bytes` as sent by a server, on a client connection that speaks `version`.
fn from_server(version: ProtocolVersion, bytes: &[u8]) -> Decoded {
    decode_with(&mut Decoder::client(version), bytes)
}

/// Decodes `bytes` as the first packet of a new server connection.
fn first_packet(bytes: &[u8]) -> Decoded {
    decode_with(&mut Decoder::server(), bytes)
}

/// The decoder refused the packet with `expected`, which maps to `reason`.
#[track_caller]
fn assert_rejects(decoded: Decoded, expected: DecodeError, reason: ReasonCode) {
    match decoded {
        Err(err) => {
            assert_eq!(err, expected);
            assert_eq!(err.reason_code(), reason, "reason code of {err:?}");
        }
        Ok(packet) => panic!("accepted, expected {expected:?}: {packet:?}"),
    }
}

/// The decoder refused the packet; returns the error for matching on fields that the
/// test does not pin (a topic filter's `why`).
#[track_caller]
fn rejected(decoded: Decoded) -> DecodeError {
    match decoded {
        Err(err) => err,
        Ok(packet) => panic!("accepted: {packet:?}"),
    }
}

/// The decoder accepted one whole packet.
#[track_caller]
fn accepted(decoded: Decoded) -> Packet {
    match decoded {
        Ok(Some(packet)) => packet,
        Ok(None) => panic!("incomplete"),
        Err(err) => panic!("rejected: {err:?} ({err})"),
    }
}

#[track_caller]
fn assert_invalid_filter(decoded: Decoded, expected_filter: &str) {
    let err = rejected(decoded);
    assert!(
        matches!(&err, DecodeError::InvalidTopicFilter { filter, .. } if filter == expected_filter),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), MALFORMED);
}

#[test]
fn reason_codes_have_the_spec_values() {
    assert_eq!(MALFORMED as u8, 0x81);
    assert_eq!(PROTOCOL_ERROR as u8, 0x82);
    assert_eq!(UNSUPPORTED_VERSION as u8, 0x84);
    assert_eq!(ReasonCode::PacketTooLarge as u8, 0x95);
}

#[path = "rules/connect_connack.rs"]
mod connect_connack;
#[path = "rules/direction.rs"]
mod direction;
#[path = "rules/encode.rs"]
mod encode;
#[path = "rules/header.rs"]
mod header;
#[path = "rules/properties.rs"]
mod properties;
#[path = "rules/qos_and_ids.rs"]
mod qos_and_ids;
#[path = "rules/reason_codes.rs"]
mod reason_codes;
#[path = "rules/strings.rs"]
mod strings;
#[path = "rules/subscription_options.rs"]
mod subscription_options;
#[path = "rules/topics.rs"]
mod topics;
