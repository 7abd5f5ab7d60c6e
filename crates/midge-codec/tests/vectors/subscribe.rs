//! Vectors for SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK.

use super::*;

// ---------------------------------------------------------------------------------------
// SUBSCRIBE (3.1.1 §3.8, 5.0 §3.8)
// ---------------------------------------------------------------------------------------

#[test]
fn subscribe_v3_three_filters() {
    let bytes = wire! {
        [0x82, 0x12],         // SUBSCRIBE (flags 0010), remaining length 18
        [0x00, 0x0a],         // packet identifier 10
        [0x00, 0x03], b"a/b", // topic filter
        [0x00],               //   requested QoS 0
        [0x00, 0x03], b"c/#", // topic filter
        [0x01],               //   requested QoS 1
        [0x00, 0x01], b"+",   // topic filter
        [0x02],               //   requested QoS 2
    };
    let subscribe = Subscribe {
        packet_id: pid(10),
        filters: vec![
            (filter("a/b"), SubscriptionOptions::new(QoS::AtMostOnce)),
            (filter("c/#"), SubscriptionOptions::new(QoS::AtLeastOnce)),
            (filter("+"), SubscriptionOptions::new(QoS::ExactlyOnce)),
        ],
        properties: SubscribeProperties::default(),
    };
    for version in [V31, V311] {
        client_vector(version, &bytes, Packet::Subscribe(subscribe.clone()));
    }
}

/// Subscription identifier, a user property and every subscription option (5.0 §3.8.3.1).
#[test]
fn subscribe_v5_with_options_and_subscription_identifier() {
    let bytes = wire! {
        [0x82, 0x25],                                 // SUBSCRIBE (flags 0010), remaining length 37
        [0x00, 0x0b],                                 // packet identifier 11
        [0x09],                                       // property length 9
        [0x0b, 0x05],                                 //   subscription identifier 5
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"b", //   user property a=b
        [0x00, 0x03], b"a/b",                         // topic filter
        [0x05],                                       //   options: no local, QoS 1
        [0x00, 0x03], b"c/#",                         // topic filter
        [0x1a],                                       //   options: retain handling 1, retain as published, QoS 2
        [0x00, 0x0a], b"$share/g/d",                  // shared subscription
        [0x20],                                       //   options: retain handling 2, QoS 0
    };
    let subscribe = Subscribe {
        packet_id: pid(11),
        filters: vec![
            (
                filter("a/b"),
                SubscriptionOptions {
                    no_local: true,
                    ..SubscriptionOptions::new(QoS::AtLeastOnce)
                },
            ),
            (
                filter("c/#"),
                SubscriptionOptions {
                    retain_as_published: true,
                    retain_handling: RetainHandling::SendAtSubscribeIfNew,
                    ..SubscriptionOptions::new(QoS::ExactlyOnce)
                },
            ),
            (
                filter("$share/g/d"),
                SubscriptionOptions {
                    retain_handling: RetainHandling::DoNotSend,
                    ..SubscriptionOptions::new(QoS::AtMostOnce)
                },
            ),
        ],
        properties: SubscribeProperties {
            subscription_identifier: Some(5),
            user_properties: vec![pair("a", "b")],
        },
    };
    client_vector(V5, &bytes, Packet::Subscribe(subscribe));
}

// ---------------------------------------------------------------------------------------
// SUBACK (3.1.1 §3.9, 5.0 §3.9)
// ---------------------------------------------------------------------------------------

#[test]
fn suback_v3_granted_qos_and_failure() {
    let bytes = wire! {
        [0x90, 0x06], // SUBACK, remaining length 6
        [0x00, 0x0a], // packet identifier 10
        [0x00],       // granted QoS 0
        [0x01],       // granted QoS 1
        [0x02],       // granted QoS 2
        [0x80],       // failure
    };
    let suback = SubAck {
        packet_id: pid(10),
        reason_codes: vec![
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ],
        properties: AckProperties::default(),
    };
    for version in [V31, V311] {
        server_vector(version, &bytes, Packet::SubAck(suback.clone()));
    }
}

/// Every SUBACK reason code of 5.0 §3.9.3.
#[test]
fn suback_v5_every_reason_code() {
    let bytes = wire! {
        [0x90, 0x0f],                   // SUBACK, remaining length 15
        [0x00, 0x0b],                   // packet identifier 11
        [0x00],                         // property length 0
        [0x00, 0x01, 0x02],             // granted QoS 0, 1, 2
        [0x80, 0x83, 0x87, 0x8f],       // unspecified, implementation specific, not authorized, filter invalid
        [0x91, 0x97, 0x9e, 0xa1, 0xa2], // id in use, quota, shared / sub ids / wildcards not supported
    };
    let suback = SubAck {
        packet_id: pid(11),
        reason_codes: vec![
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
            ReasonCode::ImplementationSpecificError,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::PacketIdentifierInUse,
            ReasonCode::QuotaExceeded,
            ReasonCode::SharedSubscriptionsNotSupported,
            ReasonCode::SubscriptionIdentifiersNotSupported,
            ReasonCode::WildcardSubscriptionsNotSupported,
        ],
        properties: AckProperties::default(),
    };
    server_vector(V5, &bytes, Packet::SubAck(suback));
}

#[test]
fn suback_v5_with_reason_string() {
    let bytes = wire! {
        [0x90, 0x09],              // SUBACK, remaining length 9
        [0x00, 0x0b],              // packet identifier 11
        [0x05],                    // property length 5
        [0x1f, 0x00, 0x02], b"no", //   reason string
        [0x87],                    // reason code: Not authorized
    };
    let suback = SubAck {
        packet_id: pid(11),
        reason_codes: vec![ReasonCode::NotAuthorized],
        properties: AckProperties {
            reason_string: Some(s("no")),
            ..AckProperties::default()
        },
    };
    server_vector(V5, &bytes, Packet::SubAck(suback));
}

// ---------------------------------------------------------------------------------------
// UNSUBSCRIBE (3.1.1 §3.10, 5.0 §3.10)
// ---------------------------------------------------------------------------------------

#[test]
fn unsubscribe_v3_two_filters() {
    let bytes = wire! {
        [0xa2, 0x0c],         // UNSUBSCRIBE (flags 0010), remaining length 12
        [0x00, 0x0c],         // packet identifier 12
        [0x00, 0x03], b"a/b", // topic filter
        [0x00, 0x03], b"c/#", // topic filter
    };
    let unsubscribe = Unsubscribe {
        packet_id: pid(12),
        filters: vec![filter("a/b"), filter("c/#")],
        properties: UnsubscribeProperties::default(),
    };
    for version in [V31, V311] {
        client_vector(version, &bytes, Packet::Unsubscribe(unsubscribe.clone()));
    }
}

#[test]
fn unsubscribe_v5_without_properties() {
    let bytes = wire! {
        [0xa2, 0x08],         // UNSUBSCRIBE (flags 0010), remaining length 8
        [0x00, 0x0c],         // packet identifier 12
        [0x00],               // property length 0
        [0x00, 0x03], b"a/b", // topic filter
    };
    let unsubscribe = Unsubscribe {
        packet_id: pid(12),
        filters: vec![filter("a/b")],
        properties: UnsubscribeProperties::default(),
    };
    client_vector(V5, &bytes, Packet::Unsubscribe(unsubscribe));
}

#[test]
fn unsubscribe_v5_with_user_property_and_shared_filter() {
    let bytes = wire! {
        [0xa2, 0x1b],                                 // UNSUBSCRIBE (flags 0010), remaining length 27
        [0x00, 0x0c],                                 // packet identifier 12
        [0x07],                                       // property length 7
        [0x26, 0x00, 0x01], b"a", [0x00, 0x01], b"b", //   user property a=b
        [0x00, 0x03], b"a/b",                         // topic filter
        [0x00, 0x0a], b"$share/g/d",                  // shared subscription filter
    };
    let unsubscribe = Unsubscribe {
        packet_id: pid(12),
        filters: vec![filter("a/b"), filter("$share/g/d")],
        properties: UnsubscribeProperties {
            user_properties: vec![pair("a", "b")],
        },
    };
    client_vector(V5, &bytes, Packet::Unsubscribe(unsubscribe));
}

// ---------------------------------------------------------------------------------------
// UNSUBACK (3.1.1 §3.11, 5.0 §3.11)
// ---------------------------------------------------------------------------------------

#[test]
fn unsuback_v3() {
    let bytes = wire! {
        [0xb0, 0x02], // UNSUBACK, remaining length 2
        [0x00, 0x0c], // packet identifier 12
    };
    let unsuback = UnsubAck {
        packet_id: pid(12),
        reason_codes: Vec::new(),
        properties: AckProperties::default(),
    };
    for version in [V31, V311] {
        server_vector(version, &bytes, Packet::UnsubAck(unsuback.clone()));
    }
}

/// Every UNSUBACK reason code of 5.0 §3.11.3.
#[test]
fn unsuback_v5_every_reason_code() {
    let bytes = wire! {
        [0xb0, 0x0a],                   // UNSUBACK, remaining length 10
        [0x00, 0x0c],                   // packet identifier 12
        [0x00],                         // property length 0
        [0x00, 0x11],                   // success, no subscription existed
        [0x80, 0x83, 0x87, 0x8f, 0x91], // unspecified, impl. specific, not authorized, filter invalid, id in use
    };
    let unsuback = UnsubAck {
        packet_id: pid(12),
        reason_codes: vec![
            ReasonCode::Success,
            ReasonCode::NoSubscriptionExisted,
            ReasonCode::UnspecifiedError,
            ReasonCode::ImplementationSpecificError,
            ReasonCode::NotAuthorized,
            ReasonCode::TopicFilterInvalid,
            ReasonCode::PacketIdentifierInUse,
        ],
        properties: AckProperties::default(),
    };
    server_vector(V5, &bytes, Packet::UnsubAck(unsuback));
}

#[test]
fn unsuback_v5_with_reason_string() {
    let bytes = wire! {
        [0xb0, 0x09],              // UNSUBACK, remaining length 9
        [0x00, 0x0c],              // packet identifier 12
        [0x05],                    // property length 5
        [0x1f, 0x00, 0x02], b"no", //   reason string
        [0x11],                    // reason code: No subscription existed
    };
    let unsuback = UnsubAck {
        packet_id: pid(12),
        reason_codes: vec![ReasonCode::NoSubscriptionExisted],
        properties: AckProperties {
            reason_string: Some(s("no")),
            ..AckProperties::default()
        },
    };
    server_vector(V5, &bytes, Packet::UnsubAck(unsuback));
}
