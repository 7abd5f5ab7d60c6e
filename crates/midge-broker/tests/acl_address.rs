//! The ACL's `address` sections (a Midge extension) over real sockets: behind a load
//! balancer that sends PROXY protocol headers (v1 and v2), the rules follow the address
//! of the header, not the balancer's; without PROXY the socket's address counts; a Unix
//! socket client has none; a reload swaps address rules for connected clients too.
//!
//! Wire behaviour: a PUBLISH the address rules do not allow gets PUBACK 0x87 in 5.0
//! ([MQTT-3.4.2-1]) and is not routed; a message the subscriber's address may not read
//! is not delivered.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;

use common::*;
use midge_broker::{BrokerHandle, Config};
use midge_codec::{Packet, QoS, ReasonCode};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Alice may use alice/#; whoever connects from 10.0.0.0/8 or 2001:db8::/32 may also
/// use plant/#.
const ACL: &str = "\
user alice
topic readwrite alice/#

# Midge extension: by client address.
address 10.0.0.0/8 2001:db8::/32
topic readwrite plant/#
";

/// A broker whose first listener takes PROXY headers, with `acl` as its ACL file.
async fn proxied_broker(acl: &str) -> (BrokerHandle, PathBuf) {
    let path = pki::temp_dir("acl-address").join("acl");
    std::fs::write(&path, acl).unwrap();
    let mut config = test_config();
    config.listeners[0].proxy_protocol = true;
    config.acl_file = Some(path.clone());
    (start_with(config).await, path)
}

fn v1(source: &str) -> Vec<u8> {
    let family = if source.contains(':') { "TCP6" } else { "TCP4" };
    let destination = if source.contains(':') {
        "2001:db8::1"
    } else {
        "198.51.100.2"
    };
    format!("PROXY {family} {source} {destination} 40000 1883\r\n").into_bytes()
}

fn v2(source: SocketAddr) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.push(0x21); // version 2, PROXY
    let mut addresses = Vec::new();
    match source {
        SocketAddr::V4(a) => {
            header.push(0x11); // TCP over IPv4
            addresses.extend_from_slice(&a.ip().octets());
            addresses.extend_from_slice(&[198, 51, 100, 2]);
        }
        SocketAddr::V6(a) => {
            header.push(0x21); // TCP over IPv6
            addresses.extend_from_slice(&a.ip().octets());
            addresses.extend_from_slice(
                &"2001:db8::1"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
            );
        }
    }
    addresses.extend_from_slice(&source.port().to_be_bytes());
    addresses.extend_from_slice(&1883u16.to_be_bytes());
    header.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
    header.extend_from_slice(&addresses);
    header
}

/// Connects as alice (5.0) through the proxied listener, after `header`.
async fn alice_through(broker: &BrokerHandle, header: &[u8], id: &str) -> Client {
    let mut stream = TcpStream::connect(broker.local_addr()).await.unwrap();
    stream.write_all(header).await.unwrap();
    let mut connect = connect_packet(V5, id);
    connect.username = Some("alice".into());
    let (client, ack) = Client::connect_over(stream, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::Success, "{id}");
    client
}

/// Publishes at QoS 1 and returns the PUBACK's reason code.
async fn publish_code(client: &mut Client, topic: &str, payload: &'static str) -> ReasonCode {
    let mut p = publish(topic, payload, QoS::AtLeastOnce);
    let id = client.next_id();
    p.packet_id = Some(id);
    client.send(Packet::Publish(p)).await;
    match client.recv_reply().await {
        Packet::PubAck(ack) => {
            assert_eq!(ack.packet_id, id);
            ack.reason_code
        }
        other => panic!("expected PUBACK, got {other:?}"),
    }
}

/// Clients "from" 10.1.2.3 (v1 header) and 2001:db8::7 (v2 header) may read and write
/// plant/#; clients from 192.0.2.10 (v1) and 11.0.0.1 (v2) may not, though all four are
/// alice and keep her own rules. [MQTT-3.4.2-1]
/// conformance: v5 MQTT-3.4.2-1
#[tokio::test]
async fn address_rules_follow_the_proxy_headers_client_address() {
    let (broker, acl) = proxied_broker(ACL).await;
    let mut inside_v1 = alice_through(&broker, &v1("10.1.2.3"), "inside-v1").await;
    let mut inside_v2 = alice_through(
        &broker,
        &v2("[2001:db8::7]:5000".parse().unwrap()),
        "inside-v2",
    )
    .await;
    let mut outside_v1 = alice_through(&broker, &v1("192.0.2.10"), "outside-v1").await;
    let mut outside_v2 =
        alice_through(&broker, &v2("11.0.0.1:5000".parse().unwrap()), "outside-v2").await;
    for client in [&mut inside_v1, &mut outside_v1, &mut outside_v2] {
        client.subscribe("plant/#", QoS::AtLeastOnce).await;
    }

    for outside in [&mut outside_v1, &mut outside_v2] {
        assert_eq!(
            publish_code(outside, "plant/valve", "refused").await,
            ReasonCode::NotAuthorized
        );
        assert_eq!(
            publish_code(outside, "alice/own", "her rules stand").await,
            ReasonCode::Success
        );
    }
    assert_eq!(
        publish_code(&mut inside_v2, "plant/valve", "open").await,
        ReasonCode::Success
    );
    assert_eq!(
        publish_code(&mut inside_v1, "plant/pump", "on").await,
        ReasonCode::Success
    );
    // The first plant message the inside subscriber gets is the allowed one: the refused
    // ones were not routed. The outside subscribers may not read plant/#.
    let got = [
        inside_v1.recv_and_ack().await,
        inside_v1.recv_and_ack().await,
    ];
    assert_eq!(payloads(&got), ["open", "on"]);
    inside_v1.expect_nothing().await;
    outside_v1.expect_nothing().await;
    outside_v2.expect_nothing().await;
    broker.shutdown().await;
    let _ = std::fs::remove_dir_all(acl.parent().unwrap());
}

/// Without a PROXY header the socket's address counts (127.0.0.1 here, on a listener
/// without `proxy_protocol`); a Unix socket client matches no range, not even
/// `0.0.0.0/0 ::/0`. [MQTT-3.4.2-1]
/// conformance: v5 MQTT-3.4.2-1
#[cfg(unix)]
#[tokio::test]
async fn socket_address_counts_without_proxy_and_unix_clients_have_none() {
    let dir = pki::temp_dir("acl-address-unix");
    let acl = dir.join("acl");
    std::fs::write(&acl, "address 0.0.0.0/0 ::/0\ntopic readwrite loop/#\n").unwrap();
    let socket = dir.join("mqtt.sock");
    let mut config: Config = test_config();
    config
        .listeners
        .push(midge_broker::ListenerConfig::unix(&socket));
    config.acl_file = Some(acl);
    let broker = start_with(config).await;

    let mut tcp = Client::connect(broker.local_addr(), V5, "tcp").await;
    tcp.subscribe("loop/#", QoS::AtLeastOnce).await;
    let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let (mut unix, ack) = Client::connect_over(stream, connect_packet(V5, "unix")).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    unix.subscribe("loop/#", QoS::AtLeastOnce).await;

    assert_eq!(
        publish_code(&mut unix, "loop/x", "refused").await,
        ReasonCode::NotAuthorized
    );
    assert_eq!(
        publish_code(&mut tcp, "loop/x", "allowed").await,
        ReasonCode::Success
    );
    assert_eq!(payloads(&[tcp.recv_and_ack().await]), ["allowed"]);
    unix.expect_nothing().await;
    broker.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// `reload_auth` (SIGHUP) swaps address rules for connected clients; a file with a
/// malformed range is refused with its file and line, and the rules in force stay.
#[tokio::test]
async fn reload_swaps_address_rules_and_a_bad_range_keeps_the_old_ones() {
    let (broker, acl) = proxied_broker(ACL).await;
    let mut inside = alice_through(&broker, &v1("10.1.2.3"), "reload-inside").await;
    let mut outside = alice_through(
        &broker,
        &v2("192.0.2.10:5000".parse().unwrap()),
        "reload-outside",
    )
    .await;
    assert_eq!(
        publish_code(&mut inside, "plant/a", "1").await,
        ReasonCode::Success
    );
    assert_eq!(
        publish_code(&mut outside, "plant/a", "2").await,
        ReasonCode::NotAuthorized
    );

    std::fs::write(&acl, "address 192.0.2.0/24\ntopic readwrite plant/#\n").unwrap();
    broker.reload_auth().expect("reloads");
    assert_eq!(
        publish_code(&mut inside, "plant/a", "3").await,
        ReasonCode::NotAuthorized
    );
    assert_eq!(
        publish_code(&mut outside, "plant/a", "4").await,
        ReasonCode::Success
    );

    std::fs::write(
        &acl,
        "# bad\naddress 192.0.2.0/24 10.0.0.0/33\ntopic plant/#\n",
    )
    .unwrap();
    let error = broker.reload_auth().unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "{}:2: invalid address range \"10.0.0.0/33\": prefix length must be a number from 0 to 32",
            acl.display()
        )
    );
    assert_eq!(
        publish_code(&mut inside, "plant/a", "5").await,
        ReasonCode::NotAuthorized
    );
    assert_eq!(
        publish_code(&mut outside, "plant/a", "6").await,
        ReasonCode::Success
    );
    broker.shutdown().await;
    let _ = std::fs::remove_dir_all(acl.parent().unwrap());
}

/// Mosquitto itself refuses an ACL file with an `address` line: the extension cannot
/// change what a file Mosquitto accepts means, and Mosquitto cannot misread a file that
/// uses it. (Debian's mosquitto, which `scripts/test` installs.)
#[test]
fn mosquitto_refuses_an_address_line() {
    let dir = pki::temp_dir("acl-address-mosquitto");
    let acl = dir.join("acl");
    std::fs::write(&acl, "topic read a\naddress 10.0.0.0/8\ntopic write b\n").unwrap();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener 0 {}\nallow_anonymous true\nacl_file {}\n",
            dir.join("mqtt.sock").display(),
            acl.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/sbin/mosquitto runs (scripts/test installs it)");
    let mut waited = 0;
    while child.try_wait().unwrap().is_none() {
        if waited == 200 {
            let _ = child.kill();
            panic!("mosquitto accepted an ACL file with an address line");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("Invalid line in acl_file"), "{text}");
    assert!(text.contains("address"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
