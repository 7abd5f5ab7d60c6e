//! Connecting and disconnecting against the in-process broker, every protocol version.

mod common;

use std::time::Duration;

use common::*;
use midge_broker::Config;
use midge_client::{Client, ConnectOptions, Event, ReasonCode, ReconnectPolicy};
use midge_codec::{ProtocolVersion, QoS};

/// Each version connects, gets its CONNACK first, and round-trips a message.
#[tokio::test]
async fn connects_with_every_protocol_version() {
    let broker = broker().await;
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        let (client, mut events) = within(Client::connect(
            options(broker.local_addr(), "v").version(version),
        ))
        .await
        .unwrap();
        match within(events.recv()).await {
            Some(Event::Connected(ack)) => {
                assert_eq!(ack.reason_code, ReasonCode::Success);
                assert!(!ack.session_present);
                // Only 5.0 CONNACKs carry properties.
                assert_eq!(version.is_v5(), ack.properties.receive_maximum.is_some());
            }
            other => panic!("{version}: {other:?}"),
        }
        client.subscribe("v/t", QoS::AtLeastOnce).await.unwrap();
        client.publish("v/t", QoS::AtLeastOnce, "hi").await.unwrap();
        let message = next_message(&mut events).await;
        assert_eq!(
            (message.topic.as_str(), &message.payload[..]),
            ("v/t", &b"hi"[..])
        );
        within(client.disconnect()).await.unwrap();
        assert!(
            within(events.recv()).await.is_none(),
            "{version}: stream ends"
        );
    }
    broker.shutdown().await;
}

/// An empty client id gets one assigned by a 5.0 server ([MQTT-3.2.2-16]).
#[tokio::test]
async fn v5_empty_client_id_is_assigned() {
    let broker = broker().await;
    let (client, mut events) = within(Client::connect(options(broker.local_addr(), "")))
        .await
        .unwrap();
    match within(events.recv()).await {
        Some(Event::Connected(ack)) => {
            let id = ack.properties.assigned_client_identifier.expect("assigned");
            assert!(!id.is_empty());
        }
        other => panic!("{other:?}"),
    }
    within(client.disconnect()).await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn refused_connection_fails_connect() {
    let config = Config {
        allow_anonymous: false,
        ..Config::local_ephemeral()
    };
    let broker = broker_with(config).await;
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let err = within(Client::connect(
            options(broker.local_addr(), "anon").version(version),
        ))
        .await
        .unwrap_err();
        assert!(err.is_refused(), "{version}: {err}");
        assert_eq!(err.reason_code(), Some(ReasonCode::NotAuthorized));
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn unreachable_server_fails_connect() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = within(Client::connect(ConnectOptions::new().server(port)))
        .await
        .unwrap_err();
    assert!(err.is_io(), "{err}");
}

#[tokio::test]
async fn invalid_options_fail_before_connecting() {
    let err = Client::connect(
        ConnectOptions::new()
            .version(ProtocolVersion::V311)
            .password("no user"),
    )
    .await
    .unwrap_err();
    assert!(err.is_invalid());
}

/// After `disconnect`, requests fail as closed and the event stream ends.
#[tokio::test]
async fn requests_after_disconnect_fail_as_closed() {
    let broker = broker().await;
    let (client, mut events) = connect(options(broker.local_addr(), "bye")).await;
    let other_handle = client.clone();
    within(client.disconnect()).await.unwrap();
    let err = other_handle
        .publish("t", QoS::AtMostOnce, "x")
        .await
        .unwrap_err();
    assert!(err.is_closed());
    assert!(other_handle.is_closed());
    // Disconnecting twice is fine.
    within(other_handle.disconnect()).await.unwrap();
    assert!(within(events.recv()).await.is_none());
    broker.shutdown().await;
}

/// Dropping every handle disconnects normally: the event stream ends and the will is
/// not published.
#[tokio::test]
async fn dropping_the_last_handle_disconnects() {
    let broker = broker().await;
    let (watcher, mut watch) = watcher(&broker, "will/#").await;
    let will = midge_codec::LastWill {
        topic: "will/dropped".try_into().unwrap(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    let (client, mut events) = connect(options(broker.local_addr(), "dropper").will(will)).await;
    drop(client);
    assert!(within(events.recv()).await.is_none());
    assert_quiet(&mut watch).await;
    within(watcher.disconnect()).await.unwrap();
    broker.shutdown().await;
}

/// The keep alive is kept with PINGREQs: a 1 s keep alive survives 2 s of silence (the broker allows 1.5 s)
/// ([MQTT-3.1.2-20]).
#[tokio::test]
async fn keep_alive_keeps_an_idle_connection_open() {
    let broker = broker().await;
    let (client, mut events) = connect(
        options(broker.local_addr(), "idle")
            .keep_alive(Duration::from_secs(1))
            .reconnect(ReconnectPolicy::never()),
    )
    .await;
    if let Ok(event) = tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
        panic!("unexpected event {event:?}");
    }
    client
        .publish("t", QoS::AtLeastOnce, "still here")
        .await
        .unwrap();
    within(client.disconnect()).await.unwrap();
    broker.shutdown().await;
}
