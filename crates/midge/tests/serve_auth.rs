//! `midge serve` with `password_file` and `acl_file`: SIGHUP reloads them in the running
//! binary, and a file that fails to parse on reload keeps the previous one and is logged
//! with its file and line.

#![cfg(unix)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use midge_codec::{Connect, Decoder, Packet, ProtocolVersion, Publish, QoS, ReasonCode, TopicName};

const MIDGE: &str = env!("CARGO_BIN_EXE_midge");

/// A directory under the system's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("midge-serve-auth-{name}-{}", std::process::id()));
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

/// A running `midge serve`, killed on drop; its log goes to a file.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn start(dir: &TempDir, conf: &std::path::Path) -> Server {
        let log = dir.0.join("midge.log");
        let child = Command::new(MIDGE)
            .args(["serve", "-c", conf.to_str().unwrap()])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("midge starts");
        Server { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGHUP and waits (up to 10 s) until the log has grown by a line containing
    /// `expected`.
    fn hangup(&self, expected: &str) -> String {
        let before = self.log().len();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..200 {
            let log = self.log();
            if log[before..].contains(expected) {
                return log[before..].to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no `{expected}` in the log after SIGHUP:\n{}", self.log());
    }

    /// Connects to `port` on 127.0.0.1 once the broker listens (up to 10 s).
    fn connect(&mut self, port: u16) -> TcpStream {
        for _ in 0..200 {
            if let Ok(stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                return stream;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("midge exited with {status}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("midge does not listen on {port}:\n{}", self.log());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let dir = TempDir::new("sighup");
    let port = free_port();
    let acl = dir.file("acl", "user alice\ntopic readwrite alice/#\n");
    let conf = dir.file(
        "mosquitto.conf",
        &format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {}\n",
            acl.display()
        ),
    );
    let mut server = Server::start(&dir, &conf);
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
    let dir = TempDir::new("broken-passwd");
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
