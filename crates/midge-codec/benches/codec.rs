//! Codec throughput: decode and encode PUBLISH with 16 B, 1 KiB and 64 KiB payloads and
//! SUBSCRIBE with 10 filters, in MQTT 3.1.1 and 5.0. Figures go into BENCHMARKS.md.
//!
//! Run: `cargo bench -p midge-codec --bench codec -- --warm-up-time 1 --measurement-time 3`
//!
//! Decoding is measured the way a connection decodes: the read buffer is already shared
//! (an earlier packet was split off it), so the per-packet work is what is timed, not
//! the one-time promotion of the buffer's storage. Encoding appends to a buffer that
//! already has room, as a connection's write buffer does after its first packet.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use midge_codec::{
    Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS, Subscribe, SubscribeProperties,
    SubscriptionOptions, TopicFilter, TopicName,
};

const VERSIONS: [(ProtocolVersion, &str); 2] = [
    (ProtocolVersion::V311, "v3.1.1"),
    (ProtocolVersion::V5, "v5.0"),
];

const PAYLOADS: [(usize, &str); 3] = [(16, "16B"), (1024, "1KiB"), (64 * 1024, "64KiB")];

fn publish(payload_len: usize) -> Packet {
    let topic = TopicName::new("building/7/floor/3/room/12/temperature").expect("valid topic");
    let mut publish = Publish::new(topic, vec![0x5a; payload_len]);
    publish.qos = QoS::AtLeastOnce;
    publish.packet_id = PacketId::new(4242);
    Packet::Publish(publish)
}

fn subscribe() -> Packet {
    let filters = (0..10)
        .map(|i| {
            let filter = match i % 3 {
                0 => format!("building/{i}/+/temperature"),
                1 => format!("building/{i}/alerts/#"),
                _ => format!("$share/workers/jobs/{i}/+"),
            };
            let filter = TopicFilter::new(filter).expect("valid filter");
            (filter, SubscriptionOptions::new(QoS::AtLeastOnce))
        })
        .collect();
    Packet::Subscribe(Subscribe {
        packet_id: PacketId::new(7).expect("not zero"),
        filters,
        properties: SubscribeProperties::default(),
    })
}

fn encode(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut wire = BytesMut::new();
    packet.encode(version, &mut wire).expect("encodes");
    wire
}

/// A read buffer holding `wire`, whose storage is already shared as it is in a
/// connection after its first packet.
fn read_buffer(wire: &[u8]) -> BytesMut {
    let mut buf = BytesMut::from(wire);
    drop(buf.split_to(0));
    buf
}

fn bench_decode(c: &mut Criterion, group: &str, cases: &[(Packet, String)], server: bool) {
    let mut g = c.benchmark_group(group);
    for (packet, size) in cases {
        for (version, name) in VERSIONS {
            let wire = encode(packet, version);
            let decoder = if server {
                let mut decoder = Decoder::server();
                decoder.set_version(version);
                decoder
            } else {
                Decoder::client(version)
            };
            let batch = if wire.len() > 16 * 1024 {
                BatchSize::LargeInput
            } else {
                BatchSize::SmallInput
            };
            g.throughput(Throughput::Bytes(wire.len() as u64));
            g.bench_function(BenchmarkId::new(name, size), |b| {
                let mut decoder = decoder.clone();
                b.iter_batched(
                    || read_buffer(&wire),
                    |mut buf| decoder.decode(black_box(&mut buf)).expect("decodes"),
                    batch,
                );
            });
        }
    }
    g.finish();
}

fn bench_encode(c: &mut Criterion, group: &str, cases: &[(Packet, String)]) {
    let mut g = c.benchmark_group(group);
    for (packet, size) in cases {
        for (version, name) in VERSIONS {
            let len = packet.encoded_len(version).expect("encodable");
            let mut buf = BytesMut::with_capacity(len);
            g.throughput(Throughput::Bytes(len as u64));
            g.bench_function(BenchmarkId::new(name, size), |b| {
                b.iter(|| {
                    buf.clear();
                    black_box(packet)
                        .encode(version, &mut buf)
                        .expect("encodes");
                    black_box(&buf);
                });
            });
        }
    }
    g.finish();
}

fn codec(c: &mut Criterion) {
    let publishes: Vec<(Packet, String)> = PAYLOADS
        .iter()
        .map(|(len, name)| (publish(*len), (*name).to_owned()))
        .collect();
    let subscribes = [(subscribe(), "10filters".to_owned())];
    bench_decode(c, "decode_publish", &publishes, false);
    bench_encode(c, "encode_publish", &publishes);
    bench_decode(c, "decode_subscribe", &subscribes, true);
    bench_encode(c, "encode_subscribe", &subscribes);
}

criterion_group!(benches, codec);
criterion_main!(benches);
