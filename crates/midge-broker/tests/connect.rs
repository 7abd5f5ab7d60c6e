//! CONNECT and CONNACK: protocol name and level, client identifiers, clean start and
//! session present, keep alive, the connect timeout, a second CONNECT and session
//! take-over — for MQTT 3.1, 3.1.1 and 5.0 clients.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::*;
use midge_codec::{Packet, QoS, ReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions};

/// Encodes `connect` with its protocol level byte replaced by `level`.
fn connect_bytes_with_level(version: midge_codec::ProtocolVersion, level: u8) -> BytesMut {
    let mut buf = BytesMut::new();
    Packet::Connect(Box::new(connect_packet(version, "lvl")))
        .encode(version, &mut buf)
        .unwrap();
    // Fixed header (2 bytes), then the protocol name as a 2-byte length and the name.
    let name_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    buf[4 + name_len] = level;
    buf
}

/// Reads what the broker sends until it closes, decoding with a client decoder of
/// `version`; returns the packets.
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

/// conformance: v5 MQTT-3.1.4-5
/// conformance: v5 MQTT-3.2.0-1
/// conformance: v5 MQTT-3.2.2-2
/// conformance: v3.1.1 MQTT-3.1.4-4
/// conformance: v3.1.1 MQTT-3.2.0-1
/// conformance: v3.1.1 MQTT-3.2.2-1
#[tokio::test]
async fn connect_is_acknowledged_with_success_in_every_version() {
    let broker = start().await;
    for v in VERSIONS {
        let (mut c, ack) =
            Client::connect_ok(broker.local_addr(), connect_packet(v, &cid("ok", v))).await;
        assert!(!ack.session_present, "{v}");
        c.ping().await;
    }
}

/// conformance: v3.1.1 MQTT-3.1.2-2
/// conformance: v3.1.1 MQTT-3.2.2-4
#[tokio::test]
async fn unsupported_protocol_level_gets_return_code_1_in_3_1_1_form() {
    let broker = start().await;
    // Levels 2 and 3 with the name "MQTT" (3.1 is "MQIsdp" level 3).
    for level in [2u8, 3] {
        let mut c = Client::open(broker.local_addr(), V311).await;
        c.send_raw(&connect_bytes_with_level(V311, level)).await;
        let packets = read_until_closed(&mut c).await;
        match &packets[..] {
            [Packet::ConnAck(ack)] => {
                assert_eq!(ack.reason_code, ReasonCode::UnsupportedProtocolVersion);
                assert!(!ack.session_present);
            }
            other => panic!("level {level}: expected CONNACK 1, got {other:?}"),
        }
    }
}

/// conformance: v5 MQTT-3.1.2-2
/// conformance: v5 MQTT-3.2.2-6
#[tokio::test]
async fn protocol_level_above_5_gets_connack_0x84_in_5_0_form() {
    let broker = start().await;
    let mut c = Client::open(broker.local_addr(), V5).await;
    c.send_raw(&connect_bytes_with_level(V5, 6)).await;
    let packets = read_until_closed(&mut c).await;
    match &packets[..] {
        [Packet::ConnAck(ack)] => {
            assert_eq!(ack.reason_code, ReasonCode::UnsupportedProtocolVersion);
            assert!(!ack.session_present);
        }
        other => panic!("expected CONNACK 0x84, got {other:?}"),
    }
}

/// conformance: v5 MQTT-3.1.2-1
/// conformance: v3.1.1 MQTT-3.1.2-1
#[tokio::test]
async fn wrong_protocol_name_is_not_accepted() {
    let broker = start().await;
    let mut buf = BytesMut::new();
    Packet::Connect(Box::new(connect_packet(V311, "name")))
        .encode(V311, &mut buf)
        .unwrap();
    buf[7] = b'X'; // "MQTT" → "MQTX"
    let mut c = Client::open(broker.local_addr(), V311).await;
    c.send_raw(&buf).await;
    for p in read_until_closed(&mut c).await {
        assert!(
            matches!(&p, Packet::ConnAck(a) if a.reason_code.is_error()),
            "only a refusing CONNACK may come: {p:?}"
        );
    }
}

/// A malformed CONNECT (the reserved flag set) is one that no CONNACK return code fits:
/// the connection closes without a CONNACK.
///
/// conformance: v5 MQTT-3.1.2-3
/// conformance: v5 MQTT-3.1.4-1
/// conformance: v3.1.1 MQTT-3.1.2-3
/// conformance: v3.1.1 MQTT-3.1.4-1
/// conformance: v3.1.1 MQTT-3.2.2-6
#[tokio::test]
async fn reserved_connect_flag_closes_without_connack() {
    let broker = start().await;
    for v in VERSIONS {
        let mut buf = BytesMut::new();
        Packet::Connect(Box::new(connect_packet(v, "rsv")))
            .encode(v, &mut buf)
            .unwrap();
        let name_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
        buf[5 + name_len] |= 0x01; // the reserved bit of the connect flags
        let mut c = Client::open(broker.local_addr(), v).await;
        c.send_raw(&buf).await;
        c.expect_closed().await;
    }
}

/// conformance: v5 MQTT-3.1.3-6
/// conformance: v5 MQTT-3.1.3-7
/// conformance: v5 MQTT-3.2.2-16
/// conformance: v3.1.1 MQTT-3.1.3-6
#[tokio::test]
async fn empty_client_id_is_assigned_a_unique_one() {
    let broker = start().await;
    let (_a, ack_a) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "")).await;
    let (_b, ack_b) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "")).await;
    let id_a = ack_a
        .properties
        .assigned_client_identifier
        .expect("assigned id");
    let id_b = ack_b
        .properties
        .assigned_client_identifier
        .expect("assigned id");
    assert!(!id_a.is_empty());
    assert_ne!(id_a, id_b);

    // 5.0 allows an empty id without Clean Start too.
    let mut connect = connect_packet(V5, "");
    connect.clean_start = false;
    let (_c, ack_c) = Client::connect_ok(broker.local_addr(), connect).await;
    assert!(!ack_c.session_present);
    assert!(ack_c.properties.assigned_client_identifier.is_some());

    // 3.1.1 with Clean Session 1: accepted, nothing to report the id in.
    let (mut d, ack_d) = Client::connect_ok(broker.local_addr(), connect_packet(V311, "")).await;
    assert!(ack_d.properties.assigned_client_identifier.is_none());
    d.ping().await;
}

/// conformance: v3.1.1 MQTT-3.1.3-8
/// conformance: v3.1.1 MQTT-3.1.3-9
/// conformance: v3.1.1 MQTT-3.2.2-4
/// conformance: v3.1.1 MQTT-3.2.2-5
#[tokio::test]
async fn empty_client_id_without_clean_session_is_rejected_with_code_2() {
    let broker = start().await;
    for v in [V31, V311] {
        let mut connect = connect_packet(v, "");
        connect.clean_start = false;
        let (mut c, ack) = Client::connect_with(broker.local_addr(), connect).await;
        assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid, "{v}");
        assert!(!ack.session_present);
        c.expect_closed().await;
    }
    // 3.1 requires a client id of 1 to 23 characters even with Clean Session.
    let (mut c, ack) = Client::connect_with(broker.local_addr(), connect_packet(V31, "")).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    c.expect_closed().await;
}

/// conformance: v5 MQTT-3.2.2-2
/// conformance: v5 MQTT-3.2.2-3
/// conformance: v5 MQTT-3.1.2-4
/// conformance: v5 MQTT-3.1.2-6
/// conformance: v3.1.1 MQTT-3.2.2-1
/// conformance: v3.1.1 MQTT-3.2.2-2
/// conformance: v3.1.1 MQTT-3.2.2-3
#[tokio::test]
async fn session_present_reports_a_resumed_session() {
    let broker = start().await;
    for v in VERSIONS {
        let id = cid("present", v);
        let persistent = || {
            let mut c = connect_packet(v, &id);
            c.clean_start = false;
            c.properties.session_expiry_interval = v.is_v5().then_some(60);
            c
        };
        // No session yet: Session Present 0 even without Clean Start.
        let (c, ack) = Client::connect_ok(broker.local_addr(), persistent()).await;
        assert!(!ack.session_present, "{v}: new session");
        c.disconnect().await;
        let (c, ack) = Client::connect_ok(broker.local_addr(), persistent()).await;
        assert_resumed(&ack, v);
        c.disconnect().await;
        // Clean Start discards it.
        let mut clean = persistent();
        clean.clean_start = true;
        let (c, ack) = Client::connect_ok(broker.local_addr(), clean).await;
        assert!(!ack.session_present, "{v}: clean start");
        c.disconnect().await;
        // ... and since that session was not persistent (3.1.1) or kept its expiry (5.0),
        // a 3.1.1 session is gone now.
        if !v.is_v5() {
            let (c, ack) = Client::connect_ok(broker.local_addr(), persistent()).await;
            assert!(!ack.session_present, "{v}: clean session ended the session");
            c.disconnect().await;
        }
    }
}

/// conformance: v5 MQTT-3.1.2-22
/// conformance: v5 MQTT-3.2.2-22
/// conformance: v3.1.1 MQTT-3.1.2-24
#[tokio::test]
async fn keep_alive_is_enforced_at_one_and_a_half_periods() {
    let broker = start().await;
    let mut tasks = Vec::new();
    for v in VERSIONS {
        let addr = broker.local_addr();
        tasks.push(tokio::spawn(async move {
            let mut connect = connect_packet(v, &cid("ka", v));
            connect.keep_alive = 1;
            let (mut c, ack) = Client::connect_ok(addr, connect).await;
            assert_eq!(ack.properties.server_keep_alive, None);
            let t0 = now();
            c.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
            let waited = t0.elapsed();
            assert!(
                waited >= Duration::from_millis(1400),
                "{v}: closed after {waited:?}"
            );
            assert!(
                waited < Duration::from_millis(3000),
                "{v}: closed after {waited:?}"
            );
        }));
        // A client that pings in time stays connected.
        tasks.push(tokio::spawn(async move {
            let mut connect = connect_packet(v, &cid("ka-ping", v));
            connect.keep_alive = 1;
            let (mut c, _) = Client::connect_ok(addr, connect).await;
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(600)).await;
                c.ping().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// conformance: v5 MQTT-3.1.2-22
#[tokio::test]
async fn server_keep_alive_replaces_the_clients_and_is_enforced() {
    let mut config = test_config();
    config.max_keepalive = 1;
    let broker = start_with(config).await;
    for client_keep_alive in [0, 60] {
        let mut connect = connect_packet(V5, "ska");
        connect.keep_alive = client_keep_alive;
        let (mut c, ack) = Client::connect_ok(broker.local_addr(), connect).await;
        assert_eq!(ack.properties.server_keep_alive, Some(1));
        let t0 = now();
        c.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
        assert!(t0.elapsed() >= Duration::from_millis(1400));
    }
    // Within the limit: no Server Keep Alive.
    let mut connect = connect_packet(V5, "ska2");
    connect.keep_alive = 1;
    let (_c, ack) = Client::connect_ok(broker.local_addr(), connect).await;
    assert_eq!(ack.properties.server_keep_alive, None);
    // 3.1.1 cannot be told another keep alive: refused, as Mosquitto does.
    let mut connect = connect_packet(V311, "ska3");
    connect.keep_alive = 60;
    let (mut c, ack) = Client::connect_with(broker.local_addr(), connect).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    c.expect_closed().await;
}

/// `max_keepalive = 0` means no limit (config.rs), for every version.
#[tokio::test]
async fn max_keepalive_zero_means_no_limit() {
    let mut config = test_config();
    config.max_keepalive = 0;
    let broker = start_with(config).await;
    for v in VERSIONS {
        let mut connect = connect_packet(v, &cid("nolimit", v));
        connect.keep_alive = 600;
        let (mut c, ack) = Client::connect_ok(broker.local_addr(), connect).await;
        assert_eq!(ack.properties.server_keep_alive, None);
        c.ping().await;
    }
}

#[tokio::test]
async fn socket_without_connect_is_closed_after_the_connect_timeout() {
    let broker = start().await;
    let t0 = now();
    let mut silent = Client::open(broker.local_addr(), V311).await;
    let mut partial = Client::open(broker.local_addr(), V311).await;
    partial.send_raw(&[0x10, 0x20, 0x00]).await; // a CONNECT that never completes
    silent.expect_closed().await;
    partial.expect_closed().await;
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    assert!(
        waited < Duration::from_millis(3000),
        "closed after {waited:?}"
    );
}

/// conformance: v5 MQTT-3.1.0-1
/// conformance: v3.1.1 MQTT-3.1.0-1
#[tokio::test]
async fn first_packet_other_than_connect_closes_the_connection() {
    let broker = start().await;
    for first in [
        Packet::PingReq,
        Packet::Publish(publish("t", "x", QoS::AtMostOnce)),
    ] {
        let mut c = Client::open(broker.local_addr(), V311).await;
        c.send(first).await;
        c.expect_closed().await;
    }
}

/// conformance: v5 MQTT-3.1.0-2
/// conformance: v3.1.1 MQTT-3.1.0-2
/// conformance: v5 MQTT-3.2.0-2
#[tokio::test]
async fn second_connect_is_a_protocol_error() {
    let broker = start().await;
    for v in VERSIONS {
        let mut c = Client::connect(broker.local_addr(), v, &cid("twice", v)).await;
        c.send(Packet::Connect(Box::new(connect_packet(
            v,
            &cid("twice", v),
        ))))
        .await;
        c.expect_disconnect(ReasonCode::ProtocolError).await;
    }
}

/// conformance: v5 MQTT-3.1.4-3
/// conformance: v5 MQTT-3.14.0-1
/// conformance: v3.1.1 MQTT-3.1.4-2
#[tokio::test]
async fn same_client_id_takes_the_session_over() {
    let broker = start().await;
    for v in VERSIONS {
        let id = cid("takeover", v);
        let mut persistent = connect_packet(v, &id);
        persistent.clean_start = false;
        persistent.properties.session_expiry_interval = v.is_v5().then_some(60);
        let (mut old, _) = Client::connect_ok(broker.local_addr(), persistent.clone()).await;
        old.subscribe("takeover/t", QoS::AtLeastOnce).await;
        let (mut new, ack) = Client::connect_ok(broker.local_addr(), persistent).await;
        assert_resumed(&ack, v);
        old.expect_disconnect(ReasonCode::SessionTakenOver).await;
        // The new connection has the session's subscription.
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("takeover-pub", v)).await;
        publisher
            .pub_msg("takeover/t", "after", QoS::AtLeastOnce)
            .await;
        let p = new.recv_and_ack().await;
        assert_eq!(&p.payload[..], b"after");
        // A clean-start take-over gets a fresh session.
        let (mut newer, ack) =
            Client::connect_ok(broker.local_addr(), connect_packet(v, &id)).await;
        assert!(!ack.session_present);
        new.expect_disconnect(ReasonCode::SessionTakenOver).await;
        publisher
            .pub_msg("takeover/t", "gone", QoS::AtLeastOnce)
            .await;
        newer.expect_nothing().await;
    }
}

/// Several connections with one client id in quick succession: the last one ends up
/// with the session, every earlier one is closed.
///
/// conformance: v5 MQTT-3.1.4-3
/// conformance: v3.1.1 MQTT-3.1.4-2
#[tokio::test]
async fn racing_connections_with_one_client_id_leave_the_last_connected() {
    let broker = start().await;
    for v in VERSIONS {
        let id = cid("race", v);
        let mut first = Client::connect(broker.local_addr(), v, &id).await;
        let mut racers = Vec::new();
        for _ in 0..3 {
            let mut c = Client::open(broker.local_addr(), v).await;
            c.send(Packet::Connect(Box::new(connect_packet(v, &id))))
                .await;
            racers.push(c);
        }
        first.expect_disconnect(ReasonCode::SessionTakenOver).await;
        let mut last = racers.pop().unwrap();
        assert!(
            matches!(last.recv().await, Packet::ConnAck(a) if a.reason_code == ReasonCode::Success),
            "{v}"
        );
        for mut c in racers {
            // Closed, with or without having been connected for a moment.
            loop {
                match c.recv_within(TIMEOUT).await {
                    Recv::Closed => break,
                    Recv::Packet(Packet::ConnAck(_)) => {}
                    Recv::Packet(Packet::Disconnect(d)) => {
                        assert_eq!(d.reason_code, ReasonCode::SessionTakenOver)
                    }
                    other => panic!("{v}: expected the connection to close, got {other:?}"),
                }
            }
        }
        last.ping().await;
    }
}

/// A client stuck in a full socket (it never reads) does not keep its session from
/// being taken over.
///
/// conformance: v5 MQTT-3.1.4-3
/// conformance: v3.1.1 MQTT-3.1.4-2
#[tokio::test]
async fn takeover_of_a_connection_that_never_reads() {
    let broker = start().await;
    let stuck = tokio::net::TcpSocket::new_v4().unwrap();
    stuck.set_recv_buffer_size(4096).unwrap();
    let stream = stuck.connect(broker.local_addr()).await.unwrap();
    let mut stuck = Client::over(stream, V5);
    stuck
        .send(Packet::Connect(Box::new(connect_packet(V5, "stuck"))))
        .await;
    assert!(matches!(stuck.recv().await, Packet::ConnAck(_)));
    stuck.subscribe("stuck/t", QoS::AtMostOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "stuck-pub").await;
    let big = vec![b'x'; 64 * 1024];
    for _ in 0..200 {
        let mut p = publish("stuck/t", "", QoS::AtMostOnce);
        p.payload = big.clone().into();
        publisher.publish(p).await;
    }
    publisher.ping().await;
    let t0 = now();
    let (mut new, _) = Client::connect_ok(broker.local_addr(), connect_packet(V5, "stuck")).await;
    assert!(t0.elapsed() < Duration::from_secs(2));
    new.ping().await;
}

/// conformance: v5 MQTT-3.12.4-1
/// conformance: v3.1.1 MQTT-3.12.4-1
#[tokio::test]
async fn pingreq_is_answered_with_pingresp() {
    let broker = start().await;
    for v in VERSIONS {
        let mut c = Client::connect(broker.local_addr(), v, &cid("ping", v)).await;
        for _ in 0..3 {
            c.ping().await;
        }
    }
}

/// The broker has no extended authentication: it rejects every Authentication Method
/// at once with CONNACK 0x8C, and closes the connection.
///
/// conformance: v5 MQTT-4.12.0-1
/// conformance: v5 MQTT-3.2.2-6
/// conformance: v5 MQTT-3.2.2-7
/// conformance: v5 MQTT-4.12.0-4
/// conformance: v5 MQTT-4.13.2-1
#[tokio::test]
async fn authentication_method_is_refused_with_0x8c() {
    let broker = start().await;
    let mut connect = connect_packet(V5, "auth");
    connect.properties.authentication_method = Some("SCRAM-SHA-1".into());
    let (mut c, ack) = Client::connect_with(broker.local_addr(), connect).await;
    assert_eq!(ack.reason_code, ReasonCode::BadAuthenticationMethod);
    assert!(!ack.session_present);
    c.expect_closed().await;
}

/// The server closes every 5.0 connection with DISCONNECT 0x8B when it shuts down.
///
/// conformance: v5 MQTT-3.14.2-1
#[tokio::test]
async fn shutdown_sends_server_shutting_down() {
    let broker = start().await;
    let mut clients = Vec::new();
    for v in VERSIONS {
        clients.push(Client::connect(broker.local_addr(), v, &cid("bye", v)).await);
    }
    // A socket that has not sent CONNECT yet is closed too.
    let mut silent = Client::open(broker.local_addr(), V5).await;
    tokio::time::sleep(Duration::from_millis(100)).await; // let the broker accept it
    let t0 = now();
    broker.shutdown().await;
    assert!(
        t0.elapsed() < Duration::from_millis(900),
        "shutdown waited for the connect timeout"
    );
    for mut c in clients {
        c.expect_disconnect(ReasonCode::ServerShuttingDown).await;
    }
    silent.expect_closed().await;
}

/// A broker handle dropped without `shutdown` closes its open connections as a
/// shutdown does (open connections wait on their kick, not on the shutdown channel).
///
/// conformance: v5 MQTT-3.14.2-1
#[tokio::test]
async fn dropping_the_handle_closes_open_connections() {
    let broker = start().await;
    let mut c = Client::connect(broker.local_addr(), V5, "dropped-handle").await;
    c.ping().await;
    drop(broker);
    c.expect_disconnect(ReasonCode::ServerShuttingDown).await;
}

/// MQTT 3.1: the client id is 1 to 23 characters (return code 2 otherwise), and the
/// CONNACK has no Session Present flag (its first byte is reserved, 0) even when a
/// session is resumed.
#[tokio::test]
async fn mqtt_3_1_client_id_length_and_connack_flags() {
    let broker = start().await;
    let long = "a".repeat(24);
    let (mut c, ack) = Client::connect_with(broker.local_addr(), connect_packet(V31, &long)).await;
    assert_eq!(ack.reason_code, ReasonCode::ClientIdentifierNotValid);
    c.expect_closed().await;
    // 3.1.1 and 5.0 accept longer ids.
    for v in [V311, V5] {
        let (mut c, _) = Client::connect_ok(broker.local_addr(), connect_packet(v, &long)).await;
        c.ping().await;
    }
    let id = "a".repeat(23);
    let (mut c, _) = Client::connect_ok(broker.local_addr(), persistent(V31, &id)).await;
    c.subscribe("v31/resumed", QoS::AtLeastOnce).await;
    c.disconnect().await;
    let (mut c, ack) = Client::connect_ok(broker.local_addr(), persistent(V31, &id)).await;
    assert!(!ack.session_present, "no Session Present in 3.1");
    // ... yet the session was resumed.
    c.pub_msg("v31/resumed", "yes", QoS::AtLeastOnce).await;
    assert_eq!(&c.recv_and_ack().await.payload[..], b"yes");
}

/// Client identifiers of 1 to 23 characters from `0-9a-zA-Z` are accepted by every
/// version, with and without Clean Start.
///
/// conformance: v5 MQTT-3.1.3-5
/// conformance: v3.1.1 MQTT-3.1.3-5
#[tokio::test]
async fn client_ids_of_1_to_23_alphanumerics_are_accepted() {
    const ALNUM: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let broker = start().await;
    let mut ids: Vec<String> = vec!["0".into(), "z".into(), "Z".into()];
    // Three ids of 23 characters that together use every allowed character.
    ids.extend((0..ALNUM.len()).step_by(23).map(|skip| {
        let id: String = ALNUM.chars().cycle().skip(skip).take(23).collect();
        id
    }));
    for v in VERSIONS {
        for id in &ids {
            for clean_start in [true, false] {
                let mut connect = connect_packet(v, id);
                connect.clean_start = clean_start;
                let (mut c, _) = Client::connect_ok(broker.local_addr(), connect).await;
                c.ping().await;
                c.disconnect().await;
            }
        }
    }
}

/// A refused CONNECT ends the connection: what the client wrote after it — a retained
/// PUBLISH, a SUBSCRIBE, a PINGREQ — is never processed, and the refusing CONNACK is the
/// only packet sent before the broker closes.
///
/// conformance: v5 MQTT-3.1.4-6
/// conformance: v3.1.1 MQTT-3.1.4-5
/// conformance: v5 MQTT-3.2.2-7
/// conformance: v3.1.1 MQTT-3.2.2-5
/// conformance: v5 MQTT-4.13.2-1
#[tokio::test]
async fn nothing_after_a_refused_connect_is_processed() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut watcher = Client::connect(addr, V5, "refused-watch").await;
    watcher.subscribe("refused/#", QoS::AtMostOnce).await;
    for v in VERSIONS {
        // 3.1 and 3.1.1: an empty client id without Clean Session (return code 2);
        // 5.0: an Authentication Method (0x8C).
        let mut connect = connect_packet(v, "");
        connect.clean_start = false;
        if v.is_v5() {
            connect.client_id = "refused".into();
            connect.properties.authentication_method = Some("SCRAM-SHA-1".into());
        }
        let mut retained = publish("refused/t", "never processed", QoS::AtLeastOnce);
        retained.retain = true;
        retained.packet_id = Some(pid(1));
        let subscribe = Subscribe {
            packet_id: pid(2),
            filters: vec![(filter("#"), SubscriptionOptions::new(QoS::AtMostOnce))],
            properties: SubscribeProperties::default(),
        };
        let mut bytes = BytesMut::new();
        for packet in [
            Packet::Connect(Box::new(connect)),
            Packet::Publish(retained),
            Packet::Subscribe(subscribe),
            Packet::PingReq,
        ] {
            packet.encode(v, &mut bytes).unwrap();
        }
        let mut c = Client::open(addr, v).await;
        c.send_raw(&bytes).await;
        match &read_until_closed(&mut c).await[..] {
            [Packet::ConnAck(ack)] => assert!(ack.reason_code.is_error(), "{v}: {ack:?}"),
            other => panic!("{v}: expected a refusing CONNACK alone, got {other:?}"),
        }
    }
    // Nothing was routed ...
    let mut publisher = Client::connect(addr, V5, "refused-pub").await;
    publisher
        .pub_msg("refused/sentinel", "sentinel", QoS::AtMostOnce)
        .await;
    assert_eq!(
        watcher.recv_publish().await.topic.as_str(),
        "refused/sentinel"
    );
    // ... nor retained.
    let mut late = Client::connect(addr, V5, "refused-late").await;
    late.subscribe("refused/t", QoS::AtMostOnce).await;
    late.expect_nothing().await;
}

/// With `allow_anonymous = false`, a CONNECT without a user name fails the broker's
/// authentication check: CONNACK Not authorized (3.1/3.1.1 return code 5, 5.0 0x87),
/// then the broker closes the connection.
///
/// conformance: v5 MQTT-3.1.4-2
/// conformance: v5 MQTT-3.2.2-7
/// conformance: v3.1.1 MQTT-3.2.2-5
/// conformance: v5 MQTT-4.13.2-1
#[tokio::test]
async fn anonymous_connect_is_refused_when_not_allowed() {
    let mut config = test_config();
    config.allow_anonymous = false;
    let broker = start_with(config).await;
    for v in VERSIONS {
        let connect = connect_packet(v, &cid("anon", v));
        assert!(connect.username.is_none());
        let (mut c, ack) = Client::connect_with(broker.local_addr(), connect).await;
        assert_eq!(ack.reason_code, ReasonCode::NotAuthorized, "{v}");
        assert!(!ack.session_present);
        c.expect_closed().await;
    }
}
