//! MQTT 5.0 properties: duplicates, misplaced and unknown identifiers, value ranges.

use super::*;

// ---------------------------------------------------------------------------------------
// Properties (5.0 §2.2.2)
// ---------------------------------------------------------------------------------------

/// "It is a Protocol Error to include the <property> more than once" (each property's
/// section of 5.0 chapter 3); only User Property, and Subscription Identifier on a
/// PUBLISH, may repeat.
#[test]
fn duplicate_property_is_a_protocol_error() {
    use PropertyId as P;
    let twice = |prop: &[u8]| cat!(prop, prop);
    let session_expiry = [0x11, 0x00, 0x00, 0x00, 0x0a];
    let cases: Vec<(Decoded, PropertyId)> = vec![
        (
            first_packet(&connect(V5, 0x02, &twice(&session_expiry), &str16(b"c"))),
            P::SessionExpiryInterval,
        ),
        (
            first_packet(&connect(
                V5,
                0x02,
                &twice(&[0x21, 0x00, 0x01]),
                &str16(b"c"),
            )),
            P::ReceiveMaximum,
        ),
        (
            first_packet(&connect(
                V5,
                0x02,
                &twice(&cat!([0x15], str16(b"m"))),
                &str16(b"c"),
            )),
            P::AuthenticationMethod,
        ),
        (
            first_packet(&connect_with_will(
                V5,
                b"w",
                &twice(&cat!([0x03], str16(b"j"))),
            )),
            P::ContentType,
        ),
        (
            from_server(V5, &connack_v5(&twice(&[0x24, 0x00]))),
            P::MaximumQoS,
        ),
        (
            from_client(V5, &publish(V5, 0, b"t", None, &twice(&[0x02, 0, 0, 0, 1]))),
            P::MessageExpiryInterval,
        ),
        (
            from_client(V5, &publish(V5, 0, b"t", None, &twice(&[0x23, 0x00, 0x01]))),
            P::TopicAlias,
        ),
        (
            from_server(V5, &publish(V5, 0, b"t", None, &twice(&[0x01, 0x01]))),
            P::PayloadFormatIndicator,
        ),
        (
            from_client(V5, &subscribe(V5, 1, &twice(&[0x0b, 0x01]), &[(b"a", 0)])),
            P::SubscriptionIdentifier,
        ),
        (
            from_client(
                V5,
                &frame(
                    0x40,
                    &cat!(
                        [0x00, 0x01, 0x00],
                        block(&twice(&cat!([0x1f], str16(b"r"))))
                    ),
                ),
            ),
            P::ReasonString,
        ),
        (
            from_server(
                V5,
                &frame(
                    0xe0,
                    &cat!([0x9c], block(&twice(&cat!([0x1c], str16(b"s"))))),
                ),
            ),
            P::ServerReference,
        ),
        (
            from_client(
                V5,
                &frame(
                    0xf0,
                    &cat!([0x18], block(&twice(&cat!([0x16], str16(b"d"))))),
                ),
            ),
            P::AuthenticationData,
        ),
    ];
    for (decoded, property) in cases {
        assert_rejects(
            decoded,
            DecodeError::DuplicateProperty(property),
            PROTOCOL_ERROR,
        );
    }
    // User properties repeat, name included; subscription identifiers repeat on PUBLISH.
    let props = cat!(
        user_property(b"k", b"1"),
        user_property(b"k", b"2"),
        [0x0b, 0x01, 0x0b, 0x02]
    );
    accepted(from_server(V5, &publish(V5, 0, b"t", None, &props)));
}

/// "A Control Packet which contains an Identifier which is not valid for its packet type
/// … is a Malformed Packet" (5.0 §2.2.2.2).
#[test]
fn property_not_allowed_on_the_packet_is_malformed() {
    use PropertyId as P;
    let session_expiry = [0x11, 0x00, 0x00, 0x00, 0x0a];
    let sub_id = [0x0b, 0x01];
    let server_reference = cat!([0x1c], str16(b"s"));
    let reason_string = cat!([0x1f], str16(b"r"));
    let ack = |first: u8, props: &[u8]| frame(first, &cat!([0x00, 0x01, 0x00], block(props)));
    let cases: Vec<(Decoded, PropertyId, PacketType)> = vec![
        (
            first_packet(&connect(V5, 0x02, &[0x23, 0x00, 0x01], &str16(b"c"))),
            P::TopicAlias,
            T::Connect,
        ),
        (
            first_packet(&connect(V5, 0x02, &[0x18, 0, 0, 0, 1], &str16(b"c"))),
            P::WillDelayInterval,
            T::Connect,
        ),
        (
            first_packet(&connect_with_will(V5, b"w", &session_expiry)),
            P::SessionExpiryInterval,
            T::Connect,
        ),
        (
            from_server(V5, &connack_v5(&sub_id)),
            P::SubscriptionIdentifier,
            T::ConnAck,
        ),
        (
            from_server(V5, &connack_v5(&[0x18, 0, 0, 0, 1])),
            P::WillDelayInterval,
            T::ConnAck,
        ),
        (
            from_client(V5, &publish(V5, 0, b"t", None, &session_expiry)),
            P::SessionExpiryInterval,
            T::Publish,
        ),
        (
            from_server(V5, &publish(V5, 0, b"t", None, &reason_string)),
            P::ReasonString,
            T::Publish,
        ),
        (
            from_client(V5, &ack(0x40, &server_reference)),
            P::ServerReference,
            T::PubAck,
        ),
        (
            from_client(V5, &ack(0x50, &[0x03, 0x00, 0x00])),
            P::ContentType,
            T::PubRec,
        ),
        (
            from_client(V5, &ack(0x62, &sub_id)),
            P::SubscriptionIdentifier,
            T::PubRel,
        ),
        (
            from_server(V5, &ack(0x70, &session_expiry)),
            P::SessionExpiryInterval,
            T::PubComp,
        ),
        (
            from_client(V5, &subscribe(V5, 1, &reason_string, &[(b"a", 0)])),
            P::ReasonString,
            T::Subscribe,
        ),
        (
            from_server(
                V5,
                &frame(0x90, &cat!([0x00, 0x01], block(&sub_id), [0x00])),
            ),
            P::SubscriptionIdentifier,
            T::SubAck,
        ),
        (
            from_client(V5, &unsubscribe(V5, 1, &sub_id, &[b"a"])),
            P::SubscriptionIdentifier,
            T::Unsubscribe,
        ),
        (
            from_server(
                V5,
                &frame(0xb0, &cat!([0x00, 0x01], block(&server_reference), [0x00])),
            ),
            P::ServerReference,
            T::UnsubAck,
        ),
        (
            from_client(
                V5,
                &frame(0xe0, &cat!([0x00], block(&cat!([0x15], str16(b"m"))))),
            ),
            P::AuthenticationMethod,
            T::Disconnect,
        ),
        (
            from_client(V5, &frame(0xf0, &cat!([0x18], block(&session_expiry)))),
            P::SessionExpiryInterval,
            T::Auth,
        ),
    ];
    for (decoded, property, packet) in cases {
        let expected = DecodeError::PropertyNotAllowed { property, packet };
        assert_rejects(decoded, expected, MALFORMED);
    }
}

/// Identifiers outside Table 2-4 (5.0 §2.2.2.2).
#[test]
fn unknown_property_identifier_is_malformed() {
    for id in [0x00, 0x04, 0x0a, 0x10, 0x2b, 0x7f] {
        let prop = [id, 0x00];
        let bytes = publish(V5, 0, b"t", None, &prop);
        assert_rejects(
            from_client(V5, &bytes),
            DecodeError::UnknownProperty(id),
            MALFORMED,
        );
        let bytes = connect(V5, 0x02, &prop, &str16(b"c"));
        assert_rejects(
            first_packet(&bytes),
            DecodeError::UnknownProperty(id),
            MALFORMED,
        );
        let bytes = connack_v5(&prop);
        assert_rejects(
            from_server(V5, &bytes),
            DecodeError::UnknownProperty(id),
            MALFORMED,
        );
    }
}

#[track_caller]
fn assert_invalid_value(decoded: Decoded, property: PropertyId, value: u32) {
    let expected = DecodeError::InvalidPropertyValue { property, value };
    assert_rejects(decoded, expected, PROTOCOL_ERROR);
}

/// "It is a Protocol Error to include the Receive Maximum value of 0" (5.0 §3.1.2.11.3,
/// §3.2.2.3.3).
#[test]
fn receive_maximum_0_is_a_protocol_error() {
    let prop = [0x21, 0x00, 0x00];
    let bytes = connect(V5, 0x02, &prop, &str16(b"c"));
    assert_invalid_value(first_packet(&bytes), PropertyId::ReceiveMaximum, 0);
    assert_invalid_value(
        from_server(V5, &connack_v5(&prop)),
        PropertyId::ReceiveMaximum,
        0,
    );
}

/// "It is a Protocol Error to include the Maximum Packet Size … if the value is set to
/// zero" (5.0 §3.1.2.11.4, §3.2.2.3.6).
#[test]
fn maximum_packet_size_0_is_a_protocol_error() {
    let prop = [0x27, 0x00, 0x00, 0x00, 0x00];
    let bytes = connect(V5, 0x02, &prop, &str16(b"c"));
    assert_invalid_value(first_packet(&bytes), PropertyId::MaximumPacketSize, 0);
    assert_invalid_value(
        from_server(V5, &connack_v5(&prop)),
        PropertyId::MaximumPacketSize,
        0,
    );
}

/// "It is a Protocol Error if the Subscription Identifier has a value of 0" (5.0 §3.8.2.1.2,
/// §3.3.2.3.8).
#[test]
fn subscription_identifier_0_is_a_protocol_error() {
    let bytes = subscribe(V5, 1, &[0x0b, 0x00], &[(b"a", 0)]);
    assert_invalid_value(
        from_client(V5, &bytes),
        PropertyId::SubscriptionIdentifier,
        0,
    );
    let bytes = publish(V5, 0, b"t", None, &[0x0b, 0x01, 0x0b, 0x00]);
    assert_invalid_value(
        from_server(V5, &bytes),
        PropertyId::SubscriptionIdentifier,
        0,
    );
}

/// Payload Format Indicator is 0 or 1 (5.0 §3.3.2.3.2, §3.1.3.2.3).
#[test]
fn payload_format_indicator_2_is_a_protocol_error() {
    for value in [2u8, 0xff] {
        let prop = [0x01, value];
        let bytes = publish(V5, 0, b"t", None, &prop);
        let property = PropertyId::PayloadFormatIndicator;
        assert_invalid_value(from_client(V5, &bytes), property, value.into());
        assert_invalid_value(from_server(V5, &bytes), property, value.into());
        let bytes = connect_with_will(V5, b"w", &prop);
        assert_invalid_value(first_packet(&bytes), property, value.into());
    }
}

/// "It is a Protocol Error to include … Request Problem Information … with a value other
/// than 0 or 1" (5.0 §3.1.2.11.7).
#[test]
fn request_problem_information_2_is_a_protocol_error() {
    let bytes = connect(V5, 0x02, &[0x17, 0x02], &str16(b"c"));
    assert_invalid_value(
        first_packet(&bytes),
        PropertyId::RequestProblemInformation,
        2,
    );
}

/// The other one-byte flags of 5.0 (§3.1.2.11.6, §3.2.2.3.4, .5, .11, .12, .13) take 0 or
/// 1 only; Maximum QoS too ("It is a Protocol Error to include Maximum QoS more than
/// once, or to have a value other than 0 or 1").
#[test]
fn one_byte_flag_properties_above_1_are_protocol_errors() {
    use PropertyId as P;
    let bytes = connect(V5, 0x02, &[0x19, 0x02], &str16(b"c"));
    assert_invalid_value(first_packet(&bytes), P::RequestResponseInformation, 2);
    for (id, property) in [
        (0x24, P::MaximumQoS),
        (0x25, P::RetainAvailable),
        (0x28, P::WildcardSubscriptionAvailable),
        (0x29, P::SubscriptionIdentifierAvailable),
        (0x2a, P::SharedSubscriptionAvailable),
    ] {
        assert_invalid_value(from_server(V5, &connack_v5(&[id, 0x02])), property, 2);
    }
}
