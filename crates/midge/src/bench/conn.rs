//! Opening a bench connection: TCP from one of the source addresses, CONNECT, CONNACK,
//! and for subscribers SUBSCRIBE and SUBACK. Written on `midge-codec` directly (not on
//! `midge-client`) so that the publisher and subscriber loops own their buffers.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use midge_codec::{
    Connect, Decoder, Packet, PacketId, ProtocolVersion, QoS, Subscribe, SubscribeProperties,
    SubscriptionOptions, TopicFilter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Read buffer size of the publishing and subscribing loops; a read takes as many
/// packets as fit.
pub(crate) const READ_BUF: usize = 256 * 1024;

/// Read buffer size while connecting: a CONNACK or a SUBACK. The loops that read more
/// grow it to [`READ_BUF`]; an idle connection (`conn`) keeps this one, so that opening
/// one allocates (and later frees) no large buffer.
const SETUP_READ_BUF: usize = 256;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) broker: SocketAddr,
    /// Source addresses, used in turn, to pass the 64k ephemeral ports of one address.
    pub(crate) sources: Vec<IpAddr>,
    pub(crate) version: ProtocolVersion,
    /// Prefix of every client id, unique to this run.
    pub(crate) client_prefix: String,
    pub(crate) timeout: Duration,
    /// Subscribers keep their sessions (`--persistent`).
    pub(crate) persistent_subscribers: bool,
}

/// An open, connected MQTT connection with its read state.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) stream: TcpStream,
    pub(crate) decoder: Decoder,
    /// Bytes read and not decoded yet (kept here, so reads are cancel-safe).
    pub(crate) rbuf: BytesMut,
    pub(crate) version: ProtocolVersion,
    /// The broker's Receive Maximum (5.0), 65,535 when it sets none.
    pub(crate) receive_maximum: u16,
}

impl Target {
    /// Opens connection number `index` (its source address and client id follow from it).
    pub(crate) async fn connect(&self, index: usize, role: &str) -> anyhow::Result<Link> {
        tokio::time::timeout(self.timeout, self.connect_inner(index, role))
            .await
            .context("connect timed out")?
    }

    async fn connect_inner(&self, index: usize, role: &str) -> anyhow::Result<Link> {
        let socket = match self.broker {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if !self.sources.is_empty() {
            let ip = self.sources[index % self.sources.len()];
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("cannot bind to {ip}"))?;
        }
        let stream = socket
            .connect(self.broker)
            .await
            .with_context(|| format!("cannot connect to {}", self.broker))?;
        stream.set_nodelay(true)?;
        let mut link = Link {
            stream,
            decoder: Decoder::client(self.version),
            rbuf: BytesMut::with_capacity(SETUP_READ_BUF),
            version: self.version,
            receive_maximum: u16::MAX,
        };
        let mut connect =
            Connect::new(self.version, format!("{}{role}{index}", self.client_prefix));
        // No keep alive: the bench's connections are busy, or idle on purpose (`conn`).
        connect.keep_alive = 0;
        if self.persistent_subscribers && role == "sub" {
            connect.clean_start = false;
            if self.version == ProtocolVersion::V5 {
                connect.properties.session_expiry_interval = Some(3600);
            }
        }
        link.send(&Packet::Connect(Box::new(connect))).await?;
        match link.next_packet().await? {
            Packet::ConnAck(ack) if !ack.reason_code.is_error() => {
                link.receive_maximum = ack.properties.receive_maximum.unwrap_or(u16::MAX);
            }
            Packet::ConnAck(ack) => bail!("connection refused: {:?}", ack.reason_code),
            other => bail!("expected CONNACK, got {}", other.packet_type()),
        }
        Ok(link)
    }
}

impl Link {
    /// Encodes and writes one packet (setup only; the hot loops batch their writes).
    pub(crate) async fn send(&mut self, packet: &Packet) -> anyhow::Result<()> {
        let mut buf = BytesMut::new();
        packet.encode(self.version, &mut buf)?;
        self.stream.write_all(&buf).await?;
        Ok(())
    }

    /// Reads until one whole packet is decoded.
    pub(crate) async fn next_packet(&mut self) -> anyhow::Result<Packet> {
        loop {
            if let Some(packet) = self.decoder.decode(&mut self.rbuf)? {
                return Ok(packet);
            }
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                bail!("connection closed by the broker");
            }
        }
    }

    /// Subscribes to `filter` and waits for a granted SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: QoS) -> anyhow::Result<()> {
        let subscribe = Subscribe {
            packet_id: PacketId::new(1).expect("1 is not 0"),
            filters: vec![(TopicFilter::new(filter)?, SubscriptionOptions::new(qos))],
            properties: SubscribeProperties::default(),
        };
        self.send(&Packet::Subscribe(subscribe)).await?;
        match tokio::time::timeout(Duration::from_secs(10), self.next_packet()).await?? {
            Packet::SubAck(ack) if ack.reason_codes.iter().all(|c| !c.is_error()) => Ok(()),
            Packet::SubAck(ack) => {
                bail!("subscription to {filter} refused: {:?}", ack.reason_codes)
            }
            other => bail!("expected SUBACK, got {}", other.packet_type()),
        }
    }
}
