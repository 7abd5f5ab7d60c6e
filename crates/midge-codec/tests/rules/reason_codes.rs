//! Reason codes (5.0) and return codes (3.1/3.1.1) each packet may carry.

use super::*;

// ---------------------------------------------------------------------------------------
// Reason codes (5.0) and return codes (3.1.1)
// ---------------------------------------------------------------------------------------

#[track_caller]
fn assert_invalid_reason(decoded: Decoded, packet: PacketType, code: u8) {
    let expected = DecodeError::InvalidReasonCode { packet, code };
    assert_rejects(decoded, expected, PROTOCOL_ERROR);
}

/// conformance: v5 MQTT-3.4.2-1
/// conformance: v5 MQTT-3.5.2-1
#[test]
fn puback_and_pubrec_reason_codes_outside_their_table_are_protocol_errors() {
    for (first, packet) in [(0x40, T::PubAck), (0x50, T::PubRec)] {
        for code in [0x04, 0x01, 0x11, 0x92, 0x95, 0x03, 0xff] {
            let bytes = [first, 0x03, 0x00, 0x01, code];
            assert_invalid_reason(from_client(V5, &bytes), packet, code);
            assert_invalid_reason(from_server(V5, &bytes), packet, code);
        }
    }
}

/// conformance: v5 MQTT-3.6.2-1
/// conformance: v5 MQTT-3.7.2-1
#[test]
fn pubrel_and_pubcomp_reason_codes_outside_their_table_are_protocol_errors() {
    for (first, packet) in [(0x62, T::PubRel), (0x70, T::PubComp)] {
        for code in [0x10, 0x80, 0x91, 0x04, 0xff] {
            let bytes = [first, 0x04, 0x00, 0x01, code, 0x00];
            assert_invalid_reason(from_client(V5, &bytes), packet, code);
            assert_invalid_reason(from_server(V5, &bytes), packet, code);
        }
    }
}

/// conformance: v5 MQTT-3.14.2-1
#[test]
fn disconnect_reason_code_outside_its_table_is_a_protocol_error() {
    // Granted QoS 1, Granted QoS 2, No subscription existed, Continue authentication,
    // Packet Identifier not found, and undefined values.
    for code in [0x01, 0x02, 0x11, 0x18, 0x92, 0x03, 0xff] {
        let bytes = [0xe0, 0x01, code];
        assert_invalid_reason(from_client(V5, &bytes), T::Disconnect, code);
        assert_invalid_reason(from_server(V5, &bytes), T::Disconnect, code);
    }
}

/// conformance: v5 MQTT-3.9.3-2
#[test]
fn suback_reason_code_outside_its_table_is_a_protocol_error_in_5_0() {
    for code in [0x04, 0x10, 0x11, 0x81, 0x92, 0xff] {
        let bytes = [0x90, 0x05, 0x00, 0x01, 0x00, 0x01, code];
        assert_invalid_reason(from_server(V5, &bytes), T::SubAck, code);
    }
}

/// conformance: v3.1.1 MQTT-3.9.3-2
#[test]
fn suback_return_code_other_than_0_1_2_or_0x80_is_malformed_in_3_1_1() {
    for version in [V31, V311] {
        for code in [0x03, 0x81, 0x87, 0x8f, 0xff] {
            let bytes = [0x90, 0x04, 0x00, 0x01, 0x00, code];
            let expected = DecodeError::InvalidReturnCode {
                packet: T::SubAck,
                code,
            };
            assert_rejects(from_server(version, &bytes), expected, MALFORMED);
        }
    }
}

/// conformance: v5 MQTT-3.11.3-2
#[test]
fn unsuback_reason_code_outside_its_table_is_a_protocol_error() {
    for code in [0x01, 0x02, 0x10, 0x92, 0xa2, 0xff] {
        let bytes = [0xb0, 0x05, 0x00, 0x01, 0x00, 0x00, code];
        assert_invalid_reason(from_server(V5, &bytes), T::UnsubAck, code);
    }
}

/// conformance: v5 MQTT-3.15.2-1
#[test]
fn auth_reason_code_outside_its_table_is_a_protocol_error() {
    for code in [0x01, 0x04, 0x80, 0x87, 0x8c, 0xff] {
        let bytes = [0xf0, 0x02, code, 0x00];
        assert_invalid_reason(from_client(V5, &bytes), T::Auth, code);
        assert_invalid_reason(from_server(V5, &bytes), T::Auth, code);
    }
}
