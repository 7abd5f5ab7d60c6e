//! The will: published when the connection dies, not on a normal DISCONNECT.

mod common;

use common::*;
use midge_client::{ReasonCode, ReconnectPolicy};
use midge_codec::{Disconnect, LastWill, ProtocolVersion, QoS, TopicName, WillProperties};

fn will(topic: &str) -> LastWill {
    LastWill {
        topic: TopicName::new(topic).unwrap(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: WillProperties {
            user_properties: vec![("k".into(), "v".into())],
            ..WillProperties::default()
        },
    }
}

/// A connection killed without DISCONNECT makes the broker publish the will, in every
/// version; the client reports the loss and, with reconnecting off, ends.
#[tokio::test]
async fn will_is_published_when_the_connection_is_killed() {
    let broker = broker().await;
    let (watcher, mut watch) = watcher(&broker, "wills/#").await;
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        let proxy = Proxy::start(broker.local_addr()).await;
        let topic = format!("wills/{}", version as u8);
        let (client, mut events) = connect(
            options(proxy.addr, "mortal")
                .version(version)
                .will(will(&topic))
                .reconnect(ReconnectPolicy::never()),
        )
        .await;
        proxy.cut();
        let e = disconnected(&mut events).await;
        assert!(!e.is_closed(), "{e}");
        assert!(within(events.recv()).await.is_none(), "the stream ends");
        let err = client.publish("x", QoS::AtMostOnce, "x").await.unwrap_err();
        assert!(err.is_closed() || err.is_connection_lost(), "{err}");

        let m = next_message(&mut watch).await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            (topic.as_str(), &b"gone"[..])
        );
        if version.is_v5() {
            assert_eq!(m.properties.user_properties, [("k".into(), "v".into())]);
        }
    }
    watcher.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// A normal DISCONNECT discards the will; 5.0's "Disconnect with Will Message" (0x04)
/// publishes it ([MQTT-3.14.4-3]).
#[tokio::test]
async fn normal_disconnect_discards_the_will_and_0x04_sends_it() {
    let broker = broker().await;
    let (watcher, mut watch) = watcher(&broker, "wills/#").await;

    let (client, _e) = connect(options(broker.local_addr(), "a").will(will("wills/a"))).await;
    client.disconnect().await.unwrap();
    let (client, _e) = connect(options(broker.local_addr(), "b").will(will("wills/b"))).await;
    client
        .disconnect_with(Disconnect::new(ReasonCode::DisconnectWithWillMessage))
        .await
        .unwrap();
    // The first will would have come before the second.
    assert_eq!(next_message(&mut watch).await.topic.as_str(), "wills/b");
    watcher.disconnect().await.unwrap();
    broker.shutdown().await;
}
