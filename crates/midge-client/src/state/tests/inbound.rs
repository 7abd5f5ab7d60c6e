//! Messages from the server: delivery, acknowledgement, exactly once, aliases.

use midge_codec::{Ack, Disconnect, Packet, QoS, ReasonCode, TopicName};

use super::*;
use crate::ConnectOptions;
use crate::state::Output;

/// conformance: v5 MQTT-3.3.2-10
#[test]
fn inbound_topic_aliases_are_resolved() {
    let mut h = Harness::new(ConnectOptions::new().topic_alias_maximum(4));
    h.connect(false);
    let mut first = message("x/y", QoS::AtMostOnce);
    first.properties.topic_alias = Some(4);
    h.recv(Packet::Publish(first)).unwrap();
    let mut second = message("x/y", QoS::AtMostOnce);
    second.topic = TopicName::default();
    second.properties.topic_alias = Some(4);
    h.recv(Packet::Publish(second)).unwrap();
    let topics: Vec<(String, Option<u16>)> = h
        .deliver()
        .into_iter()
        .map(|p| (p.topic.to_string(), p.properties.topic_alias))
        .collect();
    assert_eq!(topics, [("x/y".into(), None), ("x/y".into(), None)]);
    let mut bad = message("z", QoS::AtMostOnce);
    bad.properties.topic_alias = Some(5);
    let err = h.recv(Packet::Publish(bad)).unwrap_err();
    assert_eq!(err.reason_code(), Some(ReasonCode::TopicAliasInvalid));
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            ReasonCode::TopicAliasInvalid
        ))]
    );
}

/// conformance: v5 MQTT-3.3.4-1
/// conformance: v5 MQTT-4.3.2-4
/// conformance: v5 MQTT-4.3.2-5
/// conformance: v5 MQTT-4.6.0-2
#[test]
fn inbound_qos1_is_acknowledged_once_delivered_in_order() {
    let mut h = Harness::persistent();
    h.connect(false);
    let mut p = message("m", QoS::AtLeastOnce);
    p.packet_id = Some(id(5));
    h.recv(Packet::Publish(p.clone())).unwrap();
    let mut q = message("n", QoS::AtLeastOnce);
    q.packet_id = Some(id(6));
    h.recv(Packet::Publish(q)).unwrap();
    assert!(
        h.sent().is_empty(),
        "no PUBACK before the application has it"
    );
    // A resend before the PUBACK is the same message: not delivered twice.
    p.dup = true;
    h.recv(Packet::Publish(p.clone())).unwrap();
    let delivered = h.deliver();
    assert_eq!(delivered.len(), 2);
    assert_eq!(
        h.sent(),
        [
            Packet::PubAck(Ack::new(id(5))),
            Packet::PubAck(Ack::new(id(6)))
        ]
    );
    // After the PUBACK, the same id is a new message.
    h.recv(Packet::Publish(p)).unwrap();
    assert_eq!(h.deliver().len(), 1);
    assert_eq!(h.sent(), [Packet::PubAck(Ack::new(id(5)))]);
}

/// conformance: v5 MQTT-4.3.3-8
/// conformance: v5 MQTT-4.3.3-10
/// conformance: v5 MQTT-4.3.3-11
/// conformance: v5 MQTT-4.3.3-12
#[test]
fn inbound_qos2_is_delivered_exactly_once() {
    let mut h = Harness::persistent();
    h.connect(false);
    let mut p = message("m", QoS::ExactlyOnce);
    p.packet_id = Some(id(5));
    h.recv(Packet::Publish(p.clone())).unwrap();
    // Resent before it was even delivered: still one message, no PUBREC yet.
    p.dup = true;
    h.recv(Packet::Publish(p.clone())).unwrap();
    assert!(h.sent().is_empty());
    assert_eq!(h.deliver().len(), 1);
    assert_eq!(h.sent(), [Packet::PubRec(Ack::new(id(5)))]);
    // Resent after the PUBREC: acknowledged again, not delivered again.
    h.recv(Packet::Publish(p.clone())).unwrap();
    assert_eq!(h.sent(), [Packet::PubRec(Ack::new(id(5)))]);
    assert!(h.deliver().is_empty());
    // Across a resumed session too.
    h.lose_connection();
    h.connect(true);
    h.recv(Packet::Publish(p.clone())).unwrap();
    assert_eq!(h.sent(), [Packet::PubRec(Ack::new(id(5)))]);
    assert!(h.deliver().is_empty());
    h.recv(Packet::PubRel(Ack::new(id(5)))).unwrap();
    assert_eq!(h.sent(), [Packet::PubComp(Ack::new(id(5)))]);
    // After the PUBCOMP the id names a new message.
    p.dup = false;
    h.recv(Packet::Publish(p)).unwrap();
    assert_eq!(h.deliver().len(), 1);
    // A PUBREL for nothing: PUBCOMP 0x92 in 5.0.
    h.sent();
    h.recv(Packet::PubRel(Ack::new(id(9)))).unwrap();
    match h.sent().as_slice() {
        [Packet::PubComp(c)] => assert_eq!(c.reason_code, ReasonCode::PacketIdentifierNotFound),
        other => panic!("{other:?}"),
    }
}

/// A message delivered while disconnected is acknowledged by the resend on the resumed
/// session; one from a session the server lost is never acknowledged (its id may now
/// name another message).
#[test]
fn acknowledgements_follow_the_session() {
    let mut h = Harness::persistent();
    h.connect(false);
    let mut one = message("one", QoS::AtLeastOnce);
    one.packet_id = Some(id(1));
    let mut two = message("two", QoS::ExactlyOnce);
    two.packet_id = Some(id(2));
    h.recv(Packet::Publish(one.clone())).unwrap();
    h.recv(Packet::Publish(two.clone())).unwrap();
    let outputs = h.outputs();
    h.lose_connection();
    for output in outputs {
        if let Output::Message { ack: Some(ack), .. } = output {
            h.state.handle_delivered(ack);
        }
    }
    assert!(h.sent().is_empty(), "no connection, nothing sent");
    h.connect(true);
    // The server resends both: QoS 1 comes again, QoS 2 is only acknowledged.
    one.dup = true;
    two.dup = true;
    h.recv(Packet::Publish(one.clone())).unwrap();
    h.recv(Packet::Publish(two)).unwrap();
    assert_eq!(h.sent(), [Packet::PubRec(Ack::new(id(2)))]);
    assert_eq!(h.deliver().len(), 1);
    assert_eq!(h.sent(), [Packet::PubAck(Ack::new(id(1)))]);

    // Now a message from a session that the server then loses.
    h.recv(Packet::Publish(one)).unwrap();
    let outputs = h.outputs();
    h.lose_connection();
    h.connect(false);
    for output in outputs {
        if let Output::Message { ack: Some(ack), .. } = output {
            h.state.handle_delivered(ack);
        }
    }
    assert!(h.sent().is_empty());
}

/// conformance: v5 MQTT-3.3.4-9
#[test]
fn inbound_beyond_our_receive_maximum_is_a_protocol_error() {
    let mut h = Harness::new(ConnectOptions::new().receive_maximum(2));
    h.connect(false);
    for (n, qos) in [(1, QoS::AtLeastOnce), (2, QoS::ExactlyOnce)] {
        let mut p = message("m", qos);
        p.packet_id = Some(id(n));
        h.recv(Packet::Publish(p)).unwrap();
    }
    // QoS 0 does not count.
    h.recv(Packet::Publish(message("z", QoS::AtMostOnce)))
        .unwrap();
    let mut p = message("m", QoS::ExactlyOnce);
    p.packet_id = Some(id(3));
    let err = h.recv(Packet::Publish(p)).unwrap_err();
    assert!(err.is_protocol());
    assert_eq!(err.reason_code(), Some(ReasonCode::ReceiveMaximumExceeded));
    assert_eq!(
        h.sent(),
        [Packet::Disconnect(Disconnect::new(
            ReasonCode::ReceiveMaximumExceeded
        ))]
    );
}
