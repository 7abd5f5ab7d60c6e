//! Durable commits through the store's group-commit writer: QoS 1 messages routed to 4
//! persistent sessions each (one body, four outgoing entries) and acknowledged (the
//! previous message's entries removed in the same commit), sent by 1, 16 or 64
//! concurrent committers, on the in-memory and the on-disk (redb, fsynced) backends.
//! Throughput is messages made durable per second. Figures go into BENCHMARKS.md.
//!
//! Run: `cargo bench -p midge-broker --bench store -- --warm-up-time 1 --measurement-time 5`
//! The disk store is created under the system's temporary directory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use midge_broker::store::{
    DiskStore, MemoryStore, Op, OpenMode, OutgoingRecord, OutgoingState, Persistence, RestoreMode,
    SessionRecord, Store, StoredMessage, restore,
};
use midge_codec::{Publish, QoS, TopicName};

const FANOUT: usize = 4;

/// The bench's one clock read: criterion's `iter_custom` times concurrent work.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn message() -> StoredMessage {
    let topic = TopicName::new("building/7/floor/3/room/12/temperature").expect("valid topic");
    let mut publish = Publish::new(topic, Bytes::from(vec![0x5a; 256]));
    publish.qos = QoS::AtLeastOnce;
    StoredMessage::new(&publish, None, Some("publisher"))
}

fn session(client: &str) -> SessionRecord {
    SessionRecord {
        client_id: client.into(),
        protocol: 5,
        session_expiry: u32::MAX,
        expires_at: None,
        last_packet_id: 0,
        subscriptions: Vec::new(),
        will: None,
    }
}

/// `count` messages from committer `worker`, each routed to its `FANOUT` sessions; each
/// commit also acknowledges the worker's previous message.
fn commit_messages(p: &Persistence, worker: usize, count: u64, body: &StoredMessage) {
    let clients: Vec<std::sync::Arc<str>> = (0..FANOUT)
        .map(|s| format!("w{worker}-s{s}").into())
        .collect();
    for seq in 0..count {
        let id = p.next_message_id();
        let mut ops = vec![Op::PutMessage(id, body.clone())];
        for client in &clients {
            if seq > 0 {
                ops.push(Op::RemoveOutgoing {
                    client_id: client.clone(),
                    seq: seq - 1,
                });
            }
            ops.push(Op::PushOutgoing {
                client_id: client.clone(),
                seq,
                record: OutgoingRecord {
                    message: id,
                    qos: QoS::AtLeastOnce,
                    retain: false,
                    subscription_ids: Vec::new(),
                    shared_group: None,
                    state: OutgoingState::Queued,
                },
            });
        }
        p.commit_blocking(ops).expect("commit");
    }
}

fn start(backend: &str, dir: &std::path::Path, committers: usize) -> Persistence {
    let _ = std::fs::remove_dir_all(dir);
    let store: Arc<dyn Store> = match backend {
        "memory" => Arc::new(MemoryStore::new()),
        _ => Arc::new(DiskStore::open(dir, OpenMode::Create).expect("store opens")),
    };
    let mut restored = restore(&*store, 0, RestoreMode::Apply).expect("restore");
    let p = Persistence::start(store, &mut restored);
    let sessions: Vec<Op> = (0..committers)
        .flat_map(|w| {
            (0..FANOUT).map(move |s| Op::PutSession(Box::new(session(&format!("w{w}-s{s}")))))
        })
        .collect();
    p.commit_blocking(sessions).expect("sessions");
    p
}

fn bench_commit(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("midge-store-bench-{}", std::process::id()));
    let body = message();
    let mut group = c.benchmark_group("store_commit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    for backend in ["memory", "disk"] {
        for committers in [1usize, 16, 64] {
            let p = start(backend, &dir, committers);
            let id = BenchmarkId::new(backend, format!("{committers}_committers"));
            group.bench_function(id, |b| {
                b.iter_custom(|iters| {
                    let each = iters.div_ceil(committers as u64);
                    let started = now();
                    std::thread::scope(|scope| {
                        for worker in 0..committers {
                            let (p, body) = (&p, &body);
                            scope.spawn(move || commit_messages(p, worker, each, body));
                        }
                    });
                    let elapsed = started.elapsed();
                    // Per message, as if exactly `iters` had been committed.
                    elapsed.mul_f64(iters as f64 / (each * committers as u64) as f64)
                });
            });
            let stats = p.stats();
            eprintln!(
                "{backend}/{committers}: {} requests in {} batches ({:.1} per batch)",
                stats.requests,
                stats.batches,
                stats.requests as f64 / stats.batches.max(1) as f64
            );
            p.close();
        }
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = bench_commit
}
criterion_main!(benches);
