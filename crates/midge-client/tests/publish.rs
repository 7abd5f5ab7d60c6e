//! Publishing and subscribing at every QoS and version against the in-process broker;
//! what the publish futures resolve with; Receive Maximum, topic aliases and a slow
//! reader.

mod common;

use common::*;
use midge_broker::Config;
use midge_client::ReasonCode;
use midge_codec::{ProtocolVersion, Publish, QoS, SubscriptionOptions, TopicFilter, TopicName};

const QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

/// Every pair of publish and subscription QoS, in every version: the message arrives at
/// the lower of the two ([MQTT-3.8.4-8]) and the publish future resolves with the ack
/// its QoS calls for.
#[tokio::test]
async fn round_trips_at_every_qos_and_version() {
    let broker = broker().await;
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        let (sub, mut events) = connect_version(broker.local_addr(), "sub", version).await;
        let (publisher, _pub_events) = connect_version(broker.local_addr(), "pub", version).await;
        for sub_qos in QOS {
            let filter = format!("rt/{}", sub_qos as u8);
            let granted = within(sub.subscribe(filter.as_str(), sub_qos))
                .await
                .unwrap();
            assert_eq!(granted, sub_qos);
            for pub_qos in QOS {
                let payload = format!("{version} pub {} sub {}", pub_qos as u8, sub_qos as u8);
                let done = within(publisher.publish(filter.as_str(), pub_qos, payload.clone()))
                    .await
                    .unwrap();
                match pub_qos {
                    QoS::AtMostOnce => assert_eq!(
                        (done.ack.is_some(), done.complete.is_some()),
                        (false, false)
                    ),
                    QoS::AtLeastOnce => {
                        assert_eq!((done.ack.is_some(), done.complete.is_some()), (true, false))
                    }
                    QoS::ExactlyOnce => {
                        assert_eq!((done.ack.is_some(), done.complete.is_some()), (true, true))
                    }
                }
                assert_eq!(done.reason_code(), ReasonCode::Success);
                let message = next_message(&mut events).await;
                assert_eq!(&message.payload[..], payload.as_bytes());
                assert_eq!(message.topic.as_str(), filter);
                assert_eq!(message.qos, pub_qos.min(sub_qos), "{payload}");
            }
        }
        within(sub.disconnect()).await.unwrap();
        within(publisher.disconnect()).await.unwrap();
    }
    broker.shutdown().await;
}

/// Many publications at once resolve, whatever the server's Receive Maximum
/// ([MQTT-3.3.4-7]): the client holds back what does not fit.
#[tokio::test]
async fn concurrent_publications_respect_the_servers_receive_maximum() {
    let config = Config {
        max_inflight_messages: 2,
        ..Config::local_ephemeral()
    };
    let broker = broker_with(config).await;
    let (sub, mut events) = connect(options(broker.local_addr(), "sub").receive_maximum(3)).await;
    sub.subscribe("many/#", QoS::ExactlyOnce).await.unwrap();
    let (publisher, _e) = connect(options(broker.local_addr(), "pub")).await;
    let mut tasks = Vec::new();
    for n in 0..50u32 {
        let publisher = publisher.clone();
        let qos = if n % 2 == 0 {
            QoS::AtLeastOnce
        } else {
            QoS::ExactlyOnce
        };
        tasks.push(tokio::spawn(async move {
            publisher
                .publish(format!("many/{n}"), qos, n.to_string())
                .await
        }));
    }
    for task in tasks {
        within(task).await.unwrap().unwrap();
    }
    let mut got: Vec<u32> = Vec::new();
    for _ in 0..50 {
        let m = next_message(&mut events).await;
        got.push(std::str::from_utf8(&m.payload).unwrap().parse().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (0..50).collect::<Vec<_>>());
    assert_quiet(&mut events).await;
    publisher.disconnect().await.unwrap();
    sub.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// Topics published repeatedly travel as aliases; the broker resolves them and the
/// subscriber sees every topic in full.
#[tokio::test]
async fn repeated_topics_go_as_aliases_and_arrive_whole() {
    let broker = broker().await;
    let (sub, mut events) = connect(options(broker.local_addr(), "sub")).await;
    sub.subscribe("alias/#", QoS::AtLeastOnce).await.unwrap();
    let (publisher, _e) = connect(options(broker.local_addr(), "pub")).await;
    // The broker allows 10 aliases: topics beyond those go in full.
    for round in 0..3 {
        for n in 0..15 {
            publisher
                .publish(format!("alias/{n}"), QoS::AtLeastOnce, format!("{round}"))
                .await
                .unwrap();
        }
    }
    for round in 0..3 {
        for n in 0..15 {
            let m = next_message(&mut events).await;
            assert_eq!(m.topic.as_str(), format!("alias/{n}"));
            assert_eq!(&m.payload[..], round.to_string().as_bytes());
            assert_eq!(m.properties.topic_alias, None);
        }
    }
    publisher.disconnect().await.unwrap();
    sub.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// An application that reads its events late loses nothing: the client stops reading
/// the socket while the event channel is full, and resumes.
#[tokio::test]
async fn slow_reader_gets_every_message_in_order() {
    let broker = broker().await;
    let (sub, mut events) = connect(options(broker.local_addr(), "slow").event_capacity(1)).await;
    sub.subscribe("slow/t", QoS::AtLeastOnce).await.unwrap();
    let (publisher, _e) = connect(options(broker.local_addr(), "fast")).await;
    for n in 0..300u32 {
        publisher
            .publish("slow/t", QoS::AtLeastOnce, n.to_string())
            .await
            .unwrap();
    }
    // Requests still work while the reader is behind.
    within(sub.publish("slow/other", QoS::AtLeastOnce, "x"))
        .await
        .unwrap();
    for n in 0..300u32 {
        let m = next_message(&mut events).await;
        assert_eq!(&m.payload[..], n.to_string().as_bytes());
    }
    publisher.disconnect().await.unwrap();
    sub.disconnect().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let broker = broker().await;
    let (client, mut events) = connect(options(broker.local_addr(), "u")).await;
    client.subscribe("u/a", QoS::AtMostOnce).await.unwrap();
    client.subscribe("u/b", QoS::AtMostOnce).await.unwrap();
    client.unsubscribe("u/a").await.unwrap();
    // 5.0: "no subscription existed" is not an error.
    client.unsubscribe("u/never").await.unwrap();
    client.publish("u/a", QoS::AtLeastOnce, "no").await.unwrap();
    client
        .publish("u/b", QoS::AtLeastOnce, "yes")
        .await
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"yes");
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// Retained messages and the Retain Handling / Retain As Published options.
#[tokio::test]
async fn retained_messages_and_subscription_options() {
    let broker = broker().await;
    let (client, mut events) = connect(options(broker.local_addr(), "r")).await;
    let mut retained = Publish::new(TopicName::new("ret/t").unwrap(), "kept");
    retained.retain = true;
    retained.qos = QoS::AtLeastOnce;
    client.publish_with(retained).await.unwrap();

    let sub = |handling, rap| {
        vec![(
            TopicFilter::new("ret/t").unwrap(),
            SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                retain_as_published: rap,
                retain_handling: handling,
                ..SubscriptionOptions::default()
            },
        )]
    };
    use midge_codec::RetainHandling::*;
    client
        .subscribe_with(sub(SendAtSubscribe, true), Default::default())
        .await
        .unwrap();
    let m = next_message(&mut events).await;
    assert!(m.retain);
    assert_eq!(&m.payload[..], b"kept");
    // An existing subscription with handling 1 gets no retained message again.
    client
        .subscribe_with(sub(SendAtSubscribeIfNew, true), Default::default())
        .await
        .unwrap();
    client
        .subscribe_with(sub(DoNotSend, false), Default::default())
        .await
        .unwrap();
    assert_quiet(&mut events).await;
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// No Local: our own messages do not come back.
#[tokio::test]
async fn no_local_suppresses_our_own_messages() {
    let broker = broker().await;
    let (client, mut events) = connect(options(broker.local_addr(), "nl")).await;
    let options = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::new(QoS::AtLeastOnce)
    };
    client
        .subscribe_with(
            vec![(TopicFilter::new("nl/t").unwrap(), options)],
            Default::default(),
        )
        .await
        .unwrap();
    let (other, _e) = connect(options_for(&broker, "other")).await;
    client
        .publish("nl/t", QoS::AtLeastOnce, "mine")
        .await
        .unwrap();
    other
        .publish("nl/t", QoS::AtLeastOnce, "theirs")
        .await
        .unwrap();
    assert_eq!(&next_message(&mut events).await.payload[..], b"theirs");
    client.disconnect().await.unwrap();
    other.disconnect().await.unwrap();
    broker.shutdown().await;
}

fn options_for(broker: &midge_broker::BrokerHandle, id: &str) -> midge_client::ConnectOptions {
    options(broker.local_addr(), id)
}

/// A message over the server's Maximum Packet Size fails before it is sent.
#[tokio::test]
async fn message_over_the_servers_maximum_packet_size_is_refused() {
    let config = Config {
        max_packet_size: 1024,
        ..Config::local_ephemeral()
    };
    let broker = broker_with(config).await;
    let (client, _events) = connect(options(broker.local_addr(), "big")).await;
    let err = client
        .publish("big", QoS::AtLeastOnce, vec![0u8; 2000])
        .await
        .unwrap_err();
    assert!(err.is_invalid(), "{err}");
    // The connection is still fine.
    within(client.publish("big", QoS::AtLeastOnce, "small"))
        .await
        .unwrap();
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn invalid_topics_are_refused_locally() {
    let broker = broker().await;
    let (client, _events) = connect(options(broker.local_addr(), "bad")).await;
    assert!(
        client
            .publish("a/+", QoS::AtMostOnce, "x")
            .await
            .unwrap_err()
            .is_invalid()
    );
    assert!(
        client
            .subscribe("a/#/b", QoS::AtMostOnce)
            .await
            .unwrap_err()
            .is_invalid()
    );
    assert!(
        client
            .publish("", QoS::AtMostOnce, "x")
            .await
            .unwrap_err()
            .is_invalid()
    );
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}
