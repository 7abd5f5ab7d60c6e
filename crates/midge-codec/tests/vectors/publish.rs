//! Vectors for PUBLISH and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP.

use super::*;

// ---------------------------------------------------------------------------------------
// PUBLISH (3.1.1 §3.3, 5.0 §3.3)
// ---------------------------------------------------------------------------------------

/// conformance: v3.1.1 MQTT-2.3.1-5
#[test]
fn publish_v3_qos0() {
    let bytes = wire! {
        [0x30, 0x07],         // PUBLISH QoS 0, remaining length 7
        [0x00, 0x03], b"a/b", // topic name
        b"hi",                // payload
    };
    for version in [V31, V311] {
        both_ways_vector(
            version,
            &bytes,
            Packet::Publish(Publish::new(topic("a/b"), "hi")),
        );
    }
}

#[test]
fn publish_v3_qos0_empty_payload() {
    let bytes = wire! {
        [0x30, 0x05],         // PUBLISH QoS 0, remaining length 5
        [0x00, 0x03], b"a/b", // topic name; no payload
    };
    for version in [V31, V311] {
        both_ways_vector(
            version,
            &bytes,
            Packet::Publish(Publish::new(topic("a/b"), "")),
        );
    }
}

#[test]
fn publish_v3_qos1_retained() {
    let bytes = wire! {
        [0x33, 0x09],         // PUBLISH QoS 1 + RETAIN, remaining length 9
        [0x00, 0x03], b"a/b", // topic name
        [0x00, 0x0a],         // packet identifier 10
        b"hi",                // payload
    };
    let publish = Publish {
        qos: QoS::AtLeastOnce,
        retain: true,
        packet_id: Some(pid(10)),
        ..Publish::new(topic("a/b"), "hi")
    };
    for version in [V31, V311] {
        both_ways_vector(version, &bytes, Packet::Publish(publish.clone()));
    }
}

#[test]
fn publish_v3_qos2_dup() {
    let bytes = wire! {
        [0x3c, 0x09],         // PUBLISH DUP + QoS 2, remaining length 9
        [0x00, 0x03], b"a/b", // topic name
        [0x12, 0x34],         // packet identifier 0x1234
        b"hi",                // payload
    };
    let publish = Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        packet_id: Some(pid(0x1234)),
        ..Publish::new(topic("a/b"), "hi")
    };
    for version in [V31, V311] {
        both_ways_vector(version, &bytes, Packet::Publish(publish.clone()));
    }
}

/// conformance: v5 MQTT-2.2.1-2
/// conformance: v5 MQTT-2.2.2-1
#[test]
fn publish_v5_qos0_without_properties() {
    let bytes = wire! {
        [0x30, 0x08],         // PUBLISH QoS 0, remaining length 8
        [0x00, 0x03], b"a/b", // topic name
        [0x00],               // property length 0
        b"hi",                // payload
    };
    both_ways_vector(
        V5,
        &bytes,
        Packet::Publish(Publish::new(topic("a/b"), "hi")),
    );
}

/// Every PUBLISH property; three user properties (a repeated name among them) stay in
/// order, and three subscription identifiers of one, two and four bytes. Sent by a
/// server: a client may not send Subscription Identifiers ([MQTT-3.3.4-6]).
#[test]
fn publish_v5_with_every_property() {
    let bytes = wire! {
        [0x33, 0x47],                                 // PUBLISH QoS 1 + RETAIN, remaining length 71
        [0x00, 0x03], b"a/b",                         // topic name
        [0x00, 0x01],                                 // packet identifier 1
        [0x3d],                                       // property length 61
        [0x01, 0x01],                                 //   payload format indicator: UTF-8
        [0x02, 0x00, 0x00, 0x00, 0x0a],               //   message expiry interval 10
        [0x23, 0x00, 0x01],                           //   topic alias 1
        [0x08, 0x00, 0x04], b"resp",                  //   response topic
        [0x09, 0x00, 0x03, 0x01, 0x02, 0x03],         //   correlation data
        [0x26, 0x00, 0x01], b"z", [0x00, 0x01], b"1", //   user property z=1
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"2", //   user property a=2
        [0x26, 0x00, 0x01], b"z", [0x00, 0x01], b"3", //   user property z=3
        [0x0b, 0x01],                                 //   subscription identifier 1
        [0x0b, 0x80, 0x01],                           //   subscription identifier 128
        [0x0b, 0xff, 0xff, 0xff, 0x7f],               //   subscription identifier 268435455
        [0x03, 0x00, 0x04], b"json",                  //   content type
        b"hi",                                        // payload
    };
    let publish = Publish {
        qos: QoS::AtLeastOnce,
        retain: true,
        packet_id: Some(pid(1)),
        properties: PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(10),
            topic_alias: Some(1),
            response_topic: Some(topic("resp")),
            correlation_data: Some(b(&[1, 2, 3])),
            user_properties: vec![pair("z", "1"), pair("a", "2"), pair("z", "3")],
            subscription_identifiers: vec![1, 128, 268_435_455],
            content_type: Some(s("json")),
        }
        .into(),
        ..Publish::new(topic("a/b"), "hi")
    };
    server_vector(V5, &bytes, Packet::Publish(publish));
}

/// 5.0: an empty topic name stands for the topic of the Topic Alias (§3.3.2.3.4).
#[test]
fn publish_v5_empty_topic_with_topic_alias() {
    let bytes = wire! {
        [0x30, 0x08],       // PUBLISH QoS 0, remaining length 8
        [0x00, 0x00],       // topic name: empty
        [0x03],             // property length 3
        [0x23, 0x00, 0x05], //   topic alias 5
        b"hi",              // payload
    };
    let publish = Publish {
        properties: PublishProperties {
            topic_alias: Some(5),
            ..PublishProperties::default()
        }
        .into(),
        ..Publish::new(TopicName::default(), "hi")
    };
    both_ways_vector(V5, &bytes, Packet::Publish(publish));
}

#[test]
fn publish_v5_qos2_dup_retain_with_user_properties_from_client() {
    let bytes = wire! {
        [0x3d, 0x18],                                 // PUBLISH DUP + QoS 2 + RETAIN, remaining length 24
        [0x00, 0x03], b"a/b",                         // topic name
        [0x01, 0x02],                                 // packet identifier 0x0102
        [0x0e],                                       // property length 14
        [0x26, 0x00, 0x01], b"x", [0x00, 0x01], b"2", //   user property x=2
        [0x26, 0x00, 0x01], b"x", [0x00, 0x01], b"1", //   user property x=1
        [0x00, 0xff],                                 // payload: binary
    };
    let publish = Publish {
        dup: true,
        qos: QoS::ExactlyOnce,
        retain: true,
        packet_id: Some(pid(0x0102)),
        properties: PublishProperties {
            user_properties: vec![pair("x", "2"), pair("x", "1")],
            ..PublishProperties::default()
        }
        .into(),
        ..Publish::new(topic("a/b"), b(&[0x00, 0xff]))
    };
    both_ways_vector(V5, &bytes, Packet::Publish(publish));
}

// ---------------------------------------------------------------------------------------
// PUBACK, PUBREC, PUBREL, PUBCOMP (3.1.1 §3.4-3.7, 5.0 §3.4-3.7)
// ---------------------------------------------------------------------------------------

/// Builds the [`Packet`] variant of one of the four acknowledgements.
type MakeAck = fn(Ack) -> Packet;

/// The four acknowledgements with their fixed-header byte and Packet constructor.
fn acks() -> [(u8, MakeAck); 4] {
    [
        (0x40, Packet::PubAck),  // PUBACK, flags 0000
        (0x50, Packet::PubRec),  // PUBREC, flags 0000
        (0x62, Packet::PubRel),  // PUBREL, flags 0010
        (0x70, Packet::PubComp), // PUBCOMP, flags 0000
    ]
}

#[test]
fn acks_v3() {
    for version in [V31, V311] {
        for (first, make) in acks() {
            let bytes = wire! {
                [first, 0x02], // fixed header, remaining length 2
                [0x00, 0x07],  // packet identifier 7
            };
            both_ways_vector(version, &bytes, make(Ack::new(pid(7))));
        }
    }
}

/// 5.0: Success without properties is the two-byte body of 3.1.1 (§3.4.2.1).
#[test]
fn acks_v5_short_form() {
    for (first, make) in acks() {
        let bytes = wire! {
            [first, 0x02], // fixed header, remaining length 2
            [0x00, 0x07],  // packet identifier 7; reason code Success implied
        };
        both_ways_vector(V5, &bytes, make(Ack::new(pid(7))));
    }
}

/// 5.0: a reason code and no properties is a three-byte body.
#[test]
fn acks_v5_reason_code_only() {
    use ReasonCode as R;
    let cases: [(u8, u8, ReasonCode, MakeAck); 4] = [
        (0x40, 0x10, R::NoMatchingSubscribers, Packet::PubAck),
        (0x50, 0x91, R::PacketIdentifierInUse, Packet::PubRec),
        (0x62, 0x92, R::PacketIdentifierNotFound, Packet::PubRel),
        (0x70, 0x92, R::PacketIdentifierNotFound, Packet::PubComp),
    ];
    for (first, code, reason_code, make) in cases {
        let bytes = wire! {
            [first, 0x03], // fixed header, remaining length 3
            [0x00, 0x07],  // packet identifier 7
            [code],        // reason code
        };
        let ack = Ack {
            reason_code,
            ..Ack::new(pid(7))
        };
        both_ways_vector(V5, &bytes, make(ack));
    }
}

#[test]
fn puback_v5_error_with_reason_string_and_user_property() {
    let bytes = wire! {
        [0x40, 0x10],                                 // PUBACK, remaining length 16
        [0x00, 0x07],                                 // packet identifier 7
        [0x80],                                       // reason code: Unspecified error
        [0x0c],                                       // property length 12
        [0x1f, 0x00, 0x02], b"no",                    //   reason string
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"b", //   user property a=b
    };
    let ack = Ack {
        reason_code: ReasonCode::UnspecifiedError,
        properties: AckProperties {
            reason_string: Some(s("no")),
            user_properties: vec![pair("a", "b")],
        },
        ..Ack::new(pid(7))
    };
    both_ways_vector(V5, &bytes, Packet::PubAck(ack));
}

#[test]
fn pubrec_v5_success_with_reason_string() {
    let bytes = wire! {
        [0x50, 0x09],              // PUBREC, remaining length 9
        [0x00, 0x07],              // packet identifier 7
        [0x00],                    // reason code: Success (needed before properties)
        [0x05],                    // property length 5
        [0x1f, 0x00, 0x02], b"ok", //   reason string
    };
    let ack = Ack {
        properties: AckProperties {
            reason_string: Some(s("ok")),
            ..AckProperties::default()
        },
        ..Ack::new(pid(7))
    };
    both_ways_vector(V5, &bytes, Packet::PubRec(ack));
}

#[test]
fn pubrel_v5_not_found_with_reason_string() {
    let bytes = wire! {
        [0x62, 0x09],              // PUBREL (flags 0010), remaining length 9
        [0x00, 0x07],              // packet identifier 7
        [0x92],                    // reason code: Packet Identifier not found
        [0x05],                    // property length 5
        [0x1f, 0x00, 0x02], b"no", //   reason string
    };
    let ack = Ack {
        reason_code: ReasonCode::PacketIdentifierNotFound,
        properties: AckProperties {
            reason_string: Some(s("no")),
            ..AckProperties::default()
        },
        ..Ack::new(pid(7))
    };
    both_ways_vector(V5, &bytes, Packet::PubRel(ack));
}

#[test]
fn pubcomp_v5_success_with_user_property() {
    let bytes = wire! {
        [0x70, 0x0b],                                 // PUBCOMP, remaining length 11
        [0x00, 0x07],                                 // packet identifier 7
        [0x00],                                       // reason code: Success
        [0x07],                                       // property length 7
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"b", //   user property a=b
    };
    let ack = Ack {
        properties: AckProperties {
            user_properties: vec![pair("a", "b")],
            ..AckProperties::default()
        },
        ..Ack::new(pid(7))
    };
    both_ways_vector(V5, &bytes, Packet::PubComp(ack));
}

/// 5.0: an explicit Success code, or an explicit empty property block, may be sent; the
/// encoder drops what it may.
#[test]
fn acks_v5_long_forms_decode_to_the_short_ones() {
    for (first, make) in acks() {
        let canonical = [first, 0x02, 0x00, 0x07];
        // Reason code Success written out.
        let long = [first, 0x03, 0x00, 0x07, 0x00];
        long_form_vector(V5, &long, &canonical, make(Ack::new(pid(7))));
        // Reason code Success and property length 0.
        let long = [first, 0x04, 0x00, 0x07, 0x00, 0x00];
        long_form_vector(V5, &long, &canonical, make(Ack::new(pid(7))));
    }
    // A reason code with property length 0: the encoder writes the three-byte form.
    let ack = Ack {
        reason_code: ReasonCode::NoMatchingSubscribers,
        ..Ack::new(pid(7))
    };
    long_form_vector(
        V5,
        &[0x40, 0x04, 0x00, 0x07, 0x10, 0x00],
        &[0x40, 0x03, 0x00, 0x07, 0x10],
        Packet::PubAck(ack),
    );
}

// ---------------------------------------------------------------------------------------
// Property order
// ---------------------------------------------------------------------------------------

/// §2.2.2.2 fixes no order for properties: the same properties in reverse order decode to
/// the same packet (user properties keep their relative order).
#[test]
fn properties_decode_in_any_order() {
    let bytes = wire! {
        [0x30, 0x1b],                                 // PUBLISH QoS 0, remaining length 27
        [0x00, 0x01], b"t",                           // topic name
        [0x17],                                       // property length 23
        [0x03, 0x00, 0x01], b"j",                     //   content type
        [0x26, 0x00, 0x01], b"k", [0x00, 0x01], b"1", //   user property k=1
        [0x26, 0x00, 0x01], b"k", [0x00, 0x01], b"2", //   user property k=2
        [0x02, 0x00, 0x00, 0x00, 0x05],               //   message expiry interval 5
    };
    let publish = Publish {
        properties: PublishProperties {
            content_type: Some(s("j")),
            user_properties: vec![pair("k", "1"), pair("k", "2")],
            message_expiry_interval: Some(5),
            ..PublishProperties::default()
        }
        .into(),
        ..Publish::new(topic("t"), "")
    };
    let packet = Packet::Publish(publish);
    assert_eq!(decode_one(&mut Decoder::client(V5), &bytes), packet);
    let canonical = wire! {
        [0x30, 0x1b],                                 // PUBLISH QoS 0, remaining length 27
        [0x00, 0x01], b"t",                           // topic name
        [0x17],                                       // property length 23
        [0x02, 0x00, 0x00, 0x00, 0x05],               //   message expiry interval 5
        [0x26, 0x00, 0x01], b"k", [0x00, 0x01], b"1", //   user property k=1
        [0x26, 0x00, 0x01], b"k", [0x00, 0x01], b"2", //   user property k=2
        [0x03, 0x00, 0x01], b"j",                     //   content type
    };
    server_vector(V5, &canonical, packet);
}
