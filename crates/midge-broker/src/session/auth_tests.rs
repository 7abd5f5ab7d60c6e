//! The session's [`Authorizer`] hook: refused PUBLISHes (after topic-alias resolution),
//! refused SUBSCRIBE filters and skipped deliveries. No sockets, no clock.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use midge_codec::{
    Connect, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe,
    SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName,
};

use super::{Action, Authorizer, Session, SessionConfig};

/// Allows everything under `ok/`.
#[derive(Debug)]
struct OnlyOk;

impl Authorizer for OnlyOk {
    fn may_publish(&self, topic: &str) -> bool {
        topic.starts_with("ok/")
    }
    fn may_subscribe(&self, filter: &str) -> bool {
        filter.starts_with("ok/")
    }
    fn may_receive(&self, topic: &str) -> bool {
        topic.starts_with("ok/")
    }
}

#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn session(version: ProtocolVersion, now: Instant) -> Session {
    let mut s = Session::new(Arc::from("c1"), SessionConfig::default(), now);
    s.set_authorizer(Some(Arc::new(OnlyOk)));
    s.connect(
        &Connect::new(version, "c1"),
        false,
        None,
        now,
        &mut Vec::new(),
    );
    s
}

fn publish(topic: &str, qos: QoS, id: Option<u16>, alias: Option<u16>) -> Packet {
    let mut p = Publish::new(TopicName::new(topic).unwrap(), Bytes::from_static(b"x"));
    p.qos = qos;
    p.packet_id = id.and_then(PacketId::new);
    p.properties.topic_alias = alias;
    Packet::Publish(p)
}

fn routed(out: &[Action]) -> usize {
    out.iter()
        .filter(|a| matches!(a, Action::Publish(_)))
        .count()
}

fn ack_code(out: &[Action]) -> Option<ReasonCode> {
    out.iter().find_map(|a| match a {
        Action::Send(Packet::PubAck(ack) | Packet::PubRec(ack)) => Some(ack.reason_code),
        _ => None,
    })
}

/// 5.0: a refused PUBLISH is acknowledged with 0x87 and not routed; the check uses the
/// topic an alias stands for.
/// conformance: v5 MQTT-3.4.2-1
/// conformance: v5 MQTT-3.5.2-1
#[test]
fn refused_publish_v5_is_not_routed_and_gets_0x87() {
    let t = epoch();
    let mut s = session(ProtocolVersion::V5, t);
    for (qos, id) in [(QoS::AtLeastOnce, 1), (QoS::ExactlyOnce, 2)] {
        let mut out = Vec::new();
        s.handle_packet(publish("no/x", qos, Some(id), None), t, &mut out);
        assert_eq!(routed(&out), 0);
        assert_eq!(ack_code(&out), Some(ReasonCode::NotAuthorized));
    }
    let mut out = Vec::new();
    s.handle_packet(publish("ok/x", QoS::AtMostOnce, None, Some(1)), t, &mut out);
    assert_eq!(routed(&out), 1);
    // The alias now stands for ok/x; re-pointed to no/x it is refused.
    s.handle_packet(publish("no/x", QoS::AtMostOnce, None, Some(1)), t, &mut out);
    s.handle_packet(publish("", QoS::AtLeastOnce, Some(3), Some(1)), t, &mut out);
    assert_eq!(routed(&out), 1);
    assert_eq!(ack_code(&out), Some(ReasonCode::NotAuthorized));
}

/// 3.1.1: a refused PUBLISH is acknowledged normally (the QoS 2 flow completes) and
/// dropped.
#[test]
fn refused_publish_v311_is_acknowledged_and_dropped() {
    let t = epoch();
    let mut s = session(ProtocolVersion::V311, t);
    let mut out = Vec::new();
    s.handle_packet(
        publish("no/x", QoS::ExactlyOnce, Some(7), None),
        t,
        &mut out,
    );
    assert_eq!(routed(&out), 0);
    assert_eq!(ack_code(&out), Some(ReasonCode::Success));
    out.clear();
    let rel = midge_codec::Ack::new(PacketId::new(7).unwrap());
    s.handle_packet(Packet::PubRel(rel), t, &mut out);
    assert!(
        matches!(&out[..], [Action::Send(Packet::PubComp(c))] if c.reason_code == ReasonCode::Success)
    );
}

/// A refused filter gets 0x87 (3.1.1: 0x80, mapped by the codec) and no subscription;
/// the others in the same SUBSCRIBE are granted.
/// conformance: v5 MQTT-3.9.3-1
#[test]
fn refused_subscribe_filter_gets_not_authorized() {
    let t = epoch();
    let mut s = session(ProtocolVersion::V5, t);
    let subscribe = Subscribe {
        packet_id: PacketId::new(1).unwrap(),
        filters: ["ok/#", "no/#"]
            .map(|f| {
                (
                    TopicFilter::new(f).unwrap(),
                    SubscriptionOptions::new(QoS::AtLeastOnce),
                )
            })
            .to_vec(),
        properties: SubscribeProperties::default(),
    };
    let mut out = Vec::new();
    s.handle_packet(Packet::Subscribe(subscribe), t, &mut out);
    let subscribed = out
        .iter()
        .filter(|a| matches!(a, Action::Subscribe { .. }))
        .count();
    assert_eq!(subscribed, 1);
    let Some(Action::Send(Packet::SubAck(ack))) = out.last() else {
        panic!("expected SUBACK: {out:?}");
    };
    assert_eq!(
        ack.reason_codes,
        [ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized]
    );
    assert_eq!(s.subscriptions().len(), 1);
}

/// A delivery the client may not read is skipped silently.
#[test]
fn deliveries_the_client_may_not_read_are_skipped() {
    let t = epoch();
    let mut s = session(ProtocolVersion::V5, t);
    let delivery = |topic: &str| crate::message::test_delivery(topic, QoS::AtLeastOnce);
    let mut out = Vec::new();
    s.handle_delivery(delivery("no/x"), t, &mut out);
    assert!(out.is_empty());
    s.handle_delivery(delivery("ok/x"), t, &mut out);
    assert!(
        matches!(&super::tests::sent(&out)[..], [Packet::Publish(p)] if p.topic.as_str() == "ok/x")
    );
    assert_eq!(out.len(), 1);
    assert_eq!(s.inflight_len(), 1);
}
