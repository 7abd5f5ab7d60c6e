//! Packet identifiers, QoS and DUP.

use super::*;

// ---------------------------------------------------------------------------------------
// Packet identifiers
// ---------------------------------------------------------------------------------------

/// conformance: v5 MQTT-2.2.1-3
/// conformance: v5 MQTT-2.2.1-4
/// conformance: v3.1.1 MQTT-2.3.1-1
/// conformance: v3.1.1 MQTT-2.3.1-4
#[test]
fn zero_packet_id_on_qos1_or_qos2_publish_is_a_protocol_error() {
    for version in [V31, V311, V5] {
        for flags in [0x02, 0x04, 0x0b] {
            let bytes = publish(version, flags, b"t", Some(0), &[]);
            let expected = DecodeError::ZeroPacketId(T::Publish);
            assert_rejects(
                from_client(version, &bytes),
                expected.clone(),
                PROTOCOL_ERROR,
            );
            assert_rejects(from_server(version, &bytes), expected, PROTOCOL_ERROR);
        }
    }
}

/// conformance: v5 MQTT-2.2.1-5
/// conformance: v3.1.1 MQTT-2.3.1-6
#[test]
fn zero_packet_id_on_publish_acknowledgements_is_a_protocol_error() {
    let acks = [
        (T::PubAck, 0x40),
        (T::PubRec, 0x50),
        (T::PubRel, 0x62),
        (T::PubComp, 0x70),
    ];
    for version in [V31, V311, V5] {
        for (kind, first) in acks {
            let bytes = [first, 0x02, 0x00, 0x00];
            let expected = DecodeError::ZeroPacketId(kind);
            assert_rejects(
                from_client(version, &bytes),
                expected.clone(),
                PROTOCOL_ERROR,
            );
            assert_rejects(from_server(version, &bytes), expected, PROTOCOL_ERROR);
        }
    }
}

/// conformance: v5 MQTT-2.2.1-3
/// conformance: v3.1.1 MQTT-2.3.1-1
#[test]
fn zero_packet_id_on_subscribe_and_unsubscribe_is_a_protocol_error() {
    for version in [V31, V311, V5] {
        let bytes = subscribe(version, 0, &[], &[(b"a", 0)]);
        let expected = DecodeError::ZeroPacketId(T::Subscribe);
        assert_rejects(from_client(version, &bytes), expected, PROTOCOL_ERROR);
        let bytes = unsubscribe(version, 0, &[], &[b"a"]);
        let expected = DecodeError::ZeroPacketId(T::Unsubscribe);
        assert_rejects(from_client(version, &bytes), expected, PROTOCOL_ERROR);
    }
}

/// conformance: v5 MQTT-2.2.1-6
/// conformance: v3.1.1 MQTT-2.3.1-7
#[test]
fn zero_packet_id_on_suback_and_unsuback_is_a_protocol_error() {
    for version in [V31, V311, V5] {
        let props = if version.is_v5() { &[0x00][..] } else { &[] };
        let bytes = frame(0x90, &cat!([0x00, 0x00], props, [0x00]));
        let expected = DecodeError::ZeroPacketId(T::SubAck);
        assert_rejects(from_server(version, &bytes), expected, PROTOCOL_ERROR);
        let bytes = frame(0xb0, &cat!([0x00, 0x00], props));
        let expected = DecodeError::ZeroPacketId(T::UnsubAck);
        assert_rejects(from_server(version, &bytes), expected, PROTOCOL_ERROR);
    }
}

// ---------------------------------------------------------------------------------------
// QoS and DUP
// ---------------------------------------------------------------------------------------

/// conformance: v5 MQTT-3.3.1-4
/// conformance: v3.1.1 MQTT-3.3.1-4
#[test]
fn publish_with_both_qos_bits_set_is_malformed() {
    for version in [V31, V311, V5] {
        for flags in [0x06, 0x07, 0x0e, 0x0f] {
            let bytes = publish(version, flags, b"t", Some(1), &[]);
            assert_rejects(
                from_client(version, &bytes),
                DecodeError::InvalidQoS,
                MALFORMED,
            );
            assert_rejects(
                from_server(version, &bytes),
                DecodeError::InvalidQoS,
                MALFORMED,
            );
        }
    }
}

/// conformance: v5 MQTT-3.1.2-12
/// conformance: v3.1.1 MQTT-3.1.2-14
#[test]
fn will_qos_3_is_malformed() {
    for version in [V31, V311, V5] {
        let mut bytes = connect_with_will(version, b"w", &[]);
        let flags_at = 2 + protocol(version).len();
        assert_eq!(bytes[flags_at], 0x06);
        bytes[flags_at] |= 0x18;
        assert_rejects(first_packet(&bytes), DecodeError::InvalidQoS, MALFORMED);
    }
}

/// 3.1.1 §3.8.3.1: a SUBSCRIBE whose requested QoS is not 0, 1 or 2 is malformed (the
/// statement's tag is misprinted as [MQTT-3-8.3-4] in the standard and is not in the
/// statement list).
#[test]
fn subscription_qos_3_is_malformed_in_3_1_1() {
    for version in [V31, V311] {
        let bytes = subscribe(version, 1, &[], &[(b"a", 0x01), (b"b", 0x03)]);
        assert_rejects(
            from_client(version, &bytes),
            DecodeError::InvalidQoS,
            MALFORMED,
        );
    }
}

/// 5.0 §3.8.3.1: "It is a Protocol Error if the Maximum QoS field has the value 3."
#[test]
fn subscription_qos_3_is_a_protocol_error_in_5_0() {
    for options in [0x03, 0x07, 0x0f, 0x23] {
        let bytes = subscribe(V5, 1, &[], &[(b"a", options)]);
        let expected = DecodeError::InvalidSubscriptionQoS;
        assert_rejects(from_client(V5, &bytes), expected, PROTOCOL_ERROR);
    }
}

/// conformance: v5 MQTT-3.3.1-2
/// conformance: v5 MQTT-4.3.1-1
/// conformance: v3.1.1 MQTT-3.3.1-2
#[test]
fn dup_on_qos0_publish_is_malformed() {
    for version in [V31, V311, V5] {
        for flags in [0x08, 0x09] {
            let bytes = publish(version, flags, b"t", None, &[]);
            assert_rejects(
                from_client(version, &bytes),
                DecodeError::DupOnQoS0,
                MALFORMED,
            );
            assert_rejects(
                from_server(version, &bytes),
                DecodeError::DupOnQoS0,
                MALFORMED,
            );
        }
    }
}
