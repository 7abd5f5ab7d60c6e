//! Reconnecting: after a session take-over, a network cut with acknowledgements lost,
//! and a broker restart. What was in flight is resent and delivered ([MQTT-4.4.0-1]),
//! requests made while disconnected go out on the new connection.

mod common;

use std::time::Duration;

use common::*;
use midge_broker::Config;
use midge_client::{Client, ReasonCode, ReconnectPolicy};
use midge_codec::{ProtocolVersion, QoS};

/// A second connection with the same client id takes the session over; the broker
/// closes the first with DISCONNECT 0x8E ([MQTT-3.1.4-3]). The first client reconnects,
/// resumes the session (Session Present), and what it published meanwhile is delivered.
#[tokio::test]
async fn reconnects_and_resumes_after_a_session_take_over() {
    let broker = broker().await;
    let (watcher, mut watch) = watcher(&broker, "to/#").await;

    let (client, mut events) = connect(
        options(broker.local_addr(), "twin")
            .session_expiry_interval(60)
            .reconnect(ReconnectPolicy::exponential(
                Duration::from_millis(200),
                Duration::from_millis(400),
            )),
    )
    .await;
    client.subscribe("to/self", QoS::AtLeastOnce).await.unwrap();

    let (usurper, _u) = connect(
        options(broker.local_addr(), "twin")
            .clean_start(false)
            .session_expiry_interval(60)
            .reconnect(ReconnectPolicy::never()),
    )
    .await;
    let e = disconnected(&mut events).await;
    assert!(e.is_server_disconnect(), "{e}");
    assert_eq!(e.reason_code(), Some(ReasonCode::SessionTakenOver));
    // Published while the first client is off line: these wait for the reconnect.
    let pending = publish_in_background(
        &client,
        QoS::AtLeastOnce,
        (0..5).map(|n| ("to/self".to_owned(), n.to_string())),
    );
    usurper.disconnect().await.unwrap();
    let ack = reconnected(&mut events).await;
    assert!(ack.session_present, "the session is resumed");
    all_published(pending).await;
    // The subscription survived in the session: our own messages come back.
    let mut got: Vec<String> = Vec::new();
    for _ in 0..5 {
        let m = next_message(&mut events).await;
        got.push(String::from_utf8(m.payload.to_vec()).unwrap());
    }
    got.sort();
    assert_eq!(got, ["0", "1", "2", "3", "4"]);
    for _ in 0..5 {
        next_message(&mut watch).await;
    }
    client.disconnect().await.unwrap();
    watcher.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// PUBLISHes the broker never saw (the network swallowed them) are resent on the
/// resumed session with DUP and their packet ids, and delivered once each
/// ([MQTT-4.4.0-1], [MQTT-3.3.1-1]).
#[tokio::test]
async fn unacknowledged_qos1_messages_are_resent_after_a_cut() {
    let broker = broker().await;
    let (watcher, mut watch) = watcher(&broker, "cut/#").await;
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let proxy = Proxy::start(broker.local_addr()).await;
        // A session that outlives the connection: clean session 0 in 3.1.1, an expiry
        // interval in 5.0.
        let options = options(proxy.addr, &format!("cutme-{}", version as u8))
            .version(version)
            .clean_start(false)
            .session_expiry_interval(60);
        let (client, mut events) = connect(options).await;

        proxy.hold_upstream(true);
        let pending = publish_in_background(
            &client,
            QoS::AtLeastOnce,
            (0..3).map(|n| (format!("cut/{n}"), "x".to_owned())),
        );
        assert_quiet(&mut watch).await;
        proxy.cut();
        proxy.hold_upstream(false);
        disconnected(&mut events).await;
        assert!(reconnected(&mut events).await.session_present, "{version}");
        all_published(pending).await;
        assert_eq!(
            next_topics(&mut watch, 3).await,
            ["cut/0", "cut/1", "cut/2"],
            "{version}"
        );
        assert_quiet(&mut watch).await;
        assert_eq!(proxy.accepted(), 2);
        client.disconnect().await.unwrap();
    }
    watcher.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// PUBLISHes the broker received but whose PUBACKs were lost are resent and
/// acknowledged: QoS 1 is at least once, so the subscriber may see them twice, and the
/// publish futures resolve.
#[tokio::test]
async fn lost_pubacks_are_recovered_by_resending() {
    let broker = broker().await;
    let (watcher, mut watch) = watcher(&broker, "lost/#").await;
    let proxy = Proxy::start(broker.local_addr()).await;
    let (client, mut events) =
        connect(options(proxy.addr, "ackless").session_expiry_interval(60)).await;

    proxy.hold_downstream(true);
    let pending = publish_in_background(
        &client,
        QoS::AtLeastOnce,
        (0..3).map(|n| (format!("lost/{n}"), "x".to_owned())),
    );
    // The broker has them: it routed them.
    for _ in 0..3 {
        next_message(&mut watch).await;
    }
    assert!(
        pending.iter().all(|t| !t.is_finished()),
        "no PUBACK came through"
    );
    proxy.cut();
    proxy.hold_downstream(false);
    disconnected(&mut events).await;
    all_published(pending).await;
    // The resent copies are routed again (at least once).
    assert_eq!(
        next_topics(&mut watch, 3).await,
        ["lost/0", "lost/1", "lost/2"]
    );
    client.disconnect().await.unwrap();
    watcher.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// A QoS 2 message whose PUBREC was lost is resent by the broker on the resumed
/// session; the client acknowledges the resend but does not deliver it again
/// ([MQTT-4.3.3-10]).
#[tokio::test]
async fn inbound_qos2_is_not_delivered_twice_across_a_cut() {
    let broker = broker().await;
    let proxy = Proxy::start(broker.local_addr()).await;
    let (sub, mut events) =
        connect(options(proxy.addr, "exactly").session_expiry_interval(60)).await;
    sub.subscribe("eo/t", QoS::ExactlyOnce).await.unwrap();
    let (publisher, _e) = connect(options(broker.local_addr(), "pub")).await;

    proxy.hold_upstream(true);
    publisher
        .publish("eo/t", QoS::ExactlyOnce, "once")
        .await
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"once");
    proxy.cut();
    proxy.hold_upstream(false);
    disconnected(&mut events).await;
    assert!(reconnected(&mut events).await.session_present);
    // The broker resent "once" first; the next message delivered must be the sentinel.
    publisher
        .publish("eo/t", QoS::ExactlyOnce, "after")
        .await
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"after");
    sub.disconnect().await.unwrap();
    publisher.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// The broker restarts on the same port with no memory of the session: the client
/// reconnects, finds no session, sends its unacknowledged message afresh and makes its
/// subscription again.
#[tokio::test]
async fn survives_a_broker_restart() {
    let broker = broker().await;
    let addr = broker.local_addr();
    let (client, mut events) = connect(options(addr, "phoenix").session_expiry_interval(60)).await;
    client
        .subscribe("phoenix/t", QoS::AtLeastOnce)
        .await
        .unwrap();
    broker.shutdown().await;
    let e = disconnected(&mut events).await;
    assert!(
        e.is_server_disconnect() || e.is_connection_lost() || e.is_io(),
        "{e}"
    );
    // Published while the broker is down: waits.
    let pending = publish_in_background(
        &client,
        QoS::AtLeastOnce,
        [("phoenix/t".to_owned(), "again".to_owned())],
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending[0].is_finished());

    let mut config = Config::local_ephemeral();
    config.listeners[0].bind = Some(addr);
    let broker = broker_with(config).await;
    assert!(!reconnected(&mut events).await.session_present);
    all_published(pending).await;
    // The resubscription was queued ahead of the message: it comes back to us.
    let m = next_message(&mut events).await;
    assert_eq!(&m.payload[..], b"again");
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// With reconnecting off, a lost connection fails what is in flight.
#[tokio::test]
async fn without_reconnect_in_flight_requests_fail() {
    let broker = broker().await;
    let proxy = Proxy::start(broker.local_addr()).await;
    let (client, mut events) =
        connect(options(proxy.addr, "once").reconnect(ReconnectPolicy::never())).await;
    proxy.hold_upstream(true);
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.publish("t", QoS::AtLeastOnce, "x").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.cut();
    let err = within(pending).await.unwrap().unwrap_err();
    assert!(err.is_connection_lost(), "{err}");
    disconnected(&mut events).await;
    assert!(within(events.recv()).await.is_none());
    assert!(within(Client::disconnect(&client)).await.is_ok());
    broker.shutdown().await;
}
