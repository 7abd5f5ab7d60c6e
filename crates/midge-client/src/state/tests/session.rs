//! Connections and sessions: CONNECT, CONNACK, resume and resend, keep alive.

use std::time::Duration;

use bytes::Bytes;
use midge_codec::{
    Ack, ConnAck, Disconnect, DisconnectProperties, Packet, PacketId, ProtocolVersion, QoS,
    ReasonCode, SubAck, SubscribeProperties, TopicName,
};

use super::*;
use crate::ConnectOptions;

/// conformance: v5 MQTT-4.4.0-1
/// conformance: v5 MQTT-4.6.0-1
/// conformance: v5 MQTT-3.3.1-1
/// conformance: v5 MQTT-4.3.3-6
#[test]
fn resumed_session_resends_publish_with_dup_and_pubrel_in_order() {
    let mut h = Harness::persistent();
    let connect = h.start();
    assert!(connect.clean_start, "the first connection starts clean");
    h.recv(Packet::ConnAck(Box::default())).unwrap();
    h.outputs();
    h.sent();
    h.publish("one", QoS::AtLeastOnce, 1);
    h.publish("two", QoS::ExactlyOnce, 2);
    h.publish("three", QoS::ExactlyOnce, 3);
    let first = h.sent();
    let ids: Vec<PacketId> = publishes(&first)
        .iter()
        .map(|p| p.packet_id.unwrap())
        .collect();
    h.recv(Packet::PubRec(Ack::new(ids[1]))).unwrap();
    h.sent();

    h.lose_connection();
    let connect = h.start();
    assert!(!connect.clean_start, "a reconnect resumes");
    h.recv(Packet::ConnAck(Box::new(ConnAck {
        session_present: true,
        ..ConnAck::default()
    })))
    .unwrap();
    let resent = h.sent();
    assert_eq!(resent.len(), 3, "{resent:?}");
    match &resent[0] {
        Packet::Publish(p) => {
            assert_eq!(
                (p.topic.as_str(), p.dup, p.packet_id),
                ("one", true, Some(ids[0]))
            );
        }
        other => panic!("{other:?}"),
    }
    // The QoS 2 message past its PUBREC is never resent; its PUBREL is.
    assert_eq!(resent[1], Packet::PubRel(Ack::new(ids[1])));
    match &resent[2] {
        Packet::Publish(p) => {
            assert_eq!(
                (p.topic.as_str(), p.dup, p.packet_id),
                ("three", true, Some(ids[2]))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(h.completed().is_empty(), "nothing completes on a resend");
    h.recv(Packet::PubAck(Ack::new(ids[0]))).unwrap();
    h.recv(Packet::PubComp(Ack::new(ids[1]))).unwrap();
    let tokens: Vec<u32> = h.completed().iter().map(|(t, _)| *t).collect();
    assert_eq!(tokens, [1, 2]);
}

/// conformance: v3.1.1 MQTT-4.4.0-1
/// conformance: v3.1.1 MQTT-3.3.1-1
#[test]
fn v311_persistent_session_resends_with_dup() {
    let mut h = Harness::new(
        ConnectOptions::new()
            .version(ProtocolVersion::V311)
            .client_id("c")
            .clean_start(false),
    );
    let connect = h.start();
    assert!(!connect.clean_start);
    h.recv(Packet::ConnAck(Box::default())).unwrap();
    h.sent();
    h.publish("x", QoS::AtLeastOnce, 1);
    let pid = only_publish(h.sent()).packet_id;
    h.lose_connection();
    let connect = h.start();
    assert!(!connect.clean_start);
    h.recv(Packet::ConnAck(Box::new(ConnAck {
        session_present: true,
        ..ConnAck::default()
    })))
    .unwrap();
    let again = only_publish(h.sent());
    assert!(again.dup);
    assert_eq!(again.packet_id, pid);
}

#[test]
fn clean_session_reconnects_start_clean() {
    let mut h = Harness::new(
        ConnectOptions::new()
            .version(ProtocolVersion::V311)
            .client_id("c"),
    );
    assert!(h.start().clean_start);
    h.recv(Packet::ConnAck(Box::default())).unwrap();
    h.lose_connection();
    assert!(h.start().clean_start);
}

/// conformance: v5 MQTT-3.2.2-5
#[test]
fn lost_session_sends_unacknowledged_messages_afresh_and_resubscribes() {
    let mut h = Harness::persistent();
    h.connect(false);
    h.state
        .subscribe(vec![filter("keep/#")], SubscribeProperties::default(), 10);
    let sub_id = match h.sent().as_slice() {
        [Packet::Subscribe(s)] => s.packet_id,
        other => panic!("{other:?}"),
    };
    h.recv(Packet::SubAck(SubAck {
        packet_id: sub_id,
        reason_codes: vec![ReasonCode::GrantedQoS1],
        properties: Default::default(),
    }))
    .unwrap();
    h.completed();
    h.publish("q1", QoS::AtLeastOnce, 1);
    h.publish("q2", QoS::ExactlyOnce, 2);
    h.publish("rel", QoS::ExactlyOnce, 3);
    let first = h.sent();
    let rel_id = publishes(&first)[2].packet_id.unwrap();
    h.recv(Packet::PubRec(Ack::new(rel_id))).unwrap();
    h.sent();

    h.lose_connection();
    let sent = h.connect(false);
    // The QoS 2 message already PUBREC'd completes: the server owned it.
    let done = h.completed();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, 3);
    assert_eq!(published(&done[0].1).complete, None);
    // The subscription is made again, then the messages go as new ones.
    match &sent[0] {
        Packet::Subscribe(s) => assert_eq!(s.filters[0].0.as_str(), "keep/#"),
        other => panic!("{other:?}"),
    }
    let again = publishes(&sent);
    let topics: Vec<(&str, bool)> = again.iter().map(|p| (p.topic.as_str(), p.dup)).collect();
    assert_eq!(topics, [("q1", false), ("q2", false)]);
    assert_eq!(h.state.inflight_len(), 3);
}

/// conformance: v5 MQTT-3.1.2-20
#[test]
fn keep_alive_sends_pingreq_when_idle_and_times_out_without_pingresp() {
    let mut h = Harness::new(
        ConnectOptions::new()
            .client_id("c")
            .keep_alive(Duration::from_secs(10)),
    );
    h.connect(false);
    let start = h.now;
    assert_eq!(
        h.state.poll_timeout(),
        Some(start + Duration::from_secs(10))
    );
    // Sending something postpones the ping.
    h.advance(Duration::from_secs(6));
    h.publish("t", QoS::AtMostOnce, 1);
    h.sent();
    assert_eq!(
        h.state.poll_timeout(),
        Some(h.now + Duration::from_secs(10))
    );
    h.advance(Duration::from_secs(9));
    h.state.handle_timeout(h.now).unwrap();
    assert!(h.sent().is_empty(), "not yet");
    h.advance(Duration::from_secs(1));
    h.state.handle_timeout(h.now).unwrap();
    assert_eq!(h.sent(), [Packet::PingReq]);
    h.advance(Duration::from_secs(2));
    h.recv(Packet::PingResp).unwrap();
    // Ten seconds after the PINGREQ: another one, not a timeout.
    h.advance(Duration::from_secs(8));
    h.state.handle_timeout(h.now).unwrap();
    assert_eq!(h.sent(), [Packet::PingReq]);
    // No answer within a keep alive: the connection is dead.
    h.advance(Duration::from_secs(10));
    let err = h.state.handle_timeout(h.now).unwrap_err();
    assert!(err.is_timeout());
}

/// conformance: v5 MQTT-3.1.2-21
/// conformance: v5 MQTT-3.2.2-21
#[test]
fn server_keep_alive_replaces_ours() {
    let mut h = Harness::new(
        ConnectOptions::new()
            .client_id("c")
            .keep_alive(Duration::from_secs(60)),
    );
    let mut ack = ConnAck::default();
    ack.properties.server_keep_alive = Some(5);
    h.connect_with(ack);
    assert_eq!(h.state.poll_timeout(), Some(h.now + Duration::from_secs(5)));
    let mut h = Harness::new(ConnectOptions::new().keep_alive(Duration::ZERO));
    h.connect(false);
    assert_eq!(h.state.poll_timeout(), None);
}

#[test]
fn connect_carries_the_options() {
    let will = midge_codec::LastWill {
        topic: TopicName::new("will").unwrap(),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: Default::default(),
    };
    let mut h = Harness::new(
        ConnectOptions::new()
            .client_id("id-1")
            .keep_alive(Duration::from_secs(30))
            .credentials("u", "p")
            .will(will.clone())
            .receive_maximum(7)
            .topic_alias_maximum(3)
            .user_property("k", "v"),
    );
    let c = h.start();
    assert_eq!(
        (c.client_id.as_ref(), c.keep_alive, c.username.as_deref()),
        ("id-1", 30, Some("u"))
    );
    assert_eq!(c.password.as_deref(), Some(&b"p"[..]));
    assert_eq!(c.will, Some(will));
    assert_eq!(c.properties.receive_maximum, Some(7));
    assert_eq!(c.properties.topic_alias_maximum, Some(3));
    assert_eq!(c.properties.user_properties, [("k".into(), "v".into())]);
    // 3.1.1 sends no properties.
    let mut h = Harness::new(
        ConnectOptions::new()
            .version(ProtocolVersion::V311)
            .receive_maximum(7),
    );
    assert!(h.start().properties.is_empty());
}

#[test]
fn assigned_client_identifier_is_used_on_reconnect() {
    let mut h = Harness::new(
        ConnectOptions::new()
            .client_id("")
            .session_expiry_interval(60),
    );
    let mut ack = ConnAck::default();
    ack.properties.assigned_client_identifier = Some("given-7".into());
    h.connect_with(ack);
    assert_eq!(h.state.client_id(), "given-7");
    h.lose_connection();
    let c = h.start();
    assert_eq!((c.client_id.as_ref(), c.clean_start), ("given-7", false));
}

#[test]
fn connack_refusal_and_server_disconnect_end_the_connection() {
    let mut h = Harness::v5();
    h.start();
    let err = h
        .recv(Packet::ConnAck(Box::new(ConnAck {
            reason_code: ReasonCode::BadUserNameOrPassword,
            ..ConnAck::default()
        })))
        .unwrap_err();
    assert!(err.is_refused());
    assert_eq!(err.reason_code(), Some(ReasonCode::BadUserNameOrPassword));
    assert!(!h.state.is_connected());

    h.connect(false);
    let err = h
        .recv(Packet::Disconnect(Disconnect {
            reason_code: ReasonCode::ServerMoved,
            properties: DisconnectProperties {
                server_reference: Some("elsewhere:1883".into()),
                reason_string: Some("maintenance".into()),
                ..DisconnectProperties::default()
            },
        }))
        .unwrap_err();
    assert!(err.is_server_disconnect());
    assert_eq!(err.reason_code(), Some(ReasonCode::ServerMoved));
    assert!(err.to_string().contains("maintenance"));
    let packet = err.disconnect_packet().expect("the DISCONNECT is kept");
    assert_eq!(
        packet.properties.server_reference.as_deref(),
        Some("elsewhere:1883")
    );
    assert!(h.sent().is_empty(), "no DISCONNECT back");
}

/// conformance: v5 MQTT-3.2.0-2
#[test]
fn packets_out_of_place_are_protocol_errors() {
    let mut h = Harness::v5();
    h.start();
    let err = h.recv(Packet::PingResp).unwrap_err();
    assert!(err.is_protocol());
    let mut h = Harness::v5();
    h.connect(false);
    let err = h.recv(Packet::ConnAck(Box::default())).unwrap_err();
    assert!(err.is_protocol());
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            ReasonCode::ProtocolError
        ))]
    );
}
