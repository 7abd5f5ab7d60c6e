//! One publishing connection's loop. The PUBLISH packet is encoded once into a template;
//! each message is a copy of it with the packet id, sequence number and send time patched
//! in, appended to one write buffer that goes out in one write. QoS 1/2 keep at most a
//! window of messages in flight; the same loop reads the acknowledgements (many per
//! read) and answers PUBREC with PUBREL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use midge_codec::{
    Ack, Disconnect, Packet, PacketId, ProtocolVersion, Publish, QoS, ReasonCode, TopicName,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::conn::Link;
use super::stats::{Counters, HEADER_LEN, Stamp, nanos_since, now, write_stamp};

/// Messages appended per turn of the loop at most.
const BATCH: usize = 256;
/// The loop stops appending while this much is waiting to be written.
const HIGH_WATER: usize = 64 * 1024;

/// How a publisher publishes.
#[derive(Debug, Clone)]
pub(crate) struct PubConfig {
    pub(crate) qos: QoS,
    pub(crate) payload_size: usize,
    /// Messages per second for this connection; `None`: as fast as the window allows.
    pub(crate) rate: Option<f64>,
    /// QoS 1/2: most messages awaiting their acknowledgement.
    pub(crate) inflight: usize,
    /// Timestamps are nanoseconds since this instant.
    pub(crate) origin: Instant,
    /// Stop publishing at this instant.
    pub(crate) deadline: Instant,
    /// After the deadline, how long to wait for outstanding acknowledgements.
    pub(crate) grace: Duration,
}

/// A PUBLISH encoded once, with the offsets of the fields each message changes.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    bytes: Vec<u8>,
    packet_id_at: Option<usize>,
    payload_at: usize,
}

impl Template {
    pub(crate) fn new(
        version: ProtocolVersion,
        topic: &str,
        qos: QoS,
        payload_size: usize,
    ) -> anyhow::Result<Template> {
        let mut publish = Publish::new(TopicName::new(topic)?, vec![0u8; payload_size]);
        publish.qos = qos;
        if qos != QoS::AtMostOnce {
            publish.packet_id = PacketId::new(0x5a5a);
        }
        let mut buf = BytesMut::new();
        Packet::Publish(publish).encode(version, &mut buf)?;
        let payload_at = buf.len() - payload_size;
        // The packet id sits just before the (empty, one-byte) 5.0 property block.
        let packet_id_at =
            (qos != QoS::AtMostOnce).then(|| payload_at - 2 - usize::from(version.is_v5()));
        if let Some(at) = packet_id_at {
            debug_assert_eq!(buf[at..at + 2], [0x5a, 0x5a]);
        }
        Ok(Template {
            bytes: buf.to_vec(),
            packet_id_at,
            payload_at,
        })
    }

    fn append(&self, dst: &mut BytesMut, packet_id: u16, stamp: Stamp) {
        let start = dst.len();
        dst.extend_from_slice(&self.bytes);
        let packet = &mut dst[start..];
        if let Some(at) = self.packet_id_at {
            packet[at..at + 2].copy_from_slice(&packet_id.to_be_bytes());
        }
        write_stamp(&mut packet[self.payload_at..], stamp);
    }
}

/// Packet ids in use, so that a late acknowledgement never frees a reused id.
#[derive(Debug)]
struct PacketIds {
    busy: Vec<bool>,
    next: u16,
    outstanding: usize,
}

impl PacketIds {
    fn new() -> Self {
        PacketIds {
            busy: vec![false; 65_536],
            next: 0,
            outstanding: 0,
        }
    }

    /// A free id; the caller keeps `outstanding` below 65,535.
    fn take(&mut self) -> u16 {
        loop {
            self.next = self.next.checked_add(1).unwrap_or(1);
            if !self.busy[usize::from(self.next)] {
                self.busy[usize::from(self.next)] = true;
                self.outstanding += 1;
                return self.next;
            }
        }
    }

    fn free(&mut self, id: PacketId) -> bool {
        let slot = &mut self.busy[usize::from(id.get())];
        let was = std::mem::replace(slot, false);
        self.outstanding -= usize::from(was);
        was
    }
}

/// Publishes until the deadline; returns how many messages were sent.
pub(crate) async fn run(
    mut link: Link,
    id: u32,
    template: Template,
    config: PubConfig,
    counters: Arc<Counters>,
) -> anyhow::Result<u64> {
    debug_assert!(config.payload_size >= HEADER_LEN);
    let qos = config.qos;
    let window = match qos {
        QoS::AtMostOnce => usize::MAX,
        _ => config
            .inflight
            .clamp(1, usize::from(link.receive_maximum).clamp(1, 65_534)),
    };
    let version = link.version;
    let Link {
        stream,
        decoder,
        rbuf,
        ..
    } = &mut link;
    rbuf.reserve(super::conn::READ_BUF);
    let (mut rd, mut wr) = stream.split();
    let mut wbuf = BytesMut::with_capacity(HIGH_WATER + BATCH * template.bytes.len());
    let mut ids = PacketIds::new();
    let mut seq: u64 = 0;
    let start = now();
    let give_up = config.deadline + config.grace;
    loop {
        let t = now();
        let publishing = t < config.deadline;
        // Done when all is written and acknowledged, or at the end of the grace period
        // whatever is left (a broker that stopped reading must not hang the run).
        if !publishing && (t >= give_up || (ids.outstanding == 0 && wbuf.is_empty())) {
            break;
        }
        let mut wake = if publishing { config.deadline } else { give_up };
        if publishing && wbuf.len() < HIGH_WATER {
            let room = window - ids.outstanding.min(window);
            let allowed = match config.rate {
                None => usize::MAX,
                Some(rate) => {
                    let due = (t.duration_since(start).as_secs_f64() * rate) as u64 + 1;
                    usize::try_from(due.saturating_sub(seq)).unwrap_or(usize::MAX)
                }
            };
            let n = BATCH.min(room).min(allowed);
            let sent_at = nanos_since(config.origin);
            for _ in 0..n {
                let packet_id = if qos == QoS::AtMostOnce {
                    0
                } else {
                    ids.take()
                };
                let stamp = Stamp {
                    publisher: id,
                    seq,
                    sent_at,
                };
                template.append(&mut wbuf, packet_id, stamp);
                seq += 1;
            }
            Counters::add(&counters.sent, n as u64);
            wake = match config.rate {
                // A full window waits for an acknowledgement, which wakes the read.
                _ if ids.outstanding >= window => config.deadline,
                Some(rate) => {
                    let next = start + Duration::from_secs_f64(seq as f64 / rate);
                    next.min(config.deadline)
                }
                None => config.deadline,
            };
        }
        tokio::select! {
            biased;
            read = rd.read_buf(rbuf) => {
                if read.context("read from broker")? == 0 {
                    bail!("connection closed by the broker");
                }
                while let Some(packet) = decoder.decode(rbuf)? {
                    on_ack(packet, qos, version, &mut ids, &mut wbuf, &counters)?;
                }
            }
            written = wr.write(&wbuf), if !wbuf.is_empty() => {
                wbuf.advance(written.context("write to broker")?);
            }
            () = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    let mut bye = BytesMut::new();
    Packet::Disconnect(Disconnect::new(ReasonCode::Success)).encode(version, &mut bye)?;
    // The broker may already be gone, or stalled; the count stands either way.
    if wbuf.is_empty() {
        let _ = tokio::time::timeout(Duration::from_secs(1), wr.write_all(&bye)).await;
    }
    Ok(seq)
}

/// Handles one packet the broker sent a publisher.
fn on_ack(
    packet: Packet,
    qos: QoS,
    version: ProtocolVersion,
    ids: &mut PacketIds,
    wbuf: &mut BytesMut,
    counters: &Counters,
) -> anyhow::Result<()> {
    let completed = match packet {
        Packet::PubAck(ack) if qos == QoS::AtLeastOnce => Some(ack.packet_id),
        Packet::PubComp(ack) if qos == QoS::ExactlyOnce => Some(ack.packet_id),
        Packet::PubRec(ack) if qos == QoS::ExactlyOnce => {
            if ack.reason_code.is_error() {
                ids.free(ack.packet_id);
            } else {
                Packet::PubRel(Ack::new(ack.packet_id)).encode(version, wbuf)?;
            }
            None
        }
        Packet::Disconnect(d) => bail!("disconnected by the broker: {:?}", d.reason_code),
        _ => None,
    };
    if let Some(id) = completed {
        // A late or repeated acknowledgement of a free id counts for nothing.
        Counters::add(&counters.acked, u64::from(ids.free(id)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use midge_codec::Decoder;

    use super::*;
    use crate::bench::stats::read_stamp;

    /// A patched template decodes as the PUBLISH it stands for, in every version.
    #[test]
    fn template_patches_decode() {
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let t = Template::new(version, "bench/1", qos, 64).unwrap();
                let mut buf = BytesMut::new();
                let stamp = Stamp {
                    publisher: 3,
                    seq: 99,
                    sent_at: 42,
                };
                t.append(&mut buf, 777, stamp);
                let Some(Packet::Publish(p)) = Decoder::client(version).decode(&mut buf).unwrap()
                else {
                    panic!("not a PUBLISH");
                };
                assert_eq!(p.qos, qos);
                assert_eq!(p.payload.len(), 64);
                assert_eq!(read_stamp(&p.payload), Some(stamp));
                if qos != QoS::AtMostOnce {
                    assert_eq!(p.packet_id, PacketId::new(777));
                }
            }
        }
    }

    #[test]
    fn packet_ids_skip_busy_ones() {
        let mut ids = PacketIds::new();
        assert_eq!(ids.take(), 1);
        assert_eq!(ids.take(), 2);
        ids.next = u16::MAX;
        assert_eq!(ids.take(), 3); // wraps past 0, 1 and 2 are busy
        assert!(ids.free(PacketId::new(2).unwrap()));
        assert!(!ids.free(PacketId::new(2).unwrap()));
        assert_eq!(ids.outstanding, 2);
    }
}
