//! Authentication and authorization over real sockets: `password_file` at CONNECT,
//! `acl_file` on publish, subscribe and every delivery, reloads, and Mosquitto's own
//! clients against a broker configured from a mosquitto.conf.
//!
//! Wire behaviour checked here: bad credentials → CONNACK 0x86 (3.1.1: 4); an anonymous
//! client where none is allowed, or a will the client may not publish → 0x87 (3.1.1: 5)
//! ([MQTT-3.1.4-2], [MQTT-3.2.2-7]); a refused PUBLISH → PUBACK/PUBREC 0x87 in 5.0
//! ([MQTT-3.4.2-1], [MQTT-3.5.2-1]), acknowledged normally and dropped in 3.1/3.1.1; a
//! message the subscriber may not read is not delivered, whatever matched it.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use bytes::Bytes;
use common::*;
use midge_broker::Config;
use midge_broker::auth::{HashAlgorithm, PasswordHash};
use midge_codec::{Connect, LastWill, Packet, ProtocolVersion, QoS, ReasonCode};

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("midge-auth-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A password file as `midge passwd` writes it: one `user:hash` line per user.
fn password_file(users: &[(&str, &str, HashAlgorithm)]) -> String {
    users
        .iter()
        .map(|(user, password, algorithm)| {
            let hash = PasswordHash::generate(*algorithm, password.as_bytes(), None).unwrap();
            format!("{user}:{}\n", hash.encode())
        })
        .collect()
}

/// The ACL of most tests.
const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read public/#

user bob
topic readwrite public/#
topic read alice/#

user carol
topic readwrite #

pattern write clients/%c/#
pattern read users/%u/#
";

fn credentials(
    version: ProtocolVersion,
    client_id: &str,
    user: Option<&str>,
    password: Option<&str>,
) -> Connect {
    let mut connect = connect_packet(version, client_id);
    connect.username = user.map(Into::into);
    connect.password = password.map(|p| Bytes::copy_from_slice(p.as_bytes()));
    connect
}

async fn connect_as(addr: SocketAddr, version: ProtocolVersion, id: &str, user: &str) -> Client {
    Client::connect_ok(
        addr,
        credentials(version, &cid(id, version), Some(user), None),
    )
    .await
    .0
}

/// A broker with `acl` as its ACL file (no password file: usernames are identities).
async fn acl_broker(dir: &TempDir, acl: &str) -> (midge_broker::BrokerHandle, PathBuf) {
    let path = dir.file("acl", acl);
    let mut config = test_config();
    config.acl_file = Some(path.clone());
    (start_with(config).await, path)
}

/// Right password accepted; wrong password and unknown user refused with 0x86 (4 in
/// 3.1/3.1.1); anonymous refused with 0x87 (5) when `allow_anonymous` is false.
/// [MQTT-3.1.4-2] [MQTT-3.2.2-7]
/// conformance: v5 MQTT-3.1.4-2
/// conformance: v5 MQTT-3.2.2-7
#[tokio::test]
async fn password_file_decides_who_connects() {
    let dir = TempDir::new("passwd");
    let file = dir.file(
        "passwd",
        &password_file(&[
            ("alice", "wonderland", HashAlgorithm::Sha512Pbkdf2),
            ("bob", "builder", HashAlgorithm::Sha512),
            ("dora", "explorer", HashAlgorithm::Argon2id),
        ]),
    );
    let mut config = test_config();
    config.password_file = Some(file);
    config.allow_anonymous = false;
    let broker = start_with(config).await;
    let addr = broker.local_addr();
    for version in VERSIONS {
        for (user, password) in [
            ("alice", "wonderland"),
            ("bob", "builder"),
            ("dora", "explorer"),
        ] {
            let connect = credentials(version, &cid(user, version), Some(user), Some(password));
            Client::connect_ok(addr, connect).await.0.disconnect().await;
        }
        let refused = [
            (Some("alice"), Some("Wonderland")),
            (Some("alice"), None),
            (Some("mallory"), Some("wonderland")),
            (Some("dora"), Some("")),
        ];
        for (user, password) in refused {
            let connect = credentials(version, &cid("bad", version), user, password);
            let (mut client, ack) = Client::connect_with(addr, connect).await;
            // 3.1/3.1.1 carry return code 4, which the codec reads back as 0x86.
            assert_eq!(
                ack.reason_code,
                ReasonCode::BadUserNameOrPassword,
                "{version} {user:?}"
            );
            client.expect_closed().await;
        }
        let (mut client, ack) =
            Client::connect_with(addr, connect_packet(version, &cid("anon", version))).await;
        assert_eq!(ack.reason_code, ReasonCode::NotAuthorized, "{version}");
        client.expect_closed().await;
    }
    broker.shutdown().await;
}

/// The 3.1.1 CONNACK bytes themselves: return code 4 for a bad password, 5 for an
/// anonymous client.
#[tokio::test]
async fn refusals_use_the_3_1_1_return_codes() {
    let dir = TempDir::new("passwd-bytes");
    let file = dir.file(
        "passwd",
        &password_file(&[("alice", "pw", HashAlgorithm::Sha512Pbkdf2)]),
    );
    let mut config = test_config();
    config.password_file = Some(file);
    config.allow_anonymous = false;
    let broker = start_with(config).await;
    let addr = broker.local_addr();
    let bad = raw_connack(addr, credentials(V311, "c1", Some("alice"), Some("nope"))).await;
    assert_eq!(bad, [0x20, 0x02, 0x00, 0x04]);
    let anonymous = raw_connack(addr, credentials(V311, "c2", None, None)).await;
    assert_eq!(anonymous, [0x20, 0x02, 0x00, 0x05]);
    broker.shutdown().await;
}

/// Sends `connect` as 3.1.1 and returns the CONNACK's four bytes.
async fn raw_connack(addr: SocketAddr, connect: Connect) -> [u8; 4] {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = bytes::BytesMut::new();
    Packet::Connect(Box::new(connect))
        .encode(V311, &mut buf)
        .unwrap();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&buf).await.unwrap();
    let mut connack = [0; 4];
    stream.read_exact(&mut connack).await.unwrap();
    connack
}

/// A file that does not load fails the start, naming the file and the line.
#[tokio::test]
async fn a_broken_file_fails_the_start() {
    let dir = TempDir::new("broken-start");
    let acl = dir.file("acl", "user alice\ntopic read a\nfoo bar\n");
    let mut config = test_config();
    config.acl_file = Some(acl.clone());
    let error = midge_broker::Broker::start(config).await.unwrap_err();
    assert!(
        error.to_string().contains(&format!("{}:3", acl.display())),
        "{error}"
    );

    let passwd = dir.file("passwd", "alice:plain-text\n");
    let mut config = test_config();
    config.password_file = Some(passwd.clone());
    let error = midge_broker::Broker::start(config).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("{}:1", passwd.display())),
        "{error}"
    );
    let mut config = test_config();
    config.password_file = Some(dir.0.join("missing"));
    assert!(midge_broker::Broker::start(config).await.is_err());
}

/// 5.0: a PUBLISH to a topic the client may not write gets PUBACK / PUBREC 0x87 and is
/// not routed; the QoS 2 flow ends at the PUBREC. [MQTT-3.4.2-1] [MQTT-3.5.2-1]
#[tokio::test]
async fn denied_publish_v5_gets_not_authorized_and_is_not_delivered() {
    let dir = TempDir::new("deny-pub-v5");
    let (broker, _) = acl_broker(&dir, ACL).await;
    let addr = broker.local_addr();
    let mut bob = connect_as(addr, V5, "bob", "bob").await;
    bob.subscribe("#", QoS::ExactlyOnce).await;
    let mut alice = connect_as(addr, V5, "alice", "alice").await;
    alice
        .send(Packet::Publish(publish(
            "public/x",
            "denied-0",
            QoS::AtMostOnce,
        )))
        .await;
    for (qos, id) in [(QoS::AtLeastOnce, 1), (QoS::ExactlyOnce, 2)] {
        let mut p = publish("public/x", "denied", qos);
        p.packet_id = Some(pid(id));
        alice.send(Packet::Publish(p)).await;
        let ack = match alice.recv_reply().await {
            Packet::PubAck(ack) if qos == QoS::AtLeastOnce => ack,
            Packet::PubRec(ack) if qos == QoS::ExactlyOnce => ack,
            other => panic!("expected an acknowledgement, got {other:?}"),
        };
        assert_eq!(ack.packet_id, pid(id));
        assert_eq!(ack.reason_code, ReasonCode::NotAuthorized, "{qos:?}");
    }
    // The sentinel: alice may write alice/…, bob may read it. It is the first message.
    alice
        .pub_msg("alice/ok", "sentinel", QoS::AtLeastOnce)
        .await;
    let got = bob.recv_and_ack().await;
    assert_eq!(payloads(&[got]), ["sentinel"]);
    bob.expect_nothing().await;
    broker.shutdown().await;
}

/// 3.1/3.1.1 have no reason codes on PUBACK/PUBREC: a refused PUBLISH is acknowledged
/// as usual (the QoS 2 flow completes) and silently dropped, as Mosquitto does.
///
/// conformance: v3.1.1 MQTT-3.3.5-2
#[tokio::test]
async fn denied_publish_v3_is_acknowledged_and_dropped() {
    let dir = TempDir::new("deny-pub-v3");
    let (broker, _) = acl_broker(&dir, ACL).await;
    let addr = broker.local_addr();
    for version in [V31, V311] {
        let mut bob = connect_as(addr, version, "bob", "bob").await;
        bob.subscribe("#", QoS::ExactlyOnce).await;
        let mut alice = connect_as(addr, version, "alice", "alice").await;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            // The helper checks PUBACK, or PUBREC → PUBREL → PUBCOMP.
            alice.pub_msg("public/x", "denied", qos).await;
        }
        alice
            .pub_msg("alice/ok", "sentinel", QoS::AtLeastOnce)
            .await;
        let got = bob.recv_and_ack().await;
        assert_eq!(payloads(&[got]), ["sentinel"], "{version}");
        bob.expect_nothing().await;
        alice.disconnect().await;
        bob.disconnect().await;
    }
    broker.shutdown().await;
}

/// Nobody publishes to `$SYS/…`, even without an ACL file (Mosquitto's
/// `acl__check_dollar`).
#[tokio::test]
async fn sys_topics_are_never_written() {
    let broker = start().await;
    let addr = broker.local_addr();
    let mut sub = Client::connect(addr, V5, "sys-sub").await;
    sub.subscribe("$SYS/#", QoS::AtLeastOnce).await;
    let mut client = Client::connect(addr, V5, "sys-pub").await;
    let mut p = publish("$SYS/broker/uptime", "forged", QoS::AtLeastOnce);
    p.packet_id = Some(pid(1));
    client.send(Packet::Publish(p)).await;
    match client.recv_reply().await {
        Packet::PubAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NotAuthorized),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    sub.expect_nothing().await;
    broker.shutdown().await;
}

/// Read access is checked on every delivery: `#`, `+` and shared subscriptions are
/// granted (Mosquitto 2.0's ACL does not restrict subscribing) but deliver only what the
/// client may read: alice gets `users/alice/…`, never bob's, and not as retained
/// messages either.
#[tokio::test]
async fn read_denied_through_wildcards_shared_subscriptions_and_retained() {
    let dir = TempDir::new("deny-read");
    let (broker, _) = acl_broker(&dir, ACL).await;
    let addr = broker.local_addr();
    for version in [V311, V5] {
        let mut wild = connect_as(addr, version, "alice-wild", "alice").await;
        wild.subscribe("#", QoS::AtLeastOnce).await;
        wild.subscribe("users/+/secret", QoS::AtLeastOnce).await;
        let mut shared = if version.is_v5() {
            let mut shared = connect_as(addr, version, "alice-shared", "alice").await;
            shared.subscribe("$share/g/users/#", QoS::AtLeastOnce).await;
            Some(shared)
        } else {
            None
        };
        let mut carol = connect_as(addr, version, "carol", "carol").await;
        carol
            .pub_retained("users/bob/secret", "bob's", QoS::AtLeastOnce)
            .await;
        carol
            .pub_retained("users/alice/secret", "alice's", QoS::AtLeastOnce)
            .await;
        for client in [Some(&mut wild), shared.as_mut()].into_iter().flatten() {
            let got = client.recv_and_ack().await;
            assert_eq!(payloads(&[got]), ["alice's"], "{version}");
        }
        // alice's `#` also matches `users/+/secret`: one delivery, then nothing more.
        wild.expect_nothing().await;

        // Retained messages sent on subscription are checked too.
        let mut late = connect_as(addr, version, "alice-late", "alice").await;
        late.subscribe("users/#", QoS::AtLeastOnce).await;
        let got = late.recv_and_ack().await;
        assert_eq!(payloads(&[got]), ["alice's"], "{version}");
        late.expect_nothing().await;
        // Clean up the retained messages for the next version.
        carol
            .pub_retained("users/bob/secret", "", QoS::AtLeastOnce)
            .await;
        carol
            .pub_retained("users/alice/secret", "", QoS::AtLeastOnce)
            .await;
    }
    broker.shutdown().await;
}

/// `pattern write clients/%c/#`: a client writes under its own client id only.
#[tokio::test]
async fn pattern_client_id_limits_writes() {
    let dir = TempDir::new("pattern-c");
    let (broker, _) = acl_broker(&dir, ACL).await;
    let addr = broker.local_addr();
    let mut carol = connect_as(addr, V5, "carol", "carol").await;
    carol.subscribe("clients/#", QoS::AtLeastOnce).await;
    let mut dev = Client::connect_ok(addr, credentials(V5, "dev1", Some("dave"), None))
        .await
        .0;
    let mut p = publish("clients/dev2/status", "spoofed", QoS::AtLeastOnce);
    p.packet_id = Some(pid(1));
    dev.send(Packet::Publish(p)).await;
    match dev.recv_reply().await {
        Packet::PubAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NotAuthorized),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    dev.pub_msg("clients/dev1/status", "mine", QoS::AtLeastOnce)
        .await;
    let got = carol.recv_and_ack().await;
    assert_eq!(got.topic.as_str(), "clients/dev1/status");
    carol.expect_nothing().await;
    broker.shutdown().await;
}

/// A will the client may not publish refuses the connection with 0x87 (3.1.1: 5), as
/// Mosquitto does; with or without an ACL file for `$SYS/…`. [MQTT-3.1.4-2]
#[tokio::test]
async fn will_to_a_forbidden_topic_is_refused() {
    let dir = TempDir::new("will");
    let (broker, _) = acl_broker(&dir, ACL).await;
    let addr = broker.local_addr();
    for version in VERSIONS {
        for (topic_name, allowed) in [
            ("public/will", false),
            ("$SYS/x", false),
            ("alice/will", true),
        ] {
            let mut connect = credentials(version, &cid("will", version), Some("alice"), None);
            connect.will = Some(LastWill {
                topic: topic(topic_name),
                payload: Bytes::from_static(b"gone"),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Default::default(),
            });
            let (mut client, ack) = Client::connect_with(addr, connect).await;
            if allowed {
                assert_eq!(ack.reason_code, ReasonCode::Success, "{version}");
                client.disconnect().await;
            } else {
                assert_eq!(
                    ack.reason_code,
                    ReasonCode::NotAuthorized,
                    "{version} {topic_name}"
                );
                client.expect_closed().await;
            }
        }
    }
    broker.shutdown().await;
}

/// `reload_auth` swaps the ACL for connected clients too; a broken file keeps the
/// previous one and returns the error with file and line.
#[tokio::test]
async fn reload_applies_to_connected_clients_and_a_broken_file_keeps_the_old_one() {
    let dir = TempDir::new("reload");
    let (broker, acl) = acl_broker(&dir, "user alice\ntopic readwrite alice/#\n").await;
    let addr = broker.local_addr();
    let mut alice = connect_as(addr, V5, "alice", "alice").await;
    alice.subscribe("#", QoS::AtLeastOnce).await;
    let mut bob = connect_as(addr, V5, "bob", "bob").await;
    let mut p = publish("news", "before", QoS::AtLeastOnce);
    p.packet_id = Some(pid(1));
    bob.send(Packet::Publish(p)).await;
    match bob.recv_reply().await {
        Packet::PubAck(ack) => assert_eq!(ack.reason_code, ReasonCode::NotAuthorized),
        other => panic!("expected PUBACK, got {other:?}"),
    }

    std::fs::write(
        &acl,
        "user alice\ntopic readwrite alice/#\ntopic read news\nuser bob\ntopic write news\n",
    )
    .unwrap();
    broker.reload_auth().expect("reloads");
    bob.pub_msg("news", "after", QoS::AtLeastOnce).await;
    let got = alice.recv_and_ack().await;
    assert_eq!(payloads(&[got]), ["after"]);

    std::fs::write(&acl, "user alice\n\ntopic\n").unwrap();
    let error = broker.reload_auth().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}:3", acl.display())),
        "{error}"
    );
    bob.pub_msg("news", "still", QoS::AtLeastOnce).await;
    let got = alice.recv_and_ack().await;
    assert_eq!(payloads(&[got]), ["still"]);
    broker.shutdown().await;
}

fn mosquitto(program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("`{program}` does not run ({e}): install mosquitto-clients"))
}

/// `mosquitto_pub` / `mosquitto_sub -u -P` against a broker configured from a
/// mosquitto.conf with `password_file` and `acl_file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_with_password_and_acl_files() {
    let dir = TempDir::new("mosquitto-clients");
    let passwd = dir.file(
        "passwd",
        &password_file(&[
            ("alice", "alice-pw", HashAlgorithm::Sha512Pbkdf2),
            ("carol", "carol-pw", HashAlgorithm::Sha512Pbkdf2),
        ]),
    );
    let acl = dir.file("acl", ACL);
    let conf = dir.file(
        "mosquitto.conf",
        &format!(
            "listener 1883 127.0.0.1\npassword_file {}\nacl_file {}\n",
            passwd.display(),
            acl.display()
        ),
    );
    let loaded = midge_broker::config::load(&conf).expect("mosquitto.conf loads");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = Config {
        listeners: test_config().listeners,
        ..loaded.config
    };
    let broker = start_with(config).await;
    let port = broker.local_addr().port().to_string();
    let base = |user: &str, password: &str, version: &str| -> Vec<String> {
        [
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-u",
            user,
            "-P",
            password,
            "-V",
            version,
        ]
        .map(String::from)
        .to_vec()
    };
    let run = |program: &str, args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        mosquitto(program, &args)
    };
    for version in ["311", "5"] {
        let publish = |user: &str, password: &str, topic: &str| {
            let mut args = base(user, password, version);
            args.extend(["-q", "1", "-r", "-t", topic, "-m", user].map(String::from));
            run("mosquitto_pub", args)
        };
        // carol may write anything; alice may read users/alice/… only (`%u`), and may
        // not write there (her publish is acknowledged and dropped in 3.1.1).
        for (user, password, topic) in [
            ("carol", "carol-pw", "users/bob/secret"),
            ("carol", "carol-pw", "users/alice/note"),
        ] {
            assert!(publish(user, password, topic).status.success());
        }
        let refused = publish("alice", "wrong", "users/alice/note");
        assert!(
            !refused.status.success(),
            "{version}: a wrong password connects"
        );

        let mut args = base("alice", "alice-pw", version);
        args.extend(["-t", "users/#", "-C", "2", "-W", "2", "-F", "%t %p"].map(String::from));
        // Line-buffered: `-W` ends the process without flushing a pipe's buffer.
        args.insert(0, "mosquitto_sub".into());
        args.insert(0, "-oL".into());
        let out = run("stdbuf", args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stdout, "users/alice/note carol\n", "{version}: {stderr}");
    }
    broker.shutdown().await;
}
