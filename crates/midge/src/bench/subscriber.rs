//! One subscribing connection's loop: each read takes as many packets as arrived, reads
//! the clock once for all of them, records each message's latency and (publisher,
//! sequence) pair, and writes the acknowledgements QoS 1/2 need in one write.
//!
//! A PUBLISH is scanned in place ([`scan_publish`]): the bench needs its QoS, packet
//! identifier and payload, not a decoded packet with its topic checked and its payload
//! cut out as `Bytes` — that decoding was half of the bench's time in a 1→64 fan-out,
//! where the bench's core is the limit. Every other packet, and any PUBLISH the scan
//! does not take, goes through the full decoder.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use midge_codec::{
    Ack, Disconnect, Packet, PacketId, ProtocolVersion, QoS, ReasonCode, peek_var_int,
};
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
                loop {
                    if let Some(publish) = scan_publish(&link.rbuf, version) {
                        let payload = &link.rbuf[publish.payload.clone()];
                        on_publish(payload, publish.qos, publish.packet_id, t, version, &mut result, &mut wbuf)?;
                        received += 1;
                        link.rbuf.advance(publish.len);
                        continue;
                    }
                    let Some(packet) = link.decoder.decode(&mut link.rbuf)? else {
                        break;
                    };
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
            let (qos, id) = (publish.qos, publish.packet_id);
            on_publish(&publish.payload, qos, id, t, version, result, wbuf)?;
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

/// Records one received message and encodes the acknowledgement its QoS needs.
fn on_publish(
    payload: &[u8],
    qos: QoS,
    packet_id: Option<PacketId>,
    t: u64,
    version: ProtocolVersion,
    result: &mut SubResult,
    wbuf: &mut BytesMut,
) -> anyhow::Result<()> {
    if let Some(stamp) = read_stamp(payload) {
        result.tracker.observe(stamp.publisher, stamp.seq);
        result
            .latency
            .saturating_record(t.saturating_sub(stamp.sent_at).max(1));
    }
    match (qos, packet_id) {
        (QoS::AtLeastOnce, Some(id)) => Packet::PubAck(Ack::new(id)).encode(version, wbuf)?,
        (QoS::ExactlyOnce, Some(id)) => Packet::PubRec(Ack::new(id)).encode(version, wbuf)?,
        _ => {}
    }
    Ok(())
}

/// A whole PUBLISH at the start of a read buffer, as [`scan_publish`] found it.
#[derive(Debug, PartialEq, Eq)]
struct Scanned {
    /// The packet's length, fixed header included.
    len: usize,
    qos: QoS,
    packet_id: Option<PacketId>,
    /// Where its payload lies in the buffer.
    payload: std::ops::Range<usize>,
}

/// Finds the whole PUBLISH that `buf` starts with, by its lengths alone (the topic is
/// skipped, not checked). `None` when `buf` starts with another packet, an incomplete
/// one, or anything malformed: the full decoder then takes it, and reports what is
/// wrong.
fn scan_publish(buf: &[u8], version: ProtocolVersion) -> Option<Scanned> {
    let first = *buf.first()?;
    if first >> 4 != 3 {
        return None;
    }
    let qos = match (first >> 1) & 3 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        2 => QoS::ExactlyOnce,
        _ => return None,
    };
    let (remaining, header) = peek_var_int(&buf[1..]).ok()??;
    let len = 1 + header + remaining as usize;
    let body = buf.get(1 + header..len)?;
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let mut at = 2 + topic_len;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        _ => {
            let id = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
            at += 2;
            Some(PacketId::new(id)?)
        }
    };
    if version == ProtocolVersion::V5 {
        let (properties, n) = peek_var_int(body.get(at..)?).ok()??;
        at += n + properties as usize;
    }
    if at > body.len() {
        return None;
    }
    Some(Scanned {
        len,
        qos,
        packet_id,
        payload: 1 + header + at..len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::{Decoder, Publish, TopicName};

    fn encoded(version: ProtocolVersion, qos: QoS, payload: usize, props: bool) -> BytesMut {
        let topic = TopicName::new("bench/scan/topic").unwrap();
        let mut publish = Publish::new(topic, Bytes::from(vec![7u8; payload]));
        publish.qos = qos;
        if qos != QoS::AtMostOnce {
            publish.packet_id = PacketId::new(513);
        }
        if props && version == ProtocolVersion::V5 {
            publish.properties.message_expiry_interval = Some(60);
            publish.properties.subscription_identifiers = vec![300];
        }
        let mut buf = BytesMut::new();
        Packet::Publish(publish).encode(version, &mut buf).unwrap();
        buf
    }

    #[test]
    fn the_scan_finds_what_the_decoder_decodes() {
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                // 200 bytes: a two-byte remaining length.
                for (payload, props) in [(0, false), (24, false), (200, true), (70_000, true)] {
                    let mut buf = encoded(version, qos, payload, props);
                    let scanned = scan_publish(&buf, version).expect("a whole PUBLISH");
                    assert_eq!(scanned.len, buf.len());
                    let Some(Packet::Publish(decoded)) =
                        Decoder::client(version).decode(&mut buf).unwrap()
                    else {
                        panic!("not a PUBLISH");
                    };
                    let again = encoded(version, qos, payload, props);
                    assert_eq!(scanned.qos, decoded.qos);
                    assert_eq!(scanned.packet_id, decoded.packet_id);
                    assert_eq!(&again[scanned.payload], &decoded.payload[..]);
                }
            }
        }
    }

    #[test]
    fn the_scan_leaves_other_and_partial_packets_to_the_decoder() {
        let version = ProtocolVersion::V5;
        let whole = encoded(version, QoS::AtLeastOnce, 100, true);
        for cut in 0..whole.len() {
            assert_eq!(scan_publish(&whole[..cut], version), None, "cut at {cut}");
        }
        let mut ack = BytesMut::new();
        Packet::PubAck(Ack::new(PacketId::new(1).unwrap()))
            .encode(version, &mut ack)
            .unwrap();
        assert_eq!(scan_publish(&ack, version), None);
        // QoS 3, and packet identifier 0: malformed, for the decoder to report.
        let mut bad = whole.clone();
        bad[0] |= 0b0110;
        assert_eq!(scan_publish(&bad, version), None);
        let mut zero_id = encoded(ProtocolVersion::V311, QoS::AtLeastOnce, 10, false);
        let at = zero_id.len() - 10 - 2;
        zero_id[at..at + 2].copy_from_slice(&[0, 0]);
        assert_eq!(scan_publish(&zero_id, ProtocolVersion::V311), None);
    }
}
