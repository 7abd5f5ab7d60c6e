//! Router throughput: matching a PUBLISH against 10 k and 100 k subscriptions (literal
//! filters only, or a mix of wildcards with overlapping subscriptions of one session),
//! fan-out to 64 subscribers of one topic, SUBSCRIBE with 10 k and 100 k retained
//! messages of which the filter matches one, and subscribe + unsubscribe beside 100 k
//! subscriptions. Figures go into BENCHMARKS.md ("Router").
//!
//! Run: `cargo bench -p midge-broker --bench router -- --warm-up-time 1 --measurement-time 3`
//!
//! Each routed delivery is really queued in the subscriber's mailbox (unbounded here);
//! the mailboxes are emptied between timed rounds, outside the timing, so a round
//! measures the router and the mailbox push, not a growing queue.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use midge_broker::mailbox::MailboxLimits;
use midge_broker::message::Message;
use midge_broker::registry::{Registry, SessionEntry};
use midge_broker::router::Router;
use midge_codec::{QoS, SubscriptionOptions, TopicFilter, TopicName};

/// Subscriptions per session in the matching benches.
const FILTERS_PER_SESSION: usize = 10;
/// Publishes per timed round; mailboxes are emptied between rounds.
const ROUND: u64 = 256;

/// The one place this bench reads the clock (clippy.toml bans it elsewhere).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

fn limits() -> MailboxLimits {
    MailboxLimits {
        max_messages: 0,
        max_bytes: 0,
        queue_qos0_offline: true,
    }
}

fn sessions(registry: &Registry, n: usize) -> Vec<Arc<SessionEntry>> {
    (0..n)
        .map(|i| registry.connect(&format!("client-{i}")).0)
        .collect()
}

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s.to_owned()).expect("valid filter")
}

fn message(topic: &str, retain: bool) -> Arc<Message> {
    Arc::new(Message {
        topic: TopicName::new(topic.to_owned()).expect("valid topic"),
        payload: Bytes::from_static(&[0x5a; 64]),
        qos: QoS::AtMostOnce,
        retain,
        properties: Default::default(),
        expires_at: None,
        origin: None,
        encoded: Default::default(),
        store_id: Default::default(),
    })
}

fn subscribe(router: &Router, entry: &Arc<SessionEntry>, f: &str, qos: QoS, id: Option<u32>) {
    let options = SubscriptionOptions::new(qos);
    router.subscribe(entry, &filter(f), options, id, false, now());
}

/// The topic of device `i`; 100 sites of devices.
fn device_topic(i: usize) -> String {
    format!("site/{}/dev/{i}/temp", i % 100)
}

/// `n` literal subscriptions, one per device, spread over sessions.
fn literal_router(n: usize) -> (Router, Vec<Arc<SessionEntry>>) {
    let registry = Registry::new(limits());
    let entries = sessions(&registry, n / FILTERS_PER_SESSION);
    let router = Router::new(false);
    for i in 0..n {
        let entry = &entries[i % entries.len()];
        subscribe(&router, entry, &device_topic(i), QoS::AtMostOnce, None);
    }
    (router, entries)
}

/// `n` subscriptions in groups of four per device: the literal filter, `+` in the middle
/// (same session as the literal one: an overlap folded into one delivery), `#` at the
/// end and `+` at the start. A device's topic matches its four filters, three sessions.
fn wildcard_router(n: usize) -> (Router, Vec<Arc<SessionEntry>>) {
    let registry = Registry::new(limits());
    let entries = sessions(&registry, n / FILTERS_PER_SESSION);
    let router = Router::new(false);
    for g in 0..n / 4 {
        let site = g % 100;
        let a = &entries[g % entries.len()];
        let b = &entries[(g + 1) % entries.len()];
        let c = &entries[(g + 2) % entries.len()];
        let id = u32::try_from(g % 1000 + 1).expect("small");
        subscribe(&router, a, &device_topic(g), QoS::AtMostOnce, Some(id));
        let plus = format!("site/{site}/+/{g}/temp");
        subscribe(&router, a, &plus, QoS::AtLeastOnce, Some(id + 1));
        subscribe(
            &router,
            b,
            &format!("site/{site}/dev/{g}/#"),
            QoS::AtMostOnce,
            None,
        );
        subscribe(
            &router,
            c,
            &format!("+/{site}/dev/{g}/+"),
            QoS::AtMostOnce,
            None,
        );
    }
    (router, entries)
}

fn clear(entries: &[Arc<SessionEntry>]) {
    for entry in entries {
        entry.mailbox.lock().expect("mailbox lock").clear();
    }
}

/// Publishes `messages` round after round, timing only the publishes.
fn bench_publish(
    b: &mut criterion::Bencher<'_>,
    router: &Router,
    entries: &[Arc<SessionEntry>],
    messages: &[Arc<Message>],
) {
    let mut next = 0;
    b.iter_custom(|iters| {
        let mut total = Duration::ZERO;
        let mut done = 0;
        while done < iters {
            let round = ROUND.min(iters - done);
            let start = now();
            for _ in 0..round {
                let message = messages[next].clone();
                next = (next + 1) % messages.len();
                black_box(router.publish(black_box(message)));
            }
            total += start.elapsed();
            done += round;
            clear(entries);
        }
        total
    });
}

fn publish_matching(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(1));
    // Topics of 1,000 devices spread over the whole set, in a fixed order.
    for (n, name) in [(10_000, "10k"), (100_000, "100k")] {
        let picks: Vec<usize> = (0..1000).map(|k| (k * 7919) % (n / 4)).collect();
        let messages: Vec<Arc<Message>> = picks
            .iter()
            .map(|&i| message(&device_topic(i), false))
            .collect();
        let (router, entries) = literal_router(n);
        g.bench_function(BenchmarkId::new("literal", name), |b| {
            bench_publish(b, &router, &entries, &messages);
        });
        drop((router, entries));
        let (router, entries) = wildcard_router(n);
        g.bench_function(BenchmarkId::new("wildcard", name), |b| {
            bench_publish(b, &router, &entries, &messages);
        });
    }
    g.finish();
}

fn fan_out(c: &mut Criterion) {
    let mut g = c.benchmark_group("fan_out");
    let registry = Registry::new(limits());
    let entries = sessions(&registry, 64);
    let router = Router::new(false);
    for entry in &entries {
        subscribe(&router, entry, "fan/out", QoS::AtMostOnce, None);
    }
    let messages = [message("fan/out", false)];
    g.throughput(Throughput::Elements(64));
    g.bench_function("64", |b| bench_publish(b, &router, &entries, &messages));
    g.finish();
}

fn subscribe_retained(c: &mut Criterion) {
    let mut g = c.benchmark_group("subscribe_retained");
    g.throughput(Throughput::Elements(1));
    let registry = Registry::new(limits());
    let entry = sessions(&registry, 1).remove(0);
    for (n, name) in [(10_000, "10k"), (100_000, "100k")] {
        let router = Router::new(false);
        for i in 0..n {
            router.publish(message(&format!("r/{}/{i}/v", i % 100), true));
        }
        // Each filter matches exactly one retained message.
        let filter_one = filter("r/7/107/+");
        let filter_plus = filter("r/+/107/v");
        for (kind, f) in [
            ("trailing_plus", &filter_one),
            ("leading_plus", &filter_plus),
        ] {
            g.bench_function(BenchmarkId::new(kind, name), |b| {
                let options = SubscriptionOptions::new(QoS::AtMostOnce);
                b.iter(|| {
                    let sent = router.subscribe(&entry, black_box(f), options, None, true, now());
                    assert_eq!(sent.len(), 1);
                    sent
                });
            });
        }
    }
    g.finish();
}

fn churn(c: &mut Criterion) {
    let mut g = c.benchmark_group("subscribe_unsubscribe");
    g.throughput(Throughput::Elements(1));
    let (router, entries) = wildcard_router(100_000);
    let f = filter("site/42/dev/+/humidity");
    let options = SubscriptionOptions::new(QoS::AtMostOnce);
    g.bench_function("100k", |b| {
        b.iter(|| {
            router.subscribe(&entries[3], &f, options, None, false, now());
            router.unsubscribe(&entries[3], &f)
        });
    });
    g.finish();
}

criterion_group!(
    benches,
    publish_matching,
    fan_out,
    subscribe_retained,
    churn
);
criterion_main!(benches);
