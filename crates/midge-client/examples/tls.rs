//! Connects over TLS (`mqtts://`) and over secure WebSocket (`wss://`), checking the
//! server's certificate against a CA file, and sends a message from one to the other.
//!
//! ```text
//! cargo run -p midge-client --example tls [HOST:PORT CA_FILE]
//! ```
//! Without arguments it makes a CA and a certificate for `localhost` (rcgen), and starts
//! an in-process Midge broker with a TLS and a secure WebSocket listener.

use std::path::PathBuf;

use midge_broker::config::ListenerProtocol;
use midge_broker::{Broker, BrokerHandle, Config, ListenerConfig};
use midge_client::{Client, ClientError, ConnectOptions, QoS, TlsOptions};

#[tokio::main]
async fn main() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let (mqtts, wss, ca_file, broker) = match (args.next(), args.next()) {
        (Some(server), Some(ca)) => (server, None, PathBuf::from(ca), None),
        _ => {
            let (mqtts, wss, ca, broker) = local_broker().await;
            (mqtts, Some(wss), ca, Some(broker))
        }
    };
    let tls = TlsOptions::new().ca_file(&ca_file).alpn("mqtt");

    let (subscriber, mut events) = Client::connect(
        ConnectOptions::new()
            .server(&mqtts)
            .client_id("example-tls-sub")
            .tls(tls.clone()),
    )
    .await?;
    subscriber.subscribe("midge/tls", QoS::AtLeastOnce).await?;
    println!("subscribed over mqtts://{mqtts}");

    // Over secure WebSocket when this example started the broker; over TLS otherwise.
    let mut options = ConnectOptions::new().client_id("example-tls-pub").tls(tls);
    options = match &wss {
        Some(wss) => options.server(wss).websocket("/mqtt"),
        None => options.server(&mqtts),
    };
    let (publisher, _events) = Client::connect(options).await?;
    publisher
        .publish("midge/tls", QoS::AtLeastOnce, "sent securely")
        .await?;
    if let Some(message) = events.recv_message().await {
        println!(
            "received {:?} on {}",
            String::from_utf8_lossy(&message.payload),
            message.topic.as_str()
        );
    }
    publisher.disconnect().await?;
    subscriber.disconnect().await?;
    if let Some(broker) = broker {
        broker.shutdown().await;
    }
    Ok(())
}

/// A CA and a server certificate in a temporary directory, and a broker with a TLS
/// listener and a secure WebSocket listener on free ports.
async fn local_broker() -> (String, String, PathBuf, BrokerHandle) {
    let dir = std::env::temp_dir().join(format!("midge-example-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("certificate");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("write");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write");

    let mut config = Config::local_ephemeral();
    let mut tls = ListenerConfig::new("127.0.0.1:0".parse().expect("address"));
    tls.certfile = Some(dir.join("server.pem"));
    tls.keyfile = Some(dir.join("server.key"));
    let mut wss = tls.clone();
    wss.protocol = ListenerProtocol::Websockets;
    config.listeners = vec![tls, wss];
    let broker = Broker::start(config).await.expect("start the broker");
    let ports: Vec<u16> = broker.local_addrs().iter().map(|a| a.port()).collect();
    (
        format!("localhost:{}", ports[0]),
        format!("localhost:{}", ports[1]),
        ca_file,
        broker,
    )
}
