//! PUBLISH at QoS 0, in both directions, across protocol versions.

mod common;

use common::*;
use midge_codec::{Packet, QoS};

/// conformance: v5 MQTT-4.3.1-1
/// conformance: v5 MQTT-3.3.1-2
/// conformance: v5 MQTT-3.3.2-3
/// conformance: v3.1.1 MQTT-4.3.1-1
/// conformance: v3.1.1 MQTT-3.3.1-2
/// conformance: v3.1.1 MQTT-3.3.2-3
/// conformance: v3.1.1 MQTT-2.3.1-5
/// conformance: v3.1.1 MQTT-4.5.0-1
/// conformance: v5 MQTT-4.5.0-1
#[tokio::test]
async fn qos0_message_reaches_subscribers_of_every_version() {
    let broker = start().await;
    let mut subs = Vec::new();
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("q0-sub", v)).await;
        s.subscribe("q0/+", QoS::AtMostOnce).await;
        subs.push(s);
    }
    for v in VERSIONS {
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("q0-pub", v)).await;
        publisher.pub_msg("q0/x", "hello", QoS::AtMostOnce).await;
        for s in &mut subs {
            let p = s.recv_publish().await;
            assert_eq!(p.topic.as_str(), "q0/x");
            assert_eq!(&p.payload[..], b"hello");
            assert_eq!(p.qos, QoS::AtMostOnce);
            assert!(!p.dup && !p.retain && p.packet_id.is_none(), "{p:?}");
        }
    }
}

/// Over TCP, the broker's transport (an ordered, lossless byte stream), 200 QoS 0
/// messages all arrive, in the order they were sent.
///
/// conformance: v5 MQTT-4.6.0-5
/// conformance: v5 MQTT-4.6.0-6
/// conformance: v3.1.1 MQTT-4.6.0-5
/// conformance: v3.1.1 MQTT-4.6.0-6
/// conformance: v3.1.1 MQTT-7.1.1-1
#[tokio::test]
async fn qos0_messages_arrive_in_publish_order() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("q0-order-sub", v)).await;
        s.subscribe("order/#", QoS::AtMostOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("q0-order-pub", v)).await;
        let sent: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
        for payload in &sent {
            let mut p = publish("order/a", "", QoS::AtMostOnce);
            p.payload = payload.clone().into();
            publisher.send(Packet::Publish(p)).await;
        }
        let mut got = Vec::new();
        for _ in 0..sent.len() {
            got.push(s.recv_publish().await);
        }
        assert_eq!(payloads(&got), sent, "{v}");
    }
}

/// conformance: v5 MQTT-3.8.4-8
/// conformance: v3.1.1 MQTT-3.8.4-6
#[tokio::test]
async fn qos0_publication_is_delivered_at_qos0_to_higher_subscriptions() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("q0-hi", v)).await;
        s.subscribe("q0hi", QoS::ExactlyOnce).await;
        s.pub_msg("q0hi", "low", QoS::AtMostOnce).await;
        let p = s.recv_publish().await;
        assert_eq!(p.qos, QoS::AtMostOnce);
        assert_eq!(p.packet_id, None);
    }
}

/// With `upgrade_outgoing_qos`, messages go out at the subscription's QoS.
///
/// conformance: v5 MQTT-4.3.2-2
/// conformance: v5 MQTT-4.3.3-2
#[tokio::test]
async fn upgrade_outgoing_qos_delivers_at_the_granted_qos() {
    let mut config = test_config();
    config.upgrade_outgoing_qos = true;
    let broker = start_with(config).await;
    for v in VERSIONS {
        let mut s1 = Client::connect(broker.local_addr(), v, &cid("up1", v)).await;
        s1.subscribe("up", QoS::AtLeastOnce).await;
        let mut s2 = Client::connect(broker.local_addr(), v, &cid("up2", v)).await;
        s2.subscribe("up", QoS::ExactlyOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("up-pub", v)).await;
        publisher.pub_msg("up", "zero", QoS::AtMostOnce).await;
        let p = s1.recv_and_ack().await;
        assert_eq!(
            (p.qos, p.dup, p.packet_id.is_some()),
            (QoS::AtLeastOnce, false, true)
        );
        let p = s2.recv_and_ack().await;
        assert_eq!(
            (p.qos, p.dup, p.packet_id.is_some()),
            (QoS::ExactlyOnce, false, true)
        );
    }
}

/// Without a matching subscription a message goes nowhere, and a client does not get
/// its own messages unless it subscribed.
#[tokio::test]
async fn messages_go_only_to_matching_subscriptions() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("only", v)).await;
        s.subscribe("only/a", QoS::AtMostOnce).await;
        s.pub_msg("only/b", "no", QoS::AtMostOnce).await;
        s.pub_msg("only/a/b", "no", QoS::AtMostOnce).await;
        s.pub_msg("only/a", "sentinel", QoS::AtMostOnce).await;
        assert_eq!(&s.recv_publish().await.payload[..], b"sentinel");
        let mut other = Client::connect(broker.local_addr(), v, &cid("only-pub", v)).await;
        other.pub_msg("only/a", "x", QoS::AtMostOnce).await;
        other.ping().await;
        other.expect_nothing().await;
    }
}
