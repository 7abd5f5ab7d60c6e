//! Writes the seed corpus under `fuzz/seeds/<target>/`: valid packets of every type and
//! version, framed as each target reads its input. Run it after changing the input format
//! of a target (it is not instrumented, so build it without the fuzzing RUSTFLAGS):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example make_seeds
//! ```

use std::fs;
use std::path::Path;

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use midge_codec::{
    Ack, Auth, AuthProperties, ConnAck, ConnAckProperties, Connect, ConnectProperties, Disconnect,
    DisconnectProperties, LastWill, Packet, PacketId, ProtocolVersion, Publish, PublishProperties,
    QoS, ReasonCode, RetainHandling, SubAck, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, WillProperties,
};
use midge_fuzz::{RoundTripInput, Side};

fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("not zero")
}

fn topic(name: &str) -> TopicName {
    TopicName::new(name).expect("valid topic")
}

fn filter(f: &str) -> TopicFilter {
    TopicFilter::new(f).expect("valid filter")
}

fn user_properties() -> Vec<(midge_codec::ByteString, midge_codec::ByteString)> {
    vec![
        ("region".into(), "eu".into()),
        ("trace".into(), "7f3a".into()),
    ]
}

fn connect(version: ProtocolVersion) -> Packet {
    let v5 = version.is_v5();
    let mut connect = Connect::new(version, "seed-client");
    connect.will = Some(LastWill {
        topic: topic("clients/seed/status"),
        payload: Bytes::from_static(b"offline"),
        qos: QoS::AtLeastOnce,
        retain: true,
        properties: if v5 {
            WillProperties {
                will_delay_interval: Some(30),
                content_type: Some("text/plain".into()),
                user_properties: user_properties(),
                ..WillProperties::default()
            }
        } else {
            WillProperties::default()
        },
    });
    connect.username = Some("alice".into());
    connect.password = Some(Bytes::from_static(b"secret"));
    if v5 {
        connect.properties = ConnectProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(20),
            maximum_packet_size: Some(65_536),
            topic_alias_maximum: Some(10),
            user_properties: user_properties(),
            authentication_method: Some("SCRAM-SHA-256".into()),
            authentication_data: Some(Bytes::from_static(b"n,,n=alice")),
            ..ConnectProperties::default()
        };
    }
    Packet::Connect(Box::new(connect))
}

fn publish(version: ProtocolVersion, qos: QoS, from_server: bool) -> Packet {
    let mut publish = Publish::new(topic("sensors/42/temperature"), "21.5");
    publish.qos = qos;
    publish.packet_id = PacketId::new(10).filter(|_| qos != QoS::AtMostOnce);
    publish.retain = qos == QoS::AtLeastOnce;
    publish.dup = qos == QoS::ExactlyOnce;
    if version.is_v5() {
        publish.properties = PublishProperties {
            payload_format_indicator: Some(true),
            message_expiry_interval: Some(120),
            topic_alias: Some(3),
            response_topic: Some(topic("replies/seed")),
            correlation_data: Some(Bytes::from_static(b"req-1")),
            user_properties: user_properties(),
            subscription_identifiers: if from_server {
                vec![1, 300]
            } else {
                Vec::new()
            },
            content_type: Some("application/json".into()),
        }
        .into();
    }
    Packet::Publish(publish)
}

fn ack(version: ProtocolVersion, n: u16) -> Ack {
    let mut ack = Ack::new(id(n));
    if version.is_v5() && n % 2 == 0 {
        ack.reason_code = ReasonCode::Success;
        ack.properties.reason_string = Some("ok".into());
        ack.properties.user_properties = user_properties();
    }
    ack
}

fn subscribe(version: ProtocolVersion) -> Packet {
    let v5 = version.is_v5();
    let mut options = SubscriptionOptions::new(QoS::ExactlyOnce);
    if v5 {
        options.no_local = true;
        options.retain_as_published = true;
        options.retain_handling = RetainHandling::SendAtSubscribeIfNew;
    }
    Packet::Subscribe(Subscribe {
        packet_id: id(11),
        filters: vec![
            (filter("sensors/+/temperature"), options),
            (
                filter("alerts/#"),
                SubscriptionOptions::new(QoS::AtLeastOnce),
            ),
            (
                filter("$share/group/jobs/+"),
                SubscriptionOptions::new(QoS::AtMostOnce),
            ),
        ],
        properties: if v5 {
            SubscribeProperties {
                subscription_identifier: Some(300),
                user_properties: user_properties(),
            }
        } else {
            SubscribeProperties::default()
        },
    })
}

fn unsubscribe(version: ProtocolVersion) -> Packet {
    let mut unsubscribe = Unsubscribe {
        packet_id: id(12),
        filters: vec![filter("sensors/+/temperature"), filter("alerts/#")],
        properties: Default::default(),
    };
    if version.is_v5() {
        unsubscribe.properties.user_properties = user_properties();
    }
    Packet::Unsubscribe(unsubscribe)
}

fn disconnect(version: ProtocolVersion, from_server: bool) -> Packet {
    let mut disconnect = Disconnect::default();
    if version.is_v5() {
        disconnect.reason_code = if from_server {
            ReasonCode::ServerShuttingDown
        } else {
            ReasonCode::DisconnectWithWillMessage
        };
        disconnect.properties = DisconnectProperties {
            session_expiry_interval: Some(60).filter(|_| !from_server),
            reason_string: Some("bye".into()),
            user_properties: user_properties(),
            server_reference: Some("other.example".into()).filter(|_| from_server),
        };
    }
    Packet::Disconnect(disconnect)
}

fn auth() -> Packet {
    Packet::Auth(Auth {
        reason_code: ReasonCode::ContinueAuthentication,
        properties: AuthProperties {
            authentication_method: Some("SCRAM-SHA-256".into()),
            authentication_data: Some(Bytes::from_static(b"r=nonce")),
            reason_string: None,
            user_properties: Vec::new(),
        },
    })
}

fn connack(version: ProtocolVersion) -> Packet {
    let mut connack = ConnAck {
        session_present: true,
        ..ConnAck::default()
    };
    if version.is_v5() {
        connack.properties = ConnAckProperties {
            session_expiry_interval: Some(3600),
            receive_maximum: Some(100),
            maximum_qos: Some(QoS::AtLeastOnce),
            retain_available: Some(true),
            maximum_packet_size: Some(1 << 20),
            assigned_client_identifier: Some("auto-1234".into()),
            topic_alias_maximum: Some(16),
            wildcard_subscription_available: Some(true),
            shared_subscription_available: Some(true),
            server_keep_alive: Some(30),
            user_properties: user_properties(),
            ..ConnAckProperties::default()
        };
    }
    Packet::ConnAck(Box::new(connack))
}

fn suback(version: ProtocolVersion) -> Packet {
    let mut suback = SubAck {
        packet_id: id(11),
        reason_codes: vec![
            ReasonCode::GrantedQoS2,
            ReasonCode::GrantedQoS1,
            ReasonCode::UnspecifiedError,
        ],
        properties: Default::default(),
    };
    if version.is_v5() {
        suback
            .reason_codes
            .push(ReasonCode::SharedSubscriptionsNotSupported);
        suback.properties.reason_string = Some("partly".into());
    }
    Packet::SubAck(suback)
}

fn unsuback(version: ProtocolVersion) -> Packet {
    let mut unsuback = UnsubAck {
        packet_id: id(12),
        reason_codes: Vec::new(),
        properties: Default::default(),
    };
    if version.is_v5() {
        unsuback.reason_codes = vec![ReasonCode::Success, ReasonCode::NoSubscriptionExisted];
    }
    Packet::UnsubAck(unsuback)
}

/// Packets a client sends after CONNECT, by name.
fn client_packets(version: ProtocolVersion) -> Vec<(&'static str, Packet)> {
    let mut packets = vec![
        ("publish-qos0", publish(version, QoS::AtMostOnce, false)),
        ("publish-qos1", publish(version, QoS::AtLeastOnce, false)),
        ("publish-qos2", publish(version, QoS::ExactlyOnce, false)),
        ("puback", Packet::PubAck(ack(version, 1))),
        ("pubrec", Packet::PubRec(ack(version, 2))),
        ("pubrel", Packet::PubRel(ack(version, 3))),
        ("pubcomp", Packet::PubComp(ack(version, 4))),
        ("subscribe", subscribe(version)),
        ("unsubscribe", unsubscribe(version)),
        ("pingreq", Packet::PingReq),
        ("disconnect", disconnect(version, false)),
    ];
    if version.is_v5() {
        packets.push(("auth", auth()));
    }
    packets
}

/// Packets a server sends, by name.
fn server_packets(version: ProtocolVersion) -> Vec<(&'static str, Packet)> {
    let mut packets = vec![
        ("connack", connack(version)),
        ("publish-qos0", publish(version, QoS::AtMostOnce, true)),
        ("publish-qos1", publish(version, QoS::AtLeastOnce, true)),
        ("publish-qos2", publish(version, QoS::ExactlyOnce, true)),
        ("puback", Packet::PubAck(ack(version, 2))),
        ("pubrec", Packet::PubRec(ack(version, 1))),
        ("pubrel", Packet::PubRel(ack(version, 4))),
        ("pubcomp", Packet::PubComp(ack(version, 3))),
        ("suback", suback(version)),
        ("unsuback", unsuback(version)),
        ("pingresp", Packet::PingResp),
    ];
    if version.is_v5() {
        packets.push(("disconnect", disconnect(version, true)));
        packets.push(("auth", auth()));
    }
    packets
}

fn encode_all<'a>(
    packets: impl IntoIterator<Item = &'a Packet>,
    version: ProtocolVersion,
) -> Vec<u8> {
    let mut wire = BytesMut::new();
    for packet in packets {
        packet
            .encode(version, &mut wire)
            .expect("seed packets encode");
    }
    wire.to_vec()
}

/// Every seed stream of `version`: each packet alone, then whole conversations.
/// `Side` says which decoder the stream is for; CONNECT opens a fresh server's streams.
fn streams(version: ProtocolVersion) -> Vec<(String, Side, Vec<u8>)> {
    let v = match version {
        ProtocolVersion::V31 => "v31",
        ProtocolVersion::V311 => "v311",
        ProtocolVersion::V5 => "v5",
    };
    let client = client_packets(version);
    let server = server_packets(version);
    let mut streams = Vec::new();
    for (name, packet) in &client {
        let wire = encode_all([packet], version);
        streams.push((format!("{v}-to-server-{name}"), Side::ConnectedServer, wire));
    }
    for (name, packet) in &server {
        let wire = encode_all([packet], version);
        streams.push((format!("{v}-to-client-{name}"), Side::Client, wire));
    }
    let connect = connect(version);
    let session = std::iter::once(&connect).chain(client.iter().map(|(_, p)| p));
    streams.push((
        format!("{v}-to-server-session"),
        Side::FreshServer,
        encode_all(session, version),
    ));
    let replies = server.iter().map(|(_, p)| p);
    streams.push((
        format!("{v}-to-client-session"),
        Side::Client,
        encode_all(replies, version),
    ));
    streams
}

/// The bytes that `arbitrary` turns into a `RoundTripInput` with this header (found by
/// trying, so that a change in `arbitrary`'s format fails here instead of silently).
fn round_trip_seed(version: ProtocolVersion, side: Side, chunking: u8, stream: &[u8]) -> Vec<u8> {
    const PICKS: [[u8; 4]; 3] = [[0, 0, 0, 0], [0, 0, 0, 0x80], [0xff; 4]];
    for v in PICKS {
        for s in PICKS {
            let mut data = [&v[..], &s[..], &[chunking], stream].concat();
            let input = RoundTripInput::arbitrary_take_rest(Unstructured::new(&data))
                .expect("any bytes are an input");
            if input.version == version && input.side == side && input.stream == stream {
                return std::mem::take(&mut data);
            }
        }
    }
    panic!("no header gives {version} {side:?}");
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    fs::create_dir_all(dir).expect("create seed dir");
    fs::write(dir.join(name), data).expect("write seed");
}

fn main() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for version in [
        ProtocolVersion::V31,
        ProtocolVersion::V311,
        ProtocolVersion::V5,
    ] {
        let (target, version_bit) = match version {
            ProtocolVersion::V31 => ("decode_v311", 0),
            ProtocolVersion::V311 => ("decode_v311", 1),
            ProtocolVersion::V5 => ("decode_v5", 0),
        };
        for (i, (name, side, stream)) in streams(version).into_iter().enumerate() {
            // decode_*: byte 0 = version bit | fresh-server bit, byte 1 = chunking seed.
            let fresh = if side == Side::FreshServer { 2 } else { 0 };
            let chunking = (i % 4) as u8 * 37;
            let data = [&[version_bit | fresh, chunking][..], &stream].concat();
            write(&seeds.join(target), &name, &data);
            let data = round_trip_seed(version, side, chunking, &stream);
            write(&seeds.join("roundtrip"), &name, &data);
        }
    }
    println!("seeds written under {}", seeds.display());
}
