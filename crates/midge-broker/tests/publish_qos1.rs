//! PUBLISH at QoS 1: PUBACK in both directions, resending with DUP on a resumed session,
//! packet identifiers, QoS downgrade.

mod common;

use common::*;
use midge_codec::{Ack, Packet, Publish, QoS, ReasonCode};

/// conformance: v5 MQTT-4.3.2-1
/// conformance: v5 MQTT-4.3.2-2
/// conformance: v5 MQTT-4.3.2-3
/// conformance: v5 MQTT-4.3.2-4
/// conformance: v5 MQTT-3.3.4-1
/// conformance: v3.1.1 MQTT-4.3.2-1
/// conformance: v3.1.1 MQTT-4.3.2-2
/// conformance: v3.1.1 MQTT-3.3.4-1
/// conformance: v3.1.1 MQTT-2.3.1-6
#[tokio::test]
async fn qos1_flow_in_both_directions() {
    let broker = start().await;
    for sv in VERSIONS {
        for pv in VERSIONS {
            let mut s = Client::connect(broker.local_addr(), sv, &cid("q1-sub", sv)).await;
            s.subscribe("q1", QoS::AtLeastOnce).await;
            let mut publisher = Client::connect(broker.local_addr(), pv, &cid("q1-pub", pv)).await;
            let mut p = publish("q1", "one", QoS::AtLeastOnce);
            p.packet_id = Some(pid(4321));
            publisher.send(Packet::Publish(p)).await;
            match publisher.recv().await {
                Packet::PubAck(ack) => {
                    assert_eq!(ack.packet_id, pid(4321));
                    assert_eq!(ack.reason_code, ReasonCode::Success);
                }
                other => panic!("expected PUBACK, got {other:?}"),
            }
            let got = s.recv_publish().await;
            assert_eq!(
                (got.qos, got.dup, &got.payload[..]),
                (QoS::AtLeastOnce, false, &b"one"[..])
            );
            assert!(got.packet_id.is_some());
            s.ack(&got).await;
            // Acknowledged: nothing is resent on this connection.
            s.expect_nothing().await;
        }
    }
}

/// conformance: v5 MQTT-4.3.2-1
/// conformance: v3.1.1 MQTT-2.3.1-4
#[tokio::test]
async fn unacknowledged_messages_have_distinct_packet_ids() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("ids", v)).await;
        s.subscribe("ids", QoS::AtLeastOnce).await;
        for _ in 0..10 {
            s.pub_msg("ids", "x", QoS::AtMostOnce).await;
        }
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("ids-pub", v)).await;
        for _ in 0..10 {
            publisher.pub_msg("ids", "y", QoS::AtLeastOnce).await;
        }
        let mut ids = Vec::new();
        for _ in 0..20 {
            let p = s.recv_publish().await;
            if p.qos == QoS::AtLeastOnce {
                ids.push(p.packet_id.unwrap());
            }
        }
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10, "{v}: {ids:?}");
    }
}

/// conformance: v5 MQTT-4.3.2-5
/// conformance: v3.1.1 MQTT-4.3.2-2
#[tokio::test]
async fn same_packet_id_after_puback_is_a_new_message() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("reuse", v)).await;
        s.subscribe("reuse", QoS::AtLeastOnce).await;
        for payload in ["first", "second"] {
            let mut p = publish("reuse", payload, QoS::AtLeastOnce);
            p.packet_id = Some(pid(9));
            s.publish(p).await;
            assert_eq!(&s.recv_and_ack().await.payload[..], payload.as_bytes());
        }
    }
}

/// conformance: v5 MQTT-4.4.0-1
/// conformance: v5 MQTT-3.3.1-1
/// conformance: v5 MQTT-3.1.2-5
/// conformance: v3.1.1 MQTT-4.4.0-1
/// conformance: v3.1.1 MQTT-3.3.1-1
/// conformance: v3.1.1 MQTT-3.1.2-4
#[tokio::test]
async fn unacknowledged_qos1_is_resent_with_dup_in_order_on_resume() {
    let broker = start().await;
    for v in VERSIONS {
        let id = cid("resend1", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe("resend1", QoS::AtLeastOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("resend1-pub", v)).await;
        for payload in ["a", "b", "c"] {
            publisher
                .pub_msg("resend1", payload, QoS::AtLeastOnce)
                .await;
        }
        let first: Vec<_> = [
            s.recv_publish().await,
            s.recv_publish().await,
            s.recv_publish().await,
        ]
        .into();
        assert_eq!(payloads(&first), ["a", "b", "c"]);
        // Acknowledge only "b", then lose the connection.
        s.ack(&first[1]).await;
        s.ping().await;
        s.drop_connection();
        let (mut s, ack) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        assert_resumed(&ack, v);
        let again = [s.recv_publish().await, s.recv_publish().await];
        assert_eq!(payloads(&again), ["a", "c"], "{v}");
        for (resent, original) in again.iter().zip([&first[0], &first[2]]) {
            assert!(resent.dup, "{v}: DUP on the resent PUBLISH");
            assert_eq!(
                resent.packet_id, original.packet_id,
                "{v}: original packet id"
            );
            s.ack(resent).await;
        }
        s.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-3.3.1-3
/// conformance: v3.1.1 MQTT-3.3.1-3
#[tokio::test]
async fn dup_is_not_forwarded_from_the_publisher() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("dup", v)).await;
        s.subscribe("dup", QoS::AtLeastOnce).await;
        let mut p = publish("dup", "again", QoS::AtLeastOnce);
        p.dup = true;
        s.publish(p).await;
        let got = s.recv_and_ack().await;
        assert!(!got.dup, "{v}");
    }
}

/// conformance: v5 MQTT-3.8.4-8
/// conformance: v3.1.1 MQTT-3.8.4-6
#[tokio::test]
async fn qos_is_downgraded_to_the_granted_qos() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("down", v)).await;
        s.subscribe("down/0", QoS::AtMostOnce).await;
        s.subscribe("down/1", QoS::AtLeastOnce).await;
        s.pub_msg("down/0", "a", QoS::AtLeastOnce).await;
        let p = s.recv_publish().await;
        assert_eq!((p.qos, p.packet_id), (QoS::AtMostOnce, None));
        s.pub_msg("down/0", "b", QoS::ExactlyOnce).await;
        let p = s.recv_publish().await;
        assert_eq!((p.qos, p.packet_id), (QoS::AtMostOnce, None));
        s.pub_msg("down/1", "c", QoS::ExactlyOnce).await;
        let p = s.recv_and_ack().await;
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }
}

/// A PUBACK with an error code ends the flow: the message is not resent.
///
/// conformance: v5 MQTT-4.4.0-2
#[tokio::test]
async fn puback_with_error_code_is_not_retransmitted() {
    let broker = start().await;
    let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(V5, "nack1")).await;
    s.subscribe("nack1", QoS::AtLeastOnce).await;
    s.pub_msg("nack1", "refused", QoS::AtLeastOnce).await;
    let p = s.recv_publish().await;
    let mut nack = Ack::new(p.packet_id.unwrap());
    nack.reason_code = ReasonCode::UnspecifiedError;
    s.send(Packet::PubAck(nack)).await;
    s.ping().await;
    s.drop_connection();
    let (mut s, ack) = Client::connect_ok(broker.local_addr(), persistent(V5, "nack1")).await;
    assert!(ack.session_present);
    s.expect_nothing().await;
}

/// A publisher whose one write fans out to more deliveries than a connection queues in
/// one turn (the connection's delivery budget, 8,192): the rest of its input is
/// handled on its next turns, and every subscriber still gets every message once, in
/// order, and the publisher every PUBACK, in order.
/// conformance: v5 MQTT-4.6.0-2
/// conformance: v5 MQTT-4.6.0-3
/// conformance: v5 MQTT-4.6.0-6
/// conformance: v3.1.1 MQTT-4.6.0-2
/// conformance: v3.1.1 MQTT-4.6.0-3
/// conformance: v3.1.1 MQTT-4.6.0-6
#[tokio::test]
async fn a_burst_beyond_one_turn_keeps_every_message_in_order() {
    const SUBSCRIBERS: usize = 12;
    const MESSAGES: u16 = 800;
    let broker = start().await;
    for v in VERSIONS {
        let mut subs = Vec::new();
        for i in 0..SUBSCRIBERS {
            let mut s =
                Client::connect(broker.local_addr(), v, &cid(&format!("burst-sub{i}"), v)).await;
            s.subscribe("burst/t", QoS::AtLeastOnce).await;
            subs.push(s);
        }
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("burst-pub", v)).await;
        let mut burst = bytes::BytesMut::new();
        for n in 1..=MESSAGES {
            let mut p = Publish::new(
                topic("burst/t"),
                bytes::Bytes::from(n.to_be_bytes().to_vec()),
            );
            p.qos = QoS::AtLeastOnce;
            p.packet_id = Some(pid(n));
            Packet::Publish(p).encode(v, &mut burst).unwrap();
        }
        publisher.send_raw(&burst).await;
        for n in 1..=MESSAGES {
            match publisher.recv_reply().await {
                Packet::PubAck(ack) => assert_eq!(ack.packet_id, pid(n)),
                other => panic!("expected PUBACK {n}, got {other:?}"),
            }
        }
        for s in &mut subs {
            for n in 1..=MESSAGES {
                let p = s.recv_and_ack().await;
                assert_eq!(
                    p.payload[..],
                    n.to_be_bytes(),
                    "subscriber got {:?} for {n}",
                    p.payload
                );
            }
        }
        // Nothing twice.
        subs[SUBSCRIBERS - 1].expect_nothing().await;
    }
}
