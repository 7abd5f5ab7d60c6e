//! SUBSCRIBE and UNSUBSCRIBE: several filters per packet with per-filter codes,
//! wildcards and `$` topics, replacing a subscription, overlapping subscriptions,
//! subscription identifiers and No Local.

mod common;

use common::*;
use midge_codec::{Ack, Packet, QoS, ReasonCode, SubscriptionOptions};

fn opts(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::new(qos)
}

/// conformance: v5 MQTT-3.8.4-1
/// conformance: v5 MQTT-3.8.4-2
/// conformance: v5 MQTT-3.8.4-5
/// conformance: v5 MQTT-3.8.4-6
/// conformance: v5 MQTT-3.8.4-7
/// conformance: v5 MQTT-3.9.3-1
/// conformance: v5 MQTT-3.9.3-2
/// conformance: v3.1.1 MQTT-3.8.4-1
/// conformance: v3.1.1 MQTT-3.8.4-2
/// conformance: v3.1.1 MQTT-3.8.4-4
/// conformance: v3.1.1 MQTT-3.8.4-5
/// conformance: v3.1.1 MQTT-3.9.3-1
/// conformance: v3.1.1 MQTT-3.9.3-2
/// conformance: v3.1.1 MQTT-2.3.1-7
#[tokio::test]
async fn subscribe_with_many_filters_gets_one_code_per_filter_in_order() {
    let broker = start().await;
    for v in VERSIONS {
        let mut c = Client::connect(broker.local_addr(), v, &cid("many", v)).await;
        let ack = c
            .subscribe_opts(
                &[
                    ("many/2", opts(QoS::ExactlyOnce)),
                    ("many/0", opts(QoS::AtMostOnce)),
                    ("many/+/x", opts(QoS::AtLeastOnce)),
                    ("many/#", opts(QoS::AtMostOnce)),
                ],
                None,
            )
            .await;
        assert_eq!(
            ack.reason_codes,
            [
                ReasonCode::GrantedQoS2,
                ReasonCode::Success,
                ReasonCode::GrantedQoS1,
                ReasonCode::Success
            ],
            "{v}"
        );
        // Each filter is a subscription of its own.
        c.pub_msg("many/0", "zero", QoS::AtMostOnce).await;
        c.pub_msg("many/y/x", "plus", QoS::AtLeastOnce).await;
        c.pub_msg("many/2", "sentinel", QoS::AtMostOnce).await;
        // "many/#" overlaps the others: one copy per message ([MQTT-3.3.4-2]).
        let got = [
            c.recv_and_ack().await,
            c.recv_and_ack().await,
            c.recv_and_ack().await,
        ];
        assert_eq!(payloads(&got), ["zero", "plus", "sentinel"], "{v}");
    }
}

/// conformance: v5 MQTT-4.7.1-1
/// conformance: v5 MQTT-4.7.1-2
/// conformance: v5 MQTT-3.3.2-3
/// conformance: v3.1.1 MQTT-4.7.1-2
/// conformance: v3.1.1 MQTT-4.7.1-3
/// conformance: v3.1.1 MQTT-3.3.2-3
/// conformance: v3.1.1 MQTT-3.8.3-2
#[tokio::test]
async fn plus_and_hash_wildcards_match_levels() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("wild", v)).await;
        s.subscribe("sport/+/player1", QoS::AtMostOnce).await;
        s.subscribe("finance/#", QoS::AtMostOnce).await;
        s.subscribe("+", QoS::AtMostOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("wild-pub", v)).await;
        let cases = [
            ("sport/tennis/player1", true),
            ("sport/tennis/player2", false),
            ("sport/tennis/player1/ranking", false),
            ("sport//player1", true),
            ("finance", true),
            ("finance/stock/ibm", true),
            ("financex", true), // matches "+"
            ("a/b", false),
            ("/a", false),
        ];
        for (name, _) in cases {
            let mut p = publish(name, "", QoS::AtMostOnce);
            p.payload = name.to_string().into();
            publisher.send(Packet::Publish(p)).await;
        }
        publisher
            .pub_msg("sentinel", "sentinel", QoS::AtMostOnce)
            .await;
        let mut got = Vec::new();
        loop {
            let p = s.recv_publish().await;
            assert_eq!(
                p.topic.as_bytes(),
                &p.payload[..],
                "topic names the payload"
            );
            if p.topic.as_str() == "sentinel" {
                break;
            }
            got.push(p.topic.to_string());
        }
        let expected: Vec<String> = cases
            .iter()
            .filter(|c| c.1)
            .map(|c| c.0.to_string())
            .collect();
        assert_eq!(got, expected, "{v}");
    }
}

/// conformance: v5 MQTT-4.7.2-1
/// conformance: v3.1.1 MQTT-4.7.2-1
#[tokio::test]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let broker = start().await;
    for v in VERSIONS {
        let mut wild = Client::connect(broker.local_addr(), v, &cid("dollar-wild", v)).await;
        wild.subscribe("#", QoS::AtMostOnce).await;
        wild.subscribe("+/info", QoS::AtMostOnce).await;
        let mut explicit = Client::connect(broker.local_addr(), v, &cid("dollar-exp", v)).await;
        explicit.subscribe("$app/#", QoS::AtMostOnce).await;
        explicit.subscribe("$app/+", QoS::AtMostOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("dollar-pub", v)).await;
        publisher
            .pub_msg("$app/info", "dollar", QoS::AtMostOnce)
            .await;
        publisher
            .pub_msg("app/info", "plain", QoS::AtMostOnce)
            .await;
        // The wildcard subscriber sees only the plain topic (once: "#" and "+/info" overlap).
        let p = wild.recv_publish().await;
        assert_eq!(p.topic.as_str(), "app/info", "{v}");
        // "$app/#" and "$app/+" match the $ topic: one copy.
        let p = explicit.recv_publish().await;
        assert_eq!(p.topic.as_str(), "$app/info", "{v}");
        publisher.pub_msg("$app/end", "s", QoS::AtMostOnce).await;
        assert_eq!(explicit.recv_publish().await.topic.as_str(), "$app/end");
        publisher.pub_msg("end", "s", QoS::AtMostOnce).await;
        // Publications drained by the wildcard subscriber so far: only "app/info", then "end"
        // (the publisher's "#" subscription does not exist).
        assert_eq!(wild.recv_publish().await.topic.as_str(), "end");
    }
}

/// conformance: v5 MQTT-4.7.3-4
/// conformance: v3.1.1 MQTT-4.7.3-4
#[tokio::test]
async fn topics_are_matched_without_normalisation() {
    let broker = start().await;
    let mut s = Client::connect(broker.local_addr(), V5, "norm").await;
    s.subscribe("a/b", QoS::AtMostOnce).await;
    for name in ["A/b", "a//b", "a/b/", "/a/b", "a/b "] {
        s.pub_msg(name, "no", QoS::AtMostOnce).await;
    }
    s.pub_msg("a/b", "yes", QoS::AtMostOnce).await;
    let p = s.recv_publish().await;
    assert_eq!((p.topic.as_str(), &p.payload[..]), ("a/b", &b"yes"[..]));
    s.expect_nothing().await;
}

/// conformance: v5 MQTT-3.8.4-3
/// conformance: v3.1.1 MQTT-3.8.4-3
#[tokio::test]
async fn subscribing_again_replaces_the_subscription() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("replace", v)).await;
        s.subscribe("replace", QoS::ExactlyOnce).await;
        s.subscribe("replace", QoS::AtMostOnce).await;
        s.pub_msg("replace", "x", QoS::ExactlyOnce).await;
        let p = s.recv_publish().await;
        assert_eq!(p.qos, QoS::AtMostOnce, "{v}: the new subscription's QoS");
        s.pub_msg("replace", "sentinel", QoS::AtMostOnce).await;
        assert_eq!(
            &s.recv_publish().await.payload[..],
            b"sentinel",
            "{v}: one copy only"
        );
    }
}

/// conformance: v5 MQTT-3.3.4-2
/// conformance: v5 MQTT-3.3.4-3
/// conformance: v5 MQTT-3.3.4-4
/// conformance: v3.1.1 MQTT-3.3.5-1
#[tokio::test]
async fn overlapping_subscriptions_deliver_one_copy_at_the_highest_qos() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("overlap", v)).await;
        let v5 = v.is_v5();
        for (f, qos, id) in [
            ("ov/+", QoS::AtMostOnce, 1),
            ("ov/#", QoS::ExactlyOnce, 2),
            ("ov/a", QoS::AtLeastOnce, 0),
        ] {
            let ack = s
                .subscribe_opts(&[(f, opts(qos))], (v5 && id > 0).then_some(id))
                .await;
            assert_eq!(ack.reason_codes, [granted(qos)]);
        }
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("overlap-pub", v)).await;
        publisher.pub_msg("ov/a", "x", QoS::ExactlyOnce).await;
        let p = s.recv_and_ack().await;
        assert_eq!(p.qos, QoS::ExactlyOnce, "{v}");
        if v5 {
            let mut ids = p.properties.subscription_identifiers.clone();
            ids.sort();
            assert_eq!(ids, [1, 2], "every matching subscription's identifier");
        }
        publisher.pub_msg("ov/a", "sentinel", QoS::AtMostOnce).await;
        assert_eq!(
            &s.recv_publish().await.payload[..],
            b"sentinel",
            "{v}: a single copy"
        );
        // Only "ov/#" matches: its identifier alone.
        publisher.pub_msg("ov/b/c", "deep", QoS::AtLeastOnce).await;
        let p = s.recv_and_ack().await;
        assert_eq!(p.qos, QoS::AtLeastOnce);
        if v5 {
            assert_eq!(p.properties.subscription_identifiers, [2]);
        }
    }
}

/// conformance: v5 MQTT-3.10.4-1
/// conformance: v5 MQTT-3.10.4-2
/// conformance: v5 MQTT-3.10.4-4
/// conformance: v5 MQTT-3.10.4-5
/// conformance: v5 MQTT-3.10.4-6
/// conformance: v5 MQTT-3.11.3-1
/// conformance: v5 MQTT-3.11.3-2
/// conformance: v3.1.1 MQTT-3.10.4-1
/// conformance: v3.1.1 MQTT-3.10.4-2
/// conformance: v3.1.1 MQTT-3.10.4-4
/// conformance: v3.1.1 MQTT-3.10.4-5
/// conformance: v3.1.1 MQTT-3.10.4-6
#[tokio::test]
async fn unsubscribe_with_many_filters_gets_one_code_per_filter() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("unsub", v)).await;
        s.subscribe("u/a", QoS::AtMostOnce).await;
        s.subscribe("u/+", QoS::AtMostOnce).await;
        s.subscribe("u/c", QoS::AtMostOnce).await;
        // "u/#" does not exist; "u/+" is removed character by character, not by matching.
        let ack = s.unsubscribe(&["u/a", "u/#", "u/+"]).await;
        if v.is_v5() {
            assert_eq!(
                ack.reason_codes,
                [
                    ReasonCode::Success,
                    ReasonCode::NoSubscriptionExisted,
                    ReasonCode::Success
                ]
            );
        } else {
            assert!(ack.reason_codes.is_empty());
        }
        s.pub_msg("u/a", "gone", QoS::AtMostOnce).await;
        s.pub_msg("u/c", "kept", QoS::AtMostOnce).await;
        assert_eq!(&s.recv_publish().await.payload[..], b"kept", "{v}");
        // Nothing to remove: still answered.
        let ack = s.unsubscribe(&["nothing/here"]).await;
        if v.is_v5() {
            assert_eq!(ack.reason_codes, [ReasonCode::NoSubscriptionExisted]);
        }
    }
}

/// conformance: v5 MQTT-3.10.4-3
/// conformance: v3.1.1 MQTT-3.10.4-3
#[tokio::test]
async fn unsubscribe_completes_flows_already_started() {
    let broker = start().await;
    for v in VERSIONS {
        let mut s = Client::connect(broker.local_addr(), v, &cid("started", v)).await;
        s.subscribe("started", QoS::ExactlyOnce).await;
        s.pub_msg("started", "q2", QoS::ExactlyOnce).await;
        let p = s.recv_publish().await;
        s.unsubscribe(&["started"]).await;
        let id = p.packet_id.unwrap();
        s.send(Packet::PubRec(Ack::new(id))).await;
        assert!(
            matches!(s.recv().await, Packet::PubRel(a) if a.packet_id == id),
            "{v}"
        );
        s.send(Packet::PubComp(Ack::new(id))).await;
        s.expect_nothing().await;
    }
}

/// conformance: v5 MQTT-3.8.3-3
#[tokio::test]
async fn no_local_keeps_a_clients_own_messages_from_it() {
    let broker = start().await;
    let mut a = Client::connect(broker.local_addr(), V5, "nolocal-a").await;
    let mut options = opts(QoS::AtLeastOnce);
    options.no_local = true;
    a.subscribe_opts(&[("nl", options)], None).await;
    let mut b = Client::connect(broker.local_addr(), V5, "nolocal-b").await;
    a.pub_msg("nl", "own", QoS::AtLeastOnce).await;
    b.pub_msg("nl", "other", QoS::AtLeastOnce).await;
    assert_eq!(&a.recv_and_ack().await.payload[..], b"other");
    a.expect_nothing().await;
}

/// A subscription identifier travels with each message of that subscription.
///
/// conformance: v5 MQTT-3.3.4-3
/// conformance: v5 MQTT-3.3.4-5
#[tokio::test]
async fn subscription_identifier_is_sent_with_matching_messages() {
    let broker = start().await;
    let mut s = Client::connect(broker.local_addr(), V5, "subid").await;
    s.subscribe_opts(
        &[
            ("sid/a", opts(QoS::AtMostOnce)),
            ("sid/b", opts(QoS::AtMostOnce)),
        ],
        Some(42),
    )
    .await;
    s.subscribe("sid/c", QoS::AtMostOnce).await;
    s.pub_msg("sid/b", "b", QoS::AtMostOnce).await;
    assert_eq!(
        s.recv_publish().await.properties.subscription_identifiers,
        [42]
    );
    s.pub_msg("sid/c", "c", QoS::AtMostOnce).await;
    assert!(
        s.recv_publish()
            .await
            .properties
            .subscription_identifiers
            .is_empty()
    );
    // Re-subscribing without an identifier removes it.
    s.subscribe("sid/a", QoS::AtMostOnce).await;
    s.pub_msg("sid/a", "a", QoS::AtMostOnce).await;
    assert!(
        s.recv_publish()
            .await
            .properties
            .subscription_identifiers
            .is_empty()
    );
}
