//! Per-listener security (`per_listener_settings`): each listener's `allow_anonymous`,
//! `password_file` and `acl_file`, as Mosquitto applies them, and their reload.
//!
//! Wire behaviour: an anonymous client where its listener allows none gets CONNACK 0x87
//! (3.1.1: 5), bad credentials 0x86 (3.1.1: 4) ([MQTT-3.1.4-2], [MQTT-3.2.2-7]).

mod common;
#[path = "common/pki.rs"]
mod pki;

use bytes::Bytes;
use common::*;
use midge_broker::auth::{HashAlgorithm, PasswordHash};
use midge_broker::{Config, ListenerConfig};
use midge_codec::{ProtocolVersion, QoS, ReasonCode};

/// Two listeners on free ports: `open` (anonymous clients allowed, an ACL that only lets
/// them use `open/#`) and `closed` (anonymous clients refused, a password file).
fn two_listeners(dir: &std::path::Path) -> Config {
    let hash = PasswordHash::generate(HashAlgorithm::Sha512Pbkdf2, b"secret", None).unwrap();
    let passwd = dir.join("passwd");
    std::fs::write(&passwd, format!("alice:{}\n", hash.encode())).unwrap();
    let acl = dir.join("acl");
    std::fs::write(
        &acl,
        "topic readwrite open/#\nuser alice\ntopic readwrite #\n",
    )
    .unwrap();
    let mut config = test_config();
    config.per_listener_settings = true;
    let mut open = ListenerConfig::new("127.0.0.1:0".parse().unwrap());
    open.allow_anonymous = Some(true);
    open.acl_file = Some(acl);
    let mut closed = ListenerConfig::new("127.0.0.1:0".parse().unwrap());
    closed.allow_anonymous = Some(false);
    closed.password_file = Some(passwd);
    config.listeners = vec![open, closed];
    config
}

fn with_login(version: ProtocolVersion, id: &str, password: &'static [u8]) -> midge_codec::Connect {
    let mut connect = connect_packet(version, id);
    connect.username = Some("alice".into());
    connect.password = Some(Bytes::from_static(password));
    connect
}

/// conformance: v5 MQTT-3.2.2-7
/// conformance: v3.1.1 MQTT-3.1.4-2
#[tokio::test]
async fn allow_anonymous_and_password_file_per_listener() {
    let dir = pki::temp_dir("per-listener");
    let broker = start_with(two_listeners(&dir)).await;
    let (open, closed) = (broker.local_addrs()[0], broker.local_addrs()[1]);
    for version in [V311, V5] {
        Client::connect(open, version, "anon-open").await;
        let (_c, ack) = Client::connect_with(closed, connect_packet(version, "anon")).await;
        assert_eq!(ack.reason_code, ReasonCode::NotAuthorized, "{version:?}");
        let (_c, ack) = Client::connect_with(closed, with_login(version, "bad", b"wrong")).await;
        assert_eq!(
            ack.reason_code,
            ReasonCode::BadUserNameOrPassword,
            "{version:?}"
        );
        Client::connect_ok(closed, with_login(version, "alice", b"secret")).await;
        // The open listener has no password file: any password passes there.
        Client::connect_ok(open, with_login(version, "alice-open", b"wrong")).await;
    }
    broker.shutdown().await;
}

/// The open listener's ACL applies to its clients only; the closed listener has none,
/// so its clients may use every topic.
#[tokio::test]
async fn acl_file_per_listener() {
    let dir = pki::temp_dir("per-listener-acl");
    let broker = start_with(two_listeners(&dir)).await;
    let (open, closed) = (broker.local_addrs()[0], broker.local_addrs()[1]);
    let (mut watcher, _) = Client::connect_ok(closed, with_login(V5, "watcher", b"secret")).await;
    watcher.subscribe("#", QoS::AtMostOnce).await;
    let mut anon = Client::connect(open, V5, "anon").await;
    anon.pub_msg("closed/x", "denied", QoS::AtMostOnce).await;
    anon.pub_msg("open/x", "allowed", QoS::AtMostOnce).await;
    let p = watcher.recv_publish().await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("open/x", &b"allowed"[..])
    );
    broker.shutdown().await;
}

/// Without `per_listener_settings`, the global settings hold on every listener.
#[tokio::test]
async fn global_settings_hold_on_every_listener() {
    let mut config = test_config();
    config.allow_anonymous = false;
    config
        .listeners
        .push(ListenerConfig::new("127.0.0.1:0".parse().unwrap()));
    let broker = start_with(config).await;
    for addr in broker.local_addrs() {
        let (_c, ack) = Client::connect_with(*addr, connect_packet(V5, "anon")).await;
        assert_eq!(ack.reason_code, ReasonCode::NotAuthorized);
    }
    broker.shutdown().await;
}

/// SIGHUP's reload reaches every listener's files.
#[tokio::test]
async fn reload_auth_reloads_each_listeners_files() {
    let dir = pki::temp_dir("per-listener-reload");
    let broker = start_with(two_listeners(&dir)).await;
    let closed = broker.local_addrs()[1];
    let hash = PasswordHash::generate(HashAlgorithm::Sha512Pbkdf2, b"new", None).unwrap();
    std::fs::write(dir.join("passwd"), format!("alice:{}\n", hash.encode())).unwrap();
    broker.reload_auth().expect("reload");
    let (_c, ack) = Client::connect_with(closed, with_login(V5, "old", b"secret")).await;
    assert_eq!(ack.reason_code, ReasonCode::BadUserNameOrPassword);
    Client::connect_ok(closed, with_login(V5, "new", b"new")).await;
    broker.shutdown().await;
}
