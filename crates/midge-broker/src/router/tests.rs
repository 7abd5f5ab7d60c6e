//! The router against a model: overlapping subscriptions, No Local, Retain As
//! Published, shared groups, and publishers racing subscribe and unsubscribe.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use midge_codec::{QoS, SubscriptionOptions, TopicFilter, TopicName};
use proptest::prelude::*;

use super::Router;
use crate::mailbox::MailboxLimits;
use crate::message::{Delivery, Message};
use crate::registry::{Registry, SessionEntry};

/// The virtual clock's origin: the only real clock read in these tests.
#[allow(clippy::disallowed_methods)]
fn epoch() -> Instant {
    Instant::now()
}

fn sessions(n: usize) -> Vec<Arc<SessionEntry>> {
    let registry = Registry::new(MailboxLimits {
        max_messages: 0,
        max_bytes: 0,
        queue_qos0_offline: true,
    });
    (0..n)
        .map(|i| {
            let (entry, _) = registry.connect(&format!("c{i}"));
            entry.set_online(true);
            entry
        })
        .collect()
}

fn message(topic: &str, qos: QoS, retain: bool, origin: Option<&str>) -> Arc<Message> {
    Arc::new(Message {
        topic: TopicName::new(topic.to_owned()).expect("valid topic"),
        payload: Bytes::from_static(b"x"),
        qos,
        retain,
        properties: Default::default(),
        expires_at: None,
        origin: origin.map(Arc::from),
        encoded: Default::default(),
        store_id: Default::default(),
    })
}

fn options(qos: QoS, no_local: bool, retain_as_published: bool) -> SubscriptionOptions {
    SubscriptionOptions {
        no_local,
        retain_as_published,
        ..SubscriptionOptions::new(qos)
    }
}

fn subscribe(
    router: &Router,
    entry: &Arc<SessionEntry>,
    filter: &str,
    o: SubscriptionOptions,
    id: Option<u32>,
) {
    let filter = TopicFilter::new(filter.to_owned()).expect("valid filter");
    router.subscribe(entry, &filter, o, id, false, epoch());
}

fn drain(entry: &SessionEntry) -> Vec<Delivery> {
    let mut mailbox = entry.mailbox.lock().expect("mailbox lock");
    std::iter::from_fn(|| mailbox.pop()).collect()
}

/// conformance: v5 MQTT-3.3.4-2
/// conformance: v5 MQTT-3.3.4-3
/// conformance: v5 MQTT-3.3.4-4
/// conformance: v5 MQTT-3.3.4-5
#[test]
fn overlapping_subscriptions_deliver_once_with_max_qos_and_all_ids() {
    let s = sessions(2);
    let router = Router::new(false);
    subscribe(
        &router,
        &s[0],
        "a/+",
        options(QoS::AtMostOnce, false, false),
        Some(1),
    );
    subscribe(
        &router,
        &s[0],
        "a/#",
        options(QoS::AtLeastOnce, false, false),
        Some(2),
    );
    subscribe(
        &router,
        &s[0],
        "a/b",
        options(QoS::AtMostOnce, false, false),
        None,
    );
    subscribe(
        &router,
        &s[1],
        "a/b",
        options(QoS::ExactlyOnce, false, false),
        Some(9),
    );
    assert_eq!(
        router.publish(message("a/b", QoS::ExactlyOnce, false, None)),
        2
    );
    let got = drain(&s[0]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    let mut ids = got[0].subscription_ids().to_vec();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    let got = drain(&s[1]);
    assert_eq!((got.len(), got[0].qos), (1, QoS::ExactlyOnce));
    assert_eq!(got[0].subscription_ids(), [9]);
    assert_eq!(router.subscription_count(), 4);
}

/// §4.8.2: a shared group's messages go to one member each, in turn; a member that
/// leaves hands its undelivered ones to another member.
#[test]
fn shared_groups_take_turns_and_hand_over() {
    let s = sessions(4);
    let router = Router::new(false);
    for entry in &s[..3] {
        subscribe(
            &router,
            entry,
            "$share/g/t",
            options(QoS::AtLeastOnce, false, false),
            None,
        );
    }
    subscribe(
        &router,
        &s[3],
        "$share/h/t",
        options(QoS::AtMostOnce, false, false),
        None,
    );
    for _ in 0..6 {
        assert_eq!(
            router.publish(message("t", QoS::AtLeastOnce, true, None)),
            2
        );
    }
    let counts: Vec<usize> = s
        .iter()
        .map(|e| e.mailbox.lock().expect("lock").len())
        .collect();
    assert_eq!(counts, [2, 2, 2, 6]);
    let mine = drain(&s[0]);
    assert!(
        mine.iter()
            .all(|d| !d.retain && d.shared_group().map(|g| &**g) == Some("$share/g/t"))
    );
    let filter = TopicFilter::new("$share/g/t").expect("valid");
    assert!(router.unsubscribe(&s[0], &filter));
    for delivery in mine {
        assert!(router.redeliver_shared(delivery, s[0].id, epoch()));
    }
    assert_eq!(
        s[1].mailbox.lock().expect("lock").len() + s[2].mailbox.lock().expect("lock").len(),
        6
    );
    assert!(router.unsubscribe(&s[1], &filter));
    assert!(router.unsubscribe(&s[2], &filter));
    assert!(!router.unsubscribe(&s[2], &filter));
    assert_eq!(router.subscription_count(), 1);
    let orphan = drain(&s[1]).remove(0);
    assert!(!router.redeliver_shared(orphan, s[1].id, epoch()));
}

/// Publishers never wait for, and never miss a message because of, subscribers that
/// come and go beside them.
#[test]
fn publishers_race_subscribe_and_unsubscribe() {
    let s = sessions(3);
    let router = Router::new(false);
    subscribe(
        &router,
        &s[0],
        "c/x",
        options(QoS::AtMostOnce, false, false),
        None,
    );
    const EACH: usize = 20_000;
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..EACH {
                    router.publish(message("c/x", QoS::AtMostOnce, false, None));
                }
            });
        }
        let filter = TopicFilter::new("c/+").expect("valid");
        let shared = TopicFilter::new("$share/g/c/#").expect("valid");
        for _ in 0..500 {
            router.subscribe(
                &s[1],
                &filter,
                options(QoS::AtMostOnce, false, false),
                None,
                false,
                epoch(),
            );
            router.subscribe(
                &s[2],
                &shared,
                options(QoS::AtMostOnce, false, false),
                None,
                false,
                epoch(),
            );
            assert!(router.unsubscribe(&s[1], &filter));
            assert!(router.unsubscribe(&s[2], &shared));
        }
    });
    assert_eq!(s[0].mailbox.lock().expect("lock").len(), 2 * EACH);
    assert_eq!(router.subscription_count(), 1);
}

/// What one session should get of one message, by the rules applied filter by filter.
#[derive(Debug, PartialEq)]
struct Expected {
    qos: QoS,
    retain: bool,
    ids: Vec<u32>,
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![Just("a"), Just("b"), Just("+"), Just("$s")];
    (prop::collection::vec(level, 1..4), any::<bool>()).prop_map(|(l, hash)| {
        let mut f = l.join("/");
        if hash {
            f.push_str("/#");
        }
        f
    })
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("$s")], 1..4)
        .prop_map(|l| l.join("/"))
}

proptest! {
    /// Each session gets one delivery per message it has a matching subscription for,
    /// with the highest QoS, RETAIN if a subscription keeps it, and every identifier,
    /// except through subscriptions with No Local for its own messages.
    #[test]
    fn router_agrees_with_a_per_filter_model(
        subs in prop::collection::vec(
            (0..4usize, filter(), qos(), any::<bool>(), any::<bool>(), prop::option::of(1..100u32)),
            0..20,
        ),
        publishes in prop::collection::vec((topic(), qos(), any::<bool>(), 0..5usize), 1..8),
        upgrade in any::<bool>(),
    ) {
        let s = sessions(4);
        let router = Router::new(upgrade);
        // The last subscription of a session to a filter replaces the earlier ones.
        let mut model: BTreeMap<(usize, String), (SubscriptionOptions, Option<u32>)> = BTreeMap::new();
        for (session, f, q, no_local, rap, id) in subs {
            let o = options(q, no_local, rap);
            subscribe(&router, &s[session], &f, o, id);
            model.insert((session, f), (o, id));
        }
        prop_assert_eq!(router.subscription_count(), model.len());
        for (topic, q, retain, origin) in publishes {
            let origin_id = s.get(origin).map(|e| e.client_id.to_string());
            let mut expected: BTreeMap<usize, Expected> = BTreeMap::new();
            for ((session, f), (o, id)) in &model {
                if !midge_codec::topic_matches(f, &topic)
                    || (o.no_local && origin == *session)
                {
                    continue;
                }
                let qos = if upgrade { o.qos } else { q.min(o.qos) };
                let e = expected.entry(*session).or_insert(Expected { qos, retain: false, ids: Vec::new() });
                e.qos = e.qos.max(qos);
                e.retain |= retain && o.retain_as_published;
                e.ids.extend(*id);
            }
            let queued = router.publish(message(&topic, q, retain, origin_id.as_deref()));
            prop_assert_eq!(queued, expected.len());
            for (i, entry) in s.iter().enumerate() {
                let got = drain(entry);
                match expected.remove(&i) {
                    None => prop_assert!(got.is_empty()),
                    Some(mut e) => {
                        prop_assert_eq!(got.len(), 1);
                        let mut ids = got[0].subscription_ids().to_vec();
                        ids.sort_unstable();
                        e.ids.sort_unstable();
                        prop_assert_eq!(Expected { qos: got[0].qos, retain: got[0].retain, ids }, e);
                    }
                }
            }
        }
    }
}

/// Many sessions on overlapping filters, the shape of the soak test's subscribers: each
/// session gets each matching message once, at the highest QoS of its filters.
#[test]
fn many_sessions_on_overlapping_filters() {
    use QoS::{AtLeastOnce as Q1, ExactlyOnce as Q2};
    const GROUPS: usize = 16;
    let s = sessions(200);
    let router = Router::new(false);
    let mut model: Vec<Vec<(String, QoS)>> = Vec::new();
    for (i, entry) in s.iter().enumerate() {
        let g = i % GROUPS;
        let h = (i / GROUPS + g + 1) % GROUPS;
        let filters: Vec<(String, QoS)> = match i % 10 {
            0 if i % 20 == 0 => vec![("soak/#".into(), Q2)],
            0 => vec![("+/+/+".into(), Q1), ("soak/+/q2".into(), Q2)],
            1 => vec![("soak/+/q1".into(), Q1)],
            2 => vec![("soak/+/q2".into(), Q2)],
            3 => vec![(format!("soak/{g}/+"), Q2)],
            4 => vec![(format!("soak/{g}/+"), Q1), (format!("+/{h}/q2"), Q2)],
            5 => vec![(format!("soak/{g}/#"), Q2), (format!("soak/{h}/q1"), Q1)],
            6 => vec![(format!("soak/{g}/q2"), Q1), (format!("soak/{h}/q0"), Q2)],
            7 => vec![(format!("+/{g}/+"), Q2), (format!("soak/{g}/q1"), Q1)],
            8 => vec![(format!("soak/{g}/q1"), Q2), (format!("soak/{h}/q2"), Q2)],
            _ => vec![(format!("soak/{g}/+"), Q1)],
        };
        for (f, q) in &filters {
            subscribe(&router, entry, f, options(*q, false, false), None);
        }
        model.push(filters);
    }
    for g in 0..GROUPS {
        for (q, qos) in [(0, QoS::AtMostOnce), (1, Q1), (2, Q2)] {
            let topic = format!("soak/{g}/q{q}");
            router.publish(message(&topic, qos, false, None));
            for (i, entry) in s.iter().enumerate() {
                let expected = model[i]
                    .iter()
                    .filter(|(f, _)| midge_codec::topic_matches(f, &topic))
                    .map(|&(_, granted)| granted.min(qos))
                    .max();
                let got: Vec<QoS> = drain(entry).iter().map(|d| d.qos).collect();
                assert_eq!(got, Vec::from_iter(expected), "session {i} topic {topic}");
            }
        }
    }
}

/// Retained messages spread over the shards are all found by a subscription's filter,
/// and a topic's newer retained message replaces or, empty, removes the older one.
/// conformance: v5 MQTT-3.3.1-6
/// conformance: v5 MQTT-3.3.1-7
#[test]
fn retained_messages_over_all_shards() {
    let s = sessions(1);
    let router = Router::new(false);
    for i in 0..200 {
        router.publish(message(&format!("r/{i}"), QoS::AtLeastOnce, true, None));
        router.publish(message(&format!("r/{i}"), QoS::ExactlyOnce, true, None));
    }
    for i in (0..200).step_by(2) {
        let mut empty =
            Arc::unwrap_or_clone(message(&format!("r/{i}"), QoS::AtMostOnce, true, None));
        empty.payload = Bytes::new();
        router.publish(Arc::new(empty));
    }
    assert_eq!(router.retained_count(), 100);
    let filter = TopicFilter::new("r/+").expect("valid");
    let o = options(QoS::ExactlyOnce, false, false);
    let sent = router.subscribe(&s[0], &filter, o, None, false, epoch());
    let mut topics: Vec<usize> = sent
        .iter()
        .map(|d| {
            assert_eq!((d.qos, d.retain), (QoS::ExactlyOnce, true));
            d.message.topic.as_str()[2..].parse().expect("number")
        })
        .collect();
    topics.sort_unstable();
    assert_eq!(topics, (1..200).step_by(2).collect::<Vec<_>>());
}

fn numbered(topic: &str, n: u8, origin: Option<&str>) -> Arc<Message> {
    let mut m = Arc::unwrap_or_clone(message(topic, QoS::AtLeastOnce, false, origin));
    m.payload = Bytes::from(vec![n]);
    Arc::new(m)
}

/// A run of messages to one topic is routed as its messages one by one would be: in
/// order, No Local and subscription identifiers applied to each, one mailbox lock per
/// session; the router declines (routing nothing) what it cannot route together.
///
/// conformance: v5 MQTT-4.6.0-5
/// conformance: v3.1.1 MQTT-4.6.0-6
/// conformance: v5 MQTT-3.8.3-3
#[test]
fn a_run_is_routed_as_its_messages_one_by_one() {
    let s = sessions(3);
    let router = Router::new(false);
    subscribe(
        &router,
        &s[0],
        "r/t",
        options(QoS::AtLeastOnce, false, false),
        Some(7),
    );
    // No Local: c1 publishes the run and does not get it back.
    subscribe(
        &router,
        &s[1],
        "r/t",
        options(QoS::AtMostOnce, true, false),
        None,
    );
    subscribe(
        &router,
        &s[2],
        "r/other",
        options(QoS::AtMostOnce, false, false),
        None,
    );
    let run: Vec<_> = (0..5).map(|n| numbered("r/t", n, Some("c1"))).collect();
    let mut congested = Vec::new();
    assert_eq!(router.publish_run(&run, &mut congested), Some((5, 1)));
    assert!(congested.is_empty());
    let got = drain(&s[0]);
    let order: Vec<u8> = got.iter().map(|d| d.message.payload[0]).collect();
    assert_eq!(order, [0, 1, 2, 3, 4]);
    assert!(
        got.iter()
            .all(|d| d.subscription_ids() == [7] && d.qos == QoS::AtLeastOnce)
    );
    assert!(drain(&s[1]).is_empty() && drain(&s[2]).is_empty());

    // A topic nobody subscribed to: routed, to no one.
    let nowhere = [numbered("r/none", 0, None)];
    assert_eq!(router.publish_run(&nowhere, &mut congested), Some((0, 0)));

    // Declined, nothing routed: a retained message, mixed topics, two matching
    // filters, a shared subscription.
    let retained = [message("r/t", QoS::AtMostOnce, true, None)];
    let mixed = [numbered("r/t", 0, None), numbered("r/other", 1, None)];
    assert_eq!(router.publish_run(&retained, &mut congested), None);
    assert_eq!(router.publish_run(&mixed, &mut congested), None);
    subscribe(
        &router,
        &s[2],
        "r/+",
        options(QoS::AtMostOnce, false, false),
        None,
    );
    assert_eq!(router.publish_run(&run, &mut congested), None);
    assert!(router.unsubscribe(&s[2], &TopicFilter::new("r/+").expect("valid")));
    subscribe(
        &router,
        &s[2],
        "$share/g/r/t",
        options(QoS::AtMostOnce, false, false),
        None,
    );
    assert_eq!(router.publish_run(&run, &mut congested), None);
    assert!(s.iter().all(|e| drain(e).is_empty()));
}

/// A run that fills a connected session's mailbox to its limits reports it congested
/// once, and queues the rest of the run (a congested mailbox takes up to twice its
/// limits).
#[test]
fn a_run_reports_a_congested_mailbox() {
    let registry = Registry::new(MailboxLimits {
        max_messages: 4,
        max_bytes: 0,
        queue_qos0_offline: true,
    });
    let (entry, _) = registry.connect("slow");
    entry.set_online(true);
    let router = Router::new(false);
    subscribe(
        &router,
        &entry,
        "r/t",
        options(QoS::AtLeastOnce, false, false),
        None,
    );
    let run: Vec<_> = (0..6).map(|n| numbered("r/t", n, None)).collect();
    let mut congested = Vec::new();
    assert_eq!(router.publish_run(&run, &mut congested), Some((6, 1)));
    assert_eq!(congested.len(), 1);
    assert!(Arc::ptr_eq(&congested[0], &entry));
    assert_eq!(drain(&entry).len(), 6);
}
