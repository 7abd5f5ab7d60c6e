//! Parked connections (`Config::park_idle_ms`): an idle plain-TCP connection gives up
//! its task, and a packet, a delivery, its kick (take-over, shutdown), its keep-alive
//! deadline or its client's closing brings it back, with nothing lost and nothing the
//! client can tell apart from a connection that never parked.
//!
//! The other integration tests run with connections parked after 20 to 40 ms of quiet
//! too (`common::test_config`); these check that parking happens, and each way back.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use midge_broker::BrokerHandle;
use midge_codec::{Connect, LastWill, QoS, ReasonCode, WillProperties};

/// Waits until at least `n` connections are parked.
async fn parked(broker: &BrokerHandle, n: usize) {
    let until = now() + TIMEOUT;
    while broker.stats().parked_connections < n {
        assert!(
            now() < until,
            "{} of {n} connections parked",
            broker.stats().parked_connections
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `connect` with a QoS 1 will of `payload` on `will_topic`.
fn with_will(mut connect: Connect, will_topic: &str, payload: &'static [u8]) -> Connect {
    connect.will = Some(LastWill {
        topic: topic(will_topic),
        payload: Bytes::from_static(payload),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: WillProperties::default(),
    });
    connect
}

/// Parked subscribers get what is published to them, in order, at every QoS, and
/// answer PINGREQ; they park again after each.
///
/// conformance: v3.1.1 MQTT-3.12.4-1
/// conformance: v5 MQTT-3.12.4-1
/// conformance: v3.1.1 MQTT-4.6.0-6
/// conformance: v5 MQTT-4.6.0-5
#[tokio::test]
async fn a_parked_subscriber_gets_its_messages_and_answers_pings() {
    let broker = start().await;
    for version in VERSIONS {
        let mut subscribers = Vec::new();
        for i in 0..4 {
            let mut s = Client::connect(
                broker.local_addr(),
                version,
                &cid(&format!("ps{i}"), version),
            )
            .await;
            s.subscribe("park/+", QoS::ExactlyOnce).await;
            subscribers.push(s);
        }
        let mut publisher =
            Client::connect(broker.local_addr(), version, &cid("pp", version)).await;
        for round in 0..3 {
            parked(&broker, 5).await;
            // Revived by a delivery: three messages, one at each QoS.
            for (qos, payload) in [
                (QoS::AtMostOnce, "zero"),
                (QoS::AtLeastOnce, "one"),
                (QoS::ExactlyOnce, "two"),
            ] {
                publisher.pub_msg("park/a", payload, qos).await;
            }
            for s in &mut subscribers {
                let mut got = Vec::new();
                for _ in 0..3 {
                    got.push(s.recv_and_ack().await);
                }
                assert_eq!(
                    payloads(&got),
                    ["zero", "one", "two"],
                    "round {round}, {version}"
                );
            }
            parked(&broker, 5).await;
            // Revived by its socket.
            for s in &mut subscribers {
                s.ping().await;
            }
        }
        for s in subscribers {
            s.disconnect().await;
        }
        publisher.disconnect().await;
    }
}

/// A parked connection whose client goes silent is closed at its keep-alive deadline
/// (one and a half times the keep alive), and its will goes out.
///
/// conformance: v3.1.1 MQTT-3.1.2-24
/// conformance: v5 MQTT-3.1.2-22
/// conformance: v3.1.1 MQTT-3.1.2-8
/// conformance: v5 MQTT-3.1.2-8
#[tokio::test]
async fn a_parked_connection_times_out_and_its_will_goes_out() {
    let broker = start().await;
    for version in VERSIONS {
        let mut watcher = Client::connect(broker.local_addr(), version, &cid("kw", version)).await;
        watcher.subscribe("gone/#", QoS::AtLeastOnce).await;
        let mut connect = with_will(
            connect_packet(version, &cid("ka", version)),
            "gone/ka",
            b"timed out",
        );
        connect.keep_alive = 1;
        let (mut silent, _) = Client::connect_ok(broker.local_addr(), connect).await;
        let started = now();
        parked(&broker, 2).await;
        silent.expect_disconnect(ReasonCode::KeepAliveTimeout).await;
        let waited = now() - started;
        assert!(
            waited >= Duration::from_millis(1400) && waited < Duration::from_millis(3000),
            "closed after {waited:?}, {version}"
        );
        let will = watcher.recv_and_ack().await;
        assert_eq!(will.payload, Bytes::from_static(b"timed out"));
        watcher.disconnect().await;
    }
}

/// A client that closes its socket while its connection is parked: the broker sees it
/// at once, publishes the will and ends the session.
///
/// conformance: v3.1.1 MQTT-3.1.2-8
/// conformance: v5 MQTT-3.1.2-8
#[tokio::test]
async fn a_parked_connection_sees_its_client_go() {
    let broker = start().await;
    for version in VERSIONS {
        let mut watcher = Client::connect(broker.local_addr(), version, &cid("gw", version)).await;
        watcher.subscribe("gone/#", QoS::AtLeastOnce).await;
        let connect = with_will(
            connect_packet(version, &cid("gc", version)),
            "gone/gc",
            b"lost",
        );
        let (client, _) = Client::connect_ok(broker.local_addr(), connect).await;
        parked(&broker, 2).await;
        client.drop_connection();
        let will = watcher.recv_and_ack().await;
        assert_eq!(will.payload, Bytes::from_static(b"lost"));
        watcher.disconnect().await;
    }
}

/// A new connection with the client id of a parked one takes its session over: the
/// parked connection is closed (5.0: DISCONNECT 0x8E), and the session, with its
/// subscription, carries on in the new one.
///
/// conformance: v3.1.1 MQTT-3.1.4-2
/// conformance: v3.1.1 MQTT-3.2.2-2
/// conformance: v5 MQTT-3.1.4-3
/// conformance: v5 MQTT-3.2.2-3
#[tokio::test]
async fn a_parked_connection_is_taken_over() {
    let broker = start().await;
    for version in VERSIONS {
        let id = cid("to", version);
        let (mut first, _) =
            Client::connect_ok(broker.local_addr(), persistent(version, &id)).await;
        first.subscribe("over/#", QoS::AtLeastOnce).await;
        parked(&broker, 1).await;
        let (mut second, ack) =
            Client::connect_ok(broker.local_addr(), persistent(version, &id)).await;
        assert_resumed(&ack, version);
        first.expect_disconnect(ReasonCode::SessionTakenOver).await;
        let mut publisher =
            Client::connect(broker.local_addr(), version, &cid("top", version)).await;
        publisher
            .pub_msg("over/x", "still here", QoS::AtLeastOnce)
            .await;
        assert_eq!(payloads(&[second.recv_and_ack().await]), ["still here"]);
        second.disconnect().await;
        publisher.disconnect().await;
    }
}

/// Take-overs racing with parking: with ticks of 3 ms, a young connection parks a tenth
/// of a millisecond after its CONNACK, so each new connection with the client id finds
/// the old one running, parking, parked or being revived. The kick reaches it whatever
/// the moment: the new connection never waits for the old one's keep-alive. (Two
/// workers, so that a take-over can run while a connection parks; with a kick lost
/// between parking's two steps, widened by a sleep, this fails.)
///
/// conformance: v5 MQTT-3.1.4-3
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_overs_racing_with_parking_are_never_lost() {
    let mut config = test_config();
    config.park_idle_ms = 3;
    let broker = start_with(config).await;
    let version = VERSIONS[2];
    let id = cid("race", version);
    let (mut old, _) = Client::connect_ok(broker.local_addr(), persistent(version, &id)).await;
    for round in 0..60u64 {
        tokio::time::sleep(Duration::from_micros(150 * (round % 8))).await;
        let (new, ack) = Client::connect_ok(broker.local_addr(), persistent(version, &id)).await;
        assert!(ack.session_present, "round {round}: the session carries on");
        old.expect_disconnect(ReasonCode::SessionTakenOver).await;
        old = new;
    }
    old.disconnect().await;
}

/// A broker that shuts down closes its parked connections as the others: 5.0 clients
/// get DISCONNECT 0x8B. The shutdown completes.
#[tokio::test]
async fn shutdown_closes_parked_connections() {
    let broker = start().await;
    let mut clients = Vec::new();
    for version in VERSIONS {
        clients.push(Client::connect(broker.local_addr(), version, &cid("sd", version)).await);
    }
    parked(&broker, 3).await;
    tokio::time::timeout(TIMEOUT, broker.shutdown())
        .await
        .expect("the shutdown completes");
    for mut client in clients {
        client
            .expect_disconnect(ReasonCode::ServerShuttingDown)
            .await;
    }
}

/// A connection is young for its first two ticks, parked and revived or not: one that
/// parks between its CONNACK and its SUBSCRIBE parks again a quick tick (a 32nd of a
/// tick) after the SUBACK, not one to two ticks (`crate::parking`).
#[tokio::test]
async fn a_connection_revived_in_its_youth_parks_again_soon() {
    let mut config = test_config();
    config.park_idle_ms = 4000;
    let broker = start_with(config).await;
    let mut client = Client::connect(broker.local_addr(), VERSIONS[0], "young").await;
    let began = now();
    parked(&broker, 1).await;
    assert!(
        now() - began < Duration::from_secs(2),
        "young: parks in a quick tick"
    );
    // Revived by its SUBSCRIBE: the SUBACK comes from the connection's task.
    client.subscribe("young/t", QoS::AtLeastOnce).await;
    let revived = now();
    parked(&broker, 1).await;
    assert!(
        now() - revived < Duration::from_secs(2),
        "still young once revived: parked again after {:?}, not a tick or two (4 s)",
        now() - revived
    );
}

/// With `park_idle_ms = 0`, nothing parks, and everything works as ever.
#[tokio::test]
async fn parking_can_be_turned_off() {
    let mut config = test_config();
    config.park_idle_ms = 0;
    let broker = start_with(config).await;
    let mut s = Client::connect(broker.local_addr(), V5, "off-s").await;
    s.subscribe("off", QoS::AtLeastOnce).await;
    tokio::time::sleep(Duration::from_millis(10 * PARK_IDLE_MS)).await;
    assert_eq!(broker.stats().parked_connections, 0);
    let mut p = Client::connect(broker.local_addr(), V5, "off-p").await;
    p.pub_msg("off", "on", QoS::AtLeastOnce).await;
    assert_eq!(payloads(&[s.recv_and_ack().await]), ["on"]);
}

/// Many connections parking and reviving while messages flow: 40 subscribers (at each
/// QoS) and a publisher that sends bursts with pauses of 0 to 100 ms between them, so
/// that subscribers and publisher park and wake at every point of a flow. Every
/// subscriber gets every message once, in order (QoS 1 and 2 never lose or duplicate;
/// nothing is dropped on this quiet broker at QoS 0 either).
///
/// conformance: v3.1.1 MQTT-4.6.0-6
/// conformance: v5 MQTT-4.6.0-5
#[tokio::test]
async fn messages_flow_while_connections_park_and_wake() {
    const BURSTS: usize = 25;
    const PER_BURST: usize = 4;
    let broker = start().await;
    let addr = broker.local_addr();
    let mut receivers = Vec::new();
    for i in 0..40 {
        let version = VERSIONS[i % 3];
        let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][i % 3];
        let mut s = Client::connect(addr, version, &format!("flow-{i}")).await;
        s.subscribe("flow/#", qos).await;
        receivers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while got.len() < BURSTS * PER_BURST {
                got.push(s.recv_and_ack().await);
            }
            s.ping().await;
            s.disconnect().await;
            got.iter()
                .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
                .collect::<Vec<_>>()
        }));
    }
    let mut publisher = Client::connect(addr, V5, "flow-pub").await;
    // A fixed pseudo-random sequence of pauses (no dependency on a random source).
    let mut seed = 0x2545_f491_u32;
    let mut expected = Vec::new();
    for burst in 0..BURSTS {
        for n in 0..PER_BURST {
            let payload = format!("{burst}.{n}");
            let mut p = publish(&format!("flow/{}", burst % 3), "", QoS::AtLeastOnce);
            p.payload = Bytes::from(payload.clone());
            publisher.publish(p).await;
            expected.push(payload);
        }
        if burst == BURSTS / 2 {
            // Halfway, everyone parked at once (their deliveries all taken).
            parked(&broker, 41).await;
        }
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        tokio::time::sleep(Duration::from_millis(u64::from(seed % 100))).await;
    }
    for receiver in receivers {
        let got = tokio::time::timeout(TIMEOUT, receiver)
            .await
            .expect("every message arrives")
            .expect("the subscriber's task");
        assert_eq!(got, expected);
    }
    publisher.disconnect().await;
}
