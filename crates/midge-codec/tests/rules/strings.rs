//! MQTT UTF-8 strings: well-formed UTF-8, no surrogates, no U+0000, BOM kept.

use super::*;

// ---------------------------------------------------------------------------------------
// UTF-8 strings
// ---------------------------------------------------------------------------------------

/// Ill-formed sequences: a stray continuation byte, a lone lead byte, an overlong
/// encoding of '/', a sequence cut short, a code point above U+10FFFF.
const ILL_FORMED: [&[u8]; 5] = [
    &[0x61, 0x80],
    &[0xff],
    &[0xc0, 0xaf],
    &[0x61, 0xe2, 0x82],
    &[0xf4, 0x90, 0x80, 0x80],
];

/// The encodings of U+D800 and U+DFFF (CESU-8 style surrogates).
const SURROGATES: [&[u8]; 2] = [&[0xed, 0xa0, 0x80], &[0xed, 0xbf, 0xbf]];

/// conformance: v5 MQTT-1.5.4-1
/// conformance: v5 MQTT-3.3.2-1
/// conformance: v3.1.1 MQTT-1.5.3-1
/// conformance: v3.1.1 MQTT-3.3.2-1
#[test]
fn ill_formed_utf8_in_topic_name_is_malformed() {
    for version in [V31, V311, V5] {
        for topic in ILL_FORMED {
            let bytes = publish(version, 0, topic, None, &[]);
            assert_rejects(
                from_client(version, &bytes),
                DecodeError::InvalidUtf8,
                MALFORMED,
            );
            assert_rejects(
                from_server(version, &bytes),
                DecodeError::InvalidUtf8,
                MALFORMED,
            );
        }
    }
}

/// conformance: v5 MQTT-1.5.4-1
/// conformance: v5 MQTT-1.5.7-1
/// conformance: v5 MQTT-3.1.3-4
/// conformance: v3.1.1 MQTT-1.5.3-1
/// conformance: v3.1.1 MQTT-3.1.3-4
#[test]
fn encoded_surrogates_in_strings_are_malformed() {
    use DecodeError::InvalidUtf8;
    for version in [V31, V311, V5] {
        for surrogate in SURROGATES {
            let topic = cat!(b"a/", surrogate);
            let bytes = publish(version, 0, &topic, None, &[]);
            assert_rejects(from_server(version, &bytes), InvalidUtf8, MALFORMED);
            let bytes = connect(version, 0x02, &[], &str16(surrogate));
            assert_rejects(first_packet(&bytes), InvalidUtf8, MALFORMED);
            let [sub, unsub] = subscribe_and_unsubscribe(version, &topic);
            assert_rejects(from_client(version, &sub), InvalidUtf8, MALFORMED);
            assert_rejects(from_client(version, &unsub), InvalidUtf8, MALFORMED);
        }
    }
    for surrogate in SURROGATES {
        let bytes = publish(V5, 0, b"t", None, &user_property(b"k", surrogate));
        assert_rejects(from_client(V5, &bytes), InvalidUtf8, MALFORMED);
    }
}

/// conformance: v5 MQTT-1.5.4-2
/// conformance: v5 MQTT-4.7.3-2
/// conformance: v3.1.1 MQTT-1.5.3-2
/// conformance: v3.1.1 MQTT-4.7.3-2
#[test]
fn null_character_in_strings_is_malformed() {
    use DecodeError::NullCharacter;
    for version in [V31, V311, V5] {
        let bytes = publish(version, 0, b"a\0b", None, &[]);
        assert_rejects(from_client(version, &bytes), NullCharacter, MALFORMED);
        assert_rejects(from_server(version, &bytes), NullCharacter, MALFORMED);
        let [sub, unsub] = subscribe_and_unsubscribe(version, b"a/\0");
        assert_rejects(from_client(version, &sub), NullCharacter, MALFORMED);
        assert_rejects(from_client(version, &unsub), NullCharacter, MALFORMED);
        let bytes = connect(version, 0x02, &[], &str16(b"c\0"));
        assert_rejects(first_packet(&bytes), NullCharacter, MALFORMED);
        let bytes = connect(version, 0x82, &[], &cat!(str16(b"c"), str16(b"\0")));
        assert_rejects(first_packet(&bytes), NullCharacter, MALFORMED);
        let bytes = connect_with_will(version, b"w\0", &[]);
        assert_rejects(first_packet(&bytes), NullCharacter, MALFORMED);
    }
    let bytes = publish(V5, 0, b"t", None, &user_property(b"\0", b"v"));
    assert_rejects(from_client(V5, &bytes), NullCharacter, MALFORMED);
}

/// conformance: v5 MQTT-1.5.4-1
/// conformance: v5 MQTT-3.1.3-4
/// conformance: v5 MQTT-3.1.3-11
/// conformance: v5 MQTT-3.1.3-12
/// conformance: v3.1.1 MQTT-1.5.3-1
/// conformance: v3.1.1 MQTT-3.1.3-4
/// conformance: v3.1.1 MQTT-3.1.3-10
/// conformance: v3.1.1 MQTT-3.1.3-11
#[test]
fn ill_formed_utf8_in_connect_strings_is_malformed() {
    use DecodeError::InvalidUtf8;
    for version in [V31, V311, V5] {
        for bad in ILL_FORMED {
            // Client identifier.
            let bytes = connect(version, 0x02, &[], &str16(bad));
            assert_rejects(first_packet(&bytes), InvalidUtf8, MALFORMED);
            // Will topic.
            let bytes = connect_with_will(version, bad, &[]);
            assert_rejects(first_packet(&bytes), InvalidUtf8, MALFORMED);
            // User name.
            let bytes = connect(version, 0x82, &[], &cat!(str16(b"c"), str16(bad)));
            assert_rejects(first_packet(&bytes), InvalidUtf8, MALFORMED);
        }
    }
    // The protocol name is a string too.
    let bytes = frame(
        0x10,
        &cat!(str16(b"MQ\xffT"), [0x04, 0x02, 0x00, 0x3c], str16(b"c")),
    );
    assert_rejects(first_packet(&bytes), InvalidUtf8, MALFORMED);
}

/// conformance: v5 MQTT-1.5.4-1
/// conformance: v5 MQTT-1.5.7-1
/// conformance: v5 MQTT-3.3.2-13
/// conformance: v5 MQTT-3.3.2-19
#[test]
fn ill_formed_utf8_in_string_properties_is_malformed() {
    use DecodeError::InvalidUtf8;
    for bad in ILL_FORMED {
        // User property name and value.
        for prop in [user_property(bad, b"v"), user_property(b"k", bad)] {
            let bytes = publish(V5, 0, b"t", None, &prop);
            assert_rejects(from_client(V5, &bytes), InvalidUtf8, MALFORMED);
            let bytes = connect(V5, 0x02, &prop, &str16(b"c"));
            assert_rejects(first_packet(&bytes), InvalidUtf8, MALFORMED);
        }
        // Content Type and Response Topic.
        for id in [0x03, 0x08] {
            let bytes = publish(V5, 0, b"t", None, &cat!([id], str16(bad)));
            assert_rejects(from_client(V5, &bytes), InvalidUtf8, MALFORMED);
        }
        // Reason String on PUBACK, Authentication Method on CONNECT.
        let bytes = frame(
            0x40,
            &cat!([0x00, 0x01, 0x80], block(&cat!([0x1f], str16(bad)))),
        );
        assert_rejects(from_server(V5, &bytes), InvalidUtf8, MALFORMED);
        let bytes = connect(V5, 0x02, &cat!([0x15], str16(bad)), &str16(b"c"));
        assert_rejects(first_packet(&bytes), InvalidUtf8, MALFORMED);
    }
}

/// conformance: v5 MQTT-1.5.4-1
/// conformance: v5 MQTT-3.8.3-1
/// conformance: v5 MQTT-3.10.3-1
/// conformance: v3.1.1 MQTT-1.5.3-1
/// conformance: v3.1.1 MQTT-3.8.3-1
/// conformance: v3.1.1 MQTT-3.10.3-1
#[test]
fn ill_formed_utf8_in_topic_filter_is_malformed() {
    for version in [V31, V311, V5] {
        for bad in ILL_FORMED {
            for bytes in subscribe_and_unsubscribe(version, bad) {
                assert_rejects(
                    from_client(version, &bytes),
                    DecodeError::InvalidUtf8,
                    MALFORMED,
                );
            }
        }
    }
}

/// conformance: v5 MQTT-1.5.4-3
/// conformance: v3.1.1 MQTT-1.5.3-3
#[test]
fn byte_order_mark_in_a_string_is_kept() {
    for version in [V31, V311, V5] {
        let bytes = publish(version, 0, b"\xef\xbb\xbfa", None, &[]);
        let Packet::Publish(publish) = accepted(from_client(version, &bytes)) else {
            panic!("not a PUBLISH");
        };
        assert_eq!(publish.topic.as_str(), "\u{feff}a");
    }
}
