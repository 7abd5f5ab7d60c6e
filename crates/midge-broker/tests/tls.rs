//! TLS listeners: server-only and mutual TLS with certificates generated at test time,
//! refused client certificates (untrusted, expired, missing), TLS versions, ALPN `mqtt`,
//! the certificate as user name, and certificate reload without dropping connections.
//! MQTT over TLS is MQTT over a TLS stream (§4.2 of 3.1.1 and 5.0: "TLS ... MAY be used").

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::path::Path;

use common::*;
use midge_broker::{Broker, Config, ListenerConfig};
use midge_codec::{Packet, QoS, ReasonCode};
use pki::{Ca, ClientTls, Issued};

/// A broker with one TLS listener on a free port, set up by `change`.
async fn start_tls(
    server: &Issued,
    change: impl FnOnce(&mut ListenerConfig),
) -> midge_broker::BrokerHandle {
    let mut config = test_config();
    let listener = &mut config.listeners[0];
    listener.certfile = Some(server.cert.clone());
    listener.keyfile = Some(server.key.clone());
    change(listener);
    start_with(config).await
}

/// A connection that the broker refuses during or right after the handshake: the
/// handshake fails, or (TLS 1.3, where the client finishes before the server has checked
/// its certificate) the first read finds the connection closed.
async fn assert_refused(tls: &ClientTls, addr: std::net::SocketAddr) {
    let Ok(stream) = tls.connect(addr).await else {
        return;
    };
    let mut client = Client::over(stream, V311);
    client
        .send(Packet::Connect(Box::new(connect_packet(V311, "refused"))))
        .await;
    match client.recv_within(TIMEOUT).await {
        Recv::Closed | Recv::Bad(_) => {}
        other => panic!("expected the TLS connection to be refused, got {other:?}"),
    }
}

async fn connect_tls(tls: &ClientTls, addr: std::net::SocketAddr, id: &str) -> Client {
    let stream = tls.connect(addr).await.expect("TLS handshake");
    let (client, ack) = Client::connect_over(stream, connect_packet(V5, id)).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    client
}

#[tokio::test]
async fn server_only_tls_carries_mqtt_both_ways() {
    let dir = pki::temp_dir("tls-server");
    let ca = Ca::new("Midge test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let broker = start_tls(&server, |_| {}).await;
    let tls = ClientTls::trusting(&ca_file);

    let mut sub = connect_tls(&tls, broker.local_addr(), "sub").await;
    sub.subscribe("t/#", QoS::AtLeastOnce).await;
    let mut publisher = connect_tls(&tls, broker.local_addr(), "pub").await;
    // A payload larger than one TLS record (16 KiB) crosses in several records.
    let big: &'static str = Box::leak("x".repeat(100_000).into_boxed_str());
    publisher.pub_msg("t/big", big, QoS::AtLeastOnce).await;
    publisher.pub_msg("t/small", "hello", QoS::AtMostOnce).await;
    let first = sub.recv_and_ack().await;
    assert_eq!(first.payload.len(), 100_000);
    assert_eq!(&sub.recv_publish().await.payload[..], b"hello");

    // A plain TCP client on the TLS port gets no MQTT answer.
    let mut plain = Client::open(broker.local_addr(), V311).await;
    plain
        .send(Packet::Connect(Box::new(connect_packet(V311, "plain"))))
        .await;
    assert!(matches!(
        plain.recv_within(TIMEOUT).await,
        Recv::Closed | Recv::Bad(_)
    ));
    broker.shutdown().await;
}

#[tokio::test]
async fn tls_12_and_13_and_the_minimum_version() {
    let dir = pki::temp_dir("tls-versions");
    let ca = Ca::new("Midge test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let tls12 = ClientTls {
        tls12_only: true,
        ..ClientTls::trusting(&ca_file)
    };
    let broker = start_tls(&server, |_| {}).await;
    let stream = tls12.connect(broker.local_addr()).await.expect("TLS 1.2");
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(tokio_rustls::rustls::ProtocolVersion::TLSv1_2)
    );
    let stream = ClientTls::trusting(&ca_file)
        .connect(broker.local_addr())
        .await
        .expect("TLS 1.3");
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(tokio_rustls::rustls::ProtocolVersion::TLSv1_3)
    );
    broker.shutdown().await;

    let broker = start_tls(&server, |l| {
        l.tls_version = Some(midge_broker::config::TlsVersion::Tls13)
    })
    .await;
    assert!(tls12.connect(broker.local_addr()).await.is_err());
    connect_tls(&ClientTls::trusting(&ca_file), broker.local_addr(), "v13").await;
    broker.shutdown().await;
}

#[tokio::test]
async fn alpn_mqtt_is_chosen_when_offered_and_not_required() {
    let dir = pki::temp_dir("tls-alpn");
    let ca = Ca::new("Midge test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let broker = start_tls(&server, |_| {}).await;
    let offer = |alpn: &[&[u8]]| ClientTls {
        alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        ..ClientTls::trusting(&ca_file)
    };
    let stream = offer(&[b"x-other", b"mqtt"])
        .connect(broker.local_addr())
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"mqtt"[..]));
    // Another protocol only: accepted without ALPN, as by Mosquitto.
    let stream = offer(&[b"x-other"])
        .connect(broker.local_addr())
        .await
        .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), None);
    let (_client, ack) = Client::connect_over(stream, connect_packet(V311, "alpn")).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    broker.shutdown().await;
}

#[tokio::test]
async fn mutual_tls_accepts_trusted_and_refuses_untrusted_expired_and_missing_certificates() {
    let dir = pki::temp_dir("tls-mutual");
    let ca = Ca::new("Midge test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let client = ca.client(&dir, "client", "client1");
    let expired = ca.expired_client(&dir, "expired", "client1");
    let rogue_ca = Ca::new("Rogue CA");
    let untrusted = rogue_ca.client(&dir, "untrusted", "client1");
    let broker = start_tls(&server, |l| {
        l.cafile = Some(ca_file.clone());
        l.require_certificate = true;
    })
    .await;
    let addr = broker.local_addr();
    let trusting = ClientTls::trusting(&ca_file);

    let mut ok = connect_tls(&trusting.clone().with_identity(&client), addr, "mutual").await;
    ok.ping().await;
    assert_refused(&trusting.clone().with_identity(&untrusted), addr).await;
    assert_refused(&trusting.clone().with_identity(&expired), addr).await;
    assert_refused(&trusting, addr).await;
    // Over TLS 1.2 the refusal is in the handshake itself.
    let tls12 = ClientTls {
        tls12_only: true,
        ..trusting.clone().with_identity(&untrusted)
    };
    assert!(tls12.connect(addr).await.is_err());
    ok.ping().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn capath_directory_of_cas_checks_client_certificates() {
    let dir = pki::temp_dir("tls-capath");
    let cas = dir.join("cas");
    std::fs::create_dir(&cas).unwrap();
    let ca = Ca::new("Midge test CA");
    let other = Ca::new("Other CA");
    ca.write(&cas.join("a.pem"));
    other.write(&cas.join("b.pem"));
    std::fs::write(cas.join("README"), "not a certificate").unwrap();
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let from_other = other.client(&dir, "other", "client2");
    let rogue = Ca::new("Rogue CA").client(&dir, "rogue", "client3");
    let broker = start_tls(&server, |l| {
        l.capath = Some(cas.clone());
        l.require_certificate = true;
    })
    .await;
    let trusting = ClientTls::trusting(&ca_file);
    connect_tls(
        &trusting.clone().with_identity(&from_other),
        broker.local_addr(),
        "c2",
    )
    .await;
    assert_refused(&trusting.with_identity(&rogue), broker.local_addr()).await;
    broker.shutdown().await;
}

/// The certificate's CN is the user name: checked by an ACL that only lets `client1`
/// publish to `t/client1` and by a password file that does not know it (the certificate
/// is the credential). A client without a certificate is refused with 0x86 (5.0) / 4.
#[tokio::test]
async fn identity_as_username_uses_the_common_name() {
    let dir = pki::temp_dir("tls-identity");
    let ca = Ca::new("Midge test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let client = ca.client(&dir, "client", "client1");
    let acl = dir.join("acl");
    std::fs::write(&acl, "user client1\ntopic readwrite t/client1\n").unwrap();
    let passwd = dir.join("passwd");
    std::fs::write(&passwd, "").unwrap();
    let mut config = test_config();
    config.allow_anonymous = false;
    config.acl_file = Some(acl);
    config.password_file = Some(passwd);
    let listener = &mut config.listeners[0];
    listener.certfile = Some(server.cert.clone());
    listener.keyfile = Some(server.key.clone());
    listener.cafile = Some(ca_file.clone());
    listener.use_identity_as_username = true;
    let broker = start_with(config).await;
    let addr = broker.local_addr();
    let trusting = ClientTls::trusting(&ca_file);

    let stream = trusting
        .clone()
        .with_identity(&client)
        .connect(addr)
        .await
        .unwrap();
    let mut connect = connect_packet(V5, "cn");
    connect.username = Some("someone-else".into());
    connect.password = Some(bytes::Bytes::from_static(b"wrong"));
    let (mut c, ack) = Client::connect_over(stream, connect).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    c.subscribe("t/#", QoS::AtMostOnce).await;
    c.pub_msg("t/other", "denied", QoS::AtMostOnce).await;
    c.pub_msg("t/client1", "allowed", QoS::AtMostOnce).await;
    assert_eq!(&c.recv_publish().await.payload[..], b"allowed");

    for version in [V311, V5] {
        let stream = trusting.connect(addr).await.unwrap();
        let mut connect = connect_packet(version, "nocert");
        connect.username = Some("client1".into());
        let (_c, ack) = Client::connect_over(stream, connect).await;
        assert_eq!(
            ack.reason_code,
            ReasonCode::BadUserNameOrPassword,
            "{version:?}"
        );
    }
    broker.shutdown().await;
}

/// `use_subject_as_username`: the RFC 2253 subject, last RDN first, as Mosquitto gets it
/// from OpenSSL.
#[tokio::test]
async fn subject_as_username_uses_the_rfc2253_subject() {
    let dir = pki::temp_dir("tls-subject");
    let ca = Ca::new("Midge test CA");
    let ca_file = ca.write(&dir.join("ca.pem"));
    let server = ca.server(&dir, "server");
    let client = ca.client(&dir, "client", "client1");
    let acl = dir.join("acl");
    std::fs::write(
        &acl,
        "user O=Midge Tests,CN=client1\ntopic readwrite mine\n",
    )
    .unwrap();
    let mut config = test_config();
    config.acl_file = Some(acl);
    let listener = &mut config.listeners[0];
    listener.certfile = Some(server.cert.clone());
    listener.keyfile = Some(server.key.clone());
    listener.cafile = Some(ca_file.clone());
    listener.require_certificate = true;
    listener.use_subject_as_username = true;
    let broker = start_with(config).await;
    let stream = ClientTls::trusting(&ca_file)
        .with_identity(&client)
        .connect(broker.local_addr())
        .await
        .unwrap();
    let (mut c, ack) = Client::connect_over(stream, connect_packet(V5, "subject")).await;
    assert_eq!(ack.reason_code, ReasonCode::Success);
    c.subscribe("#", QoS::AtMostOnce).await;
    c.pub_msg("other", "denied", QoS::AtMostOnce).await;
    c.pub_msg("mine", "allowed", QoS::AtMostOnce).await;
    assert_eq!(&c.recv_publish().await.payload[..], b"allowed");
    broker.shutdown().await;
}

/// SIGHUP's reload: new certificates serve new connections, connections made before
/// stay up, and files that do not load keep the previous certificates.
#[tokio::test]
async fn reload_picks_up_new_certificates_without_dropping_connections() {
    let dir = pki::temp_dir("tls-reload");
    let old_ca = Ca::new("Old CA");
    let old_ca_file = old_ca.write(&dir.join("old-ca.pem"));
    let new_ca = Ca::new("New CA");
    let new_ca_file = new_ca.write(&dir.join("new-ca.pem"));
    let old = old_ca.server(&dir, "old");
    let new = new_ca.server(&dir, "new");
    let live = Issued {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    let install = |from: &Issued| {
        std::fs::copy(&from.cert, &live.cert).unwrap();
        std::fs::copy(&from.key, &live.key).unwrap();
    };
    install(&old);
    let broker = start_tls(&live, |_| {}).await;
    let addr = broker.local_addr();
    let mut before = connect_tls(&ClientTls::trusting(&old_ca_file), addr, "before").await;
    before.subscribe("t", QoS::AtMostOnce).await;

    install(&new);
    broker.reload_tls().expect("reload");
    assert!(
        ClientTls::trusting(&old_ca_file)
            .connect(addr)
            .await
            .is_err()
    );
    let mut after = connect_tls(&ClientTls::trusting(&new_ca_file), addr, "after").await;
    after.pub_msg("t", "across", QoS::AtMostOnce).await;
    assert_eq!(&before.recv_publish().await.payload[..], b"across");

    // A broken key file: the reload fails, naming the file, and the certificates stay.
    std::fs::write(&live.key, "not a key").unwrap();
    let error = broker.reload_tls().expect_err("broken key");
    assert!(error.to_string().contains("server.key"), "{error}");
    connect_tls(&ClientTls::trusting(&new_ca_file), addr, "still").await;
    broker.shutdown().await;
}

#[tokio::test]
async fn start_fails_naming_a_missing_or_bad_certificate_file() {
    let dir = pki::temp_dir("tls-bad");
    let ca = Ca::new("Midge test CA");
    let server = ca.server(&dir, "server");
    let start = |cert: &Path, key: &Path| {
        let mut config = Config::local_ephemeral();
        config.listeners[0].certfile = Some(cert.to_path_buf());
        config.listeners[0].keyfile = Some(key.to_path_buf());
        Broker::start(config)
    };
    let missing = dir.join("missing.pem");
    let error = start(&missing, &server.key)
        .await
        .expect_err("missing file");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    assert!(error.to_string().starts_with("certfile "), "{error}");
    assert!(error.to_string().contains("missing.pem"), "{error}");
    // The key of another certificate.
    let other = ca.server(&dir, "other");
    let error = start(&server.cert, &other.key)
        .await
        .expect_err("mismatched key");
    assert!(error.to_string().contains("TLS settings"), "{error}");
    // A key file given as the certificate.
    let error = start(&server.key, &server.key)
        .await
        .expect_err("no certificate");
    assert!(error.to_string().contains("no PEM certificate"), "{error}");
}
