//! Allocation test: decoding a PUBLISH without properties allocates nothing. The topic and
//! the payload are zero-copy slices of the read buffer (STYLE.md rule 4, `wire.rs`).
//!
//! The counting allocator comes from `stats_alloc`. The workspace forbids `unsafe_code`,
//! and a `GlobalAlloc` impl needs it. The counters are global, so this file holds a single
//! test: a second test running on another thread would disturb the count. The test
//! harness's own threads may still allocate now and then while a case runs (CI once saw 5
//! stray allocations), so each case counts the fewest allocations of a few tries: a
//! per-packet allocation shows up in every try, as at least `PACKETS` allocations.

use std::alloc::System;

use bytes::BytesMut;
use midge_codec::{Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, TopicName};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Packets decoded per case; enough that a per-packet allocation cannot hide.
const PACKETS: usize = 1000;

/// Tries per case; the fewest allocations of them count.
const TRIES: usize = 3;

/// Allocations allowed per case regardless of the packet count (the first split of the
/// buffer may turn its storage into a shared, reference-counted one).
const CONSTANT_ALLOWANCE: usize = 2;

fn publish(qos: QoS, i: usize) -> Publish {
    let topic = TopicName::new(format!("sensors/{i}/temperature")).expect("valid topic");
    let mut publish = Publish::new(topic, vec![i as u8; 100 + i % 50]);
    publish.qos = qos;
    publish.packet_id = PacketId::new((i % 60_000 + 1) as u16).filter(|_| qos != QoS::AtMostOnce);
    publish
}

/// A decoder ready for PUBLISH packets of `version` from a server.
fn decoder(version: ProtocolVersion) -> Decoder {
    Decoder::client(version)
}

/// Decodes `PACKETS` PUBLISH packets from one buffer that already holds all of them,
/// and returns how many allocations the decoding made.
fn allocations_while_decoding(version: ProtocolVersion, qos: QoS) -> usize {
    let mut buf = BytesMut::new();
    let expected: Vec<Publish> = (0..PACKETS).map(|i| publish(qos, i)).collect();
    for publish in &expected {
        Packet::Publish(publish.clone())
            .encode(version, &mut buf)
            .expect("encodes");
    }
    let mut decoder = decoder(version);
    let mut decoded = Vec::with_capacity(PACKETS);

    let region = Region::new(GLOBAL);
    while let Some(packet) = decoder.decode(&mut buf).expect("valid packets") {
        decoded.push(packet);
    }
    let stats = region.change();

    assert!(buf.is_empty());
    assert_eq!(decoded.len(), PACKETS);
    for (packet, publish) in decoded.iter().zip(&expected) {
        assert_eq!(packet, &Packet::Publish(publish.clone()));
    }
    stats.allocations + stats.reallocations
}

/// Decoding PUBLISH packets (3.1.1 and 5.0, QoS 0 and 1, no properties) from a filled
/// read buffer allocates nothing per packet: topic and payload share the buffer.
#[test]
fn decoding_publish_does_not_allocate_per_packet() {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce] {
            let allocations = (0..TRIES)
                .map(|_| allocations_while_decoding(version, qos))
                .min()
                .expect("at least one try");
            assert!(
                allocations <= CONSTANT_ALLOWANCE,
                "{version} {qos:?}: {allocations} allocations for {PACKETS} packets"
            );
        }
    }
}
