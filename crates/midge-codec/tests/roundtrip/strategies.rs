//! Generators of valid packets, by version and by direction, for `roundtrip.rs`. Each
//! follows the rules of its version; see the list in the doc of `roundtrip.rs`.

use bytes::Bytes;
use midge_codec::{
    Ack, AckProperties, Auth, AuthProperties, ByteString, ConnAck, ConnAckProperties, Connect,
    ConnectProperties, Disconnect, DisconnectProperties, LastWill, MAX_VAR_INT, Packet, PacketId,
    PacketType, ProtocolVersion, Publish, PublishProperties, QoS, ReasonCode, RetainHandling,
    SubAck, Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    Unsubscribe, UnsubscribeProperties, UserProperty, WillProperties,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;

pub(crate) const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V31,
    ProtocolVersion::V311,
    ProtocolVersion::V5,
];

pub(crate) fn version() -> impl Strategy<Value = ProtocolVersion> {
    select(VERSIONS.to_vec())
}

// --- strings, topics, filters ----------------------------------------------------------

/// Mostly ASCII letters, sometimes any Unicode scalar value except U+0000.
fn text_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range('a', 'z'),
        1 => any::<char>().prop_filter("U+0000 is not allowed in MQTT strings", |c| *c != '\0'),
    ]
}

fn string(max: usize) -> impl Strategy<Value = ByteString> {
    vec(text_char(), 0..=max).prop_map(|chars| ByteString::from(String::from_iter(chars)))
}

pub(crate) fn binary(max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..=max).prop_map(Bytes::from)
}

/// A character allowed inside a topic level: no separator, no wildcard.
fn level_char() -> impl Strategy<Value = char> {
    text_char().prop_filter("not a separator or wildcard", |c| {
        !matches!(c, '/' | '+' | '#')
    })
}

fn topic_level() -> impl Strategy<Value = String> {
    vec(level_char(), 0..6).prop_map(String::from_iter)
}

/// A non-empty topic name: levels (some empty) without wildcards, sometimes under `$SYS/`.
fn topic_name() -> impl Strategy<Value = TopicName> {
    (vec(topic_level(), 1..5), any::<bool>()).prop_map(|(levels, sys)| {
        let mut name = levels.join("/");
        if name.is_empty() {
            name.push('t');
        }
        if sys {
            name.insert_str(0, "$SYS/");
        }
        TopicName::new(name).expect("generated topic names are valid")
    })
}

/// A filter without the `$share/` prefix: `+` levels anywhere, `#` as the last level.
fn plain_filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![3 => topic_level(), 1 => Just("+".to_owned())];
    (vec(level, 1..5), any::<bool>()).prop_map(|(mut levels, multi)| {
        if multi {
            levels.push("#".to_owned());
        }
        let filter = levels.join("/");
        if filter.is_empty() {
            "#".to_owned()
        } else {
            filter
        }
    })
}

fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let share_name = vec(level_char(), 1..6).prop_map(String::from_iter);
    prop_oneof![
        3 => plain_filter(),
        1 => (share_name, plain_filter()).prop_map(|(name, f)| format!("$share/{name}/{f}")),
    ]
    .prop_map(|filter| TopicFilter::new(filter).expect("generated filters are valid"))
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1..=u16::MAX).prop_map(|id| PacketId::new(id).expect("not zero"))
}

fn qos() -> impl Strategy<Value = QoS> {
    select(vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce])
}

/// The 5.0 reason codes that `packet` may carry.
fn v5_reason(packet: PacketType) -> impl Strategy<Value = ReasonCode> {
    let codes: Vec<ReasonCode> = (0..=u8::MAX)
        .filter_map(ReasonCode::from_u8)
        .filter(|code| code.is_valid_for(packet))
        .collect();
    select(codes)
}

/// `s` in 5.0; the default (no properties, Success) before it.
fn v5_only<S>(version: ProtocolVersion, s: S) -> BoxedStrategy<S::Value>
where
    S: Strategy + 'static,
    S::Value: Default + Clone,
{
    if version.is_v5() {
        s.boxed()
    } else {
        Just(S::Value::default()).boxed()
    }
}

// --- properties ------------------------------------------------------------------------

/// Each optional property is present about one time in three.
fn opt<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
    proptest::option::weighted(0.35, s)
}

fn user_properties() -> impl Strategy<Value = Vec<UserProperty>> {
    vec((string(6), string(10)), 0..4)
}

fn nonzero_u16() -> impl Strategy<Value = u16> {
    1..=u16::MAX
}

fn nonzero_u32() -> impl Strategy<Value = u32> {
    1..=u32::MAX
}

fn subscription_id() -> impl Strategy<Value = u32> {
    prop_oneof![1..=200u32, 1..=MAX_VAR_INT]
}

fn connect_properties() -> impl Strategy<Value = ConnectProperties> {
    (
        opt(any::<u32>()),
        opt(nonzero_u16()),
        opt(nonzero_u32()),
        opt(any::<u16>()),
        opt(any::<bool>()),
        opt(any::<bool>()),
        user_properties(),
        opt(string(12)),
        opt(binary(16)),
    )
        .prop_map(
            |(sei, rm, mps, tam, rri, rpi, up, am, ad)| ConnectProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_packet_size: mps,
                topic_alias_maximum: tam,
                request_response_information: rri,
                request_problem_information: rpi,
                user_properties: up,
                authentication_method: am,
                authentication_data: ad,
            },
        )
}

fn will_properties() -> impl Strategy<Value = WillProperties> {
    (
        opt(any::<u32>()),
        opt(any::<bool>()),
        opt(any::<u32>()),
        opt(string(12)),
        opt(topic_name()),
        opt(binary(16)),
        user_properties(),
    )
        .prop_map(|(wdi, pfi, mei, ct, rt, cd, up)| WillProperties {
            will_delay_interval: wdi,
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            content_type: ct,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up,
        })
}

fn connack_properties() -> impl Strategy<Value = ConnAckProperties> {
    let first = (
        opt(any::<u32>()),
        opt(nonzero_u16()),
        // Maximum QoS is 0 or 1 (§3.2.2.3.4).
        opt(select(vec![QoS::AtMostOnce, QoS::AtLeastOnce])),
        opt(any::<bool>()),
        opt(nonzero_u32()),
        opt(string(23)),
        opt(any::<u16>()),
        opt(string(20)),
        user_properties(),
    );
    let second = (
        opt(any::<bool>()),
        opt(any::<bool>()),
        opt(any::<bool>()),
        opt(any::<u16>()),
        opt(string(12)),
        opt(string(12)),
        opt(string(12)),
        opt(binary(16)),
    );
    (first, second).prop_map(
        |((sei, rm, mq, ra, mps, aci, tam, rs, up), (wsa, sia, ssa, ska, ri, sr, am, ad))| {
            ConnAckProperties {
                session_expiry_interval: sei,
                receive_maximum: rm,
                maximum_qos: mq,
                retain_available: ra,
                maximum_packet_size: mps,
                assigned_client_identifier: aci,
                topic_alias_maximum: tam,
                reason_string: rs,
                user_properties: up,
                wildcard_subscription_available: wsa,
                subscription_identifiers_available: sia,
                shared_subscription_available: ssa,
                server_keep_alive: ska,
                response_information: ri,
                server_reference: sr,
                authentication_method: am,
                authentication_data: ad,
            }
        },
    )
}

/// PUBLISH properties. Only a server sends Subscription Identifiers ([MQTT-3.3.4-6]).
fn publish_properties(from_server: bool) -> impl Strategy<Value = PublishProperties> {
    let subscription_ids = if from_server {
        vec(subscription_id(), 0..3).boxed()
    } else {
        Just(Vec::new()).boxed()
    };
    (
        opt(any::<bool>()),
        opt(any::<u32>()),
        // A Topic Alias of 0 is a Protocol Error ([MQTT-3.3.2-8]).
        opt(nonzero_u16()),
        opt(topic_name()),
        opt(binary(16)),
        user_properties(),
        subscription_ids,
        opt(string(12)),
    )
        .prop_map(|(pfi, mei, ta, rt, cd, up, sids, ct)| PublishProperties {
            payload_format_indicator: pfi,
            message_expiry_interval: mei,
            topic_alias: ta,
            response_topic: rt,
            correlation_data: cd,
            user_properties: up,
            subscription_identifiers: sids,
            content_type: ct,
        })
}

fn ack_properties() -> impl Strategy<Value = AckProperties> {
    (opt(string(20)), user_properties()).prop_map(|(rs, up)| AckProperties {
        reason_string: rs,
        user_properties: up,
    })
}

fn subscribe_properties() -> impl Strategy<Value = SubscribeProperties> {
    (opt(subscription_id()), user_properties()).prop_map(|(sid, up)| SubscribeProperties {
        subscription_identifier: sid,
        user_properties: up,
    })
}

fn unsubscribe_properties() -> impl Strategy<Value = UnsubscribeProperties> {
    user_properties().prop_map(|up| UnsubscribeProperties {
        user_properties: up,
    })
}

/// DISCONNECT properties. A server never sends a Session Expiry Interval ([MQTT-3.14.2-2]).
fn disconnect_properties(from_server: bool) -> impl Strategy<Value = DisconnectProperties> {
    (
        opt(any::<u32>()),
        opt(string(20)),
        user_properties(),
        opt(string(12)),
    )
        .prop_map(move |(sei, rs, up, sr)| DisconnectProperties {
            session_expiry_interval: if from_server { None } else { sei },
            reason_string: rs,
            user_properties: up,
            server_reference: sr,
        })
}

fn auth_properties() -> impl Strategy<Value = AuthProperties> {
    (
        opt(string(12)),
        opt(binary(16)),
        opt(string(20)),
        user_properties(),
    )
        .prop_map(|(am, ad, rs, up)| AuthProperties {
            authentication_method: am,
            authentication_data: ad,
            reason_string: rs,
            user_properties: up,
        })
}

// --- packets ---------------------------------------------------------------------------

fn last_will(version: ProtocolVersion) -> impl Strategy<Value = LastWill> {
    (
        topic_name(),
        binary(32),
        qos(),
        any::<bool>(),
        v5_only(version, will_properties()),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        })
}

pub(crate) fn connect(version: ProtocolVersion) -> impl Strategy<Value = Connect> {
    (
        any::<bool>(),
        any::<u16>(),
        string(23),
        proptest::option::of(last_will(version)),
        proptest::option::of(string(12)),
        proptest::option::of(binary(16)),
        v5_only(version, connect_properties()),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // 3.1/3.1.1: no password without a user name ([MQTT-3.1.2-22]).
                let password = password.filter(|_| version.is_v5() || username.is_some());
                Connect {
                    protocol: version,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }
            },
        )
}

fn connack(version: ProtocolVersion) -> impl Strategy<Value = ConnAck> {
    let reason = if version.is_v5() {
        v5_reason(PacketType::ConnAck).boxed()
    } else {
        // The six codes that have a 3.1.1 return code (0..=5).
        (0..=5u8)
            .prop_map(|code| ReasonCode::from_connack_return_code(code).expect("0..=5"))
            .boxed()
    };
    (
        any::<bool>(),
        reason,
        v5_only(version, connack_properties()),
    )
        .prop_map(|(session_present, reason_code, properties)| ConnAck {
            session_present,
            reason_code,
            properties,
        })
}

fn publish(version: ProtocolVersion, from_server: bool) -> impl Strategy<Value = Publish> {
    (
        (any::<bool>(), qos(), any::<bool>()),
        (topic_name(), any::<bool>()),
        packet_id(),
        prop_oneof![4 => binary(64), 1 => binary(2048)],
        v5_only(version, publish_properties(from_server)),
    )
        .prop_map(
            |((dup, qos, retain), (topic, use_alias_only), id, payload, properties)| {
                let at_least_once = qos != QoS::AtMostOnce;
                // 5.0: an empty topic name stands for the Topic Alias ([MQTT-3.3.2-12]).
                let topic = if use_alias_only && properties.topic_alias.is_some() {
                    TopicName::default()
                } else {
                    topic
                };
                Publish {
                    dup: dup && at_least_once,
                    qos,
                    retain,
                    topic,
                    packet_id: Some(id).filter(|_| at_least_once),
                    payload,
                    properties: properties.into(),
                }
            },
        )
}

fn ack(version: ProtocolVersion, kind: PacketType) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        v5_only(version, v5_reason(kind)),
        v5_only(version, ack_properties()),
    )
        .prop_map(move |(packet_id, reason_code, properties)| {
            let ack = Ack {
                packet_id,
                reason_code,
                properties,
            };
            match kind {
                PacketType::PubAck => Packet::PubAck(ack),
                PacketType::PubRec => Packet::PubRec(ack),
                PacketType::PubRel => Packet::PubRel(ack),
                PacketType::PubComp => Packet::PubComp(ack),
                _ => unreachable!("not an ack: {kind}"),
            }
        })
}

fn subscription_options(version: ProtocolVersion) -> BoxedStrategy<SubscriptionOptions> {
    if !version.is_v5() {
        return qos().prop_map(SubscriptionOptions::new).boxed();
    }
    let retain_handling = select(vec![
        RetainHandling::SendAtSubscribe,
        RetainHandling::SendAtSubscribeIfNew,
        RetainHandling::DoNotSend,
    ]);
    (qos(), any::<bool>(), any::<bool>(), retain_handling)
        .prop_map(
            |(qos, no_local, retain_as_published, retain_handling)| SubscriptionOptions {
                qos,
                no_local,
                retain_as_published,
                retain_handling,
            },
        )
        .boxed()
}

fn subscribe(version: ProtocolVersion) -> impl Strategy<Value = Subscribe> {
    (
        packet_id(),
        vec((topic_filter(), subscription_options(version)), 1..6),
        v5_only(version, subscribe_properties()),
    )
        .prop_map(|(packet_id, mut filters, properties)| {
            // No Local on a shared subscription is a Protocol Error ([MQTT-3.8.3-4]).
            for (filter, options) in &mut filters {
                options.no_local &= !filter.is_shared();
            }
            Subscribe {
                packet_id,
                filters,
                properties,
            }
        })
}

fn suback(version: ProtocolVersion) -> impl Strategy<Value = SubAck> {
    let reason = if version.is_v5() {
        v5_reason(PacketType::SubAck).boxed()
    } else {
        select(vec![
            ReasonCode::Success,
            ReasonCode::GrantedQoS1,
            ReasonCode::GrantedQoS2,
            ReasonCode::UnspecifiedError,
        ])
        .boxed()
    };
    (
        packet_id(),
        vec(reason, 1..6),
        v5_only(version, ack_properties()),
    )
        .prop_map(|(packet_id, reason_codes, properties)| SubAck {
            packet_id,
            reason_codes,
            properties,
        })
}

fn unsubscribe(version: ProtocolVersion) -> impl Strategy<Value = Unsubscribe> {
    (
        packet_id(),
        vec(topic_filter(), 1..6),
        v5_only(version, unsubscribe_properties()),
    )
        .prop_map(|(packet_id, filters, properties)| Unsubscribe {
            packet_id,
            filters,
            properties,
        })
}

fn unsuback(version: ProtocolVersion) -> impl Strategy<Value = UnsubAck> {
    (
        packet_id(),
        v5_only(version, vec(v5_reason(PacketType::UnsubAck), 1..6)),
        v5_only(version, ack_properties()),
    )
        .prop_map(|(packet_id, reason_codes, properties)| UnsubAck {
            packet_id,
            reason_codes,
            properties,
        })
}

fn disconnect(version: ProtocolVersion, from_server: bool) -> impl Strategy<Value = Disconnect> {
    (
        v5_only(version, v5_reason(PacketType::Disconnect)),
        v5_only(version, disconnect_properties(from_server)),
    )
        .prop_map(|(reason_code, properties)| Disconnect {
            reason_code,
            properties,
        })
}

fn auth() -> impl Strategy<Value = Auth> {
    (v5_reason(PacketType::Auth), auth_properties()).prop_map(|(reason_code, properties)| Auth {
        reason_code,
        properties,
    })
}

/// Every packet `version` lets both sides send.
fn both_ways(version: ProtocolVersion, from_server: bool) -> Vec<BoxedStrategy<Packet>> {
    let mut packets = vec![
        publish(version, from_server)
            .prop_map(Packet::Publish)
            .boxed(),
        ack(version, PacketType::PubAck).boxed(),
        ack(version, PacketType::PubRec).boxed(),
        ack(version, PacketType::PubRel).boxed(),
        ack(version, PacketType::PubComp).boxed(),
    ];
    if version.is_v5() {
        packets.push(
            disconnect(version, from_server)
                .prop_map(Packet::Disconnect)
                .boxed(),
        );
        packets.push(auth().prop_map(Packet::Auth).boxed());
    }
    packets
}

/// A packet a client sends after its CONNECT.
pub(crate) fn client_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let mut packets = both_ways(version, false);
    packets.extend([
        subscribe(version).prop_map(Packet::Subscribe).boxed(),
        unsubscribe(version).prop_map(Packet::Unsubscribe).boxed(),
        Just(Packet::PingReq).boxed(),
    ]);
    if !version.is_v5() {
        // In 3.1/3.1.1 only the client sends DISCONNECT.
        packets.push(Just(Packet::Disconnect(Disconnect::default())).boxed());
    }
    Union::new(packets)
}

/// A packet a server sends.
pub(crate) fn server_packet(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let mut packets = both_ways(version, true);
    packets.extend([
        connack(version)
            .prop_map(|c| Packet::ConnAck(Box::new(c)))
            .boxed(),
        suback(version).prop_map(Packet::SubAck).boxed(),
        unsuback(version).prop_map(Packet::UnsubAck).boxed(),
        Just(Packet::PingResp).boxed(),
    ]);
    Union::new(packets)
}
