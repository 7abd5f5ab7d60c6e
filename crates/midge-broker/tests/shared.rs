//! Shared subscriptions (`$share/GROUP/FILTER`): messages spread over the group's
//! members, each message to one member; a member that leaves hands the messages that
//! did not reach it to another member.

mod common;

use std::collections::HashSet;

use common::*;
use midge_codec::{Ack, Packet, QoS, ReasonCode, SubscriptionOptions};

/// A 5.0 client with Receive Maximum `receive_maximum`.
async fn member_v5(broker: &midge_broker::BrokerHandle, id: &str, receive_maximum: u16) -> Client {
    let mut connect = connect_packet(V5, id);
    connect.properties.receive_maximum = Some(receive_maximum);
    Client::connect_ok(broker.local_addr(), connect).await.0
}

#[tokio::test]
async fn connack_says_shared_subscriptions_are_available() {
    let broker = start().await;
    let (_c, ack) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "avail")).await;
    assert_eq!(ack.properties.shared_subscription_available, Some(true));
}

/// Each message goes to one member, in turn.
#[tokio::test]
async fn messages_are_spread_over_the_group() {
    let broker = start().await;
    let mut a = Client::connect(broker.local_addr(), V5, "spread-a").await;
    let mut b = Client::connect(broker.local_addr(), V311, "spread-b").await;
    let mut c = Client::connect(broker.local_addr(), V31, "spread-c").await;
    for m in [&mut a, &mut b, &mut c] {
        m.subscribe("$share/g/jobs/+", QoS::AtLeastOnce).await;
    }
    let mut publisher = Client::connect(broker.local_addr(), V5, "spread-pub").await;
    let sent: Vec<String> = (0..30).map(|i| format!("job{i}")).collect();
    for payload in &sent {
        let mut p = publish("jobs/x", "", QoS::AtLeastOnce);
        p.payload = payload.clone().into();
        publisher.publish(p).await;
    }
    let mut all = Vec::new();
    for m in [&mut a, &mut b, &mut c] {
        let mut mine = Vec::new();
        for _ in 0..10 {
            mine.push(m.recv_and_ack().await);
        }
        m.expect_nothing().await;
        // Each member sees its share in publish order.
        let got = payloads(&mine);
        let mut sorted = got.clone();
        sorted.sort_by_key(|p| p[3..].parse::<u32>().unwrap());
        assert_eq!(got, sorted);
        all.extend(got);
    }
    let unique: HashSet<String> = all.into_iter().collect();
    assert_eq!(unique, sent.into_iter().collect());
}

/// Every group gets one copy, and so does every non-shared subscription.
#[tokio::test]
async fn each_group_and_each_plain_subscription_gets_a_copy() {
    let broker = start().await;
    let mut g1 = Client::connect(broker.local_addr(), V5, "copy-g1").await;
    g1.subscribe("$share/one/copy", QoS::AtMostOnce).await;
    let mut g2 = Client::connect(broker.local_addr(), V311, "copy-g2").await;
    g2.subscribe("$share/two/copy", QoS::AtMostOnce).await;
    // A member of both groups, with a plain subscription too, gets three copies.
    let mut all = Client::connect(broker.local_addr(), V5, "copy-all").await;
    all.subscribe("$share/one/copy", QoS::AtMostOnce).await;
    all.subscribe("$share/two/#", QoS::AtMostOnce).await;
    all.subscribe("copy", QoS::AtMostOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "copy-pub").await;
    let mut per_client = [0, 0, 0];
    for _ in 0..4 {
        publisher.pub_msg("copy", "m", QoS::AtMostOnce).await;
    }
    publisher.ping().await;
    for (n, c) in per_client.iter_mut().zip([&mut g1, &mut g2, &mut all]) {
        while let Recv::Packet(Packet::Publish(_)) = c.recv_within(QUIET).await {
            *n += 1;
        }
    }
    // Group "$share/one/copy" (g1 and all) shares 4 messages; "$share/two/copy" (g2) and
    // "$share/two/#" (all) are distinct groups with 4 each; the plain subscription gets 4.
    let [g1_got, g2_got, all_got] = per_client;
    assert_eq!(g2_got, 4);
    assert_eq!(g1_got + all_got, 4 + 4 + 4);
    assert_eq!(g1_got, 2, "group one alternates between its members");
}

/// Each group rotates over its own members: two members of two groups on one topic each
/// get messages from both groups (told apart by subscription identifier).
#[tokio::test]
async fn each_group_rotates_over_its_own_members() {
    let broker = start().await;
    let mut members = Vec::new();
    for name in ["rot-a", "rot-b"] {
        let mut m = Client::connect(broker.local_addr(), V5, name).await;
        for (group, id) in [("$share/x/rot", 1), ("$share/y/rot", 2)] {
            m.subscribe_opts(
                &[(group, SubscriptionOptions::new(QoS::AtMostOnce))],
                Some(id),
            )
            .await;
        }
        members.push(m);
    }
    let mut publisher = Client::connect(broker.local_addr(), V5, "rot-pub").await;
    for _ in 0..8 {
        publisher.pub_msg("rot", "m", QoS::AtMostOnce).await;
    }
    for m in &mut members {
        let mut ids = Vec::new();
        for _ in 0..8 {
            ids.extend_from_slice(&m.recv_publish().await.properties.subscription_identifiers);
        }
        ids.sort();
        assert_eq!(ids, [1, 1, 1, 1, 2, 2, 2, 2], "4 from each group");
        m.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-4.8.2-3
#[tokio::test]
async fn each_member_gets_its_granted_qos() {
    let broker = start().await;
    let mut low = Client::connect(broker.local_addr(), V5, "qos-low").await;
    low.subscribe("$share/q/t", QoS::AtMostOnce).await;
    let mut high = Client::connect(broker.local_addr(), V5, "qos-high").await;
    high.subscribe("$share/q/t", QoS::ExactlyOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "qos-pub").await;
    for _ in 0..4 {
        publisher.pub_msg("t", "x", QoS::ExactlyOnce).await;
    }
    for _ in 0..2 {
        assert_eq!(low.recv_publish().await.qos, QoS::AtMostOnce);
        assert_eq!(high.recv_and_ack().await.qos, QoS::ExactlyOnce);
    }
}

/// A member whose session ends hands its unacknowledged QoS 1 messages to another
/// member.
#[tokio::test]
async fn unacknowledged_qos1_goes_to_another_member_when_a_session_ends() {
    let broker = start().await;
    for v in VERSIONS {
        let mut leaving = Client::connect(broker.local_addr(), v, &cid("leave1", v)).await;
        leaving.subscribe("$share/g1/work", QoS::AtLeastOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), V5, &cid("leave1-pub", v)).await;
        for payload in ["a", "b", "c"] {
            publisher.pub_msg("work", payload, QoS::AtLeastOnce).await;
        }
        let got = [
            leaving.recv_publish().await,
            leaving.recv_publish().await,
            leaving.recv_publish().await,
        ];
        assert_eq!(payloads(&got), ["a", "b", "c"]);
        let mut staying = Client::connect(broker.local_addr(), V311, &cid("leave1-stay", v)).await;
        staying.subscribe("$share/g1/work", QoS::AtLeastOnce).await;
        leaving.ack(&got[1]).await; // "b" reached its member
        leaving.ping().await;
        leaving.drop_connection();
        let handed = [staying.recv_and_ack().await, staying.recv_and_ack().await];
        assert_eq!(payloads(&handed), ["a", "c"], "{v}");
        assert!(handed.iter().all(|p| !p.dup && p.qos == QoS::AtLeastOnce));
        staying.expect_nothing().await;
        staying.unsubscribe(&["$share/g1/work"]).await;
    }
}

/// Messages queued behind the member's Receive Maximum go to another member too.
#[tokio::test]
async fn queued_messages_go_to_another_member_when_a_session_ends() {
    let broker = start().await;
    let mut leaving = member_v5(&broker, "leave2", 1).await;
    leaving.subscribe("$share/g2/work", QoS::ExactlyOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "leave2-pub").await;
    for payload in ["q1", "q2a", "q2b", "q0"] {
        let qos = match payload {
            "q1" => QoS::AtLeastOnce,
            "q0" => QoS::AtMostOnce,
            _ => QoS::ExactlyOnce,
        };
        publisher.pub_msg("work", payload, qos).await;
    }
    publisher.ping().await;
    // Receive Maximum 1: "q1" is in flight, the rest wait (QoS 0 waits behind them).
    let first = leaving.recv_publish().await;
    assert_eq!(&first.payload[..], b"q1");
    leaving.expect_nothing().await;
    let mut staying = Client::connect(broker.local_addr(), V5, "leave2-stay").await;
    staying.subscribe("$share/g2/work", QoS::ExactlyOnce).await;
    leaving.disconnect().await; // a normal disconnection: the session (expiry 0) ends
    let handed = [
        staying.recv_and_ack().await,
        staying.recv_and_ack().await,
        staying.recv_and_ack().await,
        staying.recv_and_ack().await,
    ];
    assert_eq!(payloads(&handed), ["q1", "q2a", "q2b", "q0"]);
    staying.expect_nothing().await;
}

/// A QoS 2 message already sent to a member is never sent to another one: the member
/// completes it, or nobody does.
///
/// conformance: v5 MQTT-4.8.2-4
/// conformance: v5 MQTT-4.8.2-5
#[tokio::test]
async fn sent_qos2_message_is_not_handed_to_another_member() {
    let broker = start().await;
    let mut leaving = member_v5(&broker, "leave3", 1).await;
    leaving.subscribe("$share/g3/work", QoS::ExactlyOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "leave3-pub").await;
    publisher.pub_msg("work", "sent", QoS::ExactlyOnce).await;
    publisher.pub_msg("work", "queued", QoS::ExactlyOnce).await;
    assert_eq!(&leaving.recv_publish().await.payload[..], b"sent");
    let mut staying = Client::connect(broker.local_addr(), V5, "leave3-stay").await;
    staying.subscribe("$share/g3/work", QoS::ExactlyOnce).await;
    leaving.drop_connection();
    assert_eq!(&staying.recv_and_ack().await.payload[..], b"queued");
    staying.expect_nothing().await;
}

/// A member that unsubscribes hands over what waits for it; what it holds stays with it.
///
/// conformance: v5 MQTT-3.10.4-3
#[tokio::test]
async fn unsubscribing_member_hands_its_queue_over() {
    let broker = start().await;
    let mut leaving = member_v5(&broker, "unsub-leave", 1).await;
    leaving.subscribe("$share/g4/work", QoS::AtLeastOnce).await;
    leaving.subscribe("other", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "unsub-pub").await;
    for payload in ["held", "w1", "w2"] {
        publisher.pub_msg("work", payload, QoS::AtLeastOnce).await;
    }
    publisher.pub_msg("other", "mine", QoS::AtLeastOnce).await;
    let held = leaving.recv_publish().await;
    assert_eq!(&held.payload[..], b"held");
    let mut staying = Client::connect(broker.local_addr(), V311, "unsub-stay").await;
    staying.subscribe("$share/g4/work", QoS::AtLeastOnce).await;
    leaving.unsubscribe(&["$share/g4/work"]).await;
    let handed = [staying.recv_and_ack().await, staying.recv_and_ack().await];
    assert_eq!(payloads(&handed), ["w1", "w2"]);
    // The leaving member completes what it holds and keeps its other subscription.
    leaving.ack(&held).await;
    assert_eq!(&leaving.recv_and_ack().await.payload[..], b"mine");
    leaving.expect_nothing().await;
}

/// Members with a live connection are preferred over a disconnected persistent member.
#[tokio::test]
async fn offline_members_are_skipped_while_others_are_online() {
    let broker = start().await;
    let (mut away, _) = Client::connect_ok(broker.local_addr(), persistent(V5, "away")).await;
    away.subscribe("$share/g5/work", QoS::AtLeastOnce).await;
    away.disconnect().await;
    let mut here = Client::connect(broker.local_addr(), V311, "here").await;
    here.subscribe("$share/g5/work", QoS::AtLeastOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "away-pub").await;
    for _ in 0..4 {
        publisher.pub_msg("work", "m", QoS::AtLeastOnce).await;
    }
    for _ in 0..4 {
        here.recv_and_ack().await;
    }
    let (mut away, ack) = Client::connect_ok(broker.local_addr(), persistent(V5, "away")).await;
    assert!(ack.session_present);
    away.expect_nothing().await;
}

/// Retained messages are not sent for a shared subscription (§4.8.2).
#[tokio::test]
async fn retained_messages_are_not_sent_to_shared_subscriptions() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr(), V5, "shared-ret").await;
    c.pub_retained("sr/t", "kept", QoS::AtMostOnce).await;
    c.subscribe("$share/g/sr/#", QoS::AtMostOnce).await;
    c.expect_nothing().await;
}

/// conformance: v5 MQTT-3.8.3-4
#[tokio::test]
async fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr(), V5, "shared-nl").await;
    let mut options = SubscriptionOptions::new(QoS::AtMostOnce);
    options.no_local = true;
    let subscribe = midge_codec::Subscribe {
        packet_id: pid(1),
        filters: vec![(filter("$share/g/t"), options)],
        properties: Default::default(),
    };
    c.send(Packet::Subscribe(subscribe)).await;
    c.expect_disconnect(ReasonCode::ProtocolError).await;
}

/// A message a member refuses — PUBACK or PUBREC with a code of 0x80 or more — is
/// discarded: no PUBREL follows, and no other member gets it, not even when the
/// refusing member's session ends.
///
/// conformance: v5 MQTT-4.8.2-6
#[tokio::test]
async fn message_refused_by_a_member_goes_to_no_other_member() {
    let broker = start().await;
    let mut refusing = member_v5(&broker, "refuse", 10).await;
    refusing.subscribe("$share/g6/work", QoS::ExactlyOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "refuse-pub").await;
    publisher.pub_msg("work", "r1", QoS::AtLeastOnce).await;
    publisher.pub_msg("work", "r2", QoS::ExactlyOnce).await;
    let got = [refusing.recv_publish().await, refusing.recv_publish().await];
    assert_eq!(payloads(&got), ["r1", "r2"]);
    let mut staying = member_v5(&broker, "refuse-stay", 10).await;
    staying.subscribe("$share/g6/work", QoS::ExactlyOnce).await;
    let refuse = |p: &midge_codec::Publish| Ack {
        reason_code: ReasonCode::UnspecifiedError,
        ..Ack::new(p.packet_id.unwrap())
    };
    refusing.send(Packet::PubAck(refuse(&got[0]))).await;
    refusing.send(Packet::PubRec(refuse(&got[1]))).await;
    refusing.ping().await; // a PUBREL instead of the PINGRESP fails here
    refusing.disconnect().await; // Session Expiry 0: the session ends
    // The slot of a client id is free only once its last session was put away.
    let (_again, ack) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "refuse")).await;
    assert!(!ack.session_present);
    publisher
        .pub_msg("work", "sentinel", QoS::AtLeastOnce)
        .await;
    assert_eq!(&staying.recv_and_ack().await.payload[..], b"sentinel");
}
