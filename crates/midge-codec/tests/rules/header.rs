//! Fixed header rules: reserved flags and packet types, the remaining length.

use super::*;

// ---------------------------------------------------------------------------------------
// Fixed header: reserved flags and packet types
// ---------------------------------------------------------------------------------------

/// conformance: v5 MQTT-2.1.3-1
/// conformance: v5 MQTT-3.6.1-1
/// conformance: v3.1.1 MQTT-2.2.2-1
/// conformance: v3.1.1 MQTT-2.2.2-2
/// conformance: v3.1.1 MQTT-3.6.1-1
#[test]
fn pubrel_with_flags_other_than_0010_is_malformed() {
    for version in [V31, V311, V5] {
        for flags in (0..16).filter(|&f| f != 0b0010) {
            let bytes = frame(0x60 | flags, &[0x00, 0x01]);
            let expected = DecodeError::ReservedFlags {
                packet: T::PubRel,
                flags,
            };
            assert_rejects(from_client(version, &bytes), expected.clone(), MALFORMED);
            assert_rejects(from_server(version, &bytes), expected, MALFORMED);
        }
    }
}

/// conformance: v5 MQTT-2.1.3-1
/// conformance: v5 MQTT-3.8.1-1
/// conformance: v3.1.1 MQTT-2.2.2-1
/// conformance: v3.1.1 MQTT-2.2.2-2
/// conformance: v3.1.1 MQTT-3.8.1-1
#[test]
fn subscribe_with_flags_other_than_0010_is_malformed() {
    for version in [V31, V311, V5] {
        for flags in (0..16).filter(|&f| f != 0b0010) {
            let mut bytes = subscribe(version, 1, &[], &[(b"a", 0)]);
            bytes[0] = 0x80 | flags;
            let expected = DecodeError::ReservedFlags {
                packet: T::Subscribe,
                flags,
            };
            assert_rejects(from_client(version, &bytes), expected, MALFORMED);
        }
    }
}

/// conformance: v5 MQTT-2.1.3-1
/// conformance: v5 MQTT-3.10.1-1
/// conformance: v3.1.1 MQTT-2.2.2-1
/// conformance: v3.1.1 MQTT-2.2.2-2
/// conformance: v3.1.1 MQTT-3.10.1-1
#[test]
fn unsubscribe_with_flags_other_than_0010_is_malformed() {
    for version in [V31, V311, V5] {
        for flags in (0..16).filter(|&f| f != 0b0010) {
            let mut bytes = unsubscribe(version, 1, &[], &[b"a"]);
            bytes[0] = 0xa0 | flags;
            let expected = DecodeError::ReservedFlags {
                packet: T::Unsubscribe,
                flags,
            };
            assert_rejects(from_client(version, &bytes), expected, MALFORMED);
        }
    }
}

/// Every packet type other than PUBLISH, PUBREL, SUBSCRIBE and UNSUBSCRIBE has flags 0000;
/// the first byte alone is enough to refuse another value.
///
/// conformance: v5 MQTT-2.1.3-1
/// conformance: v5 MQTT-3.14.1-1
/// conformance: v3.1.1 MQTT-2.2.2-1
/// conformance: v3.1.1 MQTT-2.2.2-2
/// conformance: v3.1.1 MQTT-3.14.1-1
#[test]
fn packets_with_flags_0000_reject_any_set_flag() {
    let client_sent = [
        (T::PubAck, 0x40),
        (T::PubRec, 0x50),
        (T::PubComp, 0x70),
        (T::PingReq, 0xc0),
        (T::Disconnect, 0xe0),
    ];
    let server_sent = [
        (T::ConnAck, 0x20),
        (T::PubAck, 0x40),
        (T::PubRec, 0x50),
        (T::PubComp, 0x70),
        (T::SubAck, 0x90),
        (T::UnsubAck, 0xb0),
        (T::PingResp, 0xd0),
    ];
    for flags in 1..16u8 {
        for version in [V31, V311, V5] {
            for (packet, first) in client_sent {
                let expected = DecodeError::ReservedFlags { packet, flags };
                assert_rejects(from_client(version, &[first | flags]), expected, MALFORMED);
            }
            for (packet, first) in server_sent {
                let expected = DecodeError::ReservedFlags { packet, flags };
                assert_rejects(from_server(version, &[first | flags]), expected, MALFORMED);
            }
            let mut bytes = connect(version, 0x02, &[], &str16(b"c"));
            bytes[0] |= flags;
            let expected = DecodeError::ReservedFlags {
                packet: T::Connect,
                flags,
            };
            assert_rejects(first_packet(&bytes), expected, MALFORMED);
        }
        // DISCONNECT from a 5.0 server.
        let expected = DecodeError::ReservedFlags {
            packet: T::Disconnect,
            flags,
        };
        assert_rejects(from_server(V5, &[0xe0 | flags, 0x00]), expected, MALFORMED);
    }
}

/// conformance: v5 MQTT-2.1.3-1
/// conformance: v5 MQTT-3.15.1-1
#[test]
fn auth_with_flags_other_than_0000_is_malformed() {
    for flags in 1..16u8 {
        let expected = DecodeError::ReservedFlags {
            packet: T::Auth,
            flags,
        };
        let bytes = [0xf0 | flags, 0x00];
        assert_rejects(from_client(V5, &bytes), expected.clone(), MALFORMED);
        assert_rejects(from_server(V5, &bytes), expected, MALFORMED);
    }
}

/// Packet type 0 is reserved in every version (3.1.1 §2.2.1, 5.0 §2.1.2).
#[test]
fn packet_type_0_is_malformed() {
    for bytes in [&[0x00, 0x00][..], &[0x00], &[0x0f, 0x00]] {
        assert_rejects(
            first_packet(bytes),
            DecodeError::ReservedPacketType(0),
            MALFORMED,
        );
        for version in [V31, V311, V5] {
            let expected = DecodeError::ReservedPacketType(0);
            assert_rejects(from_client(version, bytes), expected.clone(), MALFORMED);
            assert_rejects(from_server(version, bytes), expected, MALFORMED);
        }
    }
}

/// Packet type 15 is AUTH in 5.0 and reserved before (3.1.1 §2.2.1).
#[test]
fn packet_type_15_is_malformed_before_5_0() {
    for version in [V31, V311] {
        for bytes in [&[0xf0, 0x00][..], &[0xf0, 0x01, 0x18]] {
            let expected = DecodeError::ReservedPacketType(15);
            assert_rejects(from_client(version, bytes), expected.clone(), MALFORMED);
            assert_rejects(from_server(version, bytes), expected, MALFORMED);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Remaining length
// ---------------------------------------------------------------------------------------

/// conformance: v5 MQTT-1.5.5-1
#[test]
fn overlong_variable_byte_integers_are_malformed() {
    // Remaining length 0 written as 0x80 0x00, and 2 as 0x82 0x80 0x00.
    assert_rejects(
        first_packet(&[0x10, 0x80, 0x00]),
        DecodeError::VarIntOverlong,
        MALFORMED,
    );
    for version in [V311, V5] {
        let bytes = [0xc0, 0x80, 0x00];
        assert_rejects(
            from_client(version, &bytes),
            DecodeError::VarIntOverlong,
            MALFORMED,
        );
        let bytes = [0x40, 0x82, 0x80, 0x00, 0x00, 0x01];
        assert_rejects(
            from_server(version, &bytes),
            DecodeError::VarIntOverlong,
            MALFORMED,
        );
    }
    // A property length of 0 written as 0x80 0x00.
    let bytes = frame(0x30, &cat!(str16(b"t"), [0x80, 0x00], b"p"));
    assert_rejects(
        from_client(V5, &bytes),
        DecodeError::VarIntOverlong,
        MALFORMED,
    );
    // A Subscription Identifier of 1 written as 0x81 0x00.
    let bytes = subscribe(V5, 1, &[0x0b, 0x81, 0x00], &[(b"a", 0)]);
    assert_rejects(
        from_client(V5, &bytes),
        DecodeError::VarIntOverlong,
        MALFORMED,
    );
}

/// A Variable Byte Integer has at most four bytes (§1.5.5 of 5.0, §2.2.3 of 3.1.1); a
/// fourth byte with the continuation bit is refused before a fifth arrives.
#[test]
fn five_byte_remaining_length_is_malformed() {
    for version in [V311, V5] {
        let mut decoder = Decoder::client(version);
        assert_eq!(
            decode_with(&mut decoder, &[0x30, 0xff, 0xff, 0xff]),
            Ok(None)
        );
        for bytes in [
            &[0x30, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x30, 0x80, 0x80, 0x80, 0x80, 0x00],
        ] {
            assert_rejects(
                from_server(version, bytes),
                DecodeError::VarIntTooLong,
                MALFORMED,
            );
            assert_rejects(
                from_client(version, bytes),
                DecodeError::VarIntTooLong,
                MALFORMED,
            );
        }
    }
    let bytes = [0x10, 0xff, 0xff, 0xff, 0xff, 0x7f];
    assert_rejects(first_packet(&bytes), DecodeError::VarIntTooLong, MALFORMED);
}

/// A remaining length that ends inside a field (§2.1.4 of 5.0, §2.2.3 of 3.1.1).
///
/// conformance: v5 MQTT-3.1.4-1
/// conformance: v3.1.1 MQTT-3.1.4-1
#[test]
fn remaining_length_shorter_than_the_fields_is_malformed() {
    use DecodeError::Truncated;
    for version in [V31, V311, V5] {
        // PUBACK with one byte of packet identifier.
        assert_rejects(
            from_client(version, &[0x40, 0x01, 0x00]),
            Truncated,
            MALFORMED,
        );
        // CONNACK with the flags only.
        assert_rejects(
            from_server(version, &[0x20, 0x01, 0x00]),
            Truncated,
            MALFORMED,
        );
        // QoS 1 PUBLISH that ends after its topic name.
        let bytes = frame(0x32, &str16(b"a/b"));
        assert_rejects(from_client(version, &bytes), Truncated, MALFORMED);
        // SUBSCRIBE whose filter ends early, and one without an options byte.
        let props = if version.is_v5() { &[0x00][..] } else { &[] };
        let bytes = frame(0x82, &cat!([0x00, 0x01], props, [0x00, 0x03], b"a/"));
        assert_rejects(from_client(version, &bytes), Truncated, MALFORMED);
        let bytes = frame(0x82, &cat!([0x00, 0x01], props, str16(b"a/b")));
        assert_rejects(from_client(version, &bytes), Truncated, MALFORMED);
        // CONNECT whose client identifier is cut short.
        let mut bytes = connect(version, 0x02, &[], &str16(b"abc"));
        bytes[1] -= 1;
        bytes.pop();
        assert_rejects(first_packet(&bytes), Truncated, MALFORMED);
    }
    // 5.0: a property length that runs past the end of the packet.
    let bytes = [0x40, 0x05, 0x00, 0x01, 0x00, 0x05, 0x1f];
    assert_rejects(from_client(V5, &bytes), Truncated, MALFORMED);
    // 5.0: a property whose value is cut short by the property length.
    let bytes = frame(0x30, &cat!(str16(b"t"), [0x03, 0x02, 0x00, 0x00], b"p"));
    assert_rejects(from_client(V5, &bytes), Truncated, MALFORMED);
}

/// Bytes after the last field of a packet without a free-form payload.
#[test]
fn remaining_length_longer_than_the_fields_is_malformed() {
    use DecodeError::TrailingBytes;
    for version in [V31, V311, V5] {
        let pingreq = [0xc0, 0x01, 0x00];
        assert_rejects(from_client(version, &pingreq), TrailingBytes(1), MALFORMED);
        let pingresp = [0xd0, 0x02, 0x00, 0x00];
        assert_rejects(from_server(version, &pingresp), TrailingBytes(2), MALFORMED);
        let bytes = connect(version, 0x02, &[], &cat!(str16(b"c"), [0x00]));
        assert_rejects(first_packet(&bytes), TrailingBytes(1), MALFORMED);
    }
    for version in [V31, V311] {
        // Acknowledgements of 3.1.1 have exactly a packet identifier.
        for first in [0x40, 0x50, 0x62, 0x70] {
            let bytes = [first, 0x03, 0x00, 0x01, 0x00];
            assert_rejects(from_client(version, &bytes), TrailingBytes(1), MALFORMED);
        }
        let unsuback = [0xb0, 0x03, 0x00, 0x01, 0x00];
        assert_rejects(from_server(version, &unsuback), TrailingBytes(1), MALFORMED);
        let connack = [0x20, 0x03, 0x00, 0x00, 0x00];
        assert_rejects(from_server(version, &connack), TrailingBytes(1), MALFORMED);
        let disconnect = [0xe0, 0x01, 0x00];
        assert_rejects(
            from_client(version, &disconnect),
            TrailingBytes(1),
            MALFORMED,
        );
    }
    // 5.0: bytes after the property block.
    let puback = [0x40, 0x05, 0x00, 0x01, 0x00, 0x00, 0xff];
    assert_rejects(from_client(V5, &puback), TrailingBytes(1), MALFORMED);
    let disconnect = [0xe0, 0x03, 0x00, 0x00, 0xff];
    assert_rejects(from_client(V5, &disconnect), TrailingBytes(1), MALFORMED);
    let mut connack = cat!(connack_v5(&[]), [0x00]);
    connack[1] += 1;
    assert_rejects(from_server(V5, &connack), TrailingBytes(1), MALFORMED);
    let auth = [0xf0, 0x03, 0x18, 0x00, 0x00];
    assert_rejects(from_server(V5, &auth), TrailingBytes(1), MALFORMED);
}

/// 5.0 §3.15.2.1: the Reason Code and Property Length of AUTH "can be omitted if the
/// Reason Code is 0x00 (Success) and there are no Properties", so both or neither; AUTH
/// has no "Remaining Length less than 2" allowance like DISCONNECT (§3.14.2.2.1).
#[test]
fn auth_reason_code_without_property_length_is_malformed() {
    for code in [0x00, 0x18, 0x19] {
        let bytes = [0xf0, 0x01, code];
        assert_rejects(from_client(V5, &bytes), DecodeError::Truncated, MALFORMED);
        assert_rejects(from_server(V5, &bytes), DecodeError::Truncated, MALFORMED);
    }
    // DISCONNECT and the acknowledgements may stop after the reason code.
    accepted(from_client(V5, &[0xe0, 0x01, 0x04]));
    accepted(from_client(V5, &[0x40, 0x03, 0x00, 0x01, 0x10]));
}
