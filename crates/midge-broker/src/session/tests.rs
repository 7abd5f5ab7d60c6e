//! Deterministic tests of the session state machine: no sockets, no clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_codec::{
    Ack, Connect, Disconnect, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode,
    Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, Unsubscribe,
    UnsubscribeProperties,
};

use super::{Action, Session, SessionConfig};
use crate::message::Delivery;

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
    crate::message::test_delivery("a/b", qos)
}

/// The packets the actions send, shared-encoded PUBLISHes decoded as the client would
/// (leaked: a test's few packets, for the `&Packet` matches below).
pub(super) fn sent(out: &[Action]) -> Vec<&Packet> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send(p) => Some(p),
            Action::SendShared {
                message,
                form,
                packet_id,
            } => {
                let encoded = message.encoded(*form).expect("a shared encoding");
                Some(&*Box::leak(Box::new(encoded.decode(*packet_id))))
            }
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

/// A session resumed with a smaller Receive Maximum than it had in flight resends only
/// as many as the new maximum allows, oldest first, and the others (then the queue) as
/// acknowledgements make room; PUBRELs count as flows in the window.
///
/// conformance: v5 MQTT-3.3.4-9
/// conformance: v5 MQTT-4.4.0-1
/// conformance: v5 MQTT-4.6.0-1
#[test]
fn resume_with_a_smaller_receive_maximum_resends_within_it() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut out = Vec::new();
    s.handle_delivery(delivery(QoS::ExactlyOnce), t0, &mut out);
    s.handle_packet(Packet::PubRec(Ack::new(pid(1))), t0, &mut out);
    for _ in 0..4 {
        s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out);
    }
    assert_eq!(s.inflight_len(), 5);
    out.clear();
    let mut connect = Connect::new(ProtocolVersion::V5, "c1");
    connect.clean_start = false;
    connect.properties.receive_maximum = Some(2);
    s.connect(&connect, true, None, t0, &mut out);
    let packets = sent(&out);
    assert_eq!(
        packets.len(),
        3,
        "CONNACK and two resent flows: {packets:?}"
    );
    assert!(matches!(packets[1], Packet::PubRel(a) if a.packet_id == pid(1)));
    assert!(matches!(packets[2], Packet::Publish(p) if p.dup && p.packet_id == Some(pid(2))));
    // A new message waits behind the flows still to be resent.
    out.clear();
    s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out);
    assert!(sent(&out).is_empty());
    let mut order = Vec::new();
    for ack in [
        Packet::PubComp(Ack::new(pid(1))),
        Packet::PubAck(Ack::new(pid(2))),
        Packet::PubAck(Ack::new(pid(3))),
        Packet::PubAck(Ack::new(pid(4))),
    ] {
        out.clear();
        s.handle_packet(ack, t0, &mut out);
        let publishes = publishes(&out);
        assert_eq!(publishes.len(), 1, "one flow per acknowledgement");
        order.push((publishes[0].packet_id.unwrap().get(), publishes[0].dup));
    }
    assert_eq!(order, [(3, true), (4, true), (5, true), (6, false)]);
    assert_eq!(s.inflight_len(), 2);
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

fn connect_with(
    version: ProtocolVersion,
    config: SessionConfig,
    now: Instant,
    f: impl FnOnce(&mut Connect),
) -> Session {
    let mut s = Session::new(Arc::from("c1"), config, now);
    let mut connect = Connect::new(version, "c1");
    f(&mut connect);
    s.connect(&connect, false, None, now, &mut Vec::new());
    s
}

fn publishes(out: &[Action]) -> Vec<&midge_codec::Publish> {
    sent(out)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn closed_with(out: &[Action]) -> Option<ReasonCode> {
    out.iter().find_map(|a| match a {
        Action::Close { reason, .. } => *reason,
        _ => None,
    })
}

fn shared_delivery(qos: QoS, group: &str) -> Delivery {
    delivery(qos).via(Vec::new(), Some(Arc::from(group)))
}

/// A 3.1.1 client has no Receive Maximum; the broker's `max_inflight_messages` bounds
/// what it has in flight, as it does for a 5.0 client with a larger Receive Maximum.
///
/// conformance: v5 MQTT-3.3.4-9
#[test]
fn outgoing_window_is_the_smaller_of_both_receive_maximums() {
    let t0 = epoch();
    let config = SessionConfig {
        receive_maximum: 3,
        ..SessionConfig::default()
    };
    for (version, client_max) in [
        (ProtocolVersion::V311, None),
        (ProtocolVersion::V5, Some(100)),
        (ProtocolVersion::V5, Some(2)),
    ] {
        let mut s = connect_with(version, config.clone(), t0, |c| {
            c.properties.receive_maximum = client_max;
        });
        let mut out = Vec::new();
        for _ in 0..5 {
            s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out);
        }
        let window = client_max.unwrap_or(u16::MAX).min(3);
        assert_eq!(publishes(&out).len(), usize::from(window), "{version}");
        assert_eq!(s.inflight_len(), usize::from(window));
        // QoS 0 waits behind them, in order.
        s.handle_delivery(delivery(QoS::AtMostOnce), t0, &mut out);
        assert_eq!(publishes(&out).len(), usize::from(window));
    }
}

/// When a session ends, what came through shared subscriptions and did not reach the
/// client is handed back: queued messages and unacknowledged QoS 1, oldest first; a
/// QoS 2 message already sent stays ([MQTT-4.8.2-5]), as do non-shared deliveries.
///
/// conformance: v5 MQTT-4.8.2-5
#[test]
fn shared_deliveries_are_handed_back_when_the_session_ends() {
    let t0 = epoch();
    let mut s = connect_with(ProtocolVersion::V5, SessionConfig::default(), t0, |c| {
        c.properties.receive_maximum = Some(3);
    });
    let mut out = Vec::new();
    let g = "$share/g/a/b";
    s.handle_delivery(shared_delivery(QoS::AtLeastOnce, g), t0, &mut out); // id 1
    s.handle_delivery(shared_delivery(QoS::ExactlyOnce, g), t0, &mut out); // id 2
    s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out); // id 3, not shared
    s.handle_delivery(shared_delivery(QoS::ExactlyOnce, g), t0, &mut out); // queued
    s.handle_delivery(shared_delivery(QoS::AtMostOnce, "$share/h/#"), t0, &mut out); // queued
    s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out); // queued, not shared
    assert_eq!(publishes(&out).len(), 3);
    let taken = s.take_shared_deliveries(None);
    let qos: Vec<QoS> = taken.iter().map(|d| d.qos).collect();
    assert_eq!(
        qos,
        [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtMostOnce],
        "the unacknowledged QoS 1, then the queue in order"
    );
    assert_eq!(
        s.inflight_len(),
        2,
        "the sent QoS 2 and the non-shared QoS 1 stay"
    );
    assert_eq!(s.pending_len(), 1);
}

/// A client that unsubscribes from a shared subscription keeps what it was sent (it can
/// still acknowledge it, [MQTT-3.10.4-3]); only what waits for room is handed back, and
/// only that group's.
///
/// conformance: v5 MQTT-3.10.4-3
#[test]
fn leaving_one_shared_group_hands_back_only_its_queue() {
    let t0 = epoch();
    let mut s = connect_with(ProtocolVersion::V5, SessionConfig::default(), t0, |c| {
        c.properties.receive_maximum = Some(1);
    });
    let mut out = Vec::new();
    s.handle_delivery(
        shared_delivery(QoS::AtLeastOnce, "$share/g/t"),
        t0,
        &mut out,
    );
    s.handle_delivery(
        shared_delivery(QoS::AtLeastOnce, "$share/g/t"),
        t0,
        &mut out,
    );
    s.handle_delivery(
        shared_delivery(QoS::AtLeastOnce, "$share/h/t"),
        t0,
        &mut out,
    );
    let taken = s.take_shared_deliveries(Some(&TopicFilter::new("$share/g/t").unwrap()));
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].shared_group().map(|g| &**g), Some("$share/g/t"));
    assert_eq!(s.inflight_len(), 1);
    assert_eq!(s.pending_len(), 1);
}

/// Reason strings go on acknowledgements only when the client asked for problem
/// information, and only when they fit in its Maximum Packet Size.
///
/// conformance: v5 MQTT-3.1.2-29
/// conformance: v5 MQTT-3.7.2-2
#[test]
fn reason_strings_follow_request_problem_information() {
    let t0 = epoch();
    let reason_of = |s: &mut Session| {
        let mut out = Vec::new();
        s.handle_packet(Packet::PubRel(Ack::new(pid(9))), t0, &mut out);
        match sent(&out)[..] {
            [Packet::PubComp(a)] => {
                assert_eq!(a.reason_code, ReasonCode::PacketIdentifierNotFound);
                a.properties.reason_string.clone()
            }
            ref other => panic!("expected PUBCOMP, got {other:?}"),
        }
    };
    let cfg = SessionConfig::default;
    let mut asked = connect_with(ProtocolVersion::V5, cfg(), t0, |_| {});
    assert!(reason_of(&mut asked).is_some());
    let mut refused = connect_with(ProtocolVersion::V5, cfg(), t0, |c| {
        c.properties.request_problem_information = Some(false);
    });
    assert!(reason_of(&mut refused).is_none());
    let mut small = connect_with(ProtocolVersion::V5, cfg(), t0, |c| {
        c.properties.maximum_packet_size = Some(8);
    });
    assert!(reason_of(&mut small).is_none());
}

/// AUTH from a client that sent no Authentication Method is a Protocol Error; 0x8C is
/// not a DISCONNECT reason code.
///
/// conformance: v5 MQTT-3.14.2-1
#[test]
fn auth_packet_closes_with_protocol_error() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut out = Vec::new();
    s.handle_packet(Packet::Auth(Default::default()), t0, &mut out);
    let reason = closed_with(&out).expect("closed");
    assert_eq!(reason, ReasonCode::ProtocolError);
    assert!(reason.is_valid_for(midge_codec::PacketType::Disconnect));
}

/// conformance: v5 MQTT-3.3.4-7
#[test]
fn incoming_qos2_over_the_receive_maximum_closes_with_0x93() {
    let t0 = epoch();
    let config = SessionConfig {
        receive_maximum: 2,
        ..SessionConfig::default()
    };
    let mut s = connect_with(ProtocolVersion::V5, config, t0, |_| {});
    let mut out = Vec::new();
    for id in 1..=3 {
        let mut p = Publish::new(TopicName::new("t").unwrap(), "x");
        p.qos = QoS::ExactlyOnce;
        p.packet_id = Some(pid(id));
        s.handle_packet(Packet::Publish(p), t0, &mut out);
    }
    assert_eq!(closed_with(&out), Some(ReasonCode::ReceiveMaximumExceeded));
    // A completed flow frees its slot.
    let mut s = connect_with(
        ProtocolVersion::V5,
        SessionConfig {
            receive_maximum: 1,
            ..SessionConfig::default()
        },
        t0,
        |_| {},
    );
    let mut out = Vec::new();
    for id in 1..=3 {
        let mut p = Publish::new(TopicName::new("t").unwrap(), "x");
        p.qos = QoS::ExactlyOnce;
        p.packet_id = Some(pid(id));
        s.handle_packet(Packet::Publish(p), t0, &mut out);
        s.handle_packet(Packet::PubRel(Ack::new(pid(id))), t0, &mut out);
    }
    assert_eq!(closed_with(&out), None);
}

/// conformance: v5 MQTT-3.1.2-25
#[test]
fn message_too_large_for_the_client_is_dropped_without_using_the_window() {
    let t0 = epoch();
    let mut s = connect_with(ProtocolVersion::V5, SessionConfig::default(), t0, |c| {
        c.properties.maximum_packet_size = Some(20);
        c.properties.receive_maximum = Some(1);
    });
    let mut big = delivery(QoS::AtLeastOnce);
    Arc::get_mut(&mut big.message).unwrap().payload = Bytes::from(vec![0; 64]);
    let mut out = Vec::new();
    s.handle_delivery(big, t0, &mut out);
    assert!(publishes(&out).is_empty());
    assert_eq!(s.inflight_len(), 0);
    s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out);
    assert_eq!(publishes(&out).len(), 1);
}

/// conformance: v5 MQTT-3.3.4-6
#[test]
fn subscription_identifier_from_the_client_is_a_protocol_error() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut p = Publish::new(TopicName::new("t").unwrap(), "x");
    p.properties.subscription_identifiers = vec![1];
    let mut out = Vec::new();
    s.handle_packet(Packet::Publish(p), t0, &mut out);
    assert_eq!(closed_with(&out), Some(ReasonCode::ProtocolError));
    assert!(!out.iter().any(|a| matches!(a, Action::Publish(_))));
}

/// A message whose expiry passes while it waits for room in the window is not sent.
///
/// conformance: v5 MQTT-3.3.2-5
#[test]
fn message_expiring_in_the_queue_is_not_sent() {
    let t0 = epoch();
    let mut s = connect_with(ProtocolVersion::V5, SessionConfig::default(), t0, |c| {
        c.properties.receive_maximum = Some(1);
    });
    let mut out = Vec::new();
    s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out);
    let mut short = delivery(QoS::AtLeastOnce);
    Arc::get_mut(&mut short.message).unwrap().expires_at = Some(t0 + Duration::from_secs(1));
    s.handle_delivery(short, t0, &mut out);
    s.handle_delivery(delivery(QoS::AtLeastOnce), t0, &mut out);
    out.clear();
    s.handle_packet(
        Packet::PubAck(Ack::new(pid(1))),
        t0 + Duration::from_secs(2),
        &mut out,
    );
    let sent_now = publishes(&out);
    assert_eq!(sent_now.len(), 1);
    assert_eq!(
        sent_now[0].properties.message_expiry_interval, None,
        "the unexpiring one"
    );
}

/// Every acknowledgement the broker sends fits in the client's Maximum Packet Size: a
/// reason string goes on the error ones (PUBACK/PUBREC 0x83 for a payload over
/// `message_size_limit`, PUBREL/PUBCOMP 0x92, UNSUBACK 0x11) only when it fits, SUBACK
/// never has one, and none carries a user property.
///
/// conformance: v5 MQTT-3.4.2-2
/// conformance: v5 MQTT-3.4.2-3
/// conformance: v5 MQTT-3.5.2-2
/// conformance: v5 MQTT-3.5.2-3
/// conformance: v5 MQTT-3.6.2-2
/// conformance: v5 MQTT-3.6.2-3
/// conformance: v5 MQTT-3.7.2-3
/// conformance: v5 MQTT-3.9.2-1
/// conformance: v5 MQTT-3.9.2-2
/// conformance: v5 MQTT-3.11.2-2
#[test]
fn acknowledgements_never_outgrow_the_clients_maximum_packet_size() {
    let t0 = epoch();
    let config = SessionConfig {
        message_size_limit: 1,
        ..SessionConfig::default()
    };
    let acks = |maximum_packet_size: Option<u32>| -> Vec<Packet> {
        let mut s = connect_with(ProtocolVersion::V5, config.clone(), t0, |c| {
            c.properties.maximum_packet_size = maximum_packet_size;
        });
        let mut out = Vec::new();
        for (qos, id) in [(QoS::AtLeastOnce, 1), (QoS::ExactlyOnce, 2)] {
            let mut p = Publish::new(TopicName::new("t").unwrap(), "over the limit");
            p.qos = qos;
            p.packet_id = Some(pid(id));
            s.handle_packet(Packet::Publish(p), t0, &mut out);
        }
        s.handle_packet(Packet::PubRec(Ack::new(pid(3))), t0, &mut out);
        s.handle_packet(Packet::PubRel(Ack::new(pid(4))), t0, &mut out);
        let filters = vec![(
            TopicFilter::new("a").unwrap(),
            SubscriptionOptions::new(QoS::AtLeastOnce),
        )];
        let subscribe = Subscribe {
            packet_id: pid(5),
            filters,
            properties: SubscribeProperties::default(),
        };
        s.handle_packet(Packet::Subscribe(subscribe), t0, &mut out);
        let unsubscribe = Unsubscribe {
            packet_id: pid(6),
            filters: vec![TopicFilter::new("never/subscribed").unwrap()],
            properties: UnsubscribeProperties::default(),
        };
        s.handle_packet(Packet::Unsubscribe(unsubscribe), t0, &mut out);
        assert_eq!(closed_with(&out), None);
        sent(&out).into_iter().cloned().collect()
    };
    let properties = |p: &Packet| match p {
        Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
            a.properties.clone()
        }
        Packet::SubAck(a) => a.properties.clone(),
        Packet::UnsubAck(a) => a.properties.clone(),
        other => panic!("unexpected {other:?}"),
    };
    let roomy = acks(None);
    let kinds: Vec<_> = roomy.iter().map(Packet::packet_type).collect();
    use midge_codec::PacketType as T;
    assert_eq!(
        kinds,
        [
            T::PubAck,
            T::PubRec,
            T::PubRel,
            T::PubComp,
            T::SubAck,
            T::UnsubAck
        ]
    );
    for p in &roomy {
        let explained = !matches!(p, Packet::SubAck(_));
        assert_eq!(properties(p).reason_string.is_some(), explained, "{p:?}");
        assert!(properties(p).user_properties.is_empty(), "{p:?}");
    }
    let tight = 8;
    let small = acks(Some(tight));
    assert_eq!(small.len(), roomy.len());
    for p in &small {
        assert!(properties(p).is_empty(), "{p:?}");
        let len = p.encoded_len(ProtocolVersion::V5).unwrap();
        assert!(len <= tight as usize, "{p:?}: {len} bytes");
    }
}

/// After a PUBREC with an error code (0x83, payload over `message_size_limit`), a PUBLISH
/// with the same packet identifier is a new message: it is judged and routed afresh,
/// not taken for a resent duplicate.
///
/// conformance: v5 MQTT-4.3.3-9
#[test]
fn publish_after_an_error_pubrec_is_a_new_message() {
    let t0 = epoch();
    let config = SessionConfig {
        message_size_limit: 4,
        ..SessionConfig::default()
    };
    let mut s = connect_with(ProtocolVersion::V5, config, t0, |_| {});
    let qos2 = |payload: &'static str, dup: bool| {
        let mut p = Publish::new(TopicName::new("t").unwrap(), payload);
        p.qos = QoS::ExactlyOnce;
        p.packet_id = Some(pid(7));
        p.dup = dup;
        Packet::Publish(p)
    };
    let routed = |out: &[Action]| -> Vec<Bytes> {
        out.iter()
            .filter_map(|a| match a {
                Action::Publish(m) => Some(m.payload.clone()),
                _ => None,
            })
            .collect()
    };
    let pubrec = |out: &[Action]| match sent(out)[..] {
        [Packet::PubRec(a)] => a.reason_code,
        ref other => panic!("expected PUBREC, got {other:?}"),
    };
    let mut out = Vec::new();
    s.handle_packet(qos2("too long", false), t0, &mut out);
    assert_eq!(pubrec(&out), ReasonCode::ImplementationSpecificError);
    assert!(routed(&out).is_empty());
    out.clear();
    s.handle_packet(qos2("ok", false), t0, &mut out);
    assert_eq!(pubrec(&out), ReasonCode::Success);
    assert_eq!(routed(&out), [Bytes::from_static(b"ok")]);
    out.clear();
    // That one now awaits PUBREL: a resend is acknowledged, not routed again.
    s.handle_packet(qos2("ok", true), t0, &mut out);
    assert_eq!(pubrec(&out), ReasonCode::Success);
    assert!(routed(&out).is_empty());
}

/// The broker as a QoS 2 receiver ignores message expiry for the flow itself: the
/// PUBREC for a resent PUBLISH and the PUBCOMP come after the message expired.
///
/// conformance: v5 MQTT-4.3.3-13
#[test]
fn incoming_qos2_flow_completes_after_the_message_expired() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut p = Publish::new(TopicName::new("t").unwrap(), "short-lived");
    p.qos = QoS::ExactlyOnce;
    p.packet_id = Some(pid(3));
    p.properties.message_expiry_interval = Some(1);
    let mut out = Vec::new();
    s.handle_packet(Packet::Publish(p.clone()), t0, &mut out);
    assert!(matches!(sent(&out)[..], [Packet::PubRec(a)] if a.reason_code == ReasonCode::Success));
    out.clear();
    let later = t0 + Duration::from_secs(5);
    p.dup = true;
    s.handle_packet(Packet::Publish(p), later, &mut out);
    assert!(matches!(sent(&out)[..], [Packet::PubRec(a)] if a.reason_code == ReasonCode::Success));
    out.clear();
    s.handle_packet(Packet::PubRel(Ack::new(pid(3))), later, &mut out);
    assert!(matches!(sent(&out)[..], [Packet::PubComp(a)] if a.reason_code == ReasonCode::Success));
}

/// The broker as a QoS 2 sender: once the PUBLISH has gone out, the message's expiry no
/// longer applies — it is resent on the next connection after it expired, and its
/// PUBREL follows the PUBREC.
///
/// conformance: v5 MQTT-4.3.3-7
#[test]
fn sent_qos2_message_is_resent_after_it_expired() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V5, t0);
    let mut d = delivery(QoS::ExactlyOnce);
    Arc::get_mut(&mut d.message).unwrap().expires_at = Some(t0 + Duration::from_secs(1));
    let mut out = Vec::new();
    s.handle_delivery(d, t0, &mut out);
    assert_eq!(publishes(&out).len(), 1);
    let id = publishes(&out)[0].packet_id.unwrap();
    out.clear();
    let later = t0 + Duration::from_secs(10);
    let mut connect = Connect::new(ProtocolVersion::V5, "c1");
    connect.clean_start = false;
    s.connect(&connect, true, None, later, &mut out);
    let resent = publishes(&out);
    assert_eq!(resent.len(), 1, "{out:?}");
    assert!(resent[0].dup);
    assert_eq!(resent[0].packet_id, Some(id));
    out.clear();
    s.handle_packet(Packet::PubRec(Ack::new(id)), later, &mut out);
    assert!(matches!(sent(&out)[..], [Packet::PubRel(a)] if a.packet_id == id));
    assert_eq!(s.inflight_len(), 1);
    out.clear();
    s.handle_packet(Packet::PubComp(Ack::new(id)), later, &mut out);
    assert_eq!(s.inflight_len(), 0);
}

/// A 3.1.1 client is never told a Receive Maximum, so more open incoming QoS 2 flows than
/// `max_inflight_messages` are not an error for it (5.0 clients get 0x93 instead).
#[test]
fn v311_client_may_exceed_the_receive_maximum_with_qos2_flows() {
    let t0 = epoch();
    let (mut s, _) = session(ProtocolVersion::V311, t0);
    let mut out = Vec::new();
    for id in 1..=40u16 {
        let mut publish = Publish::new(TopicName::new("t").unwrap(), "p");
        publish.qos = QoS::ExactlyOnce;
        publish.packet_id = Some(pid(id));
        s.handle_packet(Packet::Publish(publish), t0, &mut out);
    }
    assert!(!out.iter().any(|a| matches!(a, Action::Close { .. })));
    assert_eq!(sent(&out).len(), 40);
}
