//! Bounded memory: the per-client queue (`max_queued_messages`, `max_queued_bytes`)
//! and its policy when full (QoS 0 goes first), the outgoing window
//! (`max_inflight_messages`), `max_connections`, and a subscriber that never reads,
//! which must neither grow the broker without bound nor slow other clients.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use midge_codec::{Packet, QoS};

/// Publishes `items` (payload, QoS) to `name` for an offline persistent subscriber
/// `id`, then returns what it gets when it comes back.
async fn queued_for_offline(
    broker: &midge_broker::BrokerHandle,
    v: midge_codec::ProtocolVersion,
    id: &str,
    name: &str,
    items: &[(&'static str, QoS)],
) -> Vec<String> {
    let (mut s, _) = Client::connect_ok(broker.local_addr(), persistent(v, id)).await;
    s.subscribe(name, QoS::ExactlyOnce).await;
    s.disconnect().await;
    let mut publisher = Client::connect(broker.local_addr(), v, &format!("{id}-pub")).await;
    for (payload, qos) in items {
        publisher.pub_msg(name, payload, *qos).await;
    }
    publisher.ping().await;
    let (mut s, ack) = Client::connect_ok(broker.local_addr(), persistent(v, id)).await;
    assert_resumed(&ack, v);
    let mut got = Vec::new();
    while let Recv::Packet(Packet::Publish(p)) = s.recv_within(QUIET).await {
        s.ack(&p).await;
        got.push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    got
}

/// When the queue is full, a queued QoS 0 message makes room for a QoS 1/2 one; a new
/// QoS 0 message is dropped.
#[tokio::test]
async fn full_queue_drops_qos0_first() {
    let mut config = test_config();
    config.max_queued_messages = 3;
    config.queue_qos0_messages = true;
    let broker = start_with(config).await;
    for v in VERSIONS {
        let items = [
            ("a0", QoS::AtMostOnce),
            ("b1", QoS::AtLeastOnce),
            ("c0", QoS::AtMostOnce),
            ("d2", QoS::ExactlyOnce),
            ("e1", QoS::AtLeastOnce),
            ("f0", QoS::AtMostOnce),
        ];
        let got = queued_for_offline(&broker, v, &cid("full0", v), "full0", &items).await;
        assert_eq!(got, ["b1", "d2", "e1"], "{v}");
    }
}

/// A queue full of QoS 1/2 messages drops the new ones.
#[tokio::test]
async fn full_queue_of_qos1_drops_new_messages() {
    let mut config = test_config();
    config.max_queued_messages = 3;
    let broker = start_with(config).await;
    for v in VERSIONS {
        let items = [
            ("m1", QoS::AtLeastOnce),
            ("m2", QoS::ExactlyOnce),
            ("m3", QoS::AtLeastOnce),
            ("m4", QoS::AtLeastOnce),
            ("m5", QoS::ExactlyOnce),
        ];
        let got = queued_for_offline(&broker, v, &cid("full1", v), "full1", &items).await;
        assert_eq!(got, ["m1", "m2", "m3"], "{v}");
    }
}

/// `max_queued_bytes` bounds the queued payload bytes.
#[tokio::test]
async fn queue_is_bounded_in_bytes() {
    let mut config = test_config();
    config.max_queued_bytes = 10;
    let broker = start_with(config).await;
    let items = [
        ("1234", QoS::AtLeastOnce),
        ("5678", QoS::AtLeastOnce),
        ("abcd", QoS::AtLeastOnce),
        ("x", QoS::AtLeastOnce),
    ];
    let got = queued_for_offline(&broker, V5, "bytes", "bytes", &items).await;
    assert_eq!(got, ["1234", "5678", "x"]);
}

/// No client, whatever its Receive Maximum (3.1.1 has none), gets more than
/// `max_inflight_messages` unacknowledged messages; acknowledging one lets the next go.
///
/// conformance: v5 MQTT-3.3.4-9
/// conformance: v5 MQTT-4.9.0-2
#[tokio::test]
async fn outgoing_window_is_bounded_by_max_inflight_messages() {
    let mut config = test_config();
    config.max_inflight_messages = 3;
    let broker = start_with(config).await;
    for v in VERSIONS {
        let mut connect = connect_packet(v, &cid("window", v));
        connect.properties.receive_maximum = v.is_v5().then_some(100);
        let (mut s, ack) = Client::connect_ok(broker.local_addr(), connect).await;
        if v.is_v5() {
            assert_eq!(ack.properties.receive_maximum, Some(3));
        }
        s.subscribe("window", QoS::AtLeastOnce).await;
        let mut publisher = Client::connect(broker.local_addr(), v, &cid("window-pub", v)).await;
        for i in 0..6u8 {
            let mut p = publish("window", "", QoS::AtLeastOnce);
            p.payload = Bytes::from(vec![b'0' + i]);
            publisher.publish(p).await;
        }
        let first = [
            s.recv_publish().await,
            s.recv_publish().await,
            s.recv_publish().await,
        ];
        assert_eq!(payloads(&first), ["0", "1", "2"]);
        s.expect_nothing().await;
        s.ack(&first[0]).await;
        assert_eq!(&s.recv_publish().await.payload[..], b"3", "{v}");
        s.expect_nothing().await;
    }
}

/// `max_connections` refuses connections over the limit, and frees the slot when a
/// connection ends.
#[tokio::test]
async fn max_connections_is_enforced() {
    let mut config = test_config();
    config.max_connections = 2;
    let broker = start_with(config).await;
    let a = Client::connect(broker.local_addr(), V5, "mc-a").await;
    let mut b = Client::connect(broker.local_addr(), V311, "mc-b").await;
    let mut c = Client::open(broker.local_addr(), V5).await;
    c.send(Packet::Connect(Box::new(connect_packet(V5, "mc-c"))))
        .await;
    c.expect_closed().await;
    a.disconnect().await;
    let mut d = Client::open(broker.local_addr(), V5).await;
    // The slot is released when the connection's task ends: retry briefly.
    let deadline = now() + TIMEOUT;
    loop {
        d.send(Packet::Connect(Box::new(connect_packet(V5, "mc-d"))))
            .await;
        match d.recv_within(TIMEOUT).await {
            Recv::Packet(Packet::ConnAck(ack)) if !ack.reason_code.is_error() => break,
            Recv::Closed if now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                d = Client::open(broker.local_addr(), V5).await;
            }
            other => panic!("expected a connection, got {other:?}"),
        }
    }
    b.ping().await;
    d.ping().await;
}

/// A subscriber that never reads: the broker keeps what it holds for it bounded
/// (socket buffers, one write batch, `max_queued_messages`), drops the rest, and
/// another subscriber of the same topic still gets every message at once.
#[tokio::test]
async fn stalled_subscriber_is_bounded_and_does_not_slow_others() {
    const N: usize = 3000;
    let mut config = test_config();
    config.max_queued_messages = 100;
    let broker = start_with(config).await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut stalled = Client::over(socket.connect(broker.local_addr()).await.unwrap(), V5);
    stalled
        .send(Packet::Connect(Box::new(connect_packet(V5, "stalled"))))
        .await;
    assert!(matches!(stalled.recv().await, Packet::ConnAck(_)));
    stalled.subscribe("firehose", QoS::AtMostOnce).await;
    let mut fast = Client::connect(broker.local_addr(), V311, "fast").await;
    fast.subscribe("firehose", QoS::AtMostOnce).await;
    let mut publisher = Client::connect(broker.local_addr(), V5, "firehose-pub").await;

    let payload = Bytes::from(vec![b'x'; 16 * 1024]);
    let t0 = now();
    for i in 0..N {
        let mut p = publish("firehose", "", QoS::AtMostOnce);
        let mut body = payload.to_vec();
        body[..8].copy_from_slice(&(i as u64).to_be_bytes());
        p.payload = body.into();
        publisher.send(Packet::Publish(p)).await;
        // The fast subscriber gets each message before the next is published.
        let got = fast.recv_publish().await;
        assert_eq!(
            u64::from_be_bytes(got.payload[..8].try_into().unwrap()),
            i as u64
        );
    }
    let elapsed = t0.elapsed();
    assert!(
        elapsed < Duration::from_secs(30),
        "{N} messages took {elapsed:?}"
    );
    publisher.ping().await;

    // Now the stalled subscriber reads what the broker kept for it: a prefix-ordered
    // subset, far fewer than were published.
    let mut received = 0usize;
    let mut last = None;
    loop {
        match stalled.recv_within(Duration::from_millis(500)).await {
            Recv::Packet(Packet::Publish(p)) => {
                let i = u64::from_be_bytes(p.payload[..8].try_into().unwrap());
                assert!(last.is_none_or(|l| i > l), "in order");
                last = Some(i);
                received += 1;
            }
            Recv::Timeout => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(received > 0);
    assert!(
        received < N / 2,
        "the broker kept {received} of {N} messages for a stalled client"
    );
    stalled.ping().await;
    // Every message the stalled client did not get was dropped, and counted.
    assert_eq!(broker.stats().messages_dropped, (N - received) as u64);
}

/// A subscriber that reads, but more slowly than its publishers send, slows them down
/// instead of losing their messages: its queue (here 10 messages) congests, the
/// publishers' connections stop reading until it has drained, and every message
/// arrives, in order, at QoS 0 and 1 alike. Nothing is dropped.
///
/// conformance: v5 MQTT-4.6.0-5
/// conformance: v3.1.1 MQTT-4.6.0-5
#[tokio::test]
async fn congested_subscriber_slows_its_publishers_without_loss() {
    const BATCH: usize = 250;
    const BATCHES: usize = 12;
    const PUBLISHERS: usize = 2;
    let mut config = test_config();
    config.max_queued_messages = 10;
    let broker = start_with(config).await;
    for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
        let name = format!("congested/{}", qos as u8);
        let mut subscriber = Client::connect(broker.local_addr(), V311, &format!("{name}/s")).await;
        subscriber.subscribe(&name, qos).await;
        let total = BATCH * BATCHES * PUBLISHERS;
        let reader = tokio::spawn(async move {
            let mut next = [0u32; PUBLISHERS];
            for _ in 0..total {
                let p = subscriber.recv_and_ack().await;
                let publisher = usize::from(p.payload[0]);
                let i = u32::from_be_bytes(p.payload[1..5].try_into().unwrap());
                assert_eq!(
                    i, next[publisher],
                    "publisher {publisher}: in order, none lost"
                );
                next[publisher] += 1;
            }
            subscriber.expect_nothing().await;
        });
        let mut publishers = Vec::new();
        for n in 0..PUBLISHERS {
            let mut publisher =
                Client::connect(broker.local_addr(), V311, &format!("{name}/p{n}")).await;
            let name = name.clone();
            publishers.push(tokio::spawn(async move {
                let mut i = 0u32;
                for _ in 0..BATCHES {
                    // A batch in one write, then its acknowledgements.
                    let mut bytes = bytes::BytesMut::new();
                    for _ in 0..BATCH {
                        let mut p = publish(&name, "", qos);
                        p.packet_id = (qos != QoS::AtMostOnce).then(|| publisher.next_id());
                        let mut body = vec![n as u8];
                        body.extend_from_slice(&i.to_be_bytes());
                        body.resize(64, b'x');
                        p.payload = body.into();
                        Packet::Publish(p).encode(V311, &mut bytes).unwrap();
                        i += 1;
                    }
                    publisher.send_raw(&bytes).await;
                    if qos == QoS::AtLeastOnce {
                        for _ in 0..BATCH {
                            assert!(matches!(publisher.recv().await, Packet::PubAck(_)));
                        }
                    }
                }
                publisher.ping().await;
            }));
        }
        for publisher in publishers {
            publisher.await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .expect("every message arrives")
            .unwrap();
    }
    assert_eq!(broker.stats().messages_dropped, 0);
}
