//! Which side may send which packet, and CONNECT first.

use super::*;

// ---------------------------------------------------------------------------------------
// Direction and order
// ---------------------------------------------------------------------------------------

/// CONNACK, SUBACK, UNSUBACK and PINGRESP flow from server to client only (the direction
/// column of 5.0 §2.1.2 and 3.1.1 §2.2.1), refused from the first byte.
#[test]
fn server_refuses_packets_that_only_servers_send() {
    let server_only = [
        (T::ConnAck, 0x20),
        (T::SubAck, 0x90),
        (T::UnsubAck, 0xb0),
        (T::PingResp, 0xd0),
    ];
    for (packet, first) in server_only {
        let expected = DecodeError::UnexpectedPacket {
            packet,
            sender: Role::Client,
        };
        assert_rejects(first_packet(&[first]), expected.clone(), PROTOCOL_ERROR);
        for version in [V31, V311, V5] {
            assert_rejects(
                from_client(version, &[first]),
                expected.clone(),
                PROTOCOL_ERROR,
            );
        }
    }
}

/// CONNECT, SUBSCRIBE, UNSUBSCRIBE and PINGREQ flow from client to server only.
#[test]
fn client_refuses_packets_that_only_clients_send() {
    let client_only = [
        (T::Connect, 0x10),
        (T::Subscribe, 0x82),
        (T::Unsubscribe, 0xa2),
        (T::PingReq, 0xc0),
    ];
    for (packet, first) in client_only {
        let expected = DecodeError::UnexpectedPacket {
            packet,
            sender: Role::Server,
        };
        for version in [V31, V311, V5] {
            assert_rejects(
                from_server(version, &[first]),
                expected.clone(),
                PROTOCOL_ERROR,
            );
        }
    }
}

/// In 3.1/3.1.1 DISCONNECT is "sent from the Client to the Server" (3.1.1 §3.14); a 5.0
/// server may send it.
#[test]
fn client_refuses_disconnect_from_a_3_1_1_server() {
    for version in [V31, V311] {
        let expected = DecodeError::UnexpectedPacket {
            packet: T::Disconnect,
            sender: Role::Server,
        };
        assert_rejects(
            from_server(version, &[0xe0, 0x00]),
            expected,
            PROTOCOL_ERROR,
        );
    }
    accepted(from_server(V5, &[0xe0, 0x00]));
}

/// conformance: v5 MQTT-3.1.0-1
/// conformance: v3.1.1 MQTT-3.1.0-1
#[test]
fn server_refuses_any_packet_before_connect() {
    let before_connect: [(PacketType, Vec<u8>); 8] = [
        (T::Publish, frame(0x30, &cat!(str16(b"t"), b"p"))),
        (T::PubAck, vec![0x40, 0x02, 0x00, 0x01]),
        (T::PubRel, vec![0x62, 0x02, 0x00, 0x01]),
        (
            T::Subscribe,
            frame(0x82, &cat!([0x00, 0x01], str16(b"a"), [0x00])),
        ),
        (
            T::Unsubscribe,
            frame(0xa2, &cat!([0x00, 0x01], str16(b"a"))),
        ),
        (T::PingReq, vec![0xc0, 0x00]),
        (T::Disconnect, vec![0xe0, 0x00]),
        (T::Auth, vec![0xf0, 0x00]),
    ];
    for (kind, bytes) in before_connect {
        let expected = DecodeError::ExpectedConnect(kind);
        assert_rejects(first_packet(&bytes), expected, PROTOCOL_ERROR);
    }
}

/// The server decodes every later packet in the version its CONNECT named: a 5.0-shaped
/// PUBACK (with a reason code) is too long for 3.1.1.
#[test]
fn server_decodes_in_the_version_the_connect_named() {
    let puback = [0x40, 0x03, 0x00, 0x01, 0x10];
    assert_rejects(
        from_client(V311, &puback),
        DecodeError::TrailingBytes(1),
        MALFORMED,
    );
    assert!(
        matches!(accepted(from_client(V5, &puback)), Packet::PubAck(ack)
        if ack.reason_code == ReasonCode::NoMatchingSubscribers)
    );
}
