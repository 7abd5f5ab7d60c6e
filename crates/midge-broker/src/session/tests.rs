//! Deterministic tests of the session state machine: no sockets, no clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_codec::{
    Ack, Connect, Disconnect, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode,
    Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName,
};

use super::{Action, Session, SessionConfig};
use crate::message::{Delivery, Message};

/// The virtual clock's origin: the only real clock read in these tests; every later
/// instant is `t0 + offset`.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn session(version: ProtocolVersion, now: Instant) -> (Session, Vec<Action>) {
    let mut s = Session::new(Arc::from("c1"), SessionConfig::default(), now);
    let mut connect = Connect::new(version, "c1");
    connect.keep_alive = 10;
    let mut out = Vec::new();
    s.connect(&connect, false, None, now, &mut out);
    (s, out)
}

fn delivery(qos: QoS) -> Delivery {
    Delivery {
        message: Arc::new(Message {
            topic: TopicName::new("a/b").unwrap(),
            payload: Bytes::from_static(b"x"),
            qos,
            retain: false,
            properties: Default::default(),
            expires_at: None,
            origin: None,
        }),
        qos,
        retain: false,
        subscription_ids: vec![],
    }
}

fn sent(out: &[Action]) -> Vec<&Packet> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap()
}

/// conformance: v5 MQTT-3.1.2-22
/// conformance: v3.1.1 MQTT-3.1.2-24
#[test]
fn keep_alive_closes_after_one_and_a_half_periods() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V311, t0);
    assert_eq!(s.poll_deadline(), Some(t0 + Duration::from_secs(15)));
    let mut out = Vec::new();
    s.handle_timeout(t0 + Duration::from_secs(14), &mut out);
    assert!(out.is_empty());
    s.handle_packet(Packet::PingReq, t0 + Duration::from_secs(14), &mut out);
    assert!(matches!(sent(&out)[..], [Packet::PingResp]));
    out.clear();
    s.handle_timeout(t0 + Duration::from_secs(28), &mut out);
    assert!(out.is_empty());
    s.handle_timeout(t0 + Duration::from_secs(29), &mut out);
    assert!(matches!(
        out[..],
        [Action::Close {
            reason: Some(ReasonCode::KeepAliveTimeout),
            publish_will: true
        }]
    ));
}

/// conformance: v5 MQTT-4.3.3-10
/// conformance: v5 MQTT-4.3.3-11
/// conformance: v3.1.1 MQTT-4.3.3-2
#[test]
fn qos2_duplicate_publish_not_rerouted() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut publish = Publish::new(TopicName::new("t").unwrap(), "p");
    publish.qos = QoS::ExactlyOnce;
    publish.packet_id = Some(pid(5));
    let mut out = Vec::new();
    s.handle_packet(Packet::Publish(publish.clone()), t0, &mut out);
    assert_eq!(
        out.iter()
            .filter(|a| matches!(a, Action::Publish(_)))
            .count(),
        1
    );
    out.clear();
    publish.dup = true;
    s.handle_packet(Packet::Publish(publish), t0, &mut out);
    assert_eq!(
        out.iter()
            .filter(|a| matches!(a, Action::Publish(_)))
            .count(),
        0
    );
    assert!(matches!(sent(&out)[..], [Packet::PubRec(_)]));
    out.clear();
    s.handle_packet(Packet::PubRel(Ack::new(pid(5))), t0, &mut out);
    assert!(matches!(sent(&out)[..], [Packet::PubComp(a)] if a.reason_code == ReasonCode::Success));
}

/// conformance: v5 MQTT-3.3.4-9
#[test]
fn receive_maximum_queues_and_resumes_in_order() {
    let t0 = epoch();
    let mut s = Session::new(Arc::from("c1"), SessionConfig::default(), t0);
    let mut connect = Connect::new(ProtocolVersion::V5, "c1");
    connect.properties.receive_maximum = Some(2);
    let mut out = Vec::new();
    s.connect(&connect, false, None, t0, &mut out);
    out.clear();
    for _ in 0..4 {
        s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out);
    }
    assert_eq!(sent(&out).len(), 2);
    assert_eq!(s.pending_len(), 2);
    assert!(!s.has_room());
    out.clear();
    s.handle_packet(Packet::PubAck(Ack::new(pid(1))), t0, &mut out);
    let ids: Vec<u16> = sent(&out)
        .iter()
        .map(|p| match p {
            Packet::Publish(p) => p.packet_id.unwrap().get(),
            _ => 0,
        })
        .collect();
    assert_eq!(ids, vec![3]);
}

/// conformance: v5 MQTT-4.4.0-1
/// conformance: v3.1.1 MQTT-4.4.0-1
#[test]
fn unacknowledged_messages_resent_with_dup_on_reconnect() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V311, t0);
    let mut out = Vec::new();
    s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out);
    s.handle_delivery(delivery(QoS::ExactlyOnce), t0, &mut out);
    s.handle_packet(Packet::PubRec(Ack::new(pid(2))), t0, &mut out);
    out.clear();
    let mut connect = Connect::new(ProtocolVersion::V311, "c1");
    connect.clean_start = false;
    s.connect(&connect, true, None, t0, &mut out);
    let packets = sent(&out);
    assert!(matches!(packets[0], Packet::ConnAck(a) if a.session_present));
    assert!(matches!(packets[1], Packet::Publish(p) if p.dup && p.packet_id == Some(pid(1))));
    assert!(matches!(packets[2], Packet::PubRel(a) if a.packet_id == pid(2)));
}

/// conformance: v5 MQTT-3.3.2-5
#[test]
fn expired_messages_are_not_delivered() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut d = delivery(QoS::AtLeastOnce);
    Arc::get_mut(&mut d.message).unwrap().expires_at = Some(t0 + Duration::from_secs(5));
    let mut out = Vec::new();
    s.handle_delivery(d.clone(), t0 + Duration::from_secs(6), &mut out);
    assert!(out.is_empty());
    s.handle_delivery(d, t0 + Duration::from_millis(1500), &mut out);
    assert!(matches!(sent(&out)[..], [Packet::Publish(p)]
        if p.properties.message_expiry_interval == Some(4)));
}

/// conformance: v5 MQTT-3.14.4-3
#[test]
fn normal_disconnect_discards_will_and_0x04_keeps_it() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut out = Vec::new();
    s.handle_packet(Packet::Disconnect(Disconnect::default()), t0, &mut out);
    assert!(matches!(
        out[..],
        [Action::Close {
            reason: None,
            publish_will: false
        }]
    ));
    out.clear();
    s.handle_packet(
        Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
        t0,
        &mut out,
    );
    assert!(matches!(
        out[..],
        [Action::Close {
            reason: None,
            publish_will: true
        }]
    ));
}

/// conformance: v5 MQTT-3.1.0-2
#[test]
fn second_connect_is_a_protocol_error() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut out = Vec::new();
    s.handle_packet(
        Packet::Connect(Box::new(Connect::new(ProtocolVersion::V5, "c1"))),
        t0,
        &mut out,
    );
    assert!(matches!(
        out[..],
        [Action::Close {
            reason: Some(ReasonCode::ProtocolError),
            ..
        }]
    ));
}

/// conformance: v5 MQTT-3.3.2-12
#[test]
fn topic_aliases_resolve_and_invalid_ones_close() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut out = Vec::new();
    let mut publish = Publish::new(TopicName::new("long/topic").unwrap(), "1");
    publish.properties.topic_alias = Some(3);
    s.handle_packet(Packet::Publish(publish.clone()), t0, &mut out);
    publish.topic = TopicName::default();
    s.handle_packet(Packet::Publish(publish.clone()), t0, &mut out);
    let topics: Vec<&str> = out
        .iter()
        .filter_map(|a| match a {
            Action::Publish(m) => Some(m.topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, vec!["long/topic", "long/topic"]);
    out.clear();
    publish.properties.topic_alias = Some(11);
    s.handle_packet(Packet::Publish(publish), t0, &mut out);
    assert!(matches!(
        out[..],
        [Action::Close {
            reason: Some(ReasonCode::TopicAliasInvalid),
            ..
        }]
    ));
}

#[test]
fn subscribe_grants_and_reports_replacement() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let sub = Subscribe {
        packet_id: pid(1),
        filters: vec![(
            TopicFilter::new("a/#").unwrap(),
            SubscriptionOptions::new(QoS::ExactlyOnce),
        )],
        properties: SubscribeProperties {
            subscription_identifier: Some(7),
            ..Default::default()
        },
    };
    let mut out = Vec::new();
    s.handle_packet(Packet::Subscribe(sub.clone()), t0, &mut out);
    assert!(matches!(
        &out[0],
        Action::Subscribe {
            existed: false,
            id: Some(7),
            ..
        }
    ));
    out.clear();
    s.handle_packet(Packet::Subscribe(sub), t0, &mut out);
    assert!(matches!(&out[0], Action::Subscribe { existed: true, .. }));
    assert!(
        matches!(sent(&out)[..], [Packet::SubAck(a)] if a.reason_codes == [ReasonCode::GrantedQoS2])
    );
}
