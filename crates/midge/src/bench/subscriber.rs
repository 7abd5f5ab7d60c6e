//! One subscribing connection's loop: each read takes as many packets as arrived, reads
//! the clock once for all of them, records each message's latency and (publisher,
//! sequence) pair, and writes the acknowledgements QoS 1/2 need in one write.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::BytesMut;
use hdrhistogram::Histogram;
use midge_codec::{Ack, Disconnect, Packet, ProtocolVersion, QoS, ReasonCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::conn::Link;
use super::stats::{Counters, SeqTracker, histogram, nanos_since, read_stamp};

/// What one subscriber saw.
#[derive(Debug)]
pub(crate) struct SubResult {
    pub(crate) tracker: SeqTracker,
    /// End-to-end latency in nanoseconds.
    pub(crate) latency: Histogram<u64>,
}

/// Receives until `stop` turns true.
pub(crate) async fn run(
    mut link: Link,
    origin: Instant,
    mut stop: watch::Receiver<bool>,
    counters: Arc<Counters>,
) -> anyhow::Result<SubResult> {
    let mut result = SubResult {
        tracker: SeqTracker::default(),
        latency: histogram(),
    };
    let version = link.version;
    let mut wbuf = BytesMut::new();
    link.rbuf.reserve(super::conn::READ_BUF);
    loop {
        tokio::select! {
            _ = stop.changed() => break, // only ever set to true
            read = link.stream.read_buf(&mut link.rbuf) => {
                if read.context("read from broker")? == 0 {
                    bail!("connection closed by the broker");
                }
                let t = nanos_since(origin);
                let mut received = 0;
                while let Some(packet) = link.decoder.decode(&mut link.rbuf)? {
                    received += on_packet(packet, t, version, &mut result, &mut wbuf)?;
                }
                Counters::add(&counters.received, received);
                counters.last_received.fetch_max(t, Ordering::Relaxed);
                if !wbuf.is_empty() {
                    link.stream.write_all(&wbuf).await.context("write to broker")?;
                    wbuf.clear();
                }
                if link.rbuf.capacity() < super::conn::READ_BUF / 4 {
                    link.rbuf.reserve(super::conn::READ_BUF);
                }
            }
        }
    }
    let mut bye = BytesMut::new();
    Packet::Disconnect(Disconnect::new(ReasonCode::Success)).encode(version, &mut bye)?;
    let _ = link.stream.write_all(&bye).await;
    Ok(result)
}

/// Handles one packet; returns 1 for a PUBLISH.
fn on_packet(
    packet: Packet,
    t: u64,
    version: ProtocolVersion,
    result: &mut SubResult,
    wbuf: &mut BytesMut,
) -> anyhow::Result<u64> {
    match packet {
        Packet::Publish(publish) => {
            if let Some(stamp) = read_stamp(&publish.payload) {
                result.tracker.observe(stamp.publisher, stamp.seq);
                result
                    .latency
                    .saturating_record(t.saturating_sub(stamp.sent_at).max(1));
            }
            match (publish.qos, publish.packet_id) {
                (QoS::AtLeastOnce, Some(id)) => {
                    Packet::PubAck(Ack::new(id)).encode(version, wbuf)?
                }
                (QoS::ExactlyOnce, Some(id)) => {
                    Packet::PubRec(Ack::new(id)).encode(version, wbuf)?
                }
                _ => {}
            }
            Ok(1)
        }
        Packet::PubRel(rel) => {
            Packet::PubComp(Ack::new(rel.packet_id)).encode(version, wbuf)?;
            Ok(0)
        }
        Packet::Disconnect(d) => bail!("disconnected by the broker: {:?}", d.reason_code),
        _ => Ok(0),
    }
}
