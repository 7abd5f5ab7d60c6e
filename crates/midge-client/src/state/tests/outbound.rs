//! Our requests: packet ids, QoS 1 and 2 flows, Receive Maximum, topic aliases, limits.

use bytes::Bytes;
use midge_codec::{
    Ack, ConnAck, ConnAckProperties, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode, SubAck,
    SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    UnsubscribeProperties,
};

use super::*;
use crate::ConnectOptions;
use crate::state::Completion;

/// conformance: v5 MQTT-2.2.1-3
/// conformance: v5 MQTT-4.3.2-1
#[test]
fn packet_ids_are_unused_nonzero_and_follow_each_other() {
    let mut h = Harness::v5();
    h.connect(false);
    for token in 0..3 {
        h.publish("t", QoS::AtLeastOnce, token);
    }
    let ids: Vec<u16> = publishes(&h.sent())
        .iter()
        .map(|p| p.packet_id.unwrap().get())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    h.recv(Packet::PubAck(Ack::new(id(2)))).unwrap();
    h.state
        .subscribe(vec![filter("f")], SubscribeProperties::default(), 9);
    match h.sent().as_slice() {
        [Packet::Subscribe(s)] => assert_eq!(s.packet_id.get(), 4),
        other => panic!("{other:?}"),
    }
    h.publish("t", QoS::AtMostOnce, 10);
    assert_eq!(only_publish(h.sent()).packet_id, None);
}

/// conformance: v5 MQTT-4.3.2-2
/// conformance: v5 MQTT-4.3.2-3
#[test]
fn qos1_publication_completes_on_puback() {
    let mut h = Harness::v5();
    h.connect(false);
    h.publish("a/b", QoS::AtLeastOnce, 7);
    let sent = only_publish(h.sent());
    assert_eq!((sent.qos, sent.dup), (QoS::AtLeastOnce, false));
    assert!(h.completed().is_empty(), "not before the PUBACK");
    assert_eq!(h.state.inflight_len(), 1);
    // A PUBACK for an unknown id changes nothing.
    h.recv(Packet::PubAck(Ack::new(id(99)))).unwrap();
    assert!(h.completed().is_empty());
    let mut ack = Ack::new(sent.packet_id.unwrap());
    ack.reason_code = ReasonCode::NoMatchingSubscribers;
    h.recv(Packet::PubAck(ack)).unwrap();
    let done = h.completed();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].0, 7);
    let result = published(&done[0].1);
    assert_eq!(result.reason_code(), ReasonCode::NoMatchingSubscribers);
    assert_eq!(result.complete, None);
    assert_eq!(h.state.inflight_len(), 0);
}

/// conformance: v5 MQTT-4.4.0-2
#[test]
fn rejected_puback_fails_the_publication_and_frees_its_slot() {
    let mut h = Harness::v5();
    h.connect(false);
    h.publish("a", QoS::AtLeastOnce, 1);
    let sent = only_publish(h.sent());
    let mut ack = Ack::new(sent.packet_id.unwrap());
    ack.reason_code = ReasonCode::NotAuthorized;
    ack.properties.reason_string = Some("acl".into());
    h.recv(Packet::PubAck(ack)).unwrap();
    let done = h.completed();
    let err = done[0].1.as_ref().unwrap_err();
    assert!(err.is_rejected());
    assert_eq!(err.reason_code(), Some(ReasonCode::NotAuthorized));
    assert_eq!(h.state.inflight_len(), 0);
    // Not resent on a resumed session.
    h.lose_connection();
    assert!(h.connect(true).is_empty());
}

/// conformance: v5 MQTT-4.3.3-1
/// conformance: v5 MQTT-4.3.3-2
/// conformance: v5 MQTT-4.3.3-3
/// conformance: v5 MQTT-4.3.3-4
/// conformance: v5 MQTT-4.3.3-5
#[test]
fn qos2_publication_goes_through_pubrec_pubrel_pubcomp() {
    let mut h = Harness::v5();
    h.connect(false);
    h.publish("a", QoS::ExactlyOnce, 3);
    let sent = only_publish(h.sent());
    let pid = sent.packet_id.unwrap();
    assert_eq!((sent.qos, sent.dup), (QoS::ExactlyOnce, false));
    h.recv(Packet::PubRec(Ack::new(pid))).unwrap();
    assert_eq!(h.sent(), [Packet::PubRel(Ack::new(pid))]);
    assert!(h.completed().is_empty(), "not before the PUBCOMP");
    // A repeated PUBREC gets the PUBREL again.
    h.recv(Packet::PubRec(Ack::new(pid))).unwrap();
    assert_eq!(h.sent(), [Packet::PubRel(Ack::new(pid))]);
    h.recv(Packet::PubComp(Ack::new(pid))).unwrap();
    let done = h.completed();
    let result = published(&done[0].1);
    assert_eq!(result.ack, Some(Ack::new(pid)));
    assert_eq!(result.complete, Some(Ack::new(pid)));
    assert_eq!(h.state.inflight_len(), 0);
}

/// conformance: v5 MQTT-4.4.0-2
#[test]
fn qos2_rejected_pubrec_ends_the_flow_without_pubrel() {
    let mut h = Harness::v5();
    h.connect(false);
    h.publish("a", QoS::ExactlyOnce, 3);
    let pid = only_publish(h.sent()).packet_id.unwrap();
    let mut rec = Ack::new(pid);
    rec.reason_code = ReasonCode::QuotaExceeded;
    h.recv(Packet::PubRec(rec)).unwrap();
    assert!(h.sent().is_empty());
    let done = h.completed();
    assert_eq!(
        done[0].1.as_ref().unwrap_err().reason_code(),
        Some(ReasonCode::QuotaExceeded)
    );
    // A PUBREC for a flow that is gone gets PUBREL 0x92.
    h.recv(Packet::PubRec(Ack::new(pid))).unwrap();
    match h.sent().as_slice() {
        [Packet::PubRel(rel)] => {
            assert_eq!(rel.reason_code, ReasonCode::PacketIdentifierNotFound)
        }
        other => panic!("{other:?}"),
    }
}

/// conformance: v5 MQTT-3.3.4-7
/// conformance: v5 MQTT-3.3.4-8
/// conformance: v5 MQTT-4.9.0-2
#[test]
fn publications_beyond_the_servers_receive_maximum_wait_in_order() {
    let mut h = Harness::v5();
    let mut ack = ConnAck::default();
    ack.properties.receive_maximum = Some(2);
    h.connect_with(ack);
    h.publish("1", QoS::AtLeastOnce, 1);
    h.publish("2", QoS::ExactlyOnce, 2);
    h.publish("3", QoS::AtLeastOnce, 3);
    h.publish("4", QoS::AtMostOnce, 4);
    let sent = h.sent();
    let topics: Vec<&str> = publishes(&sent).iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, ["1", "2"]);
    assert_eq!(h.state.queued_len(), 2);
    // SUBSCRIBE is not held back by the quota.
    h.state
        .subscribe(vec![filter("x")], SubscribeProperties::default(), 5);
    assert!(matches!(h.sent().as_slice(), [Packet::Subscribe(_)]));
    // A PUBREC does not free the slot; the PUBCOMP does.
    let second = publishes(&sent)[1].packet_id.unwrap();
    h.recv(Packet::PubRec(Ack::new(second))).unwrap();
    assert_eq!(h.sent(), [Packet::PubRel(Ack::new(second))]);
    h.recv(Packet::PubComp(Ack::new(second))).unwrap();
    let next = h.sent();
    let topics: Vec<&str> = publishes(&next).iter().map(|p| p.topic.as_str()).collect();
    // The QoS 0 message waited behind the QoS 1 one, and now follows it.
    assert_eq!(topics, ["3", "4"]);
    assert_eq!(h.state.queued_len(), 0);
}

/// `max_inflight` caps the window below the server's Receive Maximum, on 3.1.1 (no
/// Receive Maximum at all) as on 5.0; the server's lower one still wins.
#[test]
fn max_inflight_caps_the_window() {
    for (version, server, cap, open) in [
        (ProtocolVersion::V311, None, 2, 2),
        (ProtocolVersion::V5, Some(10), 3, 3),
        (ProtocolVersion::V5, Some(1), 3, 1),
    ] {
        let mut h = Harness::new(
            ConnectOptions::new()
                .client_id("c")
                .version(version)
                .max_inflight(cap),
        );
        let mut ack = ConnAck::default();
        ack.properties.receive_maximum = server;
        h.connect_with(ack);
        for n in 0..5 {
            h.publish("t", QoS::AtLeastOnce, n);
        }
        assert_eq!(
            publishes(&h.sent()).len(),
            open,
            "{version:?} {server:?} {cap}"
        );
        assert_eq!(h.state.inflight_len(), open);
    }
}

#[test]
fn requests_made_before_the_connection_go_out_after_connack() {
    let mut h = Harness::v5();
    h.publish("early", QoS::AtLeastOnce, 1);
    h.publish("zero", QoS::AtMostOnce, 2);
    h.state
        .subscribe(vec![filter("s")], SubscribeProperties::default(), 3);
    assert_eq!(h.state.queued_len(), 3);
    h.state.connect(h.now).unwrap();
    assert!(matches!(h.sent().as_slice(), [Packet::Connect(_)]));
    assert_eq!(h.state.queued_len(), 3, "nothing before the CONNACK");
    h.recv(Packet::ConnAck(Box::default())).unwrap();
    let sent = h.sent();
    assert!(matches!(sent[0], Packet::Subscribe(_)));
    let topics: Vec<&str> = publishes(&sent).iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, ["early", "zero"]);
}

/// conformance: v5 MQTT-3.3.2-7
/// conformance: v5 MQTT-3.3.2-9
#[test]
fn topic_aliases_are_assigned_per_connection_and_resends_carry_the_topic() {
    let mut h = Harness::persistent();
    let mut ack = ConnAck::default();
    ack.properties.topic_alias_maximum = Some(1);
    h.connect_with(ack.clone());
    h.publish("long/topic", QoS::AtLeastOnce, 1);
    h.publish("long/topic", QoS::AtLeastOnce, 2);
    h.publish("other", QoS::AtMostOnce, 3);
    let sent = h.sent();
    let wire: Vec<(&str, Option<u16>)> = publishes(&sent)
        .iter()
        .map(|p| (p.topic.as_str(), p.properties.topic_alias))
        .collect();
    assert_eq!(
        wire,
        [("long/topic", Some(1)), ("", Some(1)), ("other", None)]
    );
    // On the new connection the alias is set again by the first resend.
    h.lose_connection();
    h.start();
    ack.session_present = true;
    h.recv(Packet::ConnAck(Box::new(ack))).unwrap();
    let resent = h.sent();
    let wire: Vec<(&str, Option<u16>, bool)> = publishes(&resent)
        .iter()
        .map(|p| (p.topic.as_str(), p.properties.topic_alias, p.dup))
        .collect();
    assert_eq!(wire, [("long/topic", Some(1), true), ("", Some(1), true)]);
}

#[test]
fn no_aliases_when_disabled_or_not_offered() {
    let mut h = Harness::new(ConnectOptions::new().auto_topic_alias(false));
    let mut ack = ConnAck::default();
    ack.properties.topic_alias_maximum = Some(5);
    h.connect_with(ack);
    let mut p = message("t", QoS::AtMostOnce);
    p.properties.topic_alias = Some(3);
    h.state.publish(p, 1);
    assert_eq!(only_publish(h.sent()).properties.topic_alias, None);
    let mut h = Harness::v5();
    h.connect(false);
    h.publish("t", QoS::AtMostOnce, 1);
    h.publish("t", QoS::AtMostOnce, 1);
    assert!(
        publishes(&h.sent())
            .iter()
            .all(|p| p.properties.topic_alias.is_none() && p.topic.as_str() == "t")
    );
}

/// conformance: v5 MQTT-3.2.2-11
/// conformance: v5 MQTT-3.2.2-14
/// conformance: v5 MQTT-3.2.2-15
#[test]
fn server_limits_refuse_publications_before_sending() {
    let mut h = Harness::v5();
    h.connect_with(ConnAck {
        properties: ConnAckProperties {
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(false),
            maximum_packet_size: Some(64),
            ..ConnAckProperties::default()
        },
        ..ConnAck::default()
    });
    h.publish("q2", QoS::ExactlyOnce, 1);
    let mut retained = message("r", QoS::AtMostOnce);
    retained.retain = true;
    h.state.publish(retained, 2);
    let mut big = message("b", QoS::AtMostOnce);
    big.payload = Bytes::from(vec![0; 100]);
    h.state.publish(big, 3);
    h.publish("ok", QoS::AtLeastOnce, 4);
    let sent = h.sent();
    assert_eq!(publishes(&sent).len(), 1);
    let done = h.completed();
    let invalid: Vec<u32> = done
        .iter()
        .filter(|(_, r)| r.as_ref().is_err_and(|e| e.is_invalid()))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(invalid, [1, 2, 3]);
}

#[test]
fn invalid_requests_fail_at_once() {
    let mut h = Harness::v5();
    h.connect(false);
    let mut p = message("t", QoS::AtMostOnce);
    p.topic = TopicName::default();
    h.state.publish(p, 1);
    let mut p = message("t", QoS::AtMostOnce);
    p.properties.subscription_identifiers = vec![3];
    h.state.publish(p, 2);
    let shared = (
        TopicFilter::new("$share/g/t").unwrap(),
        SubscriptionOptions {
            no_local: true,
            ..SubscriptionOptions::default()
        },
    );
    h.state
        .subscribe(vec![shared], SubscribeProperties::default(), 3);
    let done = h.completed();
    assert_eq!(done.len(), 3);
    assert!(
        done.iter()
            .all(|(_, r)| r.as_ref().unwrap_err().is_invalid())
    );
    assert!(h.sent().is_empty());
}

#[test]
fn subscribe_and_unsubscribe_complete_with_their_acks_and_resend_on_resume() {
    let mut h = Harness::persistent();
    h.connect(false);
    let props = SubscribeProperties {
        subscription_identifier: Some(12),
        ..SubscribeProperties::default()
    };
    h.state.subscribe(vec![filter("a"), filter("b")], props, 1);
    let sub = match h.sent().as_slice() {
        [Packet::Subscribe(s)] => s.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(sub.properties.subscription_identifier, Some(12));
    // Lost before the SUBACK: resent with its id on the resumed session.
    h.lose_connection();
    let resent = h.connect(true);
    assert_eq!(resent, [Packet::Subscribe(sub.clone())]);
    let ack = SubAck {
        packet_id: sub.packet_id,
        reason_codes: vec![ReasonCode::GrantedQoS1, ReasonCode::NotAuthorized],
        properties: Default::default(),
    };
    h.recv(Packet::SubAck(ack.clone())).unwrap();
    let done = h.completed();
    assert_eq!(done[0].1.as_ref().unwrap(), &Completion::Subscribed(ack));

    h.state.unsubscribe(
        vec![TopicFilter::new("a").unwrap()],
        UnsubscribeProperties::default(),
        2,
    );
    let unsub = match h.sent().as_slice() {
        [Packet::Unsubscribe(u)] => u.clone(),
        other => panic!("{other:?}"),
    };
    let ack = UnsubAck {
        packet_id: unsub.packet_id,
        reason_codes: vec![ReasonCode::Success],
        properties: Default::default(),
    };
    h.recv(Packet::UnsubAck(ack.clone())).unwrap();
    assert_eq!(
        h.completed()[0].1.as_ref().unwrap(),
        &Completion::Unsubscribed(ack)
    );
    // Nothing left to resubscribe: "a" is gone, "b" was refused.
    h.lose_connection();
    assert!(h.connect(false).is_empty());
}

#[test]
fn disconnect_sends_disconnect_and_fails_what_is_left() {
    let mut h = Harness::v5();
    let mut ack = ConnAck::default();
    ack.properties.receive_maximum = Some(1);
    h.connect_with(ack);
    h.publish("a", QoS::AtLeastOnce, 1);
    h.publish("b", QoS::AtLeastOnce, 2);
    h.sent();
    h.state.disconnect(Disconnect::default());
    assert_eq!(h.sent(), [Packet::Disconnect(Disconnect::default())]);
    assert!(h.state.is_closed());
    let done = h.completed();
    assert_eq!(done.len(), 2);
    assert!(
        done.iter()
            .all(|(_, r)| r.as_ref().unwrap_err().is_closed())
    );
    h.publish("c", QoS::AtMostOnce, 3);
    assert!(h.completed()[0].1.as_ref().unwrap_err().is_closed());
    // A closed state does not connect again.
    h.state.connect(h.now).unwrap();
    assert!(h.sent().is_empty());
}

#[test]
fn queue_limit_is_reported() {
    let mut h = Harness::new(ConnectOptions::new().max_queued_requests(2));
    assert!(h.state.can_accept());
    h.publish("a", QoS::AtMostOnce, 1);
    h.publish("b", QoS::AtMostOnce, 2);
    assert!(!h.state.can_accept());
    h.connect(false);
    assert!(h.state.can_accept());
}
