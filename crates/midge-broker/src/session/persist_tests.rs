//! The changes a persistent session reports for the store (`Action::Persist`), and
//! their place among the packets: each packet that must wait for a change comes after
//! it. Deterministic: no sockets, no clock, no store.

use std::collections::HashSet;
use std::sync::Arc;

use midge_codec::{
    Ack, Connect, Packet, PacketId, ProtocolVersion, Publish, QoS, Subscribe, SubscribeProperties,
    SubscriptionOptions, TopicFilter, TopicName,
};

use super::tests::sent;
use super::{Action, Change, Resumed, Session, SessionConfig};
use crate::message::Delivery;
use crate::store::OutgoingState;

#[allow(clippy::disallowed_methods)]
fn epoch() -> std::time::Instant {
    std::time::Instant::now()
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

fn durable_session(version: ProtocolVersion) -> Session {
    let mut s = Session::new(Arc::from("c1"), SessionConfig::default(), epoch());
    let mut connect = Connect::new(version, "c1");
    connect.clean_start = false;
    s.connect(&connect, false, None, epoch(), &mut Vec::new());
    s.set_durable(true);
    s
}

fn stored_delivery(qos: QoS, seq: u64) -> Delivery {
    let mut delivery = crate::message::test_delivery("a/b", qos);
    delivery.seq = Some(seq);
    delivery
}

/// What the actions are, in order, in short: `P(change)`, a packet type, or `route`.
fn shape(out: &[Action]) -> Vec<String> {
    out.iter()
        .map(|a| match a {
            Action::Persist(c) => format!("{c:?}"),
            Action::Publish(_) => "route".into(),
            Action::Send(p) => format!("{:?}", p.packet_type()),
            Action::SendShared { .. } => "Publish".into(),
            other => format!("{other:?}"),
        })
        .collect()
}

/// conformance: v5 MQTT-4.3.3-10
/// An incoming QoS 2 id is stored before the PUBREC, and released before the PUBCOMP;
/// a resent PUBLISH under a stored id is not routed again.
#[test]
fn incoming_qos2_ids_are_stored_before_pubrec_and_released_before_pubcomp() {
    let mut s = durable_session(ProtocolVersion::V5);
    let mut publish = Publish::new(TopicName::new("t").unwrap(), "p");
    publish.qos = QoS::ExactlyOnce;
    publish.packet_id = Some(pid(7));
    let mut out = Vec::new();
    s.handle_packet(Packet::Publish(publish.clone()), epoch(), &mut out);
    assert_eq!(shape(&out), ["route", "IncomingAdded(7)", "PubRec"]);
    out.clear();
    publish.dup = true;
    s.handle_packet(Packet::Publish(publish), epoch(), &mut out);
    assert_eq!(shape(&out), ["PubRec"]);
    out.clear();
    s.handle_packet(Packet::PubRel(Ack::new(pid(7))), epoch(), &mut out);
    assert_eq!(shape(&out), ["IncomingReleased(7)", "PubComp"]);
}

/// A session that is not kept reports nothing.
#[test]
fn a_session_not_kept_reports_nothing() {
    let mut s = durable_session(ProtocolVersion::V311);
    s.set_durable(false);
    let mut publish = Publish::new(TopicName::new("t").unwrap(), "p");
    publish.qos = QoS::ExactlyOnce;
    publish.packet_id = Some(pid(7));
    let mut out = Vec::new();
    s.handle_packet(Packet::Publish(publish), epoch(), &mut out);
    s.handle_packet(Packet::PubRel(Ack::new(pid(7))), epoch(), &mut out);
    s.handle_delivery(
        crate::message::test_delivery("a/b", QoS::ExactlyOnce),
        epoch(),
        &mut out,
    );
    assert!(
        !out.iter().any(|a| matches!(a, Action::Persist(_))),
        "{:?}",
        shape(&out)
    );
}

/// conformance: v5 MQTT-4.3.3-1
/// A stored QoS 2 delivery's state is stored before its PUBLISH and before its PUBREL;
/// its end after PUBCOMP. A QoS 1 delivery is sent with no state record and ends at its
/// PUBACK.
#[test]
fn outgoing_flows_report_their_states_in_order() {
    let mut s = durable_session(ProtocolVersion::V5);
    let mut out = Vec::new();
    s.handle_delivery(stored_delivery(QoS::ExactlyOnce, 4), epoch(), &mut out);
    assert_eq!(shape(&out), ["OutgoingSent { seq: 4, id: 1 }", "Publish"]);
    out.clear();
    s.handle_packet(Packet::PubRec(Ack::new(pid(1))), epoch(), &mut out);
    assert_eq!(
        shape(&out),
        ["OutgoingReleased { seq: 4, id: 1 }", "PubRel"]
    );
    out.clear();
    s.handle_packet(Packet::PubComp(Ack::new(pid(1))), epoch(), &mut out);
    assert_eq!(shape(&out), ["OutgoingDone { seq: 4 }"]);
    out.clear();
    s.handle_delivery(stored_delivery(QoS::AtLeastOnce, 5), epoch(), &mut out);
    assert_eq!(shape(&out), ["Publish"]);
    out.clear();
    s.handle_packet(Packet::PubAck(Ack::new(pid(2))), epoch(), &mut out);
    assert_eq!(shape(&out), ["OutgoingDone { seq: 5 }"]);
    assert!(Change::OutgoingSent { seq: 1, id: 1 }.gates());
    assert!(Change::OutgoingReleased { seq: 1, id: 1 }.gates());
    assert!(!Change::OutgoingDone { seq: 1 }.gates());
}

/// A changed subscription is stored before the SUBACK.
#[test]
fn subscriptions_are_stored_before_suback() {
    let mut s = durable_session(ProtocolVersion::V311);
    let mut out = Vec::new();
    let subscribe = Subscribe {
        packet_id: pid(1),
        filters: vec![(
            TopicFilter::new("a/#").unwrap(),
            SubscriptionOptions::new(QoS::AtLeastOnce),
        )],
        properties: SubscribeProperties::default(),
    };
    s.handle_packet(Packet::Subscribe(subscribe), epoch(), &mut out);
    let shape = shape(&out);
    assert_eq!(shape[1..], ["Subscriptions", "SubAck"], "{shape:?}");
}

/// conformance: v5 MQTT-4.4.0-1
/// conformance: v3.1.1 MQTT-4.4.0-1
/// A session read back from the store resends its inflight messages with DUP under
/// their packet ids and its PUBRELs, in order, then sends what was queued.
#[test]
fn a_restored_session_resends_in_order_then_sends_the_queue() {
    let t0 = epoch();
    let outgoing = vec![
        (
            stored_delivery(QoS::ExactlyOnce, 1),
            OutgoingState::Released(9),
        ),
        (
            stored_delivery(QoS::ExactlyOnce, 2),
            OutgoingState::Sent(10),
        ),
        (stored_delivery(QoS::AtLeastOnce, 3), OutgoingState::Queued),
    ];
    let mut s = Session::restore(
        Arc::from("c1"),
        SessionConfig::default(),
        t0,
        Resumed {
            version: ProtocolVersion::V311,
            session_expiry: u32::MAX,
            last_packet_id: 10,
            subscriptions: Default::default(),
            incoming_qos2: HashSet::from([3]),
            outgoing,
        },
    );
    assert!(s.is_durable());
    let mut connect = Connect::new(ProtocolVersion::V311, "c1");
    connect.clean_start = false;
    let mut out = Vec::new();
    s.connect(&connect, true, None, t0, &mut out);
    let packets = sent(&out);
    assert!(matches!(packets[0], Packet::ConnAck(a) if a.session_present));
    assert!(matches!(packets[1], Packet::PubRel(a) if a.packet_id == pid(9)));
    assert!(matches!(packets[2], Packet::Publish(p) if p.dup && p.packet_id == Some(pid(10))));
    // The queued QoS 1 message goes out new, under the next free id.
    assert!(matches!(packets[3], Packet::Publish(p) if !p.dup && p.packet_id == Some(pid(11))));
    assert_eq!(packets.len(), 4);
    // The stored incoming id still catches a resent PUBREL.
    out.clear();
    s.handle_packet(Packet::PubRel(Ack::new(pid(3))), t0, &mut out);
    assert_eq!(shape(&out), ["IncomingReleased(3)", "PubComp"]);
}
