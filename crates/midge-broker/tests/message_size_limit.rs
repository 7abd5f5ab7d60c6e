//! `message_size_limit` (Mosquitto's option): a PUBLISH whose payload is bigger is
//! dropped, not routed; a QoS 1 or 2 flow still completes, with reason code 0x83 for
//! MQTT 5.0 clients (as mosquitto.conf(5) documents; Mosquitto 2.0.11 sends 0x95, which
//! is not a PUBACK/PUBREC reason code). Raw bytes over TCP, self-contained.

use std::time::Duration;

use midge_broker::{Broker, BrokerHandle, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const LIMIT: u32 = 4;

async fn start() -> BrokerHandle {
    let config = Config {
        message_size_limit: LIMIT,
        connect_timeout: 1,
        ..Config::local_ephemeral()
    };
    Broker::start(config).await.expect("broker starts")
}

/// One packet: its first byte and its body.
async fn read_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(5), async {
        let first = stream.read_u8().await.expect("a packet");
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let byte = stream.read_u8().await.expect("remaining length");
            len |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0; len];
        stream.read_exact(&mut body).await.expect("body");
        (first, body)
    })
    .await
    .expect("a packet within 5 s")
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    assert!(body.len() < 128);
    let mut packet = vec![first, body.len() as u8];
    packet.extend_from_slice(body);
    packet
}

async fn connect(broker: &BrokerHandle, client_id: &str, v5: bool) -> TcpStream {
    let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
    let mut body = b"\x00\x04MQTT".to_vec();
    body.extend_from_slice(if v5 {
        b"\x05\x02\x00\x3c\x00"
    } else {
        b"\x04\x02\x00\x3c"
    });
    body.extend_from_slice(&(client_id.len() as u16).to_be_bytes());
    body.extend_from_slice(client_id.as_bytes());
    stream.write_all(&frame(0x10, &body)).await.unwrap();
    let (first, body) = read_packet(&mut stream).await;
    assert_eq!(first, 0x20);
    assert_eq!(body[1], 0, "CONNACK success");
    stream
}

fn publish(qos: u8, id: u16, payload: &[u8], v5: bool) -> Vec<u8> {
    let mut body = b"\x00\x01t".to_vec();
    if qos > 0 {
        body.extend_from_slice(&id.to_be_bytes());
    }
    if v5 {
        body.push(0); // no properties
    }
    body.extend_from_slice(payload);
    frame(0x30 | (qos << 1), &body)
}

/// A 3.1.1 subscriber to `t` at QoS 1.
async fn subscriber(broker: &BrokerHandle) -> TcpStream {
    let mut sub = connect(broker, "sub", false).await;
    sub.write_all(&frame(0x82, b"\x00\x01\x00\x01t\x01"))
        .await
        .unwrap();
    assert_eq!(read_packet(&mut sub).await, (0x90, vec![0, 1, 1]));
    sub
}

/// The payload of the next PUBLISH the subscriber gets (acknowledged).
async fn next_payload(sub: &mut TcpStream) -> Vec<u8> {
    let (first, body) = read_packet(sub).await;
    assert_eq!(first & 0xf0, 0x30, "a PUBLISH");
    let topic_len = usize::from(u16::from_be_bytes([body[0], body[1]]));
    let mut at = 2 + topic_len;
    if first & 0x06 != 0 {
        sub.write_all(&frame(0x40, &body[at..at + 2]))
            .await
            .unwrap();
        at += 2;
    }
    body[at..].to_vec()
}

#[tokio::test]
async fn oversize_v5_publish_is_acknowledged_with_0x83_and_dropped() {
    let broker = start().await;
    let mut sub = subscriber(&broker).await;
    let mut publisher = connect(&broker, "pub5", true).await;

    publisher
        .write_all(&publish(1, 1, b"12345", true))
        .await
        .unwrap();
    let (first, body) = read_packet(&mut publisher).await;
    assert_eq!(
        (first, &body[..3]),
        (0x40, &[0, 1, 0x83][..]),
        "PUBACK 0x83"
    );

    publisher
        .write_all(&publish(2, 2, b"12345", true))
        .await
        .unwrap();
    let (first, body) = read_packet(&mut publisher).await;
    assert_eq!(
        (first, &body[..3]),
        (0x50, &[0, 2, 0x83][..]),
        "PUBREC 0x83"
    );

    publisher
        .write_all(&publish(0, 0, b"12345", true))
        .await
        .unwrap();
    // At the limit: accepted and routed; only it reaches the subscriber.
    publisher
        .write_all(&publish(1, 3, b"1234", true))
        .await
        .unwrap();
    assert_eq!(read_packet(&mut publisher).await, (0x40, vec![0, 3]));
    assert_eq!(next_payload(&mut sub).await, b"1234");
    broker.shutdown().await;
}

#[tokio::test]
async fn oversize_v311_publish_completes_its_flow_and_is_dropped() {
    let broker = start().await;
    let mut sub = subscriber(&broker).await;
    let mut publisher = connect(&broker, "pub3", false).await;

    publisher
        .write_all(&publish(0, 0, b"12345", false))
        .await
        .unwrap();
    publisher
        .write_all(&publish(1, 1, b"12345", false))
        .await
        .unwrap();
    assert_eq!(read_packet(&mut publisher).await, (0x40, vec![0, 1]));
    // QoS 2: PUBREC, and the PUBREL that follows is completed.
    publisher
        .write_all(&publish(2, 2, b"12345", false))
        .await
        .unwrap();
    assert_eq!(read_packet(&mut publisher).await, (0x50, vec![0, 2]));
    publisher.write_all(&frame(0x62, &[0, 2])).await.unwrap();
    assert_eq!(read_packet(&mut publisher).await, (0x70, vec![0, 2]));

    publisher
        .write_all(&publish(0, 0, b"ok", false))
        .await
        .unwrap();
    assert_eq!(next_payload(&mut sub).await, b"ok");
    broker.shutdown().await;
}
