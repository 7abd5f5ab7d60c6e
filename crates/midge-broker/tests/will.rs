//! Will messages: published when the connection ends abnormally (network loss,
//! keep-alive timeout, protocol error, DISCONNECT 0x04), not on a normal DISCONNECT;
//! the Will Delay Interval, the earlier of the delay and the session's end, and a
//! resumed session cancelling a delayed will.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use midge_codec::{
    Connect, Disconnect, LastWill, Packet, ProtocolVersion, QoS, ReasonCode, WillProperties,
};

fn with_will(mut connect: Connect, will_topic: &str, qos: QoS, retain: bool) -> Connect {
    connect.will = Some(LastWill {
        topic: topic(will_topic),
        payload: Bytes::from(format!("will of {}", connect.client_id)),
        qos,
        retain,
        properties: WillProperties::default(),
    });
    connect
}

/// A 5.0 CONNECT of `client_id` with a QoS 0 will on `will_topic`, delayed by `delay`
/// seconds, and a session expiry interval of `session_expiry` seconds.
fn delayed_will(client_id: &str, will_topic: &str, delay: u32, session_expiry: u32) -> Connect {
    let mut connect = with_will(
        connect_packet(V5, client_id),
        will_topic,
        QoS::AtMostOnce,
        false,
    );
    connect
        .will
        .as_mut()
        .unwrap()
        .properties
        .will_delay_interval = Some(delay);
    connect.properties.session_expiry_interval = Some(session_expiry);
    connect
}

async fn watcher(broker: &midge_broker::BrokerHandle, name: &str, filter: &str) -> Client {
    let mut w = Client::connect(broker.local_addr(), V5, name).await;
    w.subscribe(filter, QoS::ExactlyOnce).await;
    w
}

/// conformance: v5 MQTT-3.1.2-7
/// conformance: v5 MQTT-3.1.2-8
/// conformance: v5 MQTT-3.1.2-14
/// conformance: v3.1.1 MQTT-3.1.2-8
/// conformance: v3.1.1 MQTT-3.1.2-16
#[tokio::test]
async fn will_is_published_when_the_network_connection_is_lost() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-lost", "will/#").await;
    for v in VERSIONS {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let id = cid("lost", v);
            let connect = with_will(connect_packet(v, &id), "will/lost", qos, false);
            let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
            c.drop_connection();
            let p = w.recv_and_ack().await;
            assert_eq!(p.topic.as_str(), "will/lost");
            assert_eq!(p.payload, format!("will of {id}").as_bytes());
            assert_eq!(p.qos, qos, "{v}");
            assert!(!p.retain);
        }
    }
}

/// conformance: v5 MQTT-3.14.4-3
/// conformance: v5 MQTT-3.1.2-10
/// conformance: v3.1.1 MQTT-3.14.4-3
/// conformance: v3.1.1 MQTT-3.1.2-10
#[tokio::test]
async fn will_is_discarded_on_a_normal_disconnect() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-normal", "will/#").await;
    for v in VERSIONS {
        let connect = with_will(
            connect_packet(v, &cid("normal", v)),
            "will/normal",
            QoS::AtMostOnce,
            false,
        );
        let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
        c.disconnect().await;
    }
    let mut s = Client::connect(broker.local_addr(), V5, "w-normal-sentinel").await;
    s.pub_msg("will/sentinel", "sentinel", QoS::AtMostOnce)
        .await;
    assert_eq!(w.recv_publish().await.topic.as_str(), "will/sentinel");
}

/// conformance: v5 MQTT-3.14.4-3
#[tokio::test]
async fn disconnect_with_will_message_publishes_the_will() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-04", "will/#").await;
    let connect = with_will(
        connect_packet(V5, "w04"),
        "will/04",
        QoS::AtLeastOnce,
        false,
    );
    let (mut c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    c.send(Packet::Disconnect(Disconnect::new(
        ReasonCode::DisconnectWithWillMessage,
    )))
    .await;
    c.expect_closed().await;
    assert_eq!(w.recv_and_ack().await.topic.as_str(), "will/04");
}

/// conformance: v5 MQTT-3.1.2-22
/// conformance: v3.1.1 MQTT-3.1.2-24
/// conformance: v3.1.1 MQTT-3.1.2-8
#[tokio::test]
async fn will_is_published_on_keep_alive_timeout() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-ka", "will/#").await;
    let mut silent = Vec::new();
    for v in VERSIONS {
        let mut connect = with_will(
            connect_packet(v, &cid("ka", v)),
            "will/ka",
            QoS::AtMostOnce,
            false,
        );
        connect.keep_alive = 1;
        silent.push(Client::connect_ok(broker.local_addr(), connect).await.0);
    }
    let t0 = now();
    for _ in VERSIONS {
        assert_eq!(w.recv_publish().await.topic.as_str(), "will/ka");
    }
    assert!(t0.elapsed() >= Duration::from_millis(1400));
    for mut c in silent {
        c.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
    }
}

/// conformance: v3.1.1 MQTT-3.1.2-8
/// conformance: v5 MQTT-4.13.1-1
#[tokio::test]
async fn will_is_published_on_a_protocol_error() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-err", "will/#").await;
    for v in VERSIONS {
        let connect = with_will(
            connect_packet(v, &cid("err", v)),
            "will/err",
            QoS::AtMostOnce,
            false,
        );
        let (mut c, _) = Client::connect_ok(broker.local_addr(), connect).await;
        c.send_raw(&[0x82, 0x00]).await; // SUBSCRIBE with no packet id: malformed
        c.expect_disconnect(ReasonCode::MalformedPacket).await;
        assert_eq!(w.recv_publish().await.topic.as_str(), "will/err", "{v}");
    }
}

/// conformance: v5 MQTT-3.1.2-15
/// conformance: v3.1.1 MQTT-3.1.2-17
#[tokio::test]
async fn retained_will_is_stored_as_retained() {
    let broker = start().await;
    for v in VERSIONS {
        let name = format!("will/ret/{}", v as u8);
        let connect = with_will(
            connect_packet(v, &cid("wret", v)),
            &name,
            QoS::AtLeastOnce,
            true,
        );
        let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
        c.drop_connection();
        let mut late = Client::connect(broker.local_addr(), v, &cid("wret-late", v)).await;
        // Poll until the will is there: the broker notices the loss asynchronously.
        let deadline = now() + TIMEOUT;
        loop {
            late.subscribe(&name, QoS::AtLeastOnce).await;
            match late.recv_within(Duration::from_millis(100)).await {
                Recv::Packet(Packet::Publish(p)) => {
                    assert!(p.retain);
                    late.ack(&p).await;
                    break;
                }
                Recv::Timeout if now() < deadline => continue,
                other => panic!("expected the retained will, got {other:?}"),
            }
        }
    }
}

/// conformance: v3.1.1 MQTT-3.1.2-12
#[tokio::test]
async fn no_will_flag_no_will() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-none", "#").await;
    for v in VERSIONS {
        let c = Client::connect(broker.local_addr(), v, &cid("nowill", v)).await;
        c.drop_connection();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut s = Client::connect(broker.local_addr(), V5, "w-none-sentinel").await;
    s.pub_msg("sentinel", "sentinel", QoS::AtMostOnce).await;
    assert_eq!(w.recv_publish().await.topic.as_str(), "sentinel");
}

/// conformance: v5 MQTT-3.1.2-8
/// conformance: v5 MQTT-3.1.3-10
#[tokio::test]
async fn will_delay_interval_delays_the_will() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-delay", "will/#").await;
    let mut connect = delayed_will("delayed", "will/delay", 1, 60);
    let props = &mut connect.will.as_mut().unwrap().properties;
    props.user_properties = vec![
        ("z".into(), "1".into()),
        ("a".into(), "2".into()),
        ("z".into(), "3".into()),
    ];
    props.content_type = Some("text/plain".into());
    let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    let t0 = now();
    c.drop_connection();
    let p = w.recv_publish().await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "published after {waited:?}"
    );
    assert_eq!(
        p.properties.user_properties,
        vec![
            ("z".into(), "1".into()),
            ("a".into(), "2".into()),
            ("z".into(), "3".into())
        ]
    );
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
}

/// The will is published when the session ends, if that comes before the delay.
///
/// conformance: v5 MQTT-3.1.2-8
#[tokio::test]
async fn will_is_published_when_the_session_ends_before_the_delay() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-end", "will/#").await;
    // Session expiry 0: the session ends with the connection; the will goes at once.
    let connect = delayed_will("ends-now", "will/now", 30, 0);
    let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    let t0 = now();
    c.drop_connection();
    assert_eq!(w.recv_publish().await.topic.as_str(), "will/now");
    assert!(t0.elapsed() < Duration::from_millis(900));
    // Session expiry 1 s, will delay 30 s: published after about 1 s.
    let connect = delayed_will("ends-soon", "will/soon", 30, 1);
    let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    let t0 = now();
    c.drop_connection();
    assert_eq!(w.recv_publish().await.topic.as_str(), "will/soon");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // A DISCONNECT that sets the session expiry to 0 ends the session at once too.
    let mut connect = delayed_will("ends-disc", "will/disc", 30, 60);
    connect.clean_start = true;
    let (mut c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    let mut d = Disconnect::new(ReasonCode::DisconnectWithWillMessage);
    d.properties.session_expiry_interval = Some(0);
    c.send(Packet::Disconnect(d)).await;
    c.expect_closed().await;
    let t0 = now();
    assert_eq!(w.recv_publish().await.topic.as_str(), "will/disc");
    assert!(t0.elapsed() < Duration::from_millis(900));
}

/// conformance: v5 MQTT-3.1.3-9
/// conformance: v5 MQTT-3.1.2-8
#[tokio::test]
async fn resuming_the_session_before_the_delay_cancels_the_will() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-cancel", "will/#").await;
    let mut connect = delayed_will("comeback", "will/cancel", 1, 60);
    connect.clean_start = false;
    let (c, _) = Client::connect_ok(broker.local_addr(), connect.clone()).await;
    c.drop_connection();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect;
    again.will = None;
    let (back, ack) = Client::connect_ok(broker.local_addr(), again).await;
    assert!(ack.session_present);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let mut s = Client::connect(broker.local_addr(), V5, "w-cancel-sentinel").await;
    s.pub_msg("will/sentinel", "sentinel", QoS::AtMostOnce)
        .await;
    assert_eq!(w.recv_publish().await.topic.as_str(), "will/sentinel");
    back.disconnect().await;
}

/// A 3.1.1 will has no delay: published at once even for a persistent session.
///
/// conformance: v3.1.1 MQTT-3.1.2-8
#[tokio::test]
async fn will_of_a_persistent_3_1_1_session_is_published_at_once() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-311p", "will/#").await;
    for v in [ProtocolVersion::V31, ProtocolVersion::V311] {
        let connect = with_will(
            persistent(v, &cid("p311", v)),
            "will/p",
            QoS::AtMostOnce,
            false,
        );
        let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
        c.drop_connection();
        assert_eq!(w.recv_publish().await.topic.as_str(), "will/p");
    }
}

/// A session taken over by a connection that resumes it keeps its client: the will is
/// not published. One whose session ends (no expiry, or a clean start) publishes it.
///
/// conformance: v5 MQTT-3.1.2-8
/// conformance: v5 MQTT-3.1.3-9
/// conformance: v5 MQTT-3.1.4-3
/// conformance: v3.1.1 MQTT-3.1.4-2
#[tokio::test]
async fn takeover_publishes_the_will_only_when_the_session_ends() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-takeover", "will/#").await;
    for v in VERSIONS {
        let name = format!("will/takeover/{}", v as u8);
        let id = cid("tko", v);
        // Resumed: no will.
        let connect = with_will(persistent(v, &id), &name, QoS::AtMostOnce, false);
        let (mut old, _) = Client::connect_ok(broker.local_addr(), connect.clone()).await;
        let (new, ack) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        assert_resumed(&ack, v);
        old.expect_disconnect(ReasonCode::SessionTakenOver).await;
        new.disconnect().await;
        let mut s = Client::connect(broker.local_addr(), V5, &cid("tko-sentinel", v)).await;
        s.pub_msg("will/sentinel", "sentinel", QoS::AtMostOnce)
            .await;
        assert_eq!(
            w.recv_publish().await.topic.as_str(),
            "will/sentinel",
            "{v}: no will"
        );
        // Taken over by a clean start: the old session ends, the will goes out.
        let (mut old, _) = Client::connect_ok(broker.local_addr(), connect).await;
        let (new, ack) = Client::connect_ok(broker.local_addr(), connect_packet(v, &id)).await;
        assert!(!ack.session_present);
        old.expect_disconnect(ReasonCode::SessionTakenOver).await;
        assert_eq!(
            w.recv_publish().await.topic.as_str(),
            name,
            "{v}: will on clean start"
        );
        new.disconnect().await;
        // A session without expiry ends with its connection: the will goes out.
        let connect = with_will(connect_packet(v, &id), &name, QoS::AtMostOnce, false);
        let (mut old, _) = Client::connect_ok(broker.local_addr(), connect).await;
        let (_new, _) = Client::connect_ok(broker.local_addr(), persistent(v, &id)).await;
        old.expect_disconnect(ReasonCode::SessionTakenOver).await;
        assert_eq!(
            w.recv_publish().await.topic.as_str(),
            name,
            "{v}: will of an ended session"
        );
    }
}

/// A delayed will is published at once when the client comes back with a clean start:
/// its old session ends.
///
/// conformance: v5 MQTT-3.1.2-8
#[tokio::test]
async fn clean_start_before_the_delay_publishes_the_delayed_will() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-clean", "will/#").await;
    let connect = delayed_will("clean-back", "will/clean", 30, 60);
    let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    c.drop_connection();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = now();
    let (_back, ack) =
        Client::connect_ok(broker.local_addr(), connect_packet(V5, "clean-back")).await;
    assert!(!ack.session_present);
    assert_eq!(w.recv_publish().await.topic.as_str(), "will/clean");
    assert!(t0.elapsed() < Duration::from_secs(2));
}

/// A will's Message Expiry Interval counts from its publication, not from CONNECT: a
/// client connected for longer than that interval still gets its will out.
///
/// conformance: v5 MQTT-3.3.2-6
#[tokio::test]
async fn will_expiry_counts_from_publication() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-exp", "will/#").await;
    let mut connect = with_will(
        connect_packet(V5, "long-lived"),
        "will/exp",
        QoS::AtLeastOnce,
        true,
    );
    connect
        .will
        .as_mut()
        .unwrap()
        .properties
        .message_expiry_interval = Some(1);
    let (c, _) = Client::connect_ok(broker.local_addr(), connect).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    c.drop_connection();
    let p = w.recv_and_ack().await;
    assert_eq!(p.topic.as_str(), "will/exp");
    assert_eq!(p.properties.message_expiry_interval, Some(1));
    // Retained, it is there for a new subscriber until it expires.
    let mut late = Client::connect(broker.local_addr(), V5, "w-exp-late").await;
    late.subscribe("will/exp", QoS::AtLeastOnce).await;
    assert!(late.recv_and_ack().await.retain);
}

/// A client that stops reading while the broker has more to send than the socket
/// buffers hold still times out on its keep alive: the broker, blocked writing to it,
/// sees no progress for one and a half keep-alive periods, closes it and publishes the
/// will.
///
/// conformance: v5 MQTT-3.1.2-22
/// conformance: v3.1.1 MQTT-3.1.2-24
#[tokio::test]
async fn keep_alive_times_out_a_client_that_stopped_reading() {
    let broker = start().await;
    let mut w = watcher(&broker, "w-stall", "will/#").await;
    let mut connect = with_will(
        connect_packet(V311, "stalled"),
        "will/stalled",
        QoS::AtMostOnce,
        false,
    );
    connect.keep_alive = 1;
    let (mut stalled, _) = Client::connect_ok(broker.local_addr(), connect).await;
    stalled.subscribe("firehose", QoS::AtMostOnce).await;
    // From here on `stalled` never reads again.
    let mut publisher = Client::connect(broker.local_addr(), V311, "firehose-pub").await;
    let big = Bytes::from(vec![b'x'; 64 * 1024]);
    for _ in 0..200 {
        let mut p = publish("firehose", "", QoS::AtMostOnce);
        p.payload = big.clone();
        publisher.publish(p).await;
    }
    match w.recv_within(Duration::from_secs(8)).await {
        Recv::Packet(Packet::Publish(p)) => assert_eq!(p.topic.as_str(), "will/stalled"),
        other => panic!("no will from the stalled client: {other:?}"),
    }
    drop(stalled);
}
