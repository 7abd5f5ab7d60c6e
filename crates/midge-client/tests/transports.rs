//! The client over every transport against a real in-process broker: TLS (server-only
//! and mutual, certificates from rcgen), WebSocket, secure WebSocket and Unix domain
//! sockets; refused certificates; reconnecting over each transport after a broker
//! restart.

mod common;
#[path = "../../midge-broker/tests/common/pki.rs"]
mod pki;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use common::*;
use midge_broker::config::ListenerProtocol;
use midge_broker::{BrokerHandle, Config, ListenerConfig};
use midge_client::{Client, ConnectOptions, TlsOptions, TlsVersion};
use midge_codec::QoS;
use pki::{Ca, Issued};

/// The transports under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tls,
    Ws,
    Wss,
    Unix,
}

/// A CA and a server certificate for `localhost` / 127.0.0.1 in a fresh directory.
struct Pki {
    dir: PathBuf,
    ca: Ca,
    ca_file: PathBuf,
    server: Issued,
}

fn pki(name: &str) -> Pki {
    let dir = pki::temp_dir(name);
    let ca = Ca::new("Midge client test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    Pki {
        dir,
        ca,
        ca_file,
        server,
    }
}

/// A broker with one listener of `kind` bound to `bind` (port 0: a free one).
fn config(
    kind: Kind,
    pki: &Pki,
    bind: SocketAddr,
    change: impl FnOnce(&mut ListenerConfig),
) -> Config {
    let mut config = Config::local_ephemeral();
    let mut listener = match kind {
        Kind::Unix => ListenerConfig::unix(pki.dir.join("mqtt.sock")),
        _ => ListenerConfig::new(bind),
    };
    if matches!(kind, Kind::Tls | Kind::Wss) {
        listener.certfile = Some(pki.server.cert.clone());
        listener.keyfile = Some(pki.server.key.clone());
    }
    if matches!(kind, Kind::Ws | Kind::Wss) {
        listener.protocol = ListenerProtocol::Websockets;
    }
    change(&mut listener);
    config.listeners = vec![listener];
    config
}

async fn start(kind: Kind, pki: &Pki, change: impl FnOnce(&mut ListenerConfig)) -> BrokerHandle {
    broker_with(config(kind, pki, "127.0.0.1:0".parse().unwrap(), change)).await
}

/// Client options for `kind` to `broker` (named `localhost`, as the certificate says).
fn client_options(kind: Kind, pki: &Pki, broker: &BrokerHandle, id: &str) -> ConnectOptions {
    let port = broker.local_addrs().first().map_or(0, |a| a.port());
    let base = options(broker_addr(broker), id).server(format!("localhost:{port}"));
    let tls = TlsOptions::new().ca_file(&pki.ca_file);
    match kind {
        Kind::Tls => base.tls(tls),
        Kind::Ws => base.websocket("/mqtt"),
        Kind::Wss => base.tls(tls).websocket("/mqtt"),
        Kind::Unix => base.unix_socket(pki.dir.join("mqtt.sock")),
    }
}

fn broker_addr(broker: &BrokerHandle) -> SocketAddr {
    broker
        .local_addrs()
        .first()
        .copied()
        .unwrap_or_else(|| "127.0.0.1:1".parse().unwrap())
}

/// A message goes out and comes back over one connection of `kind`; 100 kB crosses
/// several TLS records and WebSocket frames ([MQTT-6.0.0-2]).
async fn round_trip(kind: Kind) {
    let pki = pki(&format!("client-{kind:?}"));
    let broker = start(kind, &pki, |_| {}).await;
    let (client, mut events) = connect(client_options(kind, &pki, &broker, "rt")).await;
    client.subscribe("rt/#", QoS::AtLeastOnce).await.unwrap();
    let big = vec![b'x'; 100_000];
    client
        .publish("rt/big", QoS::AtLeastOnce, big.clone())
        .await
        .unwrap();
    client
        .publish("rt/small", QoS::ExactlyOnce, "hello")
        .await
        .unwrap();
    assert_eq!(next_message(&mut events).await.payload.len(), 100_000);
    assert_eq!(&next_message(&mut events).await.payload[..], b"hello");
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn tls_carries_mqtt() {
    round_trip(Kind::Tls).await;
}

/// [MQTT-6.0.0-1]: binary frames; the subprotocol is `mqtt` ([MQTT-6.0.0-3]).
// conformance: v5 MQTT-6.0.0-1, MQTT-6.0.0-2
#[tokio::test]
async fn websocket_carries_mqtt() {
    round_trip(Kind::Ws).await;
}

#[tokio::test]
async fn secure_websocket_carries_mqtt() {
    round_trip(Kind::Wss).await;
}

#[cfg(unix)]
#[tokio::test]
async fn unix_socket_carries_mqtt() {
    round_trip(Kind::Unix).await;
}

/// The broker restarts at the same address: the client reconnects over the same
/// transport and its queued message goes through.
async fn reconnects_over(kind: Kind) {
    let pki = pki(&format!("reconnect-{kind:?}"));
    let broker = start(kind, &pki, |_| {}).await;
    let bind = broker_addr(&broker);
    let (client, mut events) = connect(client_options(kind, &pki, &broker, "phoenix")).await;
    client.subscribe("p/t", QoS::AtLeastOnce).await.unwrap();
    broker.shutdown().await;
    disconnected(&mut events).await;
    let pending = publish_in_background(
        &client,
        QoS::AtLeastOnce,
        [("p/t".to_owned(), "again".to_owned())],
    );
    let broker = broker_with(config(kind, &pki, bind, |_| {})).await;
    reconnected(&mut events).await;
    all_published(pending).await;
    assert_eq!(&next_message(&mut events).await.payload[..], b"again");
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}

#[tokio::test]
async fn reconnects_over_tls() {
    reconnects_over(Kind::Tls).await;
}

#[tokio::test]
async fn reconnects_over_websocket() {
    reconnects_over(Kind::Ws).await;
}

#[tokio::test]
async fn reconnects_over_secure_websocket() {
    reconnects_over(Kind::Wss).await;
}

#[cfg(unix)]
#[tokio::test]
async fn reconnects_over_a_unix_socket() {
    reconnects_over(Kind::Unix).await;
}

fn tls_options(pki: &Pki, broker: &BrokerHandle, tls: TlsOptions) -> ConnectOptions {
    options(broker_addr(broker), "tls")
        .server(format!("localhost:{}", broker_addr(broker).port()))
        .reconnect(midge_client::ReconnectPolicy::never())
        .tls(tls.ca_file(&pki.ca_file))
}

async fn refused(options: ConnectOptions) -> midge_client::ClientError {
    match within(Client::connect(options)).await {
        Ok(_) => panic!("connected"),
        Err(e) => e,
    }
}

/// Mutual TLS: with the client certificate the broker takes the client; without one the
/// handshake (or, in TLS 1.3, the first read) fails.
#[tokio::test]
async fn mutual_tls_with_and_without_a_client_certificate() {
    let pki = pki("mtls");
    let me = pki.ca.client(&pki.dir, "me", "me");
    let broker = start(Kind::Tls, &pki, |l| {
        l.cafile = Some(pki.ca_file.clone());
        l.require_certificate = true;
    })
    .await;
    let (client, _events) = connect(tls_options(
        &pki,
        &broker,
        TlsOptions::new().client_certificate(&me.cert, &me.key),
    ))
    .await;
    client.disconnect().await.unwrap();
    let e = refused(tls_options(&pki, &broker, TlsOptions::new())).await;
    assert!(e.is_tls() || e.is_io() || e.is_connection_lost(), "{e}");
    broker.shutdown().await;
}

/// A server certificate from a CA the client does not trust is refused, as is one for
/// another name, unless the name check is off (`--insecure`).
#[tokio::test]
async fn untrusted_or_misnamed_server_certificates_are_refused() {
    let pki = pki("untrusted");
    let broker = start(Kind::Tls, &pki, |_| {}).await;
    let other = Ca::new("Another CA");
    let other_file = other.write(&pki.dir.join("other.pem"));
    let e = refused(
        options(broker_addr(&broker), "x")
            .server(format!("localhost:{}", broker_addr(&broker).port()))
            .reconnect(midge_client::ReconnectPolicy::never())
            .tls(TlsOptions::new().ca_file(&other_file)),
    )
    .await;
    assert!(e.is_tls(), "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");

    let misnamed = TlsOptions::new().server_name("elsewhere.example");
    let e = refused(tls_options(&pki, &broker, misnamed.clone())).await;
    assert!(e.is_tls(), "{e}");
    let (client, _events) = connect(tls_options(
        &pki,
        &broker,
        misnamed.insecure_skip_name_check(true),
    ))
    .await;
    client.disconnect().await.unwrap();

    // A CA directory works as a CA file does.
    let dir = pki.dir.join("cas");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&pki.ca_file, dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("README"), "not a certificate").unwrap();
    let (client, _events) = connect(
        options(broker_addr(&broker), "capath")
            .server(format!("localhost:{}", broker_addr(&broker).port()))
            .tls(TlsOptions::new().ca_path(&dir)),
    )
    .await;
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}

/// TLS 1.3 only, against a broker that takes 1.3 only and one that takes 1.2 and 1.3;
/// ALPN `mqtt` offered; a missing CA file is a clear error.
#[tokio::test]
async fn tls_version_alpn_and_bad_files() {
    let pki = pki("versions");
    let broker = start(Kind::Tls, &pki, |l| {
        l.tls_version = Some(midge_broker::config::TlsVersion::Tls13)
    })
    .await;
    let (client, _events) = connect(tls_options(
        &pki,
        &broker,
        TlsOptions::new()
            .min_version(TlsVersion::Tls13)
            .alpn("mqtt"),
    ))
    .await;
    client.disconnect().await.unwrap();
    broker.shutdown().await;

    let missing = Path::new("/nonexistent/ca.pem");
    let e = refused(
        options("127.0.0.1:1".parse().unwrap(), "x")
            .reconnect(midge_client::ReconnectPolicy::never())
            .tls(TlsOptions::new().ca_file(missing)),
    )
    .await;
    assert!(e.is_tls(), "{e}");
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}

/// A WebSocket path the broker does not serve: the handshake fails with a WebSocket
/// error; the path it serves works.
#[tokio::test]
async fn websocket_path_mismatch_is_a_websocket_error() {
    let pki = pki("ws-path");
    let broker = start(Kind::Ws, &pki, |l| {
        l.websockets_path = Some("/mqtt".to_owned())
    })
    .await;
    let base =
        options(broker_addr(&broker), "ws-path").reconnect(midge_client::ReconnectPolicy::never());
    let e = refused(base.clone().websocket("/elsewhere")).await;
    assert!(e.is_websocket(), "{e}");
    let (client, _events) = connect(base.websocket("mqtt")).await;
    client.disconnect().await.unwrap();
    broker.shutdown().await;
}
