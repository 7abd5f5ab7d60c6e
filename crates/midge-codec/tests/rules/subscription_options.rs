//! SUBSCRIBE and UNSUBSCRIBE payloads: at least one filter, the subscription options byte.

use super::*;

// ---------------------------------------------------------------------------------------
// SUBSCRIBE and UNSUBSCRIBE payloads
// ---------------------------------------------------------------------------------------

/// conformance: v5 MQTT-3.8.3-2
/// conformance: v3.1.1 MQTT-3.8.3-3
#[test]
fn subscribe_without_topic_filters_is_a_protocol_error() {
    for version in [V31, V311, V5] {
        let bytes = subscribe(version, 1, &[], &[]);
        let expected = DecodeError::NoTopicFilters(T::Subscribe);
        assert_rejects(from_client(version, &bytes), expected, PROTOCOL_ERROR);
    }
    // A property block but no filter.
    let bytes = subscribe(V5, 1, &[0x0b, 0x01], &[]);
    let expected = DecodeError::NoTopicFilters(T::Subscribe);
    assert_rejects(from_client(V5, &bytes), expected, PROTOCOL_ERROR);
}

/// conformance: v5 MQTT-3.10.3-2
/// conformance: v3.1.1 MQTT-3.10.3-2
#[test]
fn unsubscribe_without_topic_filters_is_a_protocol_error() {
    for version in [V31, V311, V5] {
        let bytes = unsubscribe(version, 1, &[], &[]);
        let expected = DecodeError::NoTopicFilters(T::Unsubscribe);
        assert_rejects(from_client(version, &bytes), expected, PROTOCOL_ERROR);
    }
}

/// 3.1.1 §3.8.3.1: bits 2-7 of the requested-QoS byte are reserved; a SUBSCRIBE with any
/// of them set is malformed (tag misprinted as [MQTT-3-8.3-4], not in the statement list).
#[test]
fn reserved_subscription_option_bits_are_malformed_in_3_1_1() {
    for version in [V31, V311] {
        for bit in 2..8 {
            let options = 0x01 | (1 << bit);
            let bytes = subscribe(version, 1, &[], &[(b"a", options)]);
            let expected = DecodeError::SubscriptionOptionsReserved(options);
            assert_rejects(from_client(version, &bytes), expected, MALFORMED);
        }
    }
}

/// conformance: v5 MQTT-3.8.3-5
#[test]
fn reserved_subscription_option_bits_6_and_7_are_malformed_in_5_0() {
    for options in [0x40, 0x80, 0xc0, 0x41, 0x9e] {
        let bytes = subscribe(V5, 1, &[], &[(b"a", 0x01), (b"b", options)]);
        let expected = DecodeError::SubscriptionOptionsReserved(options);
        assert_rejects(from_client(V5, &bytes), expected, MALFORMED);
    }
}

/// 5.0 §3.8.3.1: "It is a Protocol Error to send a Retain Handling value of 3."
#[test]
fn retain_handling_3_is_a_protocol_error() {
    for options in [0x30, 0x31, 0x3e] {
        let bytes = subscribe(V5, 1, &[], &[(b"a", options)]);
        assert_rejects(
            from_client(V5, &bytes),
            DecodeError::InvalidRetainHandling,
            PROTOCOL_ERROR,
        );
    }
}
