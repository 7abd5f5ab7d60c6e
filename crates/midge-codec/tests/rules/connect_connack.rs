//! CONNECT and CONNACK: protocol name and level, flags, the fields the flags announce.

use super::*;

// ---------------------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------------------

/// conformance: v5 MQTT-3.1.2-3
/// conformance: v3.1.1 MQTT-3.1.2-3
#[test]
fn connect_reserved_flag_is_malformed() {
    for version in [V31, V311, V5] {
        for flags in [0x01, 0x03, 0xc3] {
            let payload = cat!(str16(b"c"), str16(b"u"), str16(b"p"));
            let bytes = connect(version, flags, &[], &payload);
            assert_rejects(
                first_packet(&bytes),
                DecodeError::ConnectReservedFlag,
                MALFORMED,
            );
        }
    }
}

/// conformance: v5 MQTT-3.1.2-11
/// conformance: v3.1.1 MQTT-3.1.2-11
/// conformance: v3.1.1 MQTT-3.1.2-13
#[test]
fn will_qos_without_will_flag_is_malformed() {
    for version in [V31, V311, V5] {
        for flags in [0x0a, 0x12, 0x1a] {
            let bytes = connect(version, flags, &[], &str16(b"c"));
            assert_rejects(
                first_packet(&bytes),
                DecodeError::WillFlagsWithoutWill,
                MALFORMED,
            );
        }
    }
}

/// conformance: v5 MQTT-3.1.2-13
/// conformance: v3.1.1 MQTT-3.1.2-11
/// conformance: v3.1.1 MQTT-3.1.2-15
#[test]
fn will_retain_without_will_flag_is_malformed() {
    for version in [V31, V311, V5] {
        let bytes = connect(version, 0x22, &[], &str16(b"c"));
        assert_rejects(
            first_packet(&bytes),
            DecodeError::WillFlagsWithoutWill,
            MALFORMED,
        );
    }
}

/// conformance: v3.1.1 MQTT-3.1.2-22
#[test]
fn password_without_username_is_malformed_in_3_1_1_and_3_1() {
    for version in [V31, V311] {
        let bytes = connect(version, 0x42, &[], &cat!(str16(b"c"), str16(b"pw")));
        assert_rejects(
            first_packet(&bytes),
            DecodeError::PasswordWithoutUsername,
            MALFORMED,
        );
    }
}

/// 5.0 §3.1.2.9 allows a password without a user name.
#[test]
fn password_without_username_is_accepted_in_5_0() {
    let bytes = connect(V5, 0x42, &[], &cat!(str16(b"c"), str16(b"pw")));
    let Packet::Connect(connect) = accepted(first_packet(&bytes)) else {
        panic!("not a CONNECT");
    };
    assert_eq!(connect.username, None);
    assert_eq!(connect.password.as_deref(), Some(&b"pw"[..]));
}

/// A protocol name other than "MQTT" (or "MQIsdp" for 3.1): refused with 0x84 Unsupported
/// Protocol Version, as the 5.0 statement allows.
///
/// conformance: v5 MQTT-3.1.2-1
/// conformance: v3.1.1 MQTT-3.1.2-1
#[test]
fn invalid_protocol_name_is_an_unsupported_protocol_version() {
    for (name, level) in [
        (&b"MQTX"[..], 4),
        (b"mqtt", 4),
        (b"MQTT ", 5),
        (b"", 4),
        (b"MQIsdpX", 3),
        (b"HTTP", 5),
    ] {
        let bytes = frame(
            0x10,
            &cat!(str16(name), [level, 0x02, 0x00, 0x3c], str16(b"c")),
        );
        let expected = DecodeError::InvalidProtocolName(String::from_utf8(name.to_vec()).unwrap());
        let mut decoder = Decoder::server();
        assert_rejects(
            decode_with(&mut decoder, &bytes),
            expected,
            UNSUPPORTED_VERSION,
        );
        assert_eq!(decoder.version(), None);
    }
}

/// conformance: v5 MQTT-3.1.2-2
/// conformance: v3.1.1 MQTT-3.1.2-2
#[test]
fn unsupported_protocol_level_is_an_unsupported_protocol_version() {
    for (name, level) in [
        (&b"MQTT"[..], 0),
        (b"MQTT", 3),
        (b"MQTT", 6),
        (b"MQTT", 0xff),
        (b"MQIsdp", 4),
        (b"MQIsdp", 5),
    ] {
        let bytes = frame(
            0x10,
            &cat!(str16(name), [level, 0x02, 0x00, 0x3c], str16(b"c")),
        );
        let expected = DecodeError::UnsupportedProtocolLevel(level);
        let mut decoder = Decoder::server();
        assert_rejects(
            decode_with(&mut decoder, &bytes),
            expected,
            UNSUPPORTED_VERSION,
        );
        assert_eq!(decoder.version(), None);
    }
}

/// conformance: v5 MQTT-3.1.2-9
/// conformance: v3.1.1 MQTT-3.1.2-9
#[test]
fn will_flag_without_will_fields_is_malformed() {
    for version in [V31, V311, V5] {
        // Will flag set, payload ends after the client identifier.
        let bytes = connect(version, 0x06, &[], &str16(b"c"));
        assert_rejects(first_packet(&bytes), DecodeError::Truncated, MALFORMED);
    }
}

/// conformance: v5 MQTT-3.1.2-17
/// conformance: v5 MQTT-3.1.2-19
/// conformance: v3.1.1 MQTT-3.1.2-19
/// conformance: v3.1.1 MQTT-3.1.2-21
#[test]
fn announced_username_or_password_missing_is_malformed() {
    for version in [V31, V311, V5] {
        let bytes = connect(version, 0x82, &[], &str16(b"c"));
        assert_rejects(first_packet(&bytes), DecodeError::Truncated, MALFORMED);
        let bytes = connect(version, 0xc2, &[], &cat!(str16(b"c"), str16(b"u")));
        assert_rejects(first_packet(&bytes), DecodeError::Truncated, MALFORMED);
    }
}

/// conformance: v5 MQTT-3.1.2-16
/// conformance: v5 MQTT-3.1.2-18
/// conformance: v3.1.1 MQTT-3.1.2-11
/// conformance: v3.1.1 MQTT-3.1.2-18
/// conformance: v3.1.1 MQTT-3.1.2-20
#[test]
fn unannounced_connect_fields_are_malformed() {
    for version in [V31, V311, V5] {
        // A user name without the user name flag.
        let bytes = connect(version, 0x02, &[], &cat!(str16(b"c"), str16(b"u")));
        assert_rejects(
            first_packet(&bytes),
            DecodeError::TrailingBytes(3),
            MALFORMED,
        );
        // A password without the password flag.
        let bytes = connect(
            version,
            0x82,
            &[],
            &cat!(str16(b"c"), str16(b"u"), str16(b"pw")),
        );
        assert_rejects(
            first_packet(&bytes),
            DecodeError::TrailingBytes(4),
            MALFORMED,
        );
    }
    // Will topic and message without the will flag.
    for version in [V31, V311] {
        let bytes = connect(
            version,
            0x02,
            &[],
            &cat!(str16(b"c"), str16(b"w"), str16(b"m")),
        );
        assert_rejects(
            first_packet(&bytes),
            DecodeError::TrailingBytes(6),
            MALFORMED,
        );
    }
}

/// conformance: v5 MQTT-3.1.3-3
/// conformance: v3.1.1 MQTT-3.1.3-3
#[test]
fn connect_without_client_identifier_is_malformed() {
    for version in [V31, V311, V5] {
        let bytes = connect(version, 0x02, &[], &[]);
        assert_rejects(first_packet(&bytes), DecodeError::Truncated, MALFORMED);
    }
}

// ---------------------------------------------------------------------------------------
// CONNACK
// ---------------------------------------------------------------------------------------

/// 3.1.1 §3.2.2.1 reserves bits 7-1 of the acknowledge flags too (without an id).
///
/// conformance: v5 MQTT-3.2.2-1
#[test]
fn connack_reserved_flags_are_malformed() {
    for version in [V31, V311, V5] {
        for flags in [0x02, 0x03, 0x80, 0xfe] {
            let body = if version.is_v5() {
                vec![flags, 0x00, 0x00]
            } else {
                vec![flags, 0x00]
            };
            let expected = DecodeError::ConnAckReservedFlags(flags);
            assert_rejects(
                from_server(version, &frame(0x20, &body)),
                expected,
                MALFORMED,
            );
        }
    }
}

/// 3.1.1 Table 3.1: return codes 6-255 are reserved.
#[test]
fn connack_return_code_above_5_is_malformed_in_3_1_1() {
    for version in [V31, V311] {
        for code in [0x06, 0x80, 0x87, 0xff] {
            let expected = DecodeError::InvalidReturnCode {
                packet: T::ConnAck,
                code,
            };
            let bytes = [0x20, 0x02, 0x00, code];
            assert_rejects(from_server(version, &bytes), expected, MALFORMED);
        }
    }
}

/// conformance: v5 MQTT-3.2.2-8
#[test]
fn connack_reason_code_outside_its_table_is_a_protocol_error() {
    for code in [0x01, 0x04, 0x18, 0x8e, 0x8f, 0xa2, 0x03, 0xff] {
        let expected = DecodeError::InvalidReasonCode {
            packet: T::ConnAck,
            code,
        };
        let bytes = [0x20, 0x03, 0x00, code, 0x00];
        assert_rejects(from_server(V5, &bytes), expected, PROTOCOL_ERROR);
    }
}
