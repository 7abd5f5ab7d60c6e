//! `midge serve` with `password_file` and `acl_file`: SIGHUP reloads them in the running
//! binary, and a file that fails to parse on reload keeps the previous one and is logged
//! with its file and line.

#![cfg(unix)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use bytes::BytesMut;
use midge_codec::{Connect, Decoder, Packet, ProtocolVersion, Publish, QoS, ReasonCode, TopicName};
use support::{MIDGE, Server, TempDir, free_port};

/// A blocking MQTT 5.0 client, enough for CONNECT and QoS 1 PUBLISH.
struct Mqtt {
    stream: TcpStream,
    decoder: Decoder,
    rbuf: BytesMut,
}

impl Mqtt {
    fn send(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet.encode(ProtocolVersion::V5, &mut buf).unwrap();
        self.stream.write_all(&buf).unwrap();
    }

    fn recv(&mut self) -> Packet {
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.rbuf).unwrap() {
                return packet;
            }
            let mut chunk = [0; 1024];
            let n = self.stream.read(&mut chunk).expect("a packet within 5 s");
            assert!(n > 0, "connection closed");
            self.rbuf.extend_from_slice(&chunk[..n]);
        }
    }

    fn connect(stream: TcpStream, client_id: &str, username: &str) -> Mqtt {
        let mut client = Mqtt {
            stream,
            decoder: Decoder::client(ProtocolVersion::V5),
            rbuf: BytesMut::new(),
        };
        let mut connect = Connect::new(ProtocolVersion::V5, client_id);
        connect.username = Some(username.into());
        client.send(Packet::Connect(Box::new(connect)));
        match client.recv() {
            Packet::ConnAck(ack) => assert_eq!(ack.reason_code, ReasonCode::Success),
            other => panic!("expected CONNACK, got {other:?}"),
        }
        client
    }

    /// Publishes at QoS 1 with packet id `id`; returns the PUBACK's reason code.
    fn publish(&mut self, topic: &str, id: u16) -> ReasonCode {
        let mut p = Publish::new(
            TopicName::new(topic).unwrap(),
            bytes::Bytes::from_static(b"x"),
        );
        p.qos = QoS::AtLeastOnce;
        p.packet_id = midge_codec::PacketId::new(id);
        self.send(Packet::Publish(p));
        match self.recv() {
            Packet::PubAck(ack) => ack.reason_code,
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
}

/// Change the ACL file, send SIGHUP: the new rule applies to the connected client. Then
/// a broken file and SIGHUP: the log names the file and line, and the old ACL stays.
#[test]
fn sighup_reloads_the_acl_and_a_broken_file_keeps_the_old_one() {
    let dir = TempDir::new();
    let port = free_port();
    let acl = dir.file("acl", "user alice\ntopic readwrite alice/#\n");
    let conf = dir.file(
        "mosquitto.conf",
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
            acl.display()
        ),
    );
    let mut server = Server::start(&dir, &["-c", conf.to_str().unwrap()]);
    let stream = server.connect(port);
    let mut alice = Mqtt::connect(stream, "alice-1", "alice");
    assert_eq!(alice.publish("alice/x", 1), ReasonCode::Success);
    assert_eq!(alice.publish("news", 2), ReasonCode::NotAuthorized);

    std::fs::write(
        &acl,
        "user alice\ntopic readwrite alice/#\ntopic write news\n",
    )
    .unwrap();
    server.hangup("security files reloaded");
    assert_eq!(alice.publish("news", 3), ReasonCode::Success);

    std::fs::write(&acl, "user alice\ntopic write news\nnonsense here\n").unwrap();
    let log = server.hangup("keeping the previous ones");
    assert!(log.contains(&format!("{}:3", acl.display())), "{log}");
    // Still the second file: alice/… is writable, news too.
    assert_eq!(alice.publish("alice/x", 4), ReasonCode::Success);
    assert_eq!(alice.publish("news", 5), ReasonCode::Success);
}

/// A password file that does not parse stops `midge serve` at start, naming the file and
/// the line.
#[test]
fn a_broken_password_file_stops_the_start() {
    let dir = TempDir::new();
    let passwd = dir.file("passwd", "# users\nalice:not-a-hash\n");
    let conf = dir.file(
        "mosquitto.conf",
        &format!(
            "listener {} 127.0.0.1\npassword_file {}\n",
            free_port(),
            passwd.display()
        ),
    );
    let out = Command::new(MIDGE)
        .args(["serve", "-c", conf.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:2", passwd.display())),
        "{stderr}"
    );
}
