//! Malformed packets and protocol violations: each closes only the connection it came
//! on — a 5.0 client first gets DISCONNECT with the matching reason code (0x81
//! Malformed Packet, 0x82 Protocol Error, 0x93 Receive Maximum exceeded, 0x95 Packet
//! too large) — and the broker keeps serving everyone else.

mod common;

use bytes::{BufMut, BytesMut};
use common::*;
use midge_codec::{ConnAck, Packet, ProtocolVersion, QoS, ReasonCode, SubAck};

/// A PUBLISH built byte by byte: `flags` is the low nibble of the first byte.
fn raw_publish(
    version: ProtocolVersion,
    flags: u8,
    topic: &[u8],
    packet_id: Option<u16>,
) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_u16(topic.len() as u16);
    body.put_slice(topic);
    if let Some(id) = packet_id {
        body.put_u16(id);
    }
    if version.is_v5() {
        body.put_u8(0); // no properties
    }
    body.put_slice(b"payload");
    let mut out = vec![0x30 | flags, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

/// A SUBSCRIBE built byte by byte with one filter and the given options byte.
fn raw_subscribe(version: ProtocolVersion, first_byte: u8, filter: &[u8], options: u8) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_u16(1);
    if version.is_v5() {
        body.put_u8(0);
    }
    body.put_u16(filter.len() as u16);
    body.put_slice(filter);
    body.put_u8(options);
    let mut out = vec![first_byte, body.len() as u8];
    out.extend_from_slice(&body);
    out
}

fn encoded(version: ProtocolVersion, packet: Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.encode(version, &mut buf).unwrap();
    buf.to_vec()
}

/// Sends `bytes` on a fresh connection of each version and expects it to be closed
/// (5.0: after DISCONNECT `reason`), while a bystander connected all along still gets
/// its messages.
async fn closes_only_that_connection(
    name: &'static str,
    versions: &[ProtocolVersion],
    bytes: impl Fn(ProtocolVersion) -> Vec<u8>,
    reason: ReasonCode,
) {
    let broker = start().await;
    let mut bystander = Client::connect(broker.local_addr(), V311, "bystander").await;
    bystander.subscribe("alive", QoS::AtLeastOnce).await;
    for &v in versions {
        let mut c = Client::connect(broker.local_addr(), v, &cid("bad", v)).await;
        c.send_raw(&bytes(v)).await;
        c.expect_disconnect(reason).await;
        let mut other = Client::connect(broker.local_addr(), v, &cid("other", v)).await;
        other.pub_msg("alive", name, QoS::AtLeastOnce).await;
        let p = bystander.recv_and_ack().await;
        assert_eq!(
            &p.payload[..],
            name.as_bytes(),
            "{name} ({v}): the broker still serves others"
        );
    }
}

const ALL: &[ProtocolVersion] = &VERSIONS;

/// conformance: v5 MQTT-3.3.1-4
/// conformance: v3.1.1 MQTT-3.3.1-4
/// conformance: v5 MQTT-4.13.1-1
/// conformance: v3.1.1 MQTT-4.8.0-1
#[tokio::test]
async fn publish_with_qos_3_is_malformed() {
    closes_only_that_connection(
        "qos3",
        ALL,
        |v| raw_publish(v, 0b0110, b"t", Some(1)),
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// conformance: v5 MQTT-3.3.1-2
/// conformance: v3.1.1 MQTT-3.3.1-2
#[tokio::test]
async fn dup_on_qos0_is_malformed() {
    closes_only_that_connection(
        "dup0",
        ALL,
        |v| raw_publish(v, 0b1000, b"t", None),
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// conformance: v5 MQTT-3.3.2-2
/// conformance: v5 MQTT-4.7.0-1
/// conformance: v3.1.1 MQTT-3.3.2-2
/// conformance: v3.1.1 MQTT-4.7.1-1
#[tokio::test]
async fn wildcard_in_a_topic_name_is_malformed() {
    closes_only_that_connection(
        "wild",
        ALL,
        |v| raw_publish(v, 0, b"a/+", None),
        ReasonCode::MalformedPacket,
    )
    .await;
    closes_only_that_connection(
        "hash",
        ALL,
        |v| raw_publish(v, 0, b"a/#", None),
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// conformance: v5 MQTT-4.7.3-2
/// conformance: v3.1.1 MQTT-4.7.3-2
/// conformance: v3.1.1 MQTT-1.5.3-2
#[tokio::test]
async fn null_character_in_a_topic_is_malformed() {
    closes_only_that_connection(
        "nul",
        ALL,
        |v| raw_publish(v, 0, b"a\0b", None),
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// conformance: v5 MQTT-1.5.4-1
/// conformance: v5 MQTT-3.3.2-1
/// conformance: v3.1.1 MQTT-1.5.3-1
/// conformance: v3.1.1 MQTT-3.3.2-1
#[tokio::test]
async fn invalid_utf8_in_a_topic_is_malformed() {
    closes_only_that_connection(
        "utf8",
        ALL,
        |v| raw_publish(v, 0, b"a\xff", None),
        ReasonCode::MalformedPacket,
    )
    .await;
    // An encoded surrogate (U+D800).
    closes_only_that_connection(
        "surrogate",
        ALL,
        |v| raw_publish(v, 0, b"\xed\xa0\x80", None),
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// conformance: v5 MQTT-4.7.3-1
/// conformance: v3.1.1 MQTT-4.7.3-1
#[tokio::test]
async fn empty_topic_name_without_alias_is_an_error() {
    closes_only_that_connection(
        "empty-311",
        &[V31, V311],
        |v| raw_publish(v, 0, b"", None),
        ReasonCode::MalformedPacket,
    )
    .await;
    closes_only_that_connection(
        "empty-5",
        &[V5],
        |v| raw_publish(v, 0, b"", None),
        ReasonCode::ProtocolError,
    )
    .await;
}

/// conformance: v5 MQTT-2.2.1-3
/// conformance: v3.1.1 MQTT-2.3.1-1
#[tokio::test]
async fn packet_id_zero_is_a_protocol_error() {
    closes_only_that_connection(
        "pid0",
        ALL,
        |v| raw_publish(v, 0b0010, b"t", Some(0)),
        ReasonCode::ProtocolError,
    )
    .await;
}

/// conformance: v5 MQTT-3.6.1-1
/// conformance: v5 MQTT-3.8.1-1
/// conformance: v5 MQTT-3.10.1-1
/// conformance: v5 MQTT-3.14.1-1
/// conformance: v5 MQTT-2.1.3-1
/// conformance: v3.1.1 MQTT-3.6.1-1
/// conformance: v3.1.1 MQTT-3.8.1-1
/// conformance: v3.1.1 MQTT-3.10.1-1
/// conformance: v3.1.1 MQTT-3.14.1-1
/// conformance: v3.1.1 MQTT-2.2.2-1
/// conformance: v3.1.1 MQTT-2.2.2-2
#[tokio::test]
async fn reserved_fixed_header_flags_are_malformed() {
    // PUBREL with flags 0000 instead of 0010.
    closes_only_that_connection(
        "pubrel",
        ALL,
        |_| vec![0x60, 0x02, 0x00, 0x01],
        ReasonCode::MalformedPacket,
    )
    .await;
    // SUBSCRIBE with flags 0000.
    closes_only_that_connection(
        "subscribe",
        ALL,
        |v| raw_subscribe(v, 0x80, b"t", 0),
        ReasonCode::MalformedPacket,
    )
    .await;
    // UNSUBSCRIBE with flags 0000.
    closes_only_that_connection(
        "unsubscribe",
        ALL,
        |_| vec![0xa0, 0x05, 0x00, 0x01, 0x00, 0x01, b't'],
        ReasonCode::MalformedPacket,
    )
    .await;
    // PINGREQ and DISCONNECT with flags 0001.
    closes_only_that_connection(
        "pingreq",
        ALL,
        |_| vec![0xc1, 0x00],
        ReasonCode::MalformedPacket,
    )
    .await;
    closes_only_that_connection(
        "disconnect",
        ALL,
        |_| vec![0xe1, 0x00],
        ReasonCode::MalformedPacket,
    )
    .await;
}

#[tokio::test]
async fn reserved_packet_type_is_malformed() {
    closes_only_that_connection(
        "type0",
        ALL,
        |_| vec![0x00, 0x00],
        ReasonCode::MalformedPacket,
    )
    .await;
    // AUTH does not exist before 5.0.
    closes_only_that_connection(
        "auth-311",
        &[V31, V311],
        |_| vec![0xf0, 0x00],
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// A remaining length of five bytes, or one that is longer than it needs to be.
///
/// conformance: v5 MQTT-1.5.5-1
#[tokio::test]
async fn bad_remaining_length_is_malformed() {
    closes_only_that_connection(
        "varint5",
        ALL,
        |_| vec![0xc0, 0x80, 0x80, 0x80, 0x80, 0x01],
        ReasonCode::MalformedPacket,
    )
    .await;
    closes_only_that_connection(
        "overlong",
        ALL,
        |_| vec![0xc0, 0x80, 0x00],
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// conformance: v5 MQTT-3.8.3-2
/// conformance: v5 MQTT-3.10.3-2
/// conformance: v3.1.1 MQTT-3.8.3-3
/// conformance: v3.1.1 MQTT-3.10.3-2
#[tokio::test]
async fn subscribe_or_unsubscribe_without_filters_is_a_protocol_error() {
    closes_only_that_connection(
        "nosub",
        ALL,
        |v| {
            if v.is_v5() {
                vec![0x82, 0x03, 0x00, 0x01, 0x00]
            } else {
                vec![0x82, 0x02, 0x00, 0x01]
            }
        },
        ReasonCode::ProtocolError,
    )
    .await;
    closes_only_that_connection(
        "nounsub",
        ALL,
        |v| {
            if v.is_v5() {
                vec![0xa2, 0x03, 0x00, 0x01, 0x00]
            } else {
                vec![0xa2, 0x02, 0x00, 0x01]
            }
        },
        ReasonCode::ProtocolError,
    )
    .await;
}

/// conformance: v5 MQTT-3.8.3-5
/// conformance: v5 MQTT-4.7.1-1
/// conformance: v5 MQTT-4.7.1-2
/// conformance: v3.1.1 MQTT-4.7.1-2
/// conformance: v3.1.1 MQTT-4.7.1-3
#[tokio::test]
async fn bad_subscriptions_are_malformed() {
    closes_only_that_connection(
        "opts",
        ALL,
        |v| raw_subscribe(v, 0x82, b"t", 0xc0),
        ReasonCode::MalformedPacket,
    )
    .await;
    closes_only_that_connection(
        "hash-mid",
        ALL,
        |v| raw_subscribe(v, 0x82, b"a/#/b", 0),
        ReasonCode::MalformedPacket,
    )
    .await;
    closes_only_that_connection(
        "plus-part",
        ALL,
        |v| raw_subscribe(v, 0x82, b"a/b+", 0),
        ReasonCode::MalformedPacket,
    )
    .await;
    closes_only_that_connection(
        "share",
        ALL,
        |v| raw_subscribe(v, 0x82, b"$share/g", 0),
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// Retain Handling 3 and Maximum QoS 3 in 5.0 subscription options.
#[tokio::test]
async fn bad_v5_subscription_options_are_protocol_errors() {
    closes_only_that_connection(
        "rh3",
        &[V5],
        |v| raw_subscribe(v, 0x82, b"t", 0x30),
        ReasonCode::ProtocolError,
    )
    .await;
    closes_only_that_connection(
        "qos3",
        &[V5],
        |v| raw_subscribe(v, 0x82, b"t", 0x03),
        ReasonCode::ProtocolError,
    )
    .await;
}

/// Packets only a server sends.
///
/// conformance: v5 MQTT-4.13.1-1
/// conformance: v3.1.1 MQTT-4.8.0-1
#[tokio::test]
async fn server_only_packets_from_a_client_are_protocol_errors() {
    closes_only_that_connection(
        "connack",
        ALL,
        |v| encoded(v, Packet::ConnAck(Box::<ConnAck>::default())),
        ReasonCode::ProtocolError,
    )
    .await;
    closes_only_that_connection(
        "suback",
        ALL,
        |v| {
            encoded(
                v,
                Packet::SubAck(SubAck {
                    packet_id: pid(1),
                    reason_codes: vec![ReasonCode::Success],
                    properties: Default::default(),
                }),
            )
        },
        ReasonCode::ProtocolError,
    )
    .await;
    closes_only_that_connection(
        "pingresp",
        ALL,
        |v| encoded(v, Packet::PingResp),
        ReasonCode::ProtocolError,
    )
    .await;
}

/// conformance: v5 MQTT-3.3.4-6
#[tokio::test]
async fn subscription_identifier_from_a_client_is_a_protocol_error() {
    closes_only_that_connection(
        "subid",
        &[V5],
        |v| {
            let mut p = publish("t", "x", QoS::AtMostOnce);
            p.properties.subscription_identifiers = vec![3];
            encoded(v, Packet::Publish(p))
        },
        ReasonCode::ProtocolError,
    )
    .await;
}

/// Properties twice, or where they do not belong (5.0).
#[tokio::test]
async fn bad_v5_properties_are_rejected() {
    // PUBLISH with the Payload Format Indicator twice: Protocol Error.
    closes_only_that_connection(
        "dup-prop",
        &[V5],
        |_| {
            vec![
                0x30, 0x0a, 0x00, 0x01, b't', 0x04, 0x01, 0x00, 0x01, 0x01, b'x', b'y',
            ]
        },
        ReasonCode::ProtocolError,
    )
    .await;
    // PUBLISH with Session Expiry Interval: not allowed on PUBLISH, malformed.
    closes_only_that_connection(
        "wrong-prop",
        &[V5],
        |_| {
            vec![
                0x30, 0x0b, 0x00, 0x01, b't', 0x05, 0x11, 0x00, 0x00, 0x00, 0x01, b'x', b'y',
            ]
        },
        ReasonCode::MalformedPacket,
    )
    .await;
}

/// conformance: v5 MQTT-3.3.4-7
#[tokio::test]
async fn exceeding_the_brokers_receive_maximum_closes_with_0x93() {
    closes_only_that_connection(
        "recvmax",
        &[V5],
        |v| {
            // max_inflight_messages is 20: 21 QoS 2 PUBLISHes without PUBREL.
            (1..=21)
                .flat_map(|id| raw_publish(v, 0b0100, b"rm", Some(id)))
                .collect()
        },
        ReasonCode::ReceiveMaximumExceeded,
    )
    .await;
}

/// A packet over the broker's Maximum Packet Size closes with 0x95; the CONNACK tells
/// the limit.
///
/// conformance: v5 MQTT-3.2.2-15
#[tokio::test]
async fn packet_over_the_brokers_maximum_closes_with_0x95() {
    let mut config = test_config();
    config.max_packet_size = 1024;
    let broker = start_with(config).await;
    let mut bystander = Client::connect(broker.local_addr(), V5, "big-bystander").await;
    bystander.subscribe("big", QoS::AtMostOnce).await;
    for v in VERSIONS {
        let (mut c, ack) =
            Client::connect_ok(broker.local_addr(), connect_packet(v, &cid("big", v))).await;
        if v.is_v5() {
            assert_eq!(ack.properties.maximum_packet_size, Some(1024));
        }
        let mut fits = publish("big", "", QoS::AtMostOnce);
        fits.payload = vec![b'.'; 900].into();
        c.publish(fits).await;
        assert_eq!(bystander.recv_publish().await.payload.len(), 900);
        let mut p = publish("big", "", QoS::AtMostOnce);
        p.payload = vec![b'x'; 2000].into();
        c.send(Packet::Publish(p)).await;
        c.expect_disconnect(ReasonCode::PacketTooLarge).await;
        bystander.ping().await;
    }
}

/// Garbage and an abrupt close before or after CONNECT disturb no one else.
#[tokio::test]
async fn garbage_and_abrupt_closes_disturb_no_one_else() {
    let broker = start().await;
    let mut bystander = Client::connect(broker.local_addr(), V5, "garbage-bystander").await;
    bystander.subscribe("alive", QoS::AtMostOnce).await;
    for junk in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0xff; 64],
        &[0x10, 0xff, 0xff, 0xff, 0xff, 0x7f],
    ] {
        let mut c = Client::open(broker.local_addr(), V5).await;
        c.send_raw(junk).await;
        c.expect_closed().await;
    }
    // A CONNECT cut in the middle, then the socket closes.
    let mut buf = BytesMut::new();
    Packet::Connect(Box::new(connect_packet(V5, "cut")))
        .encode(V5, &mut buf)
        .unwrap();
    let mut c = Client::open(broker.local_addr(), V5).await;
    c.send_raw(&buf[..buf.len() / 2]).await;
    c.drop_connection();
    // A PUBLISH cut in the middle after CONNECT.
    let mut c = Client::connect(broker.local_addr(), V5, "cut2").await;
    c.send_raw(&raw_publish(V5, 0, b"alive", None)[..6]).await;
    c.drop_connection();
    bystander.pub_msg("alive", "still", QoS::AtMostOnce).await;
    assert_eq!(&bystander.recv_publish().await.payload[..], b"still");
}

/// Reads what the broker sends until it closes the connection.
async fn read_until_closed(client: &mut Client) -> Vec<Packet> {
    let mut packets = Vec::new();
    loop {
        match client.recv_within(TIMEOUT).await {
            Recv::Packet(p) => packets.push(p),
            Recv::Closed => return packets,
            other => panic!("expected packets then close, got {other:?}"),
        }
    }
}

/// A DISCONNECT from the broker is the last packet on its connection, and the broker
/// closes the connection after it, even while messages wait to be sent to that client.
/// It has no Session Expiry Interval, no Reason String and no User Property, so none of
/// them makes it outgrow the client's Maximum Packet Size. Two ways to get one: a
/// protocol error, and a take-over.
///
/// conformance: v5 MQTT-3.14.4-1
/// conformance: v5 MQTT-3.14.4-2
/// conformance: v5 MQTT-3.14.2-2
/// conformance: v5 MQTT-3.14.2-3
/// conformance: v5 MQTT-3.14.2-4
/// conformance: v5 MQTT-4.13.2-1
#[tokio::test]
async fn server_disconnect_is_the_last_packet_before_the_close() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut publisher = Client::connect(addr, V5, "last-pub").await;
    for (id, reason) in [
        ("last-error", ReasonCode::ProtocolError),
        ("last-takeover", ReasonCode::SessionTakenOver),
    ] {
        let mut connect = persistent(V5, id);
        connect.properties.receive_maximum = Some(1);
        connect.properties.maximum_packet_size = Some(64);
        let (mut c, _) = Client::connect_ok(addr, connect.clone()).await;
        c.subscribe(id, QoS::AtLeastOnce).await;
        for _ in 0..5 {
            publisher.pub_msg(id, "queued", QoS::AtLeastOnce).await;
        }
        // Receive Maximum 1: one in flight, four waiting.
        let first = c.recv_publish().await;
        let ack = Packet::PubAck(midge_codec::Ack::new(first.packet_id.unwrap()));
        if reason == ReasonCode::ProtocolError {
            // The PUBACK makes room for the next message; the second CONNECT in the same
            // write is a protocol error.
            let mut bytes = encoded(V5, ack);
            bytes.extend(encoded(V5, Packet::Connect(Box::new(connect))));
            c.send_raw(&bytes).await;
        } else {
            c.send(ack).await;
            c.ping().await;
            let (_new, ack) = Client::connect_ok(addr, connect).await;
            assert!(ack.session_present);
        }
        let packets = read_until_closed(&mut c).await;
        let Some((Packet::Disconnect(d), before)) = packets.split_last() else {
            panic!("{id}: expected DISCONNECT last, got {packets:?}");
        };
        assert_eq!(d.reason_code, reason, "{id}");
        assert!(d.properties.is_empty(), "{id}: {d:?}");
        assert!(
            before.iter().all(|p| matches!(p, Packet::Publish(_))),
            "{id}: {packets:?}"
        );
    }
}
