//! A small raw MQTT test client for the in-process integration tests.
//!
//! Each test starts its own broker with [`start`] (or [`start_with`]) on `127.0.0.1:0`
//! and talks to it with [`Client`]: whole packets encoded and decoded with
//! `midge-codec`, or raw bytes for malformed input. Every wait is bounded: a packet
//! that does not come within [`TIMEOUT`] fails the test, and "nothing arrives" is
//! checked for [`QUIET`], or better with a sentinel message published after the one
//! that must not arrive.
// Each test binary uses its own subset; `pub` marks what the tests may use.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use midge_broker::{Broker, BrokerHandle, Config};
use midge_codec::{
    Ack, ConnAck, Connect, DecodeError, Decoder, Disconnect, Packet, PacketId, ProtocolVersion,
    Publish, QoS, ReasonCode, SubAck, Subscribe, SubscribeProperties, SubscriptionOptions,
    TopicFilter, TopicName, UnsubAck, Unsubscribe, UnsubscribeProperties,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use ProtocolVersion::{V5, V31, V311};

/// Every protocol version the broker serves.
pub const VERSIONS: [ProtocolVersion; 3] = [V31, V311, V5];

/// Longest wait for a packet that must come.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// How long "nothing arrives" is watched for when no sentinel can be used.
pub const QUIET: Duration = Duration::from_millis(300);

/// The tests' clock: the one place they read it (the workspace bans `Instant::now`
/// elsewhere, STYLE.md rule 2). Used to bound waits and to check that timers fire
/// neither early nor late.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// How often the tests' brokers look for idle connections to park: often, so that
/// every test also runs with its connections parked and revived between packets.
pub const PARK_IDLE_MS: u64 = 20;

/// The tests' configuration: one listener on a free port, a 1 s connect timeout, idle
/// connections parked after 20 to 40 ms.
pub fn test_config() -> Config {
    let mut config = Config::local_ephemeral();
    config.connect_timeout = 1;
    config.park_idle_ms = PARK_IDLE_MS;
    config
}

/// Starts a broker with [`test_config`].
pub async fn start() -> BrokerHandle {
    start_with(test_config()).await
}

/// Starts a broker with `config`.
pub async fn start_with(config: Config) -> BrokerHandle {
    Broker::start(config).await.expect("broker starts")
}

/// A packet identifier.
pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero packet id")
}

/// A topic name.
pub fn topic(name: &str) -> TopicName {
    TopicName::new(name).expect("valid topic name")
}

/// A topic filter.
pub fn filter(f: &str) -> TopicFilter {
    TopicFilter::new(f).expect("valid topic filter")
}

/// A PUBLISH without packet id (the client fills it in).
pub fn publish(name: &str, payload: &'static str, qos: QoS) -> Publish {
    let mut p = Publish::new(topic(name), Bytes::from_static(payload.as_bytes()));
    p.qos = qos;
    p
}

/// A clean-start CONNECT with keep alive 0 (tests that need one set it).
pub fn connect_packet(version: ProtocolVersion, client_id: &str) -> Connect {
    let mut connect = Connect::new(version, client_id);
    connect.keep_alive = 0;
    connect
}

/// What came instead of a packet.
#[derive(Debug)]
pub enum Recv {
    /// A packet.
    Packet(Packet),
    /// Nothing within the wait.
    Timeout,
    /// The broker closed the connection.
    Closed,
    /// The broker sent bytes that do not decode.
    Bad(DecodeError),
}

/// A byte stream to the broker: TCP, TLS, WebSocket, Unix socket.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<S: AsyncRead + AsyncWrite + Send + Unpin> Stream for S {}

/// One raw MQTT connection to the broker.
pub struct Client {
    /// The version the client speaks.
    pub version: ProtocolVersion,
    stream: Box<dyn Stream>,
    decoder: Decoder,
    rbuf: BytesMut,
    last_id: u16,
    /// PUBLISHes that arrived while an acknowledgement was awaited; [`Client::recv`]
    /// returns them first.
    backlog: VecDeque<Packet>,
}

impl Client {
    /// Opens a TCP connection without sending anything.
    pub async fn open(addr: SocketAddr, version: ProtocolVersion) -> Client {
        let stream = TcpStream::connect(addr).await.expect("TCP connect");
        stream.set_nodelay(true).expect("nodelay");
        Client::over(stream, version)
    }

    /// A client over an already connected stream (of any transport).
    pub fn over(stream: impl Stream + 'static, version: ProtocolVersion) -> Client {
        Client {
            version,
            stream: Box::new(stream),
            decoder: Decoder::client(version),
            rbuf: BytesMut::with_capacity(4096),
            last_id: 0,
            backlog: VecDeque::new(),
        }
    }

    /// Connects with a clean session and asserts a successful CONNACK.
    pub async fn connect(addr: SocketAddr, version: ProtocolVersion, client_id: &str) -> Client {
        let (client, ack) = Client::connect_with(addr, connect_packet(version, client_id)).await;
        assert_eq!(ack.reason_code, ReasonCode::Success, "CONNACK: {ack:?}");
        client
    }

    /// Sends `connect` and returns the client with the CONNACK, whatever its code.
    pub async fn connect_with(addr: SocketAddr, connect: Connect) -> (Client, ConnAck) {
        let mut client = Client::open(addr, connect.protocol).await;
        client.send(Packet::Connect(Box::new(connect))).await;
        match client.recv().await {
            Packet::ConnAck(ack) => (client, *ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects with `connect` and asserts success; returns the CONNACK too.
    pub async fn connect_ok(addr: SocketAddr, connect: Connect) -> (Client, ConnAck) {
        let (client, ack) = Client::connect_with(addr, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::Success, "CONNACK: {ack:?}");
        (client, ack)
    }

    /// The next packet identifier of this client.
    pub fn next_id(&mut self) -> PacketId {
        self.last_id = self.last_id.wrapping_add(1).max(1);
        pid(self.last_id)
    }

    /// Sends one packet.
    pub async fn send(&mut self, packet: Packet) {
        let mut buf = BytesMut::new();
        packet
            .encode(self.version, &mut buf)
            .expect("packet encodes");
        self.send_raw(&buf).await;
    }

    /// Sends raw bytes. A broker that has already closed the connection may make this
    /// fail; that is ignored, the next read reports it.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
        let _ = self.stream.flush().await;
    }

    /// The next packet, or what came instead, waiting at most `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Recv {
        if let Some(packet) = self.backlog.pop_front() {
            return Recv::Packet(packet);
        }
        self.recv_wire(wait).await
    }

    /// The next packet off the wire, skipping the backlog.
    async fn recv_wire(&mut self, wait: Duration) -> Recv {
        let deadline = tokio::time::Instant::from_std(now() + wait);
        loop {
            match self.decoder.decode(&mut self.rbuf) {
                Ok(Some(packet)) => return Recv::Packet(packet),
                Ok(None) => {}
                Err(e) => return Recv::Bad(e),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.rbuf)).await {
                Err(_) => return Recv::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Recv::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// The next packet; fails the test if none comes within [`TIMEOUT`].
    pub async fn recv(&mut self) -> Packet {
        match self.recv_within(TIMEOUT).await {
            Recv::Packet(p) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// The next packet that is not a PUBLISH: PUBLISHes that come first are kept for
    /// [`Client::recv`].
    pub async fn recv_reply(&mut self) -> Packet {
        loop {
            match self.recv_wire(TIMEOUT).await {
                Recv::Packet(p @ Packet::Publish(_)) => self.backlog.push_back(p),
                Recv::Packet(p) => return p,
                other => panic!("expected a packet, got {other:?}"),
            }
        }
    }

    /// The next packet, which must be a PUBLISH.
    pub async fn recv_publish(&mut self) -> Publish {
        match self.recv().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// The next PUBLISH, acknowledged with the full flow of its QoS.
    pub async fn recv_and_ack(&mut self) -> Publish {
        let p = self.recv_publish().await;
        self.ack(&p).await;
        p
    }

    /// Acknowledges a received PUBLISH: PUBACK, or PUBREC → PUBREL → PUBCOMP.
    pub async fn ack(&mut self, p: &Publish) {
        let Some(id) = p.packet_id else { return };
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(Packet::PubAck(Ack::new(id))).await,
            QoS::ExactlyOnce => {
                self.send(Packet::PubRec(Ack::new(id))).await;
                match self.recv_reply().await {
                    Packet::PubRel(rel) => assert_eq!(rel.packet_id, id),
                    other => panic!("expected PUBREL, got {other:?}"),
                }
                self.send(Packet::PubComp(Ack::new(id))).await;
            }
        }
    }

    /// Asserts that no packet arrives for [`QUIET`] and the connection stays open.
    pub async fn expect_nothing(&mut self) {
        match self.recv_within(QUIET).await {
            Recv::Timeout => {}
            other => panic!("expected nothing, got {other:?}"),
        }
    }

    /// Asserts that the broker closes the connection without sending anything more.
    pub async fn expect_closed(&mut self) {
        match self.recv_within(TIMEOUT).await {
            Recv::Closed => {}
            other => panic!("expected the connection to close, got {other:?}"),
        }
    }

    /// Asserts that the broker closes the connection, a 5.0 client first getting a
    /// DISCONNECT with `reason` (earlier packets, such as queued PUBLISHes, are skipped).
    pub async fn expect_disconnect(&mut self, reason: ReasonCode) {
        if self.version.is_v5() {
            loop {
                match self.recv_within(TIMEOUT).await {
                    Recv::Packet(Packet::Disconnect(d)) => {
                        assert_eq!(d.reason_code, reason, "DISCONNECT reason");
                        break;
                    }
                    Recv::Packet(Packet::Publish(_) | Packet::PubAck(_) | Packet::PubRec(_)) => {}
                    other => panic!("expected DISCONNECT {reason}, got {other:?}"),
                }
            }
        }
        loop {
            match self.recv_within(TIMEOUT).await {
                Recv::Closed => return,
                Recv::Packet(Packet::Publish(_) | Packet::PubAck(_) | Packet::PubRec(_))
                    if !self.version.is_v5() => {}
                other => panic!("expected the connection to close, got {other:?}"),
            }
        }
    }

    /// PINGREQ → PINGRESP: everything sent before has been processed by the broker.
    pub async fn ping(&mut self) {
        self.send(Packet::PingReq).await;
        match self.recv_reply().await {
            Packet::PingResp => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }

    /// Subscribes to each filter with options; returns the SUBACK.
    pub async fn subscribe_opts(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        id: Option<u32>,
    ) -> SubAck {
        let packet_id = self.next_id();
        let subscribe = Subscribe {
            packet_id,
            filters: filters.iter().map(|(f, o)| (filter(f), *o)).collect(),
            properties: SubscribeProperties {
                subscription_identifier: id,
                ..Default::default()
            },
        };
        self.send(Packet::Subscribe(subscribe)).await;
        match self.recv_reply().await {
            Packet::SubAck(ack) => {
                assert_eq!(ack.packet_id, packet_id, "SUBACK packet id");
                ack
            }
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Subscribes to `f` at `qos` and asserts the grant.
    pub async fn subscribe(&mut self, f: &str, qos: QoS) {
        let ack = self
            .subscribe_opts(&[(f, SubscriptionOptions::new(qos))], None)
            .await;
        assert_eq!(ack.reason_codes, vec![granted(qos)], "SUBACK for {f}");
    }

    /// Unsubscribes from `filters`; returns the UNSUBACK.
    pub async fn unsubscribe(&mut self, filters: &[&str]) -> UnsubAck {
        let packet_id = self.next_id();
        let unsubscribe = Unsubscribe {
            packet_id,
            filters: filters.iter().map(|f| filter(f)).collect(),
            properties: UnsubscribeProperties::default(),
        };
        self.send(Packet::Unsubscribe(unsubscribe)).await;
        match self.recv_reply().await {
            Packet::UnsubAck(ack) => {
                assert_eq!(ack.packet_id, packet_id, "UNSUBACK packet id");
                ack
            }
            other => panic!("expected UNSUBACK, got {other:?}"),
        }
    }

    /// Publishes `p` with the full acknowledgement flow of its QoS (a packet id is
    /// assigned when it has none).
    pub async fn publish(&mut self, mut p: Publish) {
        if p.qos != QoS::AtMostOnce && p.packet_id.is_none() {
            p.packet_id = Some(self.next_id());
        }
        let id = p.packet_id;
        let qos = p.qos;
        self.send(Packet::Publish(p)).await;
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => match self.recv_reply().await {
                Packet::PubAck(ack) => assert_eq!(Some(ack.packet_id), id),
                other => panic!("expected PUBACK, got {other:?}"),
            },
            QoS::ExactlyOnce => {
                let id = id.expect("packet id");
                match self.recv_reply().await {
                    Packet::PubRec(ack) => assert_eq!(ack.packet_id, id),
                    other => panic!("expected PUBREC, got {other:?}"),
                }
                self.send(Packet::PubRel(Ack::new(id))).await;
                match self.recv_reply().await {
                    Packet::PubComp(ack) => assert_eq!(ack.packet_id, id),
                    other => panic!("expected PUBCOMP, got {other:?}"),
                }
            }
        }
    }

    /// Publishes a message with the full flow of its QoS.
    pub async fn pub_msg(&mut self, name: &str, payload: &'static str, qos: QoS) {
        self.publish(publish(name, payload, qos)).await;
    }

    /// Publishes a retained message with the full flow of its QoS.
    pub async fn pub_retained(&mut self, name: &str, payload: &'static str, qos: QoS) {
        let mut p = publish(name, payload, qos);
        p.retain = true;
        self.publish(p).await;
    }

    /// Sends a normal DISCONNECT and waits for the broker to close the connection.
    pub async fn disconnect(mut self) {
        self.send(Packet::Disconnect(Disconnect::default())).await;
        self.expect_closed().await;
    }

    /// Connects over `stream` with a clean session; returns the CONNACK, whatever its
    /// code.
    pub async fn connect_over(
        stream: impl Stream + 'static,
        connect: Connect,
    ) -> (Client, ConnAck) {
        let mut client = Client::over(stream, connect.protocol);
        client.send(Packet::Connect(Box::new(connect))).await;
        match client.recv().await {
            Packet::ConnAck(ack) => (client, *ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Drops the connection without DISCONNECT (an abnormal disconnection).
    pub fn drop_connection(self) {
        drop(self);
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The SUBACK code that grants `qos`.
pub fn granted(qos: QoS) -> ReasonCode {
    match qos {
        QoS::AtMostOnce => ReasonCode::Success,
        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
    }
}

/// A client id unique within the test binary, tagged with the version (3.1 ids stay
/// within 23 characters).
pub fn cid(name: &str, version: ProtocolVersion) -> String {
    format!("{name}-{}", version as u8)
}

/// A CONNECT that resumes (or starts) a persistent session: Clean Start 0, and in 5.0 a
/// Session Expiry Interval of 300 s.
pub fn persistent(version: ProtocolVersion, client_id: &str) -> Connect {
    let mut connect = connect_packet(version, client_id);
    connect.clean_start = false;
    if version.is_v5() {
        connect.properties.session_expiry_interval = Some(300);
    }
    connect
}

/// Asserts that `ack` reports a resumed session: Session Present 1, except for MQTT 3.1,
/// whose CONNACK has no such flag (its first byte is reserved and 0).
pub fn assert_resumed(ack: &ConnAck, version: ProtocolVersion) {
    assert_eq!(
        ack.session_present,
        version != V31,
        "{version}: Session Present"
    );
}

/// The payloads of `publishes`, as strings.
pub fn payloads(publishes: &[Publish]) -> Vec<String> {
    publishes
        .iter()
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect()
}
