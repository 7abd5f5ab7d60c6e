//! Unix domain socket listeners (mosquitto.conf `listener 0 PATH`): MQTT over a
//! `tokio::net::UnixStream`, alongside a TCP listener; the socket file's life cycle.

#![cfg(unix)]

mod common;
#[path = "common/pki.rs"]
mod pki;

use common::*;
use midge_broker::{Broker, ListenerConfig};
use midge_codec::{QoS, ReasonCode};
use tokio::net::UnixStream;

#[tokio::test]
async fn mqtt_over_a_unix_socket_and_tcp_side_by_side() {
    let dir = pki::temp_dir("unix");
    let path = dir.join("mqtt.sock");
    let mut config = test_config();
    config.listeners.push(ListenerConfig::unix(&path));
    let broker = start_with(config).await;
    assert_eq!(
        broker.local_addrs().len(),
        1,
        "only the TCP listener has an address"
    );

    for version in [V31, V311, V5] {
        let stream = UnixStream::connect(&path).await.expect("unix connect");
        let (mut local, ack) =
            Client::connect_over(stream, connect_packet(version, &cid("local", version))).await;
        assert_eq!(ack.reason_code, ReasonCode::Success);
        local.subscribe("u/#", QoS::AtLeastOnce).await;
        let mut tcp = Client::connect(broker.local_addr(), version, &cid("tcp", version)).await;
        tcp.pub_msg("u/1", "from tcp", QoS::AtLeastOnce).await;
        assert_eq!(&local.recv_and_ack().await.payload[..], b"from tcp");
        local.disconnect().await;
    }
    broker.shutdown().await;
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_another_file_is_refused() {
    let dir = pki::temp_dir("unix-stale");
    let path = dir.join("stale.sock");
    // A socket file left behind by a process that is gone.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut config = test_config();
    config.listeners = vec![ListenerConfig::unix(&path)];
    let broker = start_with(config).await;
    let stream = UnixStream::connect(&path).await.unwrap();
    let (_c, ack) = Client::connect_over(stream, connect_packet(V5, "after-stale")).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    broker.shutdown().await;

    let file = dir.join("regular");
    std::fs::write(&file, "keep me").unwrap();
    let mut config = test_config();
    config.listeners = vec![ListenerConfig::unix(&file)];
    let error = Broker::start(config).await.expect_err("not a socket");
    assert!(error.to_string().contains("is not a socket"), "{error}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}
