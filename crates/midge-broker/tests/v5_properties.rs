//! MQTT 5.0 properties: what a PUBLISH carries through the broker, Message Expiry,
//! Topic Aliases, Receive Maximum and Maximum Packet Size in both directions, Request
//! Problem Information, what CONNACK announces, and extended authentication (refused).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use midge_codec::{Auth, Packet, QoS, ReasonCode, UserProperty};

fn user_props() -> Vec<UserProperty> {
    vec![
        ("b".into(), "1".into()),
        ("a".into(), "2".into()),
        ("b".into(), "3".into()),
        ("".into(), "".into()),
    ]
}

/// conformance: v5 MQTT-3.3.2-4
/// conformance: v5 MQTT-3.3.2-15
/// conformance: v5 MQTT-3.3.2-16
/// conformance: v5 MQTT-3.3.2-17
/// conformance: v5 MQTT-3.3.2-18
/// conformance: v5 MQTT-3.3.2-20
/// conformance: v5 MQTT-3.1.2-27
#[tokio::test]
async fn publish_properties_are_forwarded_unaltered_and_in_order() {
    let broker = start().await;
    let mut s = Client::connect(broker.local_addr(), V5, "props-sub").await;
    s.subscribe("props", QoS::AtLeastOnce).await;
    let mut old = Client::connect(broker.local_addr(), V311, "props-311").await;
    old.subscribe("props", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "props-pub").await;
    let mut p = publish("props", "{\"x\":1}", QoS::AtLeastOnce);
    p.properties.payload_format_indicator = Some(true);
    p.properties.content_type = Some("application/json".into());
    p.properties.response_topic = Some(topic("reply/here"));
    p.properties.correlation_data = Some(Bytes::from_static(&[0, 1, 2, 0xff]));
    p.properties.user_properties = user_props();
    publisher.publish(p.clone()).await;
    let got = s.recv_and_ack().await;
    assert_eq!(got.properties.payload_format_indicator, Some(true));
    assert_eq!(
        got.properties.content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(got.properties.response_topic, Some(topic("reply/here")));
    assert_eq!(
        got.properties.correlation_data,
        p.properties.correlation_data
    );
    assert_eq!(got.properties.user_properties, user_props());
    // The broker sends no Topic Alias (the client allowed none).
    assert_eq!(got.properties.topic_alias, None);
    assert_eq!(got.properties.message_expiry_interval, None);
    // A 3.1.1 subscriber gets the message without properties.
    let got = old.recv_and_ack().await;
    assert_eq!(&got.payload[..], b"{\"x\":1}");
    // Request/response through the broker.
    let mut responder = Client::connect(broker.local_addr(), V5, "props-resp").await;
    responder.subscribe("req", QoS::AtMostOnce).await;
    publisher.subscribe("reply/here", QoS::AtMostOnce).await;
    let mut req = publish("req", "ping", QoS::AtMostOnce);
    req.properties.response_topic = Some(topic("reply/here"));
    req.properties.correlation_data = Some(Bytes::from_static(b"id-7"));
    publisher.publish(req).await;
    let req = responder.recv_publish().await;
    let mut resp = publish(
        req.properties.response_topic.as_ref().unwrap(),
        "pong",
        QoS::AtMostOnce,
    );
    resp.properties.correlation_data = req.properties.correlation_data.clone();
    responder.publish(resp).await;
    let resp = publisher.recv_publish().await;
    assert_eq!(
        resp.properties.correlation_data.as_deref(),
        Some(&b"id-7"[..])
    );
}

/// conformance: v5 MQTT-3.3.2-5
/// conformance: v5 MQTT-3.3.2-6
#[tokio::test]
async fn message_expiry_drops_expired_messages_and_forwards_the_remaining_interval() {
    let broker = start().await;
    let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(V5, "expiry")).await;
    s.subscribe("exp", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "expiry-pub").await;
    let mut short = publish("exp", "short", QoS::AtLeastOnce);
    short.properties.message_expiry_interval = Some(1);
    publisher.publish(short).await;
    let mut long = publish("exp", "long", QoS::AtLeastOnce);
    long.properties.message_expiry_interval = Some(60);
    publisher.publish(long).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(V5, "expiry")).await;
    let got = s.recv_and_ack().await;
    assert_eq!(&got.payload[..], b"long", "the expired message was dropped");
    let left = got
        .properties
        .message_expiry_interval
        .expect("remaining interval");
    assert!((58..=59).contains(&left), "remaining {left}");
    s.expect_nothing().await;
}

/// A retained message expires too.
///
/// conformance: v5 MQTT-3.3.2-5
#[tokio::test]
async fn retained_message_expires() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr(), V5, "ret-exp").await;
    let mut p = publish("retexp", "soon gone", QoS::AtMostOnce);
    p.retain = true;
    p.properties.message_expiry_interval = Some(1);
    c.publish(p).await;
    c.subscribe("retexp", QoS::AtMostOnce).await;
    let got = c.recv_publish().await;
    assert!(got.retain);
    assert!(
        got.properties
            .message_expiry_interval
            .is_some_and(|s| s <= 1)
    );
    c.unsubscribe(&["retexp"]).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.subscribe("retexp", QoS::AtMostOnce).await;
    c.expect_nothing().await;
}

/// conformance: v5 MQTT-3.3.2-12
/// conformance: v5 MQTT-3.3.2-7
#[tokio::test]
async fn inbound_topic_aliases_are_resolved_per_connection() {
    let broker = start().await;
    let mut s = Client::connect(broker.local_addr(), V5, "alias-sub").await;
    s.subscribe("alias/#", QoS::AtMostOnce).await;
    let (mut c, ack) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "alias")).await;
    let max = ack
        .properties
        .topic_alias_maximum
        .expect("topic alias maximum");
    assert!(max >= 2);
    let mut set = publish("alias/long/topic/name", "1", QoS::AtMostOnce);
    set.properties.topic_alias = Some(max);
    c.publish(set).await;
    let mut use_it = publish("alias/long/topic/name", "2", QoS::AtLeastOnce);
    use_it.topic = Default::default();
    use_it.properties.topic_alias = Some(max);
    c.publish(use_it.clone()).await;
    // Re-map the alias to another topic.
    let mut remap = publish("alias/other", "3", QoS::AtMostOnce);
    remap.properties.topic_alias = Some(max);
    c.publish(remap).await;
    let mut again = use_it.clone();
    again.payload = "4".into();
    again.packet_id = None;
    c.publish(again).await;
    let got = [
        s.recv_publish().await,
        s.recv_publish().await,
        s.recv_publish().await,
        s.recv_publish().await,
    ];
    let topics: Vec<&str> = got.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(
        topics,
        [
            "alias/long/topic/name",
            "alias/long/topic/name",
            "alias/other",
            "alias/other"
        ]
    );
    assert!(got.iter().all(|p| p.properties.topic_alias.is_none()));
    // Aliases are not carried over to a new connection: an unknown alias is an error.
    c.disconnect().await;
    let mut c = Client::connect(broker.local_addr(), V5, "alias").await;
    let mut stale = use_it;
    stale.packet_id = None;
    stale.qos = QoS::AtMostOnce;
    c.send(Packet::Publish(stale)).await;
    c.expect_disconnect(ReasonCode::ProtocolError).await;
}

/// Alias 0 and aliases above the Topic Alias Maximum close with 0x94; with
/// `max_topic_alias = 0` the CONNACK allows no alias, and a client that sends one all
/// the same is closed with 0x94.
///
/// conformance: v5 MQTT-3.3.2-8
/// conformance: v5 MQTT-3.3.2-9
/// conformance: v5 MQTT-3.2.2-17
/// conformance: v5 MQTT-3.2.2-18
#[tokio::test]
async fn invalid_topic_alias_closes_with_0x94() {
    let broker = start().await;
    for alias in [0u16, 11, u16::MAX] {
        let mut c = Client::connect(broker.local_addr(), V5, "bad-alias").await;
        let mut p = publish("t", "x", QoS::AtMostOnce);
        p.properties.topic_alias = Some(alias);
        c.send(Packet::Publish(p)).await;
        c.expect_disconnect(ReasonCode::TopicAliasInvalid).await;
    }
    // max_topic_alias = 0: no alias at all.
    let mut config = test_config();
    config.max_topic_alias = 0;
    let broker = start_with(config).await;
    let (mut c, ack) =
        Client::connect_ok(broker.local_addr(), connect_packet(V5, "no-alias")).await;
    assert_eq!(ack.properties.topic_alias_maximum.unwrap_or(0), 0);
    let mut p = publish("t", "x", QoS::AtMostOnce);
    p.properties.topic_alias = Some(1);
    c.send(Packet::Publish(p)).await;
    c.expect_disconnect(ReasonCode::TopicAliasInvalid).await;
}

/// conformance: v5 MQTT-3.3.4-9
/// conformance: v5 MQTT-3.3.4-10
/// conformance: v5 MQTT-4.9.0-1
/// conformance: v5 MQTT-4.9.0-2
/// conformance: v5 MQTT-4.9.0-3
#[tokio::test]
async fn the_broker_never_exceeds_the_clients_receive_maximum() {
    let broker = start().await;
    let mut connect = connect_packet(V5, "rm2");
    connect.properties.receive_maximum = Some(2);
    let (mut s, _) = Client::connect_ok(broker.local_addr(), connect).await;
    s.subscribe("rm/#", QoS::ExactlyOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "rm2-pub").await;
    for payload in ["1", "2", "3", "4"] {
        publisher.pub_msg("rm/q", payload, QoS::ExactlyOnce).await;
    }
    let first = [s.recv_publish().await, s.recv_publish().await];
    assert_eq!(payloads(&first), ["1", "2"]);
    s.expect_nothing().await;
    // Other packets are not delayed while the quota is zero.
    s.ping().await;
    // Completing one (PUBREC → PUBREL → PUBCOMP) lets the next go.
    s.ack(&first[0]).await;
    assert_eq!(&s.recv_publish().await.payload[..], b"3");
    s.expect_nothing().await;
    // A PUBREC alone does not free the slot of a QoS 2 message ... but PUBCOMP does.
    s.ack(&first[1]).await;
    let p4 = s.recv_and_ack().await;
    assert_eq!(&p4.payload[..], b"4");
}

/// conformance: v5 MQTT-3.1.2-24
/// conformance: v5 MQTT-3.1.2-25
#[tokio::test]
async fn a_message_too_big_for_one_subscriber_is_dropped_for_that_subscriber_only() {
    let broker = start().await;
    let mut connect = connect_packet(V5, "small");
    connect.properties.maximum_packet_size = Some(64);
    let (mut small, _) = Client::connect_ok(broker.local_addr(), connect).await;
    small.subscribe("size", QoS::AtLeastOnce).await;
    let mut big = Client::connect(broker.local_addr(), V5, "big").await;
    big.subscribe("size", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "size-pub").await;
    let mut p = publish("size", "", QoS::AtLeastOnce);
    p.payload = vec![b'x'; 100].into();
    publisher.publish(p).await;
    publisher.pub_msg("size", "small", QoS::AtLeastOnce).await;
    assert_eq!(big.recv_and_ack().await.payload.len(), 100);
    assert_eq!(&big.recv_and_ack().await.payload[..], b"small");
    // The small client gets the next message; the big one was dropped as if sent.
    assert_eq!(&small.recv_and_ack().await.payload[..], b"small");
    small.expect_nothing().await;
}

/// conformance: v5 MQTT-3.1.2-29
/// conformance: v5 MQTT-3.11.2-1
/// conformance: v5 MQTT-3.7.2-2
#[tokio::test]
async fn reason_strings_only_when_problem_information_is_requested() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr(), V5, "rpi-default").await;
    let ack = c.unsubscribe(&["never/subscribed"]).await;
    assert_eq!(ack.reason_codes, [ReasonCode::NoSubscriptionExisted]);
    assert!(
        ack.properties.reason_string.is_some(),
        "a reason string by default"
    );
    c.send(Packet::PubRel(midge_codec::Ack::new(pid(5)))).await;
    match c.recv().await {
        Packet::PubComp(a) => {
            assert_eq!(a.reason_code, ReasonCode::PacketIdentifierNotFound);
            assert!(a.properties.reason_string.is_some());
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    // No reason string that would make the packet larger than the client accepts.
    let mut connect = connect_packet(V5, "rpi-small");
    connect.properties.maximum_packet_size = Some(16);
    let (mut c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    let ack = c.unsubscribe(&["x"]).await;
    assert_eq!(ack.reason_codes, [ReasonCode::NoSubscriptionExisted]);
    assert!(ack.properties.reason_string.is_none());

    let mut connect = connect_packet(V5, "rpi-off");
    connect.properties.request_problem_information = Some(false);
    let (mut c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    let ack = c.unsubscribe(&["never/subscribed"]).await;
    assert_eq!(ack.reason_codes, [ReasonCode::NoSubscriptionExisted]);
    assert!(ack.properties.reason_string.is_none());
    assert!(ack.properties.user_properties.is_empty());
    // Not even when it would fit: a PUBCOMP for an unknown packet identifier.
    c.send(Packet::PubRel(midge_codec::Ack::new(pid(5)))).await;
    match c.recv().await {
        Packet::PubComp(a) => {
            assert_eq!(a.reason_code, ReasonCode::PacketIdentifierNotFound);
            assert!(a.properties.is_empty());
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
}

/// CONNACK announces what the broker does, and it does it.
///
/// No Authentication Method came in the CONNECT: none goes in the CONNACK, and no AUTH
/// comes in the flows that follow.
///
/// conformance: v5 MQTT-3.2.2-9
/// conformance: v5 MQTT-3.2.2-10
/// conformance: v5 MQTT-4.12.0-6
#[tokio::test]
async fn connack_properties_tell_the_truth() {
    let broker = start().await;
    let (mut c, ack) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "truth")).await;
    let p = &ack.properties;
    assert_eq!(p.receive_maximum, Some(20));
    assert_eq!(p.topic_alias_maximum, Some(10));
    assert_eq!(p.maximum_qos, None, "QoS 2 is supported");
    assert_ne!(p.retain_available, Some(false));
    assert_eq!(p.wildcard_subscription_available, Some(true));
    assert_eq!(p.subscription_identifiers_available, Some(true));
    assert_eq!(p.shared_subscription_available, Some(true));
    assert_eq!(p.maximum_packet_size, None, "no limit below the protocol's");
    assert_eq!(p.server_keep_alive, None);
    assert!(p.authentication_method.is_none(), "[MQTT-4.12.0-6]");
    assert!(p.authentication_data.is_none(), "[MQTT-4.12.0-6]");
    assert!(
        p.response_information.is_none(),
        "not requested: [MQTT-3.1.2-28]"
    );
    // Each of them works: wildcards with a subscription identifier, shared, retain, QoS 2.
    let sub = c
        .subscribe_opts(
            &[
                (
                    "truth/+",
                    midge_codec::SubscriptionOptions::new(QoS::ExactlyOnce),
                ),
                (
                    "$share/g/truth/x",
                    midge_codec::SubscriptionOptions::new(QoS::ExactlyOnce),
                ),
            ],
            Some(9),
        )
        .await;
    assert_eq!(
        sub.reason_codes,
        [ReasonCode::GrantedQoS2, ReasonCode::GrantedQoS2]
    );
    c.pub_retained("truth/x", "all", QoS::ExactlyOnce).await;
    let got = [c.recv_and_ack().await, c.recv_and_ack().await];
    assert!(
        got.iter()
            .all(|p| p.qos == QoS::ExactlyOnce && p.properties.subscription_identifiers == [9])
    );
}

/// conformance: v5 MQTT-3.2.2-16
#[tokio::test]
async fn assigned_client_identifier_is_usable_to_resume() {
    let broker = start().await;
    let mut connect = persistent(V5, "");
    let (c, ack) = Client::connect_ok(broker.local_addr(), connect.clone()).await;
    let id = ack.properties.assigned_client_identifier.expect("assigned");
    c.disconnect().await;
    connect.client_id = id;
    let (_c, ack) = Client::connect_ok(broker.local_addr(), connect).await;
    assert!(ack.session_present);
    assert!(ack.properties.assigned_client_identifier.is_none());
}

/// The broker supports no extended authentication (an Authentication Method in CONNECT
/// gets CONNACK 0x8C, see connect.rs), so a client never has a reason to send AUTH: one
/// that does commits a Protocol Error. 0x8C itself is not a DISCONNECT reason code.
///
/// conformance: v5 MQTT-4.12.0-7
/// conformance: v5 MQTT-3.14.2-1
#[tokio::test]
async fn auth_packet_is_a_protocol_error() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr(), V5, "auth-pkt").await;
    let mut auth = Auth {
        reason_code: ReasonCode::ReAuthenticate,
        ..Auth::default()
    };
    auth.properties.authentication_method = Some("PLAIN".into());
    c.send(Packet::Auth(auth)).await;
    c.expect_disconnect(ReasonCode::ProtocolError).await;
}

/// The broker never returns Response Information: not when the client leaves Request
/// Response Information out or sets it to 0, where it must not, nor when it asks.
///
/// conformance: v5 MQTT-3.1.2-28
#[tokio::test]
async fn response_information_is_never_returned() {
    let broker = start().await;
    for request in [None, Some(false), Some(true)] {
        let mut connect = connect_packet(V5, "rri");
        connect.properties.request_response_information = request;
        let (c, ack) = Client::connect_ok(broker.local_addr(), connect).await;
        assert_eq!(ack.properties.response_information, None, "{request:?}");
        c.disconnect().await;
    }
}

/// The broker assigns outgoing Topic Aliases up to the client's Topic Alias Maximum and
/// none when it is absent or 0: the first message on a topic carries the topic and the
/// alias, later ones the alias and an empty topic. The publisher's own alias is its own.
///
/// conformance: v5 MQTT-3.1.2-26
/// conformance: v5 MQTT-3.1.2-27
/// conformance: v5 MQTT-3.3.2-11
#[tokio::test]
async fn topic_aliases_are_sent_within_the_clients_maximum() {
    let broker = start().await;
    let mut subscribers = Vec::new();
    for (i, maximum) in [None, Some(0), Some(1), Some(10)].into_iter().enumerate() {
        let mut connect = connect_packet(V5, &format!("alias-out-{i}"));
        connect.properties.topic_alias_maximum = maximum;
        let (mut c, _) = Client::connect_ok(broker.local_addr(), connect).await;
        c.subscribe("alias-out/#", QoS::AtLeastOnce).await;
        subscribers.push((c, maximum.unwrap_or(0)));
    }
    let mut publisher = Client::connect(broker.local_addr(), V5, "alias-out-pub").await;
    let mut p = publish("alias-out/a/long/topic", "1", QoS::AtLeastOnce);
    p.properties.topic_alias = Some(1);
    publisher.publish(p.clone()).await;
    p.topic = Default::default();
    p.payload = "2".into();
    p.packet_id = None;
    publisher.publish(p).await;
    publisher
        .pub_msg("alias-out/a/long/topic", "3", QoS::AtLeastOnce)
        .await;
    publisher
        .pub_msg("alias-out/other", "4", QoS::AtLeastOnce)
        .await;
    for (mut s, maximum) in subscribers {
        let got = [
            s.recv_and_ack().await,
            s.recv_and_ack().await,
            s.recv_and_ack().await,
            s.recv_and_ack().await,
        ];
        assert_eq!(payloads(&got), ["1", "2", "3", "4"]);
        if maximum == 0 {
            for p in &got[..3] {
                assert_eq!(p.topic.as_str(), "alias-out/a/long/topic");
            }
            assert!(got.iter().all(|p| p.properties.topic_alias.is_none()));
            assert_eq!(got[3].topic.as_str(), "alias-out/other");
            continue;
        }
        assert_eq!(got[0].topic.as_str(), "alias-out/a/long/topic");
        assert_eq!(got[0].properties.topic_alias, Some(1));
        for p in &got[1..3] {
            assert_eq!(p.topic.as_str(), "");
            assert_eq!(p.properties.topic_alias, Some(1));
        }
        assert_eq!(got[3].topic.as_str(), "alias-out/other");
        // With a maximum of 1 the second topic gets no alias; with 10 it gets alias 2.
        let expected = if maximum == 1 { None } else { Some(2) };
        assert_eq!(got[3].properties.topic_alias, expected);
    }
}

/// CONNACK carries no Reason String and no User Property, so neither can make it larger
/// than the client's Maximum Packet Size: it fits a small one, accepting or refusing.
///
/// conformance: v5 MQTT-3.2.2-19
/// conformance: v5 MQTT-3.2.2-20
#[tokio::test]
async fn connack_has_no_reason_string_or_user_property() {
    let broker = start().await;
    for maximum in [None, Some(32)] {
        for refused in [false, true] {
            let mut connect = connect_packet(V5, "connack-size");
            connect.properties.maximum_packet_size = maximum;
            if refused {
                // No extended authentication: refused with 0x8C.
                connect.properties.authentication_method = Some("SCRAM-SHA-1".into());
            }
            let (_c, ack) = Client::connect_with(broker.local_addr(), connect).await;
            assert_eq!(ack.reason_code.is_error(), refused, "{ack:?}");
            assert_eq!(ack.properties.reason_string, None);
            assert!(ack.properties.user_properties.is_empty());
            let len = Packet::ConnAck(Box::new(ack)).encoded_len(V5).unwrap();
            assert!(len <= maximum.unwrap_or(u32::MAX) as usize, "{len} bytes");
        }
    }
}
