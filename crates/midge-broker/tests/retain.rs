//! Retained messages: stored, replaced, deleted by an empty payload, sent on
//! subscribe per Retain Handling, the RETAIN flag per Retain As Published, and a broker
//! configured without retain support.

mod common;

use common::*;
use midge_codec::{LastWill, Packet, QoS, ReasonCode, RetainHandling, SubscriptionOptions};

fn opts(qos: QoS, handling: RetainHandling, as_published: bool) -> SubscriptionOptions {
    let mut o = SubscriptionOptions::new(qos);
    o.retain_handling = handling;
    o.retain_as_published = as_published;
    o
}

/// conformance: v5 MQTT-3.3.1-5
/// conformance: v5 MQTT-3.3.1-9
/// conformance: v3.1.1 MQTT-3.3.1-5
/// conformance: v3.1.1 MQTT-3.3.1-6
/// conformance: v3.1.1 MQTT-3.3.1-8
#[tokio::test]
async fn retained_message_is_sent_to_new_subscriptions() {
    let broker = start().await;
    for pv in VERSIONS {
        let topic_name = format!("ret/{}", pv as u8);
        let mut publisher = Client::connect(broker.local_addr(), pv, &cid("ret-pub", pv)).await;
        let mut p = publish(&topic_name, "stored", QoS::AtLeastOnce);
        p.retain = true;
        publisher.publish(p).await;
        publisher.disconnect().await;
        for sv in VERSIONS {
            let mut s = Client::connect(broker.local_addr(), sv, &cid("ret-sub", sv)).await;
            s.subscribe(&topic_name, QoS::ExactlyOnce).await;
            let got = s.recv_and_ack().await;
            assert_eq!(got.topic.as_str(), topic_name);
            assert_eq!(&got.payload[..], b"stored");
            assert!(
                got.retain,
                "{sv}: RETAIN set on a message sent for a new subscription"
            );
            // Stored with its QoS: delivered at min(QoS 1, granted 2).
            assert_eq!(got.qos, QoS::AtLeastOnce);
            s.expect_nothing().await;
        }
    }
}

/// conformance: v5 MQTT-3.3.1-5
/// conformance: v3.1.1 MQTT-3.3.1-5
/// conformance: v3.1.1 MQTT-3.3.1-7
#[tokio::test]
async fn a_new_retained_message_replaces_the_old_one() {
    let broker = start().await;
    for v in VERSIONS {
        let name = format!("replace/{}", v as u8);
        let mut c = Client::connect(broker.local_addr(), v, &cid("replace", v)).await;
        let mut p = publish(&name, "old", QoS::AtLeastOnce);
        p.retain = true;
        c.publish(p).await;
        let mut p = publish(&name, "new", QoS::AtMostOnce);
        p.retain = true;
        c.publish(p).await;
        c.subscribe(&name, QoS::AtLeastOnce).await;
        let got = c.recv_publish().await;
        assert_eq!(
            (&got.payload[..], got.qos, got.retain),
            (&b"new"[..], QoS::AtMostOnce, true)
        );
        c.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-3.3.1-6
/// conformance: v5 MQTT-3.3.1-7
/// conformance: v3.1.1 MQTT-3.3.1-10
/// conformance: v3.1.1 MQTT-3.3.1-11
#[tokio::test]
async fn empty_retained_payload_deletes_and_is_still_forwarded() {
    let broker = start().await;
    for v in VERSIONS {
        let name = format!("del/{}", v as u8);
        let mut c = Client::connect(broker.local_addr(), v, &cid("del", v)).await;
        c.pub_retained(&name, "doomed", QoS::AtMostOnce).await;
        let mut s = Client::connect(broker.local_addr(), v, &cid("del-sub", v)).await;
        s.subscribe(&name, QoS::AtMostOnce).await;
        assert_eq!(&s.recv_publish().await.payload[..], b"doomed");
        c.pub_retained(&name, "", QoS::AtMostOnce).await;
        // Existing subscribers get the empty message as a normal message.
        let got = s.recv_publish().await;
        assert!(got.payload.is_empty(), "{v}");
        // New subscribers get nothing.
        let mut late = Client::connect(broker.local_addr(), v, &cid("del-late", v)).await;
        late.subscribe(&name, QoS::AtMostOnce).await;
        late.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-3.3.1-8
/// conformance: v3.1.1 MQTT-3.3.1-12
#[tokio::test]
async fn non_retained_publish_leaves_the_retained_message_alone() {
    let broker = start().await;
    for v in VERSIONS {
        let name = format!("keep/{}", v as u8);
        let mut c = Client::connect(broker.local_addr(), v, &cid("keep", v)).await;
        c.pub_retained(&name, "kept", QoS::AtMostOnce).await;
        c.pub_msg(&name, "passing", QoS::AtMostOnce).await;
        c.pub_msg(&name, "", QoS::AtMostOnce).await;
        c.subscribe(&name, QoS::AtMostOnce).await;
        assert_eq!(&c.recv_publish().await.payload[..], b"kept", "{v}");
        c.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-3.3.1-9
/// conformance: v5 MQTT-3.3.1-10
/// conformance: v5 MQTT-3.3.1-11
/// conformance: v5 MQTT-3.8.4-4
#[tokio::test]
async fn retain_handling_0_1_2() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr(), V5, "handling").await;
    c.pub_retained("rh/t", "r", QoS::AtMostOnce).await;
    let send = |h| [("rh/#", opts(QoS::AtMostOnce, h, false))];
    // 0: sent at every subscribe, new or not.
    c.subscribe_opts(&send(RetainHandling::SendAtSubscribe), None)
        .await;
    assert!(c.recv_publish().await.retain);
    c.subscribe_opts(&send(RetainHandling::SendAtSubscribe), None)
        .await;
    assert!(c.recv_publish().await.retain);
    // 1: only when the subscription is new.
    c.subscribe_opts(&send(RetainHandling::SendAtSubscribeIfNew), None)
        .await;
    c.expect_nothing().await;
    c.unsubscribe(&["rh/#"]).await;
    c.subscribe_opts(&send(RetainHandling::SendAtSubscribeIfNew), None)
        .await;
    assert!(c.recv_publish().await.retain);
    // 2: never.
    c.unsubscribe(&["rh/#"]).await;
    c.subscribe_opts(&send(RetainHandling::DoNotSend), None)
        .await;
    c.expect_nothing().await;
    // Replacing the subscription loses no message that matches it.
    c.pub_msg("rh/t", "live", QoS::AtMostOnce).await;
    assert_eq!(&c.recv_publish().await.payload[..], b"live");
}

/// conformance: v5 MQTT-3.3.1-12
/// conformance: v5 MQTT-3.3.1-13
/// conformance: v3.1.1 MQTT-3.3.1-9
#[tokio::test]
async fn retain_flag_on_forwarded_messages_follows_retain_as_published() {
    let broker = start().await;
    let mut plain = Client::connect(broker.local_addr(), V5, "rap-0").await;
    plain
        .subscribe_opts(
            &[(
                "rap",
                opts(QoS::AtMostOnce, RetainHandling::DoNotSend, false),
            )],
            None,
        )
        .await;
    let mut rap = Client::connect(broker.local_addr(), V5, "rap-1").await;
    rap.subscribe_opts(
        &[(
            "rap",
            opts(QoS::AtMostOnce, RetainHandling::DoNotSend, true),
        )],
        None,
    )
    .await;
    let mut old = Client::connect(broker.local_addr(), V311, "rap-311").await;
    old.subscribe("rap", QoS::AtMostOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "rap-pub").await;
    publisher.pub_retained("rap", "r", QoS::AtMostOnce).await;
    publisher.pub_msg("rap", "n", QoS::AtMostOnce).await;
    for (c, flags) in [
        (&mut plain, [false, false]),
        (&mut rap, [true, false]),
        (&mut old, [false, false]),
    ] {
        let got = [c.recv_publish().await, c.recv_publish().await];
        assert_eq!([got[0].retain, got[1].retain], flags, "{:?}", c.version);
    }
}

/// conformance: v3.1.1 MQTT-3.1.2-7
#[tokio::test]
async fn retained_messages_outlive_the_publishers_session() {
    let broker = start().await;
    for v in VERSIONS {
        let name = format!("outlive/{}", v as u8);
        let mut c = Client::connect(broker.local_addr(), v, &cid("outlive", v)).await;
        c.pub_retained(&name, "still here", QoS::AtLeastOnce).await;
        c.disconnect().await;
        let mut c = Client::connect(broker.local_addr(), v, &cid("outlive", v)).await;
        c.subscribe(&name, QoS::AtLeastOnce).await;
        assert_eq!(&c.recv_and_ack().await.payload[..], b"still here");
    }
}

/// With `retain_available = false` a 5.0 client is told so in CONNACK, a retained
/// PUBLISH closes the connection with 0x9A, a retained will is refused with 0x9A.
///
/// conformance: v5 MQTT-3.2.2-13
#[tokio::test]
async fn retain_not_available() {
    let mut config = test_config();
    config.retain_available = false;
    let broker = start_with(config).await;
    let (mut c, ack) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "noret")).await;
    assert_eq!(ack.properties.retain_available, Some(false));
    c.pub_msg("noret", "plain is fine", QoS::AtLeastOnce).await;
    let mut p = publish("noret", "retained", QoS::AtMostOnce);
    p.retain = true;
    c.send(Packet::Publish(p.clone())).await;
    c.expect_disconnect(ReasonCode::RetainNotSupported).await;
    // 3.1.1: closed.
    let mut old = Client::connect(broker.local_addr(), V311, "noret-311").await;
    old.send(Packet::Publish(p)).await;
    old.expect_closed().await;
    // A retained will is refused at CONNECT.
    for v in [V311, V5] {
        let mut connect = connect_packet(v, &cid("noret-will", v));
        connect.will = Some(LastWill {
            topic: topic("w"),
            payload: "w".into(),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Default::default(),
        });
        let (mut c, ack) = Client::connect_with(broker.local_addr(), connect).await;
        assert!(ack.reason_code.is_error(), "{v}: {ack:?}");
        if v.is_v5() {
            assert_eq!(ack.reason_code, ReasonCode::RetainNotSupported);
        }
        c.expect_closed().await;
    }
    // Nothing was stored.
    let mut s = Client::connect(broker.local_addr(), V5, "noret-sub").await;
    s.subscribe("#", QoS::AtMostOnce).await;
    s.expect_nothing().await;
}

/// A retained message is stored by the broker; with retain available (the default)
/// CONNACK does not say otherwise.
#[tokio::test]
async fn connack_does_not_deny_retain_by_default() {
    let broker = start().await;
    let (_c, ack) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "retok")).await;
    assert_ne!(ack.properties.retain_available, Some(false));
}
