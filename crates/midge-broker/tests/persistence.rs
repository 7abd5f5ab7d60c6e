//! Persistence across a restart (issue #6): each test starts a broker with
//! `persistence = true` on a fresh directory, builds some state, shuts the broker down,
//! starts a new one on the same directory and checks with real MQTT clients that the
//! state is there: persistent sessions and their subscriptions, queued messages,
//! outgoing QoS 1/2 messages in flight (resent with DUP and their packet ids, or their
//! PUBREL), incoming QoS 2 packet ids, pending wills, retained messages, and the
//! expiry of sessions and messages while the broker was down. A damaged store is either
//! refused with an error naming the file or read, and what is read is intact.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use midge_broker::{Broker, BrokerHandle, Config};
use midge_codec::{
    Ack, Connect, Disconnect, LastWill, Packet, ProtocolVersion, Publish, QoS, ReasonCode,
    SubscriptionOptions, WillProperties,
};

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "midge-persistence-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temporary directory");
        TempDir { path }
    }

    /// The store's file.
    fn store_file(&self) -> PathBuf {
        self.path.join("midge.redb")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The tests' configuration with persistence on, in `dir`.
fn persistent_config(dir: &Path) -> Config {
    Config {
        persistence: true,
        persistence_location: Some(dir.to_path_buf()),
        ..test_config()
    }
}

/// A broker with persistence on, in `dir`.
async fn start_in(dir: &TempDir) -> BrokerHandle {
    start_with(persistent_config(&dir.path)).await
}

/// Shuts `broker` down (gracefully) and starts a new one on the same store.
async fn restart(broker: BrokerHandle, dir: &TempDir) -> BrokerHandle {
    broker.shutdown().await;
    start_in(dir).await
}

/// A persistent CONNECT with a Session Expiry Interval of `expiry` seconds (5.0).
fn persistent_for(client_id: &str, expiry: u32) -> Connect {
    let mut connect = connect_packet(V5, client_id);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(expiry);
    connect
}

/// A PUBLISH with an owned payload.
fn message(name: &str, payload: &str, qos: QoS) -> Publish {
    let mut p = Publish::new(topic(name), Bytes::from(payload.to_owned()));
    p.qos = qos;
    p
}

/// Receives (and acknowledges) PUBLISHes until one with payload `sentinel`; returns those
/// before it.
async fn until_sentinel(c: &mut Client, sentinel: &str) -> Vec<Publish> {
    let mut got = Vec::new();
    loop {
        let p = c.recv_and_ack().await;
        if &p.payload[..] == sentinel.as_bytes() {
            return got;
        }
        got.push(p);
    }
}

/// Publishes a QoS 1 `sentinel` on `name` from a fresh clean-session client.
async fn publish_sentinel(broker: &BrokerHandle, name: &str, sentinel: &'static str) {
    let mut p = Client::connect(broker.local_addr(), V5, "sentinel-pub").await;
    p.pub_msg(name, sentinel, QoS::AtLeastOnce).await;
    p.disconnect().await;
}

/// Subscriptions of a persistent session (3.1 and 3.1.1 with Clean Session 0, 5.0 with
/// a Session Expiry Interval) survive a restart, with their options: a message
/// published after the restart, while the client is still away, is queued for it, and
/// a live one reaches it too. Session Present is 1 on the first CONNECT after the
/// restart.
///
/// conformance: v5 MQTT-3.1.2-5
/// conformance: v5 MQTT-3.1.2-23
/// conformance: v5 MQTT-3.2.2-3
/// conformance: v5 MQTT-4.1.0-1
/// conformance: v3.1.1 MQTT-3.1.2-4
/// conformance: v3.1.1 MQTT-3.1.2-5
/// conformance: v3.1.1 MQTT-3.2.2-2
/// conformance: v3.1.1 MQTT-4.1.0-1
#[tokio::test]
async fn subscriptions_of_a_persistent_session_survive_a_restart() {
    let dir = TempDir::new("subscriptions");
    let mut broker = start_in(&dir).await;
    for v in VERSIONS {
        let id = cid("p-subs", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        let sub_id = v.is_v5().then_some(42);
        let ack = s
            .subscribe_opts(
                &[(
                    &format!("subs/{}/+", v as u8),
                    SubscriptionOptions::new(QoS::ExactlyOnce),
                )],
                sub_id,
            )
            .await;
        assert_eq!(ack.reason_codes, [granted(QoS::ExactlyOnce)], "{v}");
        s.disconnect().await;
    }
    broker = restart(broker, &dir).await;
    for v in VERSIONS {
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("p-subs-pub", v)).await;
        let t = format!("subs/{}/a", v as u8);
        publisher
            .publish(message(&t, "while away", QoS::ExactlyOnce))
            .await;
        let (mut s, ack) =
            Client::connect_ok(broker.local_addr(), persistent(v, &cid("p-subs", v))).await;
        assert_resumed(&ack, v);
        let p = s.recv_and_ack().await;
        assert_eq!(&p.payload[..], b"while away", "{v}");
        assert_eq!(p.qos, QoS::ExactlyOnce, "{v}: the subscription's QoS");
        if v.is_v5() {
            assert_eq!(p.properties.subscription_identifiers, [42], "{v}");
        }
        publisher
            .publish(message(&t, "live", QoS::AtLeastOnce))
            .await;
        let p = s.recv_and_ack().await;
        assert_eq!(&p.payload[..], b"live", "{v}");
        s.disconnect().await;
    }
    broker.shutdown().await;
}

/// QoS 1 and QoS 2 messages queued for an offline persistent session are delivered
/// after a restart, in the order they were published, each once.
///
/// conformance: v5 MQTT-3.1.2-5
/// conformance: v5 MQTT-3.1.2-23
/// conformance: v3.1.1 MQTT-3.1.2-5
/// conformance: v5 MQTT-4.6.0-6
#[tokio::test]
async fn queued_qos1_and_qos2_messages_are_delivered_after_a_restart_in_order() {
    let dir = TempDir::new("queued");
    let mut broker = start_in(&dir).await;
    let payloads_sent: Vec<String> = (1..=6).map(|i| format!("m{i}")).collect();
    for v in [V311, V5] {
        let id = cid("p-queue", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe(&format!("queue/{}", v as u8), QoS::ExactlyOnce)
            .await;
        s.disconnect().await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("p-queue-pub", v)).await;
        for (i, payload) in payloads_sent.iter().enumerate() {
            let qos = if i % 2 == 0 {
                QoS::AtLeastOnce
            } else {
                QoS::ExactlyOnce
            };
            publisher
                .publish(message(&format!("queue/{}", v as u8), payload, qos))
                .await;
        }
        publisher.disconnect().await;
    }
    broker = restart(broker, &dir).await;
    for v in [V311, V5] {
        let (mut s, ack) =
            Client::connect_ok(broker.local_addr(), persistent(v, &cid("p-queue", v))).await;
        assert_resumed(&ack, v);
        let mut got = Vec::new();
        for _ in 0..payloads_sent.len() {
            got.push(s.recv_and_ack().await);
        }
        assert_eq!(payloads(&got), payloads_sent, "{v}");
        let qos: Vec<QoS> = got.iter().map(|p| p.qos).collect();
        assert_eq!(
            qos,
            [
                QoS::AtLeastOnce,
                QoS::ExactlyOnce,
                QoS::AtLeastOnce,
                QoS::ExactlyOnce,
                QoS::AtLeastOnce,
                QoS::ExactlyOnce
            ],
            "{v}"
        );
        // Nothing twice: the next message is the sentinel.
        publish_sentinel(&broker, &format!("queue/{}", v as u8), "end").await;
        assert_eq!(until_sentinel(&mut s, "end").await.len(), 0, "{v}");
        s.disconnect().await;
    }
    broker.shutdown().await;
}

/// An outgoing QoS 1 PUBLISH sent and not acknowledged when the broker stops is resent
/// after the restart, with DUP set and its original packet identifier.
///
/// conformance: v5 MQTT-4.4.0-1
/// conformance: v5 MQTT-3.3.1-1
/// conformance: v3.1.1 MQTT-4.4.0-1
/// conformance: v3.1.1 MQTT-3.3.1-1
#[tokio::test]
async fn inflight_qos1_is_resent_with_dup_after_a_restart() {
    resent_with_dup_after_a_restart("if1", QoS::AtLeastOnce, "unacked").await;
}

/// An outgoing QoS 2 PUBLISH sent and not PUBREC'd when the broker stops is resent after
/// the restart with DUP and the same packet identifier; the flow then completes, and the
/// message comes once.
///
/// conformance: v5 MQTT-4.4.0-1
/// conformance: v5 MQTT-3.3.1-1
/// conformance: v5 MQTT-4.3.3-3
/// conformance: v3.1.1 MQTT-4.4.0-1
/// conformance: v3.1.1 MQTT-3.3.1-1
#[tokio::test]
async fn inflight_qos2_sent_is_resent_with_dup_and_its_packet_id_after_a_restart() {
    resent_with_dup_after_a_restart("if2", QoS::ExactlyOnce, "not received").await;
}

/// A persistent subscriber receives a `qos` message on topic `NAME/VERSION` and does not
/// acknowledge it; after a restart it gets it again, with DUP set and the same packet
/// identifier, acknowledges it, and it comes no more.
async fn resent_with_dup_after_a_restart(name: &str, qos: QoS, payload: &str) {
    let dir = TempDir::new(&format!("inflight-{name}"));
    let mut broker = start_in(&dir).await;
    let mut sent = Vec::new();
    for v in [V311, V5] {
        let id = cid(&format!("p-{name}"), v);
        let topic = format!("{name}/{}", v as u8);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe(&topic, qos).await;
        let mut publisher =
            Client::connect(broker.local_addr(), v, &cid(&format!("p-{name}-pub"), v)).await;
        publisher.publish(message(&topic, payload, qos)).await;
        // Received and not acknowledged.
        let p = s.recv_publish().await;
        assert!(!p.dup);
        assert_eq!(p.qos, qos);
        sent.push((v, p.packet_id.expect("packet id")));
    }
    broker = restart(broker, &dir).await;
    for (v, packet_id) in sent {
        let id = cid(&format!("p-{name}"), v);
        let (mut s, ack) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        assert_resumed(&ack, v);
        let p = s.recv_publish().await;
        assert_eq!(&p.payload[..], payload.as_bytes(), "{v}");
        assert_eq!(p.qos, qos, "{v}");
        assert!(p.dup, "{v}: a resent PUBLISH has DUP set");
        assert_eq!(p.packet_id, Some(packet_id), "{v}: the original packet id");
        s.ack(&p).await;
        publish_sentinel(&broker, &format!("{name}/{}", v as u8), "end").await;
        assert_eq!(until_sentinel(&mut s, "end").await.len(), 0, "{v}");
        s.disconnect().await;
    }
    broker.shutdown().await;
}

/// An outgoing QoS 2 message PUBREC'd by the subscriber, whose PUBCOMP had not come when
/// the broker stopped, gets its PUBREL resent after the restart (and not the PUBLISH).
///
/// conformance: v5 MQTT-4.4.0-1
/// conformance: v5 MQTT-4.3.3-5
/// conformance: v5 MQTT-4.3.3-6
/// conformance: v3.1.1 MQTT-4.4.0-1
#[tokio::test]
async fn inflight_qos2_released_gets_its_pubrel_resent_after_a_restart() {
    let dir = TempDir::new("inflight-rel");
    let mut broker = start_in(&dir).await;
    let mut sent = Vec::new();
    for v in [V311, V5] {
        let id = cid("p-rel", v);
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        s.subscribe(&format!("rel/{}", v as u8), QoS::ExactlyOnce)
            .await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("p-rel-pub", v)).await;
        publisher
            .publish(message(
                &format!("rel/{}", v as u8),
                "received",
                QoS::ExactlyOnce,
            ))
            .await;
        let p = s.recv_publish().await;
        let packet_id = p.packet_id.expect("packet id");
        s.send(Packet::PubRec(Ack::new(packet_id))).await;
        match s.recv().await {
            Packet::PubRel(rel) => assert_eq!(rel.packet_id, packet_id),
            other => panic!("expected PUBREL, got {other:?}"),
        }
        // No PUBCOMP.
        sent.push((v, packet_id));
    }
    broker = restart(broker, &dir).await;
    for (v, packet_id) in sent {
        let (mut s, ack) =
            Client::connect_ok(broker.local_addr(), persistent(v, &cid("p-rel", v))).await;
        assert_resumed(&ack, v);
        match s.recv().await {
            Packet::PubRel(rel) => assert_eq!(rel.packet_id, packet_id, "{v}"),
            other => panic!("{v}: expected the PUBREL again, got {other:?}"),
        }
        s.send(Packet::PubComp(Ack::new(packet_id))).await;
        publish_sentinel(&broker, &format!("rel/{}", v as u8), "end").await;
        assert_eq!(until_sentinel(&mut s, "end").await.len(), 0, "{v}");
        s.disconnect().await;
    }
    broker.shutdown().await;
}

/// Incoming QoS 2: the publisher got its PUBREC, the broker restarts, and the publisher
/// resumes its session. A resent PUBLISH (DUP) with that packet id is acknowledged with
/// PUBREC and not delivered again; its PUBREL gets a PUBCOMP (5.0: Success, the id was
/// known); the message reached the subscriber exactly once.
///
/// conformance: v5 MQTT-4.3.3-10
/// conformance: v5 MQTT-4.3.3-11
/// conformance: v5 MQTT-3.1.2-5
/// conformance: v3.1.1 MQTT-4.3.3-2
/// conformance: v3.1.1 MQTT-3.1.2-4
#[tokio::test]
async fn incoming_qos2_packet_ids_survive_a_restart() {
    let dir = TempDir::new("incoming");
    let mut broker = start_in(&dir).await;
    for v in [V311, V5] {
        let t = format!("in2/{}", v as u8);
        let (mut observer, _) =
            Client::connect_ok(broker.local_addr(), persistent(v, &cid("p-in2-obs", v))).await;
        observer.subscribe(&t, QoS::ExactlyOnce).await;
        let (mut publisher, _) =
            Client::connect_ok(broker.local_addr(), persistent(v, &cid("p-in2-pub", v))).await;
        let mut p = message(&t, "exactly once", QoS::ExactlyOnce);
        p.packet_id = Some(pid(7));
        publisher.send(Packet::Publish(p)).await;
        match publisher.recv_reply().await {
            Packet::PubRec(rec) => {
                assert_eq!(rec.packet_id, pid(7));
                assert_eq!(rec.reason_code, ReasonCode::Success);
            }
            other => panic!("expected PUBREC, got {other:?}"),
        }
        assert_eq!(&observer.recv_and_ack().await.payload[..], b"exactly once");
        observer.disconnect().await;
        // The publisher goes away before its PUBREL.
        publisher.drop_connection();
    }
    broker = restart(broker, &dir).await;
    for v in [V311, V5] {
        let t = format!("in2/{}", v as u8);
        let (mut observer, ack) =
            Client::connect_ok(broker.local_addr(), persistent(v, &cid("p-in2-obs", v))).await;
        assert_resumed(&ack, v);
        let (mut publisher, ack) =
            Client::connect_ok(broker.local_addr(), persistent(v, &cid("p-in2-pub", v))).await;
        assert_resumed(&ack, v);
        // As if the PUBREC had been lost: the PUBLISH again, with DUP.
        let mut p = message(&t, "exactly once", QoS::ExactlyOnce);
        p.packet_id = Some(pid(7));
        p.dup = true;
        publisher.send(Packet::Publish(p)).await;
        match publisher.recv_reply().await {
            Packet::PubRec(rec) => {
                assert_eq!(rec.packet_id, pid(7), "{v}");
                assert_eq!(rec.reason_code, ReasonCode::Success, "{v}");
            }
            other => panic!("{v}: expected PUBREC, got {other:?}"),
        }
        publisher.send(Packet::PubRel(Ack::new(pid(7)))).await;
        match publisher.recv_reply().await {
            Packet::PubComp(comp) => {
                assert_eq!(comp.packet_id, pid(7), "{v}");
                assert_eq!(
                    comp.reason_code,
                    ReasonCode::Success,
                    "{v}: the packet id was known after the restart"
                );
            }
            other => panic!("{v}: expected PUBCOMP, got {other:?}"),
        }
        // The id is free now: a new message under it is a new message.
        let mut p = message(&t, "next", QoS::ExactlyOnce);
        p.packet_id = Some(pid(7));
        publisher.publish(p).await;
        let got = [observer.recv_and_ack().await];
        assert_eq!(payloads(&got), ["next"], "{v}: the first message came once");
        publish_sentinel(&broker, &t, "end").await;
        assert_eq!(until_sentinel(&mut observer, "end").await.len(), 0, "{v}");
        publisher.disconnect().await;
        observer.disconnect().await;
    }
    broker.shutdown().await;
}

/// A 5.0 client with a will and a Will Delay Interval (QoS 1, on `will_topic`).
fn with_delayed_will(client_id: &str, will_topic: &str, delay: u32) -> Connect {
    let mut connect = persistent_for(client_id, 60);
    connect.will = Some(LastWill {
        topic: topic(will_topic),
        payload: Bytes::from(format!("will of {client_id}")),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: WillProperties {
            will_delay_interval: Some(delay),
            ..Default::default()
        },
    });
    connect
}

/// A pending will (5.0 Will Delay Interval) survives a restart and is published when
/// its delay runs out, counted from the disconnection and not from the restart.
///
/// conformance: v5 MQTT-3.1.2-8
#[tokio::test]
async fn a_pending_will_survives_a_restart_and_is_published_on_time() {
    let dir = TempDir::new("will-pending");
    let mut broker = start_in(&dir).await;
    let (mut w, _) = Client::connect_ok(broker.local_addr(), persistent_for("p-will-w", 300)).await;
    w.subscribe("pwill/#", QoS::AtLeastOnce).await;
    let (c, _) = Client::connect_ok(
        broker.local_addr(),
        with_delayed_will("p-will-late", "pwill/late", 3),
    )
    .await;
    let t0 = now();
    c.drop_connection();
    // The broker sees the connection end before it stops.
    tokio::time::sleep(Duration::from_millis(200)).await;
    w.disconnect().await;
    broker = restart(broker, &dir).await;
    let (mut w, ack) =
        Client::connect_ok(broker.local_addr(), persistent_for("p-will-w", 300)).await;
    assert!(ack.session_present);
    let p = match w.recv_within(Duration::from_secs(8)).await {
        Recv::Packet(Packet::Publish(p)) => p,
        other => panic!("expected the will, got {other:?}"),
    };
    let waited = t0.elapsed();
    w.ack(&p).await;
    assert_eq!(p.topic.as_str(), "pwill/late");
    assert_eq!(&p.payload[..], b"will of p-will-late");
    assert!(
        waited >= Duration::from_millis(2800),
        "published {waited:?} after the disconnection, before its delay of 3 s"
    );
    publish_sentinel(&broker, "pwill/late", "end").await;
    assert_eq!(
        until_sentinel(&mut w, "end").await.len(),
        0,
        "the will came once"
    );
    w.disconnect().await;
    broker.shutdown().await;
}

/// A will whose delay ran out while the broker was down is published at once when it
/// starts again (before any client connects: a persistent subscriber finds it queued).
///
/// conformance: v5 MQTT-3.1.2-8
#[tokio::test]
async fn a_will_that_came_due_while_down_is_published_at_start() {
    let dir = TempDir::new("will-due");
    let broker = start_in(&dir).await;
    let (mut w, _) = Client::connect_ok(broker.local_addr(), persistent_for("p-due-w", 300)).await;
    w.subscribe("pdue/#", QoS::AtLeastOnce).await;
    w.disconnect().await;
    let (c, _) = Client::connect_ok(
        broker.local_addr(),
        with_delayed_will("p-due", "pdue/will", 1),
    )
    .await;
    c.drop_connection();
    tokio::time::sleep(Duration::from_millis(200)).await;
    broker.shutdown().await;
    // Down for longer than the delay.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let broker = start_in(&dir).await;
    let (mut w, ack) =
        Client::connect_ok(broker.local_addr(), persistent_for("p-due-w", 300)).await;
    assert!(ack.session_present);
    let p = w.recv_and_ack().await;
    assert_eq!(p.topic.as_str(), "pdue/will");
    assert_eq!(&p.payload[..], b"will of p-due");
    publish_sentinel(&broker, "pdue/will", "end").await;
    assert_eq!(
        until_sentinel(&mut w, "end").await.len(),
        0,
        "the will came once"
    );
    w.disconnect().await;
    broker.shutdown().await;
}

/// A retained PUBLISH with an optional Message Expiry Interval.
fn retain(t: &str, payload: &str, qos: QoS, expiry: Option<u32>) -> Publish {
    let mut m = message(t, payload, qos);
    m.retain = true;
    m.properties.message_expiry_interval = expiry;
    m
}

/// The retained messages a fresh subscription to `filter` gets, sorted by topic, as
/// (topic, payload, QoS, message expiry).
async fn retained(broker: &BrokerHandle, filter: &str) -> Vec<(String, String, QoS, Option<u32>)> {
    let mut s = Client::connect(broker.local_addr(), V5, "p-ret-check").await;
    s.subscribe(filter, QoS::ExactlyOnce).await;
    let sentinel_topic = format!("{}/zz-sentinel", filter.trim_end_matches("/#"));
    publish_sentinel(broker, &sentinel_topic, "end").await;
    let got = until_sentinel(&mut s, "end").await;
    s.disconnect().await;
    let mut out: Vec<_> = got
        .into_iter()
        .map(|p| {
            assert!(p.retain, "a retained message has RETAIN set: {p:?}");
            (
                p.topic.as_str().to_owned(),
                String::from_utf8_lossy(&p.payload).into_owned(),
                p.qos,
                p.properties.message_expiry_interval,
            )
        })
        .collect();
    out.sort();
    out
}

/// Retained messages survive restarts: set, replaced and cleared (empty payload) before
/// or after a restart; one whose Message Expiry ran out while the broker was down is
/// gone, and one with time left keeps what is left of its expiry.
///
/// conformance: v5 MQTT-3.3.1-5
/// conformance: v5 MQTT-3.3.1-6
/// conformance: v5 MQTT-3.3.1-7
/// conformance: v5 MQTT-3.3.2-5
/// conformance: v5 MQTT-3.3.2-6
/// conformance: v3.1.1 MQTT-3.3.1-5
/// conformance: v3.1.1 MQTT-3.3.1-10
#[tokio::test]
async fn retained_messages_survive_restarts() {
    let dir = TempDir::new("retained");
    let mut broker = start_in(&dir).await;
    let mut p = Client::connect(broker.local_addr(), V5, "p-ret-pub").await;
    p.publish(retain("ret/a", "A", QoS::AtLeastOnce, None))
        .await;
    p.publish(retain("ret/b", "B", QoS::AtMostOnce, None)).await;
    p.publish(retain("ret/c", "C", QoS::ExactlyOnce, None))
        .await;
    p.publish(retain("ret/d", "D", QoS::AtLeastOnce, Some(1)))
        .await;
    p.publish(retain("ret/e", "E", QoS::AtLeastOnce, Some(3600)))
        .await;
    p.publish(retain("ret/f", "F", QoS::AtLeastOnce, None))
        .await;
    p.publish(retain("ret/f", "", QoS::AtLeastOnce, None)).await;
    p.disconnect().await;
    broker.shutdown().await;
    // ret/d expires while the broker is down.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    broker = start_in(&dir).await;
    let got = retained(&broker, "ret/#").await;
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], ("ret/a".into(), "A".into(), QoS::AtLeastOnce, None));
    assert_eq!(got[1], ("ret/b".into(), "B".into(), QoS::AtMostOnce, None));
    assert_eq!(got[2], ("ret/c".into(), "C".into(), QoS::ExactlyOnce, None));
    let (t, payload, qos, expiry) = &got[3];
    assert_eq!(
        (t.as_str(), payload.as_str(), *qos),
        ("ret/e", "E", QoS::AtLeastOnce)
    );
    let expiry = expiry.expect("the expiry travels with the message");
    assert!(
        (3590..3600).contains(&expiry),
        "what is left of 3600 s after about 1.2 s: {expiry}"
    );

    // Replaced and cleared after a restart.
    let mut p = Client::connect(broker.local_addr(), V5, "p-ret-pub").await;
    p.publish(retain("ret/a", "A2", QoS::AtLeastOnce, None))
        .await;
    p.publish(retain("ret/c", "", QoS::AtMostOnce, None)).await;
    p.disconnect().await;
    broker = restart(broker, &dir).await;
    let got = retained(&broker, "ret/#").await;
    let topics: Vec<(&str, &str)> = got.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(topics, [("ret/a", "A2"), ("ret/b", "B"), ("ret/e", "E")]);
    broker.shutdown().await;
}

/// Session expiry counts the time the broker was down: a 5.0 session with a Session
/// Expiry Interval of 2 s is gone after 2.2 s down (Session Present 0, no subscription
/// left), and one with 300 s is there.
///
/// conformance: v5 MQTT-4.1.0-2
/// conformance: v5 MQTT-3.1.2-23
/// conformance: v5 MQTT-3.2.2-3
/// conformance: v5 MQTT-3.1.2-6
#[tokio::test]
async fn session_expiry_counts_the_time_the_broker_was_down() {
    let dir = TempDir::new("expiry");
    let broker = start_in(&dir).await;
    for (id, expiry) in [("p-exp-short", 2), ("p-exp-long", 300)] {
        let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent_for(id, expiry)).await;
        s.subscribe(&format!("exp/{id}"), QoS::AtLeastOnce).await;
        s.disconnect().await;
    }
    broker.shutdown().await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let broker = start_in(&dir).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "p-exp-pub").await;
    for id in ["p-exp-short", "p-exp-long"] {
        publisher
            .pub_msg(&format!("exp/{id}"), "after", QoS::AtLeastOnce)
            .await;
    }
    let (mut long, ack) =
        Client::connect_ok(broker.local_addr(), persistent_for("p-exp-long", 300)).await;
    assert!(ack.session_present, "the 300 s session is there");
    assert_eq!(&long.recv_and_ack().await.payload[..], b"after");
    let (mut short, ack) =
        Client::connect_ok(broker.local_addr(), persistent_for("p-exp-short", 2)).await;
    assert!(!ack.session_present, "the 2 s session expired while down");
    publisher
        .pub_msg("exp/p-exp-short", "sentinel", QoS::AtLeastOnce)
        .await;
    publish_sentinel(&broker, "exp/p-exp-long", "end").await;
    assert_eq!(until_sentinel(&mut long, "end").await.len(), 0);
    short.expect_nothing().await;
    broker.shutdown().await;
}

/// Expiry times are kept in the store, and what has time left at the restart expires
/// later on time: a session with a Session Expiry Interval of 4 s, disconnected before
/// a 2.2 s stop, is gone 4.4 s after its disconnection; a retained message with a
/// Message Expiry Interval of 4 s is gone by then too. A queued message whose Message
/// Expiry ran out while the broker was down is not delivered, and one with time left
/// comes with what is left of its expiry.
///
/// conformance: v5 MQTT-4.1.0-2
/// conformance: v5 MQTT-3.3.2-5
/// conformance: v5 MQTT-3.3.2-6
#[tokio::test]
async fn expiry_times_survive_a_restart() {
    let dir = TempDir::new("expiry-later");
    let broker = start_in(&dir).await;
    let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent_for("p-later", 4)).await;
    s.subscribe("later/s", QoS::AtLeastOnce).await;
    s.disconnect().await;
    let disconnected = now();
    let (mut q, _) =
        Client::connect_ok(broker.local_addr(), persistent_for("p-later-q", 300)).await;
    q.subscribe("later/q", QoS::AtLeastOnce).await;
    q.disconnect().await;
    let mut p = Client::connect(broker.local_addr(), V5, "p-later-pub").await;
    let mut short = message("later/q", "short-lived", QoS::AtLeastOnce);
    short.properties.message_expiry_interval = Some(1);
    p.publish(short).await;
    let mut long = message("later/q", "long-lived", QoS::AtLeastOnce);
    long.properties.message_expiry_interval = Some(3600);
    p.publish(long).await;
    p.publish(retain("later/r", "R", QoS::AtLeastOnce, Some(4)))
        .await;
    p.disconnect().await;
    broker.shutdown().await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let broker = start_in(&dir).await;

    let (mut q, ack) =
        Client::connect_ok(broker.local_addr(), persistent_for("p-later-q", 300)).await;
    assert!(ack.session_present);
    let got = q.recv_and_ack().await;
    assert_eq!(
        &got.payload[..],
        b"long-lived",
        "the expired message is not delivered"
    );
    let left = got.properties.message_expiry_interval.expect("expiry");
    assert!(
        (3590..3600).contains(&left),
        "what is left of 3600 s: {left}"
    );
    publish_sentinel(&broker, "later/q", "end").await;
    assert_eq!(until_sentinel(&mut q, "end").await.len(), 0);
    q.disconnect().await;
    // Retained with time left at the restart.
    assert_eq!(retained(&broker, "later/#").await.len(), 1);

    let deadline = disconnected + Duration::from_millis(4400);
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    assert_eq!(
        retained(&broker, "later/#").await.len(),
        0,
        "the retained message expired"
    );
    let (_s, ack) = Client::connect_ok(broker.local_addr(), persistent_for("p-later", 4)).await;
    assert!(
        !ack.session_present,
        "the 4 s session expired after the restart"
    );
    broker.shutdown().await;
}

/// Sessions that end with their connection leave nothing in the store: 3.x Clean
/// Session 1, 5.0 Session Expiry 0, and a 5.0 session whose DISCONNECT set its expiry
/// to 0. After a restart, each finds no session (Session Present 0) and no message.
///
/// conformance: v5 MQTT-3.1.2-4
/// conformance: v5 MQTT-3.1.2-6
/// conformance: v5 MQTT-3.2.2-3
/// conformance: v3.1.1 MQTT-3.1.2-6
/// conformance: v3.1.1 MQTT-3.2.2-3
#[tokio::test]
async fn non_persistent_sessions_leave_nothing_after_a_restart() {
    let dir = TempDir::new("clean");
    let broker = start_in(&dir).await;
    let mut connected = Vec::new();
    for v in VERSIONS {
        // Clean Session / Clean Start 1, no expiry; still connected when the broker stops.
        let mut c = Client::connect(broker.local_addr(), v, &cid("p-clean", v)).await;
        c.subscribe(&format!("clean/{}", v as u8), QoS::AtLeastOnce)
            .await;
        connected.push(c);
    }
    // 5.0, Clean Start 0 with no Session Expiry Interval (0): ends with the connection.
    let mut connect = connect_packet(V5, "p-clean-zero");
    connect.clean_start = false;
    let (mut c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    c.subscribe("clean/zero", QoS::AtLeastOnce).await;
    c.disconnect().await;
    // 5.0, persistent, then DISCONNECT with Session Expiry Interval 0.
    let (mut c, _) =
        Client::connect_ok(broker.local_addr(), persistent_for("p-clean-lowered", 300)).await;
    c.subscribe("clean/lowered", QoS::AtLeastOnce).await;
    let mut disconnect = Disconnect::default();
    disconnect.properties.session_expiry_interval = Some(0);
    c.send(Packet::Disconnect(disconnect)).await;
    c.expect_closed().await;
    broker.shutdown().await;
    drop(connected);

    let broker = start_in(&dir).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "p-clean-pub").await;
    for t in [
        "clean/3",
        "clean/4",
        "clean/5",
        "clean/zero",
        "clean/lowered",
    ] {
        publisher.pub_msg(t, "after", QoS::AtLeastOnce).await;
    }
    let mut back: Vec<(ProtocolVersion, String, String)> = VERSIONS
        .iter()
        .map(|&v| (v, cid("p-clean", v), format!("clean/{}", v as u8)))
        .collect();
    back.push((V5, "p-clean-zero".into(), "clean/zero".into()));
    back.push((V5, "p-clean-lowered".into(), "clean/lowered".into()));
    for (v, id, t) in back {
        let (mut c, ack) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        assert!(!ack.session_present, "{id}: no session after the restart");
        // Nothing queued and no subscription left: a message on its old topic does not
        // come.
        publisher.pub_msg(&t, "later", QoS::AtLeastOnce).await;
        c.expect_nothing().await;
        c.disconnect().await;
    }
    broker.shutdown().await;
}

/// Counts the panics of the thread named `test` (the test's own runtime, where the
/// broker's tasks run) and of threads that are not another test's (the store's writer,
/// blocking pools), keeping the default report. Panics raised inside redb are not
/// counted: the store catches them at every call into the engine and turns them into
/// an error naming the file (docs/persistence.md, "Damage"); one it did not catch would
/// fail the test where it unwinds.
fn panic_counter(test: &'static str) -> &'static AtomicUsize {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            let another_test = name != test
                && name
                    .chars()
                    .all(|c| c == '_' || c.is_ascii_lowercase() || c.is_ascii_digit())
                && name.contains('_');
            let in_engine = info.location().is_some_and(|l| l.file().contains("/redb-"));
            if !another_test && !in_engine {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    &PANICS
}

/// A small deterministic generator (xorshift64*), so that a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The damaged variants of `original`: truncations, single bit flips in bytes that hold
/// data (not zero), and a burst of flips.
fn damaged_variants(original: &[u8]) -> Vec<(String, Vec<u8>)> {
    let len = original.len();
    let mut variants = Vec::new();
    let mut cuts = vec![
        0,
        1,
        16,
        511,
        4096,
        len / 4,
        len / 2,
        3 * len / 4,
        len - 4096,
        len - 1,
    ];
    cuts.retain(|&c| c < len);
    cuts.dedup();
    for cut in cuts {
        variants.push((
            format!("truncated to {cut} bytes"),
            original[..cut].to_vec(),
        ));
    }
    let data: Vec<usize> = (0..len).filter(|&i| original[i] != 0).collect();
    let mut rng = Rng(0x6d69_6467_6533);
    for _ in 0..24 {
        let at = data[rng.below(data.len())];
        let bit = rng.below(8);
        let mut bytes = original.to_vec();
        bytes[at] ^= 1 << bit;
        variants.push((format!("bit {bit} of byte {at} flipped"), bytes));
    }
    let mut bytes = original.to_vec();
    for _ in 0..16 {
        let at = data[rng.below(data.len())];
        bytes[at] ^= 1 << rng.below(8);
    }
    variants.push(("16 bits flipped".into(), bytes));
    variants
}

/// A damaged store (truncated, or with bits flipped) never makes the broker panic: it
/// either refuses to start with an error that names the file, or starts, and then what
/// it kept is intact: retained messages with their payloads, and the persistent
/// session's queue as a subsequence, in order, of what was queued.
#[tokio::test]
async fn a_damaged_store_is_refused_naming_the_file_or_read_intact() {
    let panics = panic_counter("a_damaged_store_is_refused_naming_the_file_or_read_intact");
    let dir = TempDir::new("damaged");
    let broker = start_in(&dir).await;
    let (mut keeper, _) =
        Client::connect_ok(broker.local_addr(), persistent_for("p-keeper", 300)).await;
    keeper.subscribe("dmg/q", QoS::AtLeastOnce).await;
    keeper.disconnect().await;
    let mut p = Client::connect(broker.local_addr(), V5, "p-dmg-pub").await;
    for i in 0..8 {
        let mut m = message(
            &format!("dmg/r/{i}"),
            &format!("retained-{i}"),
            QoS::AtLeastOnce,
        );
        m.retain = true;
        p.publish(m).await;
        p.publish(message("dmg/q", &format!("queued-{i}"), QoS::AtLeastOnce))
            .await;
    }
    p.disconnect().await;
    broker.shutdown().await;
    let original = std::fs::read(dir.store_file()).expect("the store file exists");

    let (mut refused, mut started) = (0, 0);
    for (what, bytes) in damaged_variants(&original) {
        let damaged = TempDir::new("damaged-variant");
        std::fs::write(damaged.store_file(), &bytes).unwrap();
        let file = damaged.store_file().display().to_string();
        match Broker::start(persistent_config(&damaged.path)).await {
            Err(e) => {
                refused += 1;
                assert!(
                    e.to_string().contains(&file),
                    "{what}: the error names the file {file}: {e}"
                );
            }
            Ok(broker) => {
                started += 1;
                // Retained messages kept are intact.
                for (t, payload, _, _) in retained(&broker, "dmg/r/#").await {
                    let i = t.strip_prefix("dmg/r/").expect("a topic of ours");
                    assert_eq!(payload, format!("retained-{i}"), "{what}: {t}");
                }
                // The queue kept is a subsequence of what was queued, in order.
                let (mut keeper, ack) =
                    Client::connect_ok(broker.local_addr(), persistent_for("p-keeper", 300)).await;
                if ack.session_present {
                    publish_sentinel(&broker, "dmg/q", "end").await;
                    let got = payloads(&until_sentinel(&mut keeper, "end").await);
                    let mut next = 0;
                    for payload in &got {
                        let i: usize = payload
                            .strip_prefix("queued-")
                            .and_then(|i| i.parse().ok())
                            .unwrap_or_else(|| panic!("{what}: not ours: {payload}"));
                        assert!(i >= next && i < 8, "{what}: {got:?}");
                        next = i + 1;
                    }
                }
                keeper.disconnect().await;
                broker.shutdown().await;
            }
        }
    }
    eprintln!("damaged stores: {refused} refused, {started} started");
    assert_eq!(panics.load(Ordering::SeqCst), 0, "something panicked");
}
