//! The session's fast path, without sockets: what one connected session does per message
//! it receives from its client (a PUBLISH at QoS 0, 1 and 2, with the acknowledgements
//! that complete the flow) and per message it delivers to its client (QoS 0, QoS 1 up to
//! the subscriber's PUBACK, QoS 2 up to its PUBCOMP). The actions the session returns are counted and
//! dropped, as `connection.rs` would carry them out. Figures go into BENCHMARKS.md
//! ("Session").
//!
//! Run: `cargo bench -p midge-broker --bench session -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use midge_broker::message::{Delivery, Message};
use midge_broker::session::{Action, Session, SessionConfig};
use midge_codec::{Ack, Connect, Packet, PacketId, ProtocolVersion, Publish, QoS, TopicName};

/// Messages per timed iteration.
const BATCH: u64 = 64;

/// The one place this bench reads the clock (clippy.toml bans it elsewhere).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// A session connected with MQTT 3.1.1, as the broker holds it after CONNECT.
fn connected(t: Instant) -> Session {
    let mut session = Session::new(Arc::from("bench"), SessionConfig::default(), t);
    let mut connect = Connect::new(ProtocolVersion::V311, "bench");
    connect.keep_alive = 60;
    let mut out = Vec::new();
    session.connect(&connect, false, None, t, &mut out);
    session
}

fn topic() -> TopicName {
    TopicName::new("bench/pair/1").expect("valid topic")
}

/// A PUBLISH as the decoder hands it over: its topic and payload slices of the read
/// buffer (here: of `template`'s).
fn publish(template: &Publish, qos: QoS, id: u16) -> Packet {
    let mut publish = Publish::new(template.topic.clone(), template.payload.clone());
    publish.qos = qos;
    publish.packet_id = PacketId::new(id).filter(|_| qos != QoS::AtMostOnce);
    Packet::Publish(publish)
}

/// A message routed to this session.
fn delivery(qos: QoS) -> Delivery {
    let message = Message {
        topic: topic(),
        payload: Bytes::from(vec![b'x'; 64]),
        qos,
        retain: false,
        properties: Default::default(),
        expires_at: None,
        origin: Some(Arc::from("publisher")),
        encoded: Default::default(),
        store_id: Default::default(),
    };
    Delivery::new(Arc::new(message), qos, false)
}

/// The packet id of the PUBLISH the actions send, if any.
fn sent_id(out: &[Action]) -> Option<PacketId> {
    out.iter().find_map(|action| match action {
        Action::Send(Packet::Publish(p)) => p.packet_id,
        Action::SendShared { packet_id, .. } => *packet_id,
        _ => None,
    })
}

fn bench_inbound(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_inbound");
    group.throughput(Throughput::Elements(BATCH));
    let t = now();
    for (name, qos) in [
        ("publish_qos0", QoS::AtMostOnce),
        ("publish_qos1", QoS::AtLeastOnce),
        ("publish_qos2_flow", QoS::ExactlyOnce),
    ] {
        let mut session = connected(t);
        let mut out = Vec::with_capacity(8);
        let template = Publish::new(topic(), Bytes::from(vec![b'x'; 64]));
        group.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..BATCH as u16 {
                    let id = i + 1;
                    session.handle_packet(publish(&template, qos, id), t, &mut out);
                    if qos == QoS::ExactlyOnce {
                        let id = PacketId::new(id).expect("non-zero");
                        session.handle_packet(Packet::PubRel(Ack::new(id)), t, &mut out);
                    }
                    black_box(out.len());
                    out.clear();
                }
            })
        });
    }
    group.finish();
}

fn bench_outbound(c: &mut Criterion) {
    let mut group = c.benchmark_group("session_outbound");
    group.throughput(Throughput::Elements(BATCH));
    let t = now();
    for (name, qos) in [
        ("deliver_qos0", QoS::AtMostOnce),
        ("deliver_qos1_flow", QoS::AtLeastOnce),
        ("deliver_qos2_flow", QoS::ExactlyOnce),
    ] {
        let mut session = connected(t);
        let mut out = Vec::with_capacity(8);
        // A message of its own per delivery, as in pairs (one subscriber per message:
        // no shared encoding); made outside the timing.
        let deliveries = || (0..BATCH).map(|_| delivery(qos)).collect::<Vec<_>>();
        group.bench_function(name, |b| {
            b.iter_batched(
                deliveries,
                |deliveries| {
                    for delivery in deliveries {
                        session.handle_delivery(delivery, t, &mut out);
                        if let Some(id) = sent_id(&out) {
                            out.clear();
                            let ack = Ack::new(id);
                            match qos {
                                QoS::ExactlyOnce => {
                                    session.handle_packet(Packet::PubRec(ack.clone()), t, &mut out);
                                    out.clear();
                                    session.handle_packet(Packet::PubComp(ack), t, &mut out);
                                }
                                _ => session.handle_packet(Packet::PubAck(ack), t, &mut out),
                            }
                        }
                        black_box(out.len());
                        out.clear();
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_inbound, bench_outbound);
criterion_main!(benches);
