//! PUBLISH at QoS 2: PUBREC/PUBREL/PUBCOMP in both directions, exactly-once delivery
//! when the publisher resends, resuming flows on a new connection.

mod common;

use common::*;
use midge_codec::{Ack, Packet, QoS, ReasonCode};

/// conformance: v5 MQTT-4.3.3-1
/// conformance: v5 MQTT-4.3.3-2
/// conformance: v5 MQTT-4.3.3-3
/// conformance: v5 MQTT-4.3.3-4
/// conformance: v5 MQTT-4.3.3-5
/// conformance: v5 MQTT-4.3.3-8
/// conformance: v5 MQTT-4.3.3-11
/// conformance: v3.1.1 MQTT-4.3.3-1
/// conformance: v3.1.1 MQTT-4.3.3-2
/// conformance: v3.1.1 MQTT-2.3.1-6
#[tokio::test]
async fn qos2_flow_in_both_directions() {
    let broker = start().await;
    for sv in VERSIONS {
        for pv in VERSIONS {
            let mut s = Client::connect(broker.local_addr(), sv, &cid("q2-sub", sv)).await;
            s.subscribe("q2", QoS::ExactlyOnce).await;
            let mut publisher = Client::connect(broker.local_addr(), pv, &cid("q2-pub", pv)).await;
            let mut p = publish("q2", "two", QoS::ExactlyOnce);
            p.packet_id = Some(pid(77));
            publisher.send(Packet::Publish(p)).await;
            assert!(matches!(publisher.recv().await, Packet::PubRec(a) if a.packet_id == pid(77)));
            publisher.send(Packet::PubRel(Ack::new(pid(77)))).await;
            assert!(matches!(publisher.recv().await,
                Packet::PubComp(a) if a.packet_id == pid(77) && a.reason_code == ReasonCode::Success));

            let got = s.recv_publish().await;
            assert_eq!(
                (got.qos, got.dup, &got.payload[..]),
                (QoS::ExactlyOnce, false, &b"two"[..])
            );
            let id = got.packet_id.unwrap();
            s.send(Packet::PubRec(Ack::new(id))).await;
            assert!(matches!(s.recv().await, Packet::PubRel(a) if a.packet_id == id));
            s.send(Packet::PubComp(Ack::new(id))).await;
            s.expect_nothing().await;
        }
    }
}

/// conformance: v5 MQTT-4.3.3-10
/// conformance: v5 MQTT-4.3.3-12
/// conformance: v3.1.1 MQTT-4.3.3-2
#[tokio::test]
async fn qos2_resent_by_the_publisher_is_delivered_once() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("once-sub", v)).await;
        s.subscribe("once", QoS::ExactlyOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("once-pub", v)).await;
        let mut p = publish("once", "m1", QoS::ExactlyOnce);
        p.packet_id = Some(pid(5));
        publisher.send(Packet::Publish(p.clone())).await;
        assert!(matches!(publisher.recv().await, Packet::PubRec(_)));
        // Resent before PUBREL (with and without DUP): acknowledged, not routed again.
        let mut again = p.clone();
        again.dup = true;
        publisher.send(Packet::Publish(again)).await;
        assert!(matches!(publisher.recv().await, Packet::PubRec(a) if a.packet_id == pid(5)));
        publisher.send(Packet::Publish(p.clone())).await;
        assert!(matches!(publisher.recv().await, Packet::PubRec(a) if a.packet_id == pid(5)));
        publisher.send(Packet::PubRel(Ack::new(pid(5)))).await;
        assert!(matches!(publisher.recv().await, Packet::PubComp(_)));
        // After PUBCOMP the same id is a new message.
        let mut next = publish("once", "m2", QoS::ExactlyOnce);
        next.packet_id = Some(pid(5));
        publisher.publish(next).await;
        let got = [s.recv_and_ack().await, s.recv_and_ack().await];
        assert_eq!(payloads(&got), ["m1", "m2"], "{v}");
        s.expect_nothing().await;
    }
}

/// A publisher that loses its connection after PUBREC and resends on its resumed
/// session still gets its message delivered exactly once.
///
/// conformance: v5 MQTT-4.3.3-10
/// conformance: v5 MQTT-4.4.0-1
/// conformance: v3.1.1 MQTT-4.3.3-2
/// conformance: v3.1.1 MQTT-4.4.0-1
#[tokio::test]
async fn qos2_is_delivered_once_across_a_publisher_reconnect() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("xonce-sub", v)).await;
        s.subscribe("xonce", QoS::ExactlyOnce).await;
        let id = cid("xonce-pub", v);
        let (mut publisher, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        let mut p = publish("xonce", "only once", QoS::ExactlyOnce);
        p.packet_id = Some(pid(3));
        publisher.send(Packet::Publish(p.clone())).await;
        assert!(matches!(publisher.recv().await, Packet::PubRec(_)));
        publisher.drop_connection();
        let (mut publisher, ack) =
            Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        assert_resumed(&ack, v);
        p.dup = true;
        publisher.send(Packet::Publish(p)).await;
        assert!(matches!(publisher.recv().await, Packet::PubRec(a) if a.packet_id == pid(3)));
        publisher.send(Packet::PubRel(Ack::new(pid(3)))).await;
        assert!(matches!(publisher.recv().await, Packet::PubComp(a) if a.packet_id == pid(3)));
        assert_eq!(&s.recv_and_ack().await.payload[..], b"only once");
        s.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-4.4.0-1
/// conformance: v5 MQTT-4.3.3-6
/// conformance: v5 MQTT-3.3.1-1
/// conformance: v3.1.1 MQTT-4.4.0-1
/// conformance: v3.1.1 MQTT-3.3.1-1
#[tokio::test]
async fn unfinished_outgoing_qos2_flows_resume_on_reconnect() {
    let broker = start().await;
    for v in VERSIONS {
        let id = cid("resume2", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe("resume2", QoS::ExactlyOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("resume2-pub", v)).await;
        publisher
            .pub_msg("resume2", "released", QoS::ExactlyOnce)
            .await;
        publisher
            .pub_msg("resume2", "unreceived", QoS::ExactlyOnce)
            .await;
        let released = s.recv_publish().await;
        let unreceived = s.recv_publish().await;
        // PUBREC the first: the broker answers PUBREL, which stays unacknowledged.
        let rid = released.packet_id.unwrap();
        s.send(Packet::PubRec(Ack::new(rid))).await;
        assert!(matches!(s.recv().await, Packet::PubRel(a) if a.packet_id == rid));
        s.drop_connection();

        let (mut s, ack) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        assert_resumed(&ack, v);
        // In the original order: the PUBREL of the first, the PUBLISH (DUP) of the second.
        assert!(
            matches!(s.recv().await, Packet::PubRel(a) if a.packet_id == rid),
            "{v}"
        );
        s.send(Packet::PubComp(Ack::new(rid))).await;
        let again = s.recv_publish().await;
        assert!(again.dup);
        assert_eq!(again.packet_id, unreceived.packet_id);
        assert_eq!(&again.payload[..], b"unreceived");
        s.ack(&again).await;
        s.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-4.3.3-11
/// conformance: v5 MQTT-3.7.2-1
#[tokio::test]
async fn pubrel_for_an_unknown_id_gets_pubcomp() {
    let broker = start().await;
    for v in VERSIONS {
        let mut c = Client::connect(broker.local_addr(), v, &cid("relx", v)).await;
        c.send(Packet::PubRel(Ack::new(pid(999)))).await;
        match c.recv().await {
            Packet::PubComp(a) => {
                assert_eq!(a.packet_id, pid(999));
                if v.is_v5() {
                    assert_eq!(a.reason_code, ReasonCode::PacketIdentifierNotFound);
                }
            }
            other => panic!("expected PUBCOMP, got {other:?}"),
        }
    }
}

/// A PUBREC with an error code ends the flow: no PUBREL, nothing resent.
///
/// conformance: v5 MQTT-4.4.0-2
/// conformance: v5 MQTT-4.3.3-4
#[tokio::test]
async fn pubrec_with_error_code_ends_the_flow() {
    let broker = start().await;
    let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(V5, "nack2")).await;
    s.subscribe("nack2", QoS::ExactlyOnce).await;
    s.pub_msg("nack2", "refused", QoS::ExactlyOnce).await;
    let p = s.recv_publish().await;
    let mut nack = Ack::new(p.packet_id.unwrap());
    nack.reason_code = ReasonCode::QuotaExceeded;
    s.send(Packet::PubRec(nack)).await;
    s.expect_nothing().await;
    s.drop_connection();
    let (mut s, ack) = Client::connect_ok(broker.local_addr(), persistent(V5, "nack2")).await;
    assert!(ack.session_present);
    s.expect_nothing().await;
}

/// conformance: v5 MQTT-4.6.0-5
/// conformance: v3.1.1 MQTT-4.6.0-6
#[tokio::test]
async fn qos2_messages_arrive_in_order() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("order2", v)).await;
        s.subscribe("order2", QoS::ExactlyOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("order2-pub", v)).await;
        let sent: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
        for payload in &sent {
            let mut p = publish("order2", "", QoS::ExactlyOnce);
            p.payload = payload.clone().into();
            publisher.publish(p).await;
        }
        let mut got = Vec::new();
        for _ in 0..sent.len() {
            got.push(s.recv_and_ack().await);
        }
        assert_eq!(payloads(&got), sent, "{v}");
    }
}
