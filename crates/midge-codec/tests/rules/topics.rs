//! Topic names and topic filters, shared subscriptions included.

use super::*;

// ---------------------------------------------------------------------------------------
// Topic names
// ---------------------------------------------------------------------------------------

/// conformance: v5 MQTT-3.3.2-2
/// conformance: v5 MQTT-4.7.0-1
/// conformance: v3.1.1 MQTT-3.3.2-2
/// conformance: v3.1.1 MQTT-4.7.1-1
#[test]
fn wildcards_in_publish_topic_name_are_malformed() {
    for version in [V31, V311, V5] {
        for topic in ["a/+", "+", "#", "a/#", "a+b", "sport/#/x"] {
            let bytes = publish(version, 0, topic.as_bytes(), None, &[]);
            let expected = DecodeError::WildcardInTopicName(topic.to_string());
            assert_rejects(from_client(version, &bytes), expected.clone(), MALFORMED);
            assert_rejects(from_server(version, &bytes), expected, MALFORMED);
        }
    }
}

/// conformance: v5 MQTT-4.7.0-1
/// conformance: v3.1.1 MQTT-4.7.1-1
#[test]
fn wildcard_in_will_topic_is_malformed() {
    for version in [V31, V311, V5] {
        let bytes = connect_with_will(version, b"a/#", &[]);
        let expected = DecodeError::WildcardInTopicName("a/#".to_string());
        assert_rejects(first_packet(&bytes), expected, MALFORMED);
    }
}

/// conformance: v5 MQTT-3.3.2-14
#[test]
fn wildcard_in_response_topic_is_malformed() {
    let response_topic = cat!([0x08], str16(b"r/+"));
    let expected = DecodeError::WildcardInTopicName("r/+".to_string());
    let bytes = publish(V5, 0, b"t", None, &response_topic);
    assert_rejects(from_client(V5, &bytes), expected.clone(), MALFORMED);
    assert_rejects(from_server(V5, &bytes), expected.clone(), MALFORMED);
    let bytes = connect_with_will(V5, b"w", &response_topic);
    assert_rejects(first_packet(&bytes), expected, MALFORMED);
}

/// conformance: v3.1.1 MQTT-4.7.3-1
#[test]
fn empty_topic_name_is_a_protocol_error_in_3_1_1() {
    for version in [V31, V311] {
        let bytes = [0x30, 0x02, 0x00, 0x00];
        assert_rejects(
            from_client(version, &bytes),
            DecodeError::EmptyTopicName,
            PROTOCOL_ERROR,
        );
        assert_rejects(
            from_server(version, &bytes),
            DecodeError::EmptyTopicName,
            PROTOCOL_ERROR,
        );
    }
}

/// "It is a Protocol Error if the Topic Name is zero length and there is no Topic Alias"
/// (5.0 §3.3.2.1).
///
/// conformance: v5 MQTT-4.7.3-1
#[test]
fn empty_topic_name_without_topic_alias_is_a_protocol_error_in_5_0() {
    let without_alias = publish(V5, 0, b"", None, &[]);
    let with_other_property = publish(V5, 0, b"", None, &[0x02, 0x00, 0x00, 0x00, 0x05]);
    for bytes in [without_alias, with_other_property] {
        assert_rejects(
            from_client(V5, &bytes),
            DecodeError::EmptyTopicName,
            PROTOCOL_ERROR,
        );
        assert_rejects(
            from_server(V5, &bytes),
            DecodeError::EmptyTopicName,
            PROTOCOL_ERROR,
        );
    }
}

/// The 5.0 exception to [MQTT-4.7.3-1]: an empty topic name with a Topic Alias (§3.3.2.3.4).
#[test]
fn empty_topic_name_with_topic_alias_is_accepted_in_5_0() {
    let bytes = publish(V5, 0x02, b"", Some(1), &[0x23, 0x00, 0x07]);
    for decoded in [from_client(V5, &bytes), from_server(V5, &bytes)] {
        let Packet::Publish(publish) = accepted(decoded) else {
            panic!("not a PUBLISH");
        };
        assert!(publish.topic.is_empty());
        assert_eq!(publish.properties.topic_alias, Some(7));
    }
    // The Topic Alias is a 5.0 property: in 3.1.1 the same topic name stays empty.
    let bytes = [0x30, 0x05, 0x00, 0x00, 0x03, 0x23, 0x00];
    assert_rejects(
        from_client(V311, &bytes),
        DecodeError::EmptyTopicName,
        PROTOCOL_ERROR,
    );
}

/// conformance: v5 MQTT-4.7.3-1
/// conformance: v3.1.1 MQTT-4.7.3-1
#[test]
fn empty_will_topic_is_a_protocol_error() {
    for version in [V31, V311, V5] {
        let bytes = connect_with_will(version, b"", &[]);
        assert_rejects(
            first_packet(&bytes),
            DecodeError::EmptyTopicName,
            PROTOCOL_ERROR,
        );
    }
}

// ---------------------------------------------------------------------------------------
// Topic filters
// ---------------------------------------------------------------------------------------

/// conformance: v5 MQTT-4.7.1-1
/// conformance: v3.1.1 MQTT-4.7.1-2
#[test]
fn multi_level_wildcard_not_alone_in_the_last_level_is_malformed() {
    for version in [V31, V311, V5] {
        for filter in ["a/#/b", "#/a", "a#", "a/b#", "##", "a/#b"] {
            for bytes in subscribe_and_unsubscribe(version, filter.as_bytes()) {
                assert_invalid_filter(from_client(version, &bytes), filter);
            }
        }
    }
}

/// conformance: v5 MQTT-4.7.1-2
/// conformance: v3.1.1 MQTT-4.7.1-3
#[test]
fn single_level_wildcard_not_alone_in_its_level_is_malformed() {
    for version in [V31, V311, V5] {
        for filter in ["a+", "+a", "a/b+/c", "++", "+/a+"] {
            for bytes in subscribe_and_unsubscribe(version, filter.as_bytes()) {
                assert_invalid_filter(from_client(version, &bytes), filter);
            }
        }
    }
}

/// conformance: v5 MQTT-4.7.3-1
/// conformance: v3.1.1 MQTT-4.7.3-1
#[test]
fn empty_topic_filter_is_malformed() {
    for version in [V31, V311, V5] {
        for bytes in subscribe_and_unsubscribe(version, b"") {
            assert_invalid_filter(from_client(version, &bytes), "");
        }
    }
}

/// The wildcard rules leave these filters valid.
///
/// conformance: v5 MQTT-4.7.1-1
/// conformance: v5 MQTT-4.7.1-2
/// conformance: v3.1.1 MQTT-4.7.1-2
/// conformance: v3.1.1 MQTT-4.7.1-3
#[test]
fn well_placed_wildcards_are_accepted() {
    for version in [V31, V311, V5] {
        for filter in ["#", "+", "+/+", "a/+/#", "/", "a//b", "+/#", "/#", "$SYS/#"] {
            for bytes in subscribe_and_unsubscribe(version, filter.as_bytes()) {
                accepted(from_client(version, &bytes));
            }
        }
    }
}

/// conformance: v5 MQTT-4.8.2-1
/// conformance: v5 MQTT-4.8.2-2
#[test]
fn invalid_shared_subscription_filters_are_malformed() {
    for filter in [
        "$share/",
        "$share//a",
        "$share/g",
        "$share/g/",
        "$share/g+/a",
        "$share/g#/a",
        "$share/+/a",
    ] {
        for bytes in subscribe_and_unsubscribe(V5, filter.as_bytes()) {
            let expected = DecodeError::InvalidSharedSubscription(filter.to_string());
            assert_rejects(from_client(V5, &bytes), expected, MALFORMED);
        }
    }
    // The filter after the share name follows the wildcard rules.
    for bytes in subscribe_and_unsubscribe(V5, b"$share/g/a#") {
        assert_invalid_filter(from_client(V5, &bytes), "a#");
    }
    for bytes in subscribe_and_unsubscribe(V5, b"$share/g/+/#") {
        accepted(from_client(V5, &bytes));
    }
}

/// conformance: v5 MQTT-3.8.3-4
#[test]
fn no_local_on_shared_subscription_is_a_protocol_error() {
    let bytes = subscribe(V5, 1, &[], &[(b"a", 0x04), (b"$share/g/a", 0x05)]);
    let expected = DecodeError::NoLocalOnSharedSubscription("$share/g/a".to_string());
    assert_rejects(from_client(V5, &bytes), expected, PROTOCOL_ERROR);
    // No Local on an ordinary subscription is fine.
    accepted(from_client(V5, &subscribe(V5, 1, &[], &[(b"a", 0x04)])));
}
