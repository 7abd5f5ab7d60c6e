//! PUBLISH at QoS 0, in both directions, across protocol versions.

mod common;

use bytes::BytesMut;
use common::*;
use midge_codec::{Packet, QoS, Subscribe, SubscriptionOptions, Unsubscribe};

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

/// Messages a client publishes one after another in one write are routed together
/// (the broker's runs, `connection.rs`), yet as if one by one: each subscriber gets
/// them in publish order across topic changes, QoS 0 and 1 mixed, and a SUBSCRIBE or
/// UNSUBSCRIBE in the same write applies between the messages before and after it.
///
/// conformance: v5 MQTT-4.6.0-5
/// conformance: v5 MQTT-4.6.0-6
/// conformance: v3.1.1 MQTT-4.6.0-5
/// conformance: v3.1.1 MQTT-4.6.0-6
/// conformance: v5 MQTT-3.8.4-1
/// conformance: v3.1.1 MQTT-3.8.4-1
#[tokio::test]
async fn messages_in_one_write_are_routed_in_order_around_subscribe() {
    let broker = start().await;
    for v in VERSIONS {
        let mut watcher = Client::connect(broker.local_addr(), v, &cid("run-watch", v)).await;
        watcher.subscribe("run/#", QoS::AtLeastOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("run-pub", v)).await;
        let mut buf = BytesMut::new();
        let mut sent = Vec::new();
        let add = |buf: &mut BytesMut, packet: Packet| {
            packet.encode(v, buf).expect("packet encodes");
        };
        // Runs of one topic, broken by topic changes, then the publisher subscribes
        // to the topic, publishes again, unsubscribes, publishes again.
        let topics = ["run/a"; 20]
            .into_iter()
            .chain(["run/b", "run/a", "run/a", "run/b"])
            .chain(["run/a"; 20]);
        for (i, name) in topics.enumerate() {
            let qos = if i % 3 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            let mut p = publish(name, "", qos);
            p.payload = format!("m{i}").into();
            p.packet_id = (qos == QoS::AtLeastOnce).then(|| pid(i as u16 + 1));
            sent.push(format!("m{i}"));
            add(&mut buf, Packet::Publish(p));
        }
        add(
            &mut buf,
            Packet::Subscribe(Subscribe {
                packet_id: pid(1000),
                filters: vec![(filter("run/a"), SubscriptionOptions::new(QoS::AtMostOnce))],
                properties: Default::default(),
            }),
        );
        for i in 0..5 {
            let mut p = publish("run/a", "", QoS::AtMostOnce);
            p.payload = format!("own{i}").into();
            sent.push(format!("own{i}"));
            add(&mut buf, Packet::Publish(p));
        }
        add(
            &mut buf,
            Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(1001),
                filters: vec![filter("run/a")],
                properties: Default::default(),
            }),
        );
        let mut p = publish("run/a", "", QoS::AtMostOnce);
        p.payload = "last".into();
        sent.push("last".into());
        add(&mut buf, Packet::Publish(p));
        publisher.send_raw(&buf).await;

        let mut got = Vec::new();
        for _ in 0..sent.len() {
            got.push(watcher.recv_and_ack().await);
        }
        assert_eq!(payloads(&got), sent, "{v}");
        // The publisher gets back exactly what it published while subscribed.
        // (Its own messages come from its mailbox, after the acknowledgements written
        // while its packets were handled.)
        let (mut own, mut unsubscribed) = (Vec::new(), false);
        while own.len() < 5 || !unsubscribed {
            match publisher.recv().await {
                Packet::Publish(p) => own.push(p),
                Packet::UnsubAck(ack) => unsubscribed = ack.packet_id == pid(1001),
                Packet::PubAck(_) | Packet::SubAck(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            payloads(&own),
            ["own0", "own1", "own2", "own3", "own4"],
            "{v}"
        );
        // Nothing else reaches it: not the message after the UNSUBSCRIBE.
        publisher.ping().await;
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
