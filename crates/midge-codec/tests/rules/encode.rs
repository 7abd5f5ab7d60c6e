//! What the encoder refuses to write.

use super::*;

// ---------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------

#[track_caller]
fn assert_encode_fails(packet: &Packet, version: ProtocolVersion, expected: EncodeError) {
    let mut dst = BytesMut::from(&b"kept"[..]);
    assert_eq!(packet.encode(version, &mut dst), Err(expected.clone()));
    assert_eq!(&dst[..], b"kept", "wrote something on error");
    assert_eq!(packet.encoded_len(version), Err(expected));
}

fn long(len: usize) -> ByteString {
    ByteString::from("x".repeat(len))
}

fn too_long(field: &'static str) -> EncodeError {
    EncodeError::FieldTooLong { field, len: 65_536 }
}

/// Strings and binary fields carry a two-byte length.
///
/// conformance: v5 MQTT-4.7.3-3
/// conformance: v3.1.1 MQTT-4.7.3-3
#[test]
fn encoding_a_field_over_65535_bytes_fails() {
    let max = 65_535;
    // Topic name: 65,535 bytes fit, one more does not.
    let fits = Packet::Publish(Publish::new(TopicName::new(long(max)).unwrap(), "p"));
    for version in [V311, V5] {
        let mut dst = BytesMut::new();
        fits.encode(version, &mut dst).unwrap();
        assert_eq!(
            Decoder::client(version).decode(&mut dst).unwrap(),
            Some(fits.clone())
        );
    }
    let topic_over = Packet::Publish(Publish::new(TopicName::new(long(max + 1)).unwrap(), "p"));
    let client_id_over = Packet::Connect(Box::new(Connect::new(V311, long(max + 1))));
    let username_over = Packet::Connect(Box::new(Connect {
        username: Some(long(max + 1)),
        ..Connect::new(V311, "c")
    }));
    let password_over = Packet::Connect(Box::new(Connect {
        username: Some(ByteString::from_static("u")),
        password: Some(Bytes::from(vec![0; max + 1])),
        ..Connect::new(V311, "c")
    }));
    let will = LastWill {
        topic: TopicName::new("w").unwrap(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: WillProperties::default(),
    };
    let will_topic_over = Packet::Connect(Box::new(Connect {
        will: Some(LastWill {
            topic: TopicName::new(long(max + 1)).unwrap(),
            ..will.clone()
        }),
        ..Connect::new(V311, "c")
    }));
    let will_payload_over = Packet::Connect(Box::new(Connect {
        will: Some(LastWill {
            payload: Bytes::from(vec![0; max + 1]),
            ..will
        }),
        ..Connect::new(V311, "c")
    }));
    let filter_over = Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).unwrap(),
        filters: vec![(TopicFilter::new(long(max + 1)).unwrap(), Default::default())],
        properties: SubscribeProperties::default(),
    });
    let unsubscribe_over = Packet::Unsubscribe(Unsubscribe {
        packet_id: PacketId::new(1).unwrap(),
        filters: vec![TopicFilter::new(long(max + 1)).unwrap()],
        properties: UnsubscribeProperties::default(),
    });
    for version in [V311, V5] {
        assert_encode_fails(&topic_over, version, too_long("topic name"));
        assert_encode_fails(&filter_over, version, too_long("topic filter"));
        assert_encode_fails(&unsubscribe_over, version, too_long("topic filter"));
    }
    assert_encode_fails(&client_id_over, V311, too_long("client identifier"));
    assert_encode_fails(&username_over, V311, too_long("user name"));
    assert_encode_fails(&password_over, V311, too_long("password"));
    assert_encode_fails(&will_topic_over, V311, too_long("will topic"));
    assert_encode_fails(&will_payload_over, V311, too_long("will payload"));
    // Properties: a user property's value and a content type.
    let user_property_over = Packet::Publish(Publish {
        properties: PublishProperties {
            user_properties: vec![(ByteString::from_static("k"), long(max + 1))],
            ..PublishProperties::default()
        }
        .into(),
        ..Publish::new(TopicName::new("t").unwrap(), "p")
    });
    assert_encode_fails(&user_property_over, V5, too_long("User Property"));
    let content_type_over = Packet::Publish(Publish {
        properties: PublishProperties {
            content_type: Some(long(max + 1)),
            ..PublishProperties::default()
        }
        .into(),
        ..Publish::new(TopicName::new("t").unwrap(), "p")
    });
    assert_encode_fails(&content_type_over, V5, too_long("Content Type"));
}

#[test]
fn encoding_auth_before_5_0_fails() {
    let auth = Packet::Auth(Auth::default());
    for version in [V31, V311] {
        let expected = EncodeError::NotInVersion {
            packet: T::Auth,
            version,
        };
        assert_encode_fails(&auth, version, expected);
    }
}

/// conformance: v5 MQTT-2.2.1-2
/// conformance: v3.1.1 MQTT-2.3.1-1
/// conformance: v3.1.1 MQTT-2.3.1-5
#[test]
fn encoding_publish_whose_packet_id_does_not_match_its_qos_fails() {
    let topic = TopicName::new("t").unwrap();
    let qos1_without_id = Packet::Publish(Publish {
        qos: QoS::AtLeastOnce,
        ..Publish::new(topic.clone(), "p")
    });
    let qos2_without_id = Packet::Publish(Publish {
        qos: QoS::ExactlyOnce,
        ..Publish::new(topic.clone(), "p")
    });
    let qos0_with_id = Packet::Publish(Publish {
        packet_id: PacketId::new(1),
        ..Publish::new(topic, "p")
    });
    for version in [V31, V311, V5] {
        for packet in [&qos1_without_id, &qos2_without_id, &qos0_with_id] {
            assert_encode_fails(packet, version, EncodeError::PacketIdMismatch);
        }
    }
}

/// conformance: v5 MQTT-3.8.3-2
/// conformance: v5 MQTT-3.10.3-2
/// conformance: v3.1.1 MQTT-3.8.3-3
/// conformance: v3.1.1 MQTT-3.10.3-2
#[test]
fn encoding_subscribe_or_unsubscribe_without_filters_fails() {
    let subscribe = Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(1).unwrap(),
        filters: Vec::new(),
        properties: SubscribeProperties::default(),
    });
    let unsubscribe = Packet::Unsubscribe(Unsubscribe {
        packet_id: PacketId::new(1).unwrap(),
        filters: Vec::new(),
        properties: UnsubscribeProperties::default(),
    });
    for version in [V31, V311, V5] {
        assert_encode_fails(
            &subscribe,
            version,
            EncodeError::NoTopicFilters(T::Subscribe),
        );
        assert_encode_fails(
            &unsubscribe,
            version,
            EncodeError::NoTopicFilters(T::Unsubscribe),
        );
    }
}
