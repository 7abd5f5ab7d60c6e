//! Persistent sessions in memory: subscriptions and QoS 1/2 messages of a disconnected
//! client are kept until the session expires, and delivered when it comes back; Clean
//! Start; the Session Expiry Interval and its change on DISCONNECT.

mod common;

use std::time::Duration;

use common::*;
use midge_codec::{Disconnect, Packet, QoS, ReasonCode};

/// conformance: v5 MQTT-3.1.2-5
/// conformance: v5 MQTT-3.1.2-23
/// conformance: v3.1.1 MQTT-3.1.2-4
/// conformance: v3.1.1 MQTT-3.1.2-5
/// conformance: v3.1.1 MQTT-4.1.0-1
/// conformance: v5 MQTT-4.5.0-1
#[tokio::test]
async fn subscriptions_and_qos1_qos2_messages_wait_for_a_persistent_client() {
    let broker = start().await;
    for v in VERSIONS {
        let id = cid("offline", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe("offline/+", QoS::ExactlyOnce).await;
        s.disconnect().await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("offline-pub", v)).await;
        publisher.pub_msg("offline/a", "q1", QoS::AtLeastOnce).await;
        publisher.pub_msg("offline/b", "q0", QoS::AtMostOnce).await;
        publisher.pub_msg("offline/c", "q2", QoS::ExactlyOnce).await;
        let (mut s, ack) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        assert_resumed(&ack, v);
        let got = [s.recv_and_ack().await, s.recv_and_ack().await];
        // QoS 0 is not queued for an offline client (queue_qos0_messages = false).
        assert_eq!(payloads(&got), ["q1", "q2"], "{v}");
        assert_eq!(
            (got[0].qos, got[1].qos),
            (QoS::AtLeastOnce, QoS::ExactlyOnce)
        );
        // The subscription is still there.
        publisher
            .pub_msg("offline/d", "live", QoS::AtMostOnce)
            .await;
        assert_eq!(&s.recv_publish().await.payload[..], b"live");
    }
}

/// With `queue_qos0_messages`, QoS 0 messages are queued for offline clients as well.
#[tokio::test]
async fn qos0_messages_are_queued_when_configured() {
    let mut config = test_config();
    config.queue_qos0_messages = true;
    let broker = start_with(config).await;
    for v in VERSIONS {
        let id = cid("q0queue", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe("q0queue", QoS::AtMostOnce).await;
        s.disconnect().await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("q0queue-pub", v)).await;
        for payload in ["m1", "m2", "m3"] {
            publisher.pub_msg("q0queue", payload, QoS::AtMostOnce).await;
        }
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        let got = [
            s.recv_publish().await,
            s.recv_publish().await,
            s.recv_publish().await,
        ];
        assert_eq!(payloads(&got), ["m1", "m2", "m3"], "{v}");
    }
}

/// conformance: v5 MQTT-3.1.2-4
/// conformance: v5 MQTT-3.1.4-4
/// conformance: v3.1.1 MQTT-3.1.2-6
/// conformance: v3.1.1 MQTT-3.1.4-3
#[tokio::test]
async fn clean_start_discards_the_session_and_its_messages() {
    let broker = start().await;
    for v in VERSIONS {
        let id = cid("discard", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe("discard", QoS::AtLeastOnce).await;
        s.disconnect().await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("discard-pub", v)).await;
        publisher
            .pub_msg("discard", "queued", QoS::AtLeastOnce)
            .await;
        let mut clean = persistent(v, &id);
        clean.clean_start = true;
        let (mut s, ack) = Client::connect_ok(broker.local_addr(), clean).await;
        assert!(!ack.session_present);
        s.expect_nothing().await;
        publisher
            .pub_msg("discard", "after", QoS::AtLeastOnce)
            .await;
        s.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-4.1.0-2
/// conformance: v5 MQTT-3.1.2-23
#[tokio::test]
async fn session_expires_after_its_interval() {
    let broker = start().await;
    let mut connect = persistent(V5, "expiring");
    connect.properties.session_expiry_interval = Some(1);
    let (mut s, _) = Client::connect_ok(broker.local_addr(), connect.clone()).await;
    s.subscribe("expiring", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "expiring-pub").await;
    publisher
        .pub_msg("expiring", "kept a while", QoS::AtLeastOnce)
        .await;
    // Within the interval: resumed with its message.
    let (mut s, ack) = Client::connect_ok(broker.local_addr(), connect.clone()).await;
    assert!(ack.session_present);
    assert_eq!(&s.recv_and_ack().await.payload[..], b"kept a while");
    s.disconnect().await;
    publisher
        .pub_msg("expiring", "lost", QoS::AtLeastOnce)
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (mut s, ack) = Client::connect_ok(broker.local_addr(), connect).await;
    assert!(!ack.session_present, "the session expired");
    s.expect_nothing().await;
    publisher
        .pub_msg("expiring", "no subscription", QoS::AtLeastOnce)
        .await;
    s.expect_nothing().await;
}

/// A 5.0 session with expiry 0 (the default) ends with its connection.
///
/// conformance: v5 MQTT-3.1.2-23
#[tokio::test]
async fn session_without_expiry_ends_with_the_connection() {
    let broker = start().await;
    let mut connect = connect_packet(V5, "noexpiry");
    connect.clean_start = false;
    let (mut s, _) = Client::connect_ok(broker.local_addr(), connect.clone()).await;
    s.subscribe("noexpiry", QoS::AtLeastOnce).await;
    s.drop_connection();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut s, ack) = Client::connect_ok(broker.local_addr(), connect).await;
    assert!(!ack.session_present);
    s.pub_msg("noexpiry", "x", QoS::AtLeastOnce).await;
    s.expect_nothing().await;
}

/// DISCONNECT may shorten the session expiry, but cannot give one to a session that
/// had none (§3.14.2.2.2).
#[tokio::test]
async fn disconnect_changes_the_session_expiry() {
    let broker = start().await;
    let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(V5, "shorten")).await;
    s.subscribe("shorten", QoS::AtLeastOnce).await;
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(0);
    s.send(Packet::Disconnect(d)).await;
    s.expect_closed().await;
    let (_s, ack) = Client::connect_ok(broker.local_addr(), persistent(V5, "shorten")).await;
    assert!(
        !ack.session_present,
        "expiry 0 on DISCONNECT ended the session"
    );

    let (mut s, _) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "lengthen")).await;
    let mut d = Disconnect::default();
    d.properties.session_expiry_interval = Some(60);
    s.send(Packet::Disconnect(d)).await;
    s.expect_disconnect(ReasonCode::ProtocolError).await;
}

/// `persistent_client_expiration` ends 3.1/3.1.1 persistent sessions.
#[tokio::test]
async fn persistent_client_expiration_ends_old_sessions() {
    let mut config = test_config();
    config.persistent_client_expiration = Some(1);
    let broker = start_with(config).await;
    for v in [V31, V311] {
        let id = cid("pce", v);
        let (c, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        c.disconnect().await;
        let (c, ack) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        assert_resumed(&ack, v);
        c.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for v in [V31, V311] {
        let (_c, ack) =
            Client::connect_ok(broker.local_addr(), persistent(v, &cid("pce", v))).await;
        assert!(!ack.session_present, "{v}");
    }
}

/// Messages queued for an offline client keep their order, also across QoS levels.
///
/// conformance: v5 MQTT-4.6.0-5
/// conformance: v3.1.1 MQTT-4.6.0-6
#[tokio::test]
async fn queued_messages_keep_their_order() {
    let broker = start().await;
    for v in VERSIONS {
        let id = cid("qorder", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe("qorder", QoS::ExactlyOnce).await;
        s.disconnect().await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("qorder-pub", v)).await;
        let sent: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        for (i, payload) in sent.iter().enumerate() {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            let mut p = publish("qorder", "", qos);
            p.payload = payload.clone().into();
            publisher.publish(p).await;
        }
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        let mut got = Vec::new();
        for _ in 0..sent.len() {
            got.push(s.recv_and_ack().await);
        }
        assert_eq!(payloads(&got), sent, "{v}");
    }
}

/// A session resumed with another protocol version keeps its subscriptions.
#[tokio::test]
async fn session_resumed_with_another_version() {
    let broker = start().await;
    let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(V311, "switch")).await;
    s.subscribe("switch", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "switch-pub").await;
    publisher
        .pub_msg("switch", "queued", QoS::AtLeastOnce)
        .await;
    let (mut s, ack) = Client::connect_ok(broker.local_addr(), persistent(V5, "switch")).await;
    assert!(ack.session_present);
    assert_eq!(&s.recv_and_ack().await.payload[..], b"queued");
}

/// The client identifier names the session: each persistent client resumes its own
/// subscriptions and the messages queued for them, and nothing of another's.
///
/// conformance: v5 MQTT-3.1.3-2
/// conformance: v3.1.1 MQTT-3.1.3-2
#[tokio::test]
async fn each_client_id_resumes_its_own_session() {
    let broker = start().await;
    let addr = broker.local_addr();
    for v in VERSIONS {
        let ids = [cid("own-a", v), cid("own-b", v)];
        for id in &ids {
            let (mut c, _) = Client::connect_ok(addr, persistent(v, id)).await;
            c.subscribe(&format!("own/{id}"), QoS::AtLeastOnce).await;
            c.disconnect().await;
        }
        let mut publisher = Client::connect(addr, v, &cid("own-pub", v)).await;
        for id in &ids {
            let mut p = publish(&format!("own/{id}"), "", QoS::AtLeastOnce);
            p.payload = format!("for {id}").into();
            publisher.publish(p).await;
        }
        for id in &ids {
            let (mut c, ack) = Client::connect_ok(addr, persistent(v, id)).await;
            assert_resumed(&ack, v);
            let p = c.recv_and_ack().await;
            assert_eq!(p.topic.as_str(), format!("own/{id}"), "{v}");
            assert_eq!(p.payload, format!("for {id}").as_bytes());
            // Whatever the session held was sent right after the CONNACK, before the
            // PINGRESP: nothing else is waiting.
            c.ping().await;
            assert!(
                matches!(c.recv_within(Duration::ZERO).await, Recv::Timeout),
                "{v}: {id} got more"
            );
            c.disconnect().await;
        }
    }
}

/// A session lasts at least as long as its connection: the expiry interval counts only
/// once the connection has ended. Here the timer of an earlier disconnection runs out
/// while the client is connected again, and the session is still whole.
///
/// conformance: v5 MQTT-4.1.0-1
/// conformance: v3.1.1 MQTT-4.1.0-2
#[tokio::test]
async fn session_is_kept_while_its_connection_is_open() {
    let mut config = test_config();
    config.persistent_client_expiration = Some(1);
    let broker = start_with(config).await;
    let addr = broker.local_addr();
    let mut tasks = Vec::new();
    for v in VERSIONS {
        tasks.push(tokio::spawn(async move {
            let id = cid("kept", v);
            let topic = format!("kept/{id}");
            let mut connect = persistent(v, &id);
            if v.is_v5() {
                connect.properties.session_expiry_interval = Some(1);
            }
            let (mut c, _) = Client::connect_ok(addr, connect.clone()).await;
            c.subscribe(&topic, QoS::AtLeastOnce).await;
            c.disconnect().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (mut c, ack) = Client::connect_ok(addr, connect).await;
            assert_resumed(&ack, v);
            // 1.2 s after the disconnection: its 1 s expiry has passed.
            tokio::time::sleep(Duration::from_millis(900)).await;
            let mut p = publish(&topic, "still here", QoS::AtLeastOnce);
            p.packet_id = Some(c.next_id());
            c.publish(p).await;
            assert_eq!(&c.recv_and_ack().await.payload[..], b"still here", "{v}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}
