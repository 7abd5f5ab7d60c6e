//! MQTT 5.0 properties travel intact through the broker, both ways.

mod common;

use bytes::Bytes;
use common::*;
use midge_client::Event;
use midge_codec::{
    Publish, PublishProperties, QoS, SubscribeProperties, SubscriptionOptions, TopicFilter,
    TopicName, UserProperty,
};

fn user(k: &str, v: &str) -> UserProperty {
    (k.into(), v.into())
}

/// User properties (in order, repeats kept: [MQTT-3.3.2-18]), response topic,
/// correlation data, content type, payload format and message expiry reach the
/// subscriber, along with the subscription identifier of the matching subscription.
#[tokio::test]
async fn publish_properties_round_trip() {
    let broker = broker().await;
    let (sub, mut events) = connect(options(broker.local_addr(), "sub")).await;
    let sub_props = SubscribeProperties {
        subscription_identifier: Some(42),
        user_properties: vec![user("why", "test")],
    };
    let ack = sub
        .subscribe_with(
            vec![(
                TopicFilter::new("props/#").unwrap(),
                SubscriptionOptions::new(QoS::ExactlyOnce),
            )],
            sub_props,
        )
        .await
        .unwrap();
    assert_eq!(ack.reason_codes, [midge_codec::ReasonCode::GrantedQoS2]);

    let (publisher, _e) = connect(options(broker.local_addr(), "pub")).await;
    let properties = PublishProperties {
        payload_format_indicator: Some(true),
        message_expiry_interval: Some(3600),
        response_topic: Some(TopicName::new("props/reply").unwrap()),
        correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
        user_properties: vec![user("a", "1"), user("b", "2"), user("a", "3")],
        content_type: Some("text/plain".into()),
        ..PublishProperties::default()
    };
    let mut publish = Publish::new(TopicName::new("props/req").unwrap(), "body");
    publish.qos = QoS::ExactlyOnce;
    publish.properties = properties.clone().into();
    publisher.publish_with(publish).await.unwrap();

    let m = next_message(&mut events).await;
    let p = &m.properties;
    assert_eq!(p.payload_format_indicator, Some(true));
    assert!(
        p.message_expiry_interval
            .is_some_and(|s| (3590..=3600).contains(&s))
    );
    assert_eq!(p.response_topic, properties.response_topic);
    assert_eq!(p.correlation_data, properties.correlation_data);
    assert_eq!(p.user_properties, properties.user_properties);
    assert_eq!(p.content_type, properties.content_type);
    assert_eq!(p.subscription_identifiers, [42]);
    sub.disconnect().await.unwrap();
    publisher.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// Request/response with a response topic and correlation data, as in the
/// `request_response` example.
#[tokio::test]
async fn request_response_round_trip() {
    let broker = broker().await;
    let (responder, mut requests) = connect(options(broker.local_addr(), "responder")).await;
    responder
        .subscribe("svc/echo", QoS::AtLeastOnce)
        .await
        .unwrap();
    let server = tokio::spawn(async move {
        let request = requests.recv_message().await.unwrap();
        let mut reply = Publish::new(
            request.properties.response_topic.clone().unwrap(),
            request.payload.clone(),
        );
        reply.qos = QoS::AtLeastOnce;
        reply.properties.correlation_data = request.properties.correlation_data.clone();
        responder.publish_with(reply).await.unwrap();
        responder.disconnect().await.unwrap();
    });

    let (requester, mut replies) = connect(options(broker.local_addr(), "requester")).await;
    requester
        .subscribe("reply/requester", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut request = Publish::new(TopicName::new("svc/echo").unwrap(), "ping");
    request.qos = QoS::AtLeastOnce;
    request.properties.response_topic = Some(TopicName::new("reply/requester").unwrap());
    request.properties.correlation_data = Some(Bytes::from_static(b"id-1"));
    requester.publish_with(request).await.unwrap();
    let reply = next_message(&mut replies).await;
    assert_eq!(&reply.payload[..], b"ping");
    assert_eq!(
        reply.properties.correlation_data.as_deref(),
        Some(&b"id-1"[..])
    );
    within(server).await.unwrap();
    requester.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// The CONNACK's properties reach the application in the `Connected` event.
#[tokio::test]
async fn connack_properties_are_reported() {
    let broker = broker().await;
    let (client, mut events) = within(midge_client::Client::connect(
        options(broker.local_addr(), "ack").user_property("who", "me"),
    ))
    .await
    .unwrap();
    match within(events.recv()).await {
        Some(Event::Connected(ack)) => {
            assert_eq!(ack.properties.receive_maximum, Some(20));
            assert_eq!(ack.properties.topic_alias_maximum, Some(10));
        }
        other => panic!("{other:?}"),
    }
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}
