//! Mixed soak: a few hundred clients against one in-process broker for a minute, their
//! connections cut at random, and every QoS 1/2 delivery counted.
//!
//! # Design
//! - **Clients** (`soak/roles.rs`): [`SUBSCRIBERS`] subscribers and [`PUBLISHERS`]
//!   publishers, MQTT 3.1.1 and 5.0 half and half, all with persistent sessions (Clean
//!   Session 0 in 3.1.1; Clean Start 0 and a Session Expiry Interval in 5.0), a keep
//!   alive, and a will. Each is a `Role` — the client side of its session, which outlives
//!   its connections as a real client's does — served by `drive` (`soak/client.rs`),
//!   which owns the socket, reconnects, and resumes the session.
//! - **Subscribers** subscribe once, at their first connection, to one or two wildcard
//!   filters at QoS 1 or 2 (`subscriber_filters`: `soak/#`, `+/+/+`, `soak/+/q1`,
//!   `soak/G/+`, overlapping filters with different QoS, a QoS 1 filter that downgrades
//!   QoS 2 messages…); the session keeps them across reconnects. They acknowledge QoS 1
//!   with PUBACK and run the receiver side of QoS 2 as the protocol asks
//!   ([MQTT-4.3.3-9]..[MQTT-4.3.3-13]): a QoS 2 message is counted when it first
//!   arrives and its packet id is kept, across reconnects, until PUBREL; a resent
//!   PUBLISH under a kept id is acknowledged again and not counted. Half of them hold
//!   their acknowledgements back a few ms (a batching client); half of the 5.0 ones
//!   announce a Receive Maximum of 4.
//! - **Publishers** publish a known sequence: message `seq` of publisher `p` goes to
//!   `soak/G/qQ`, a random group G and QoS Q, with payload `p:seq:` and padding (16 KiB
//!   for one message in eight), at most [`WINDOW`] QoS 1/2 flows open. After a reconnect
//!   they resend each unacknowledged PUBLISH with DUP and its packet id, and PUBREL for
//!   each QoS 2 message that got its PUBREC ([MQTT-4.4.0-1]). Half of them hold their
//!   PUBRELs back a few ms.
//! - **Chaos** (`chaos`): every [`CHAOS_EVERY`] one client, chosen at random, loses its
//!   connection without DISCONNECT: a FIN, a RST, a PUBLISH torn in the middle, a
//!   take-over by a new connection while the old one is open ([MQTT-3.1.4-3]), or a hang
//!   (silence until the broker closes the connection on keep alive). Before the cut a
//!   publisher publishes up to [`ON_CUT_PUBLISHES`] more messages, and the client may go
//!   on for up to 50 ms, reading or not (what the broker sends then is lost). It comes
//!   back after 0–250 ms, or 0.5–3 s one time in four, so that mailboxes fill meanwhile
//!   (no hang nor long absence in the last seconds, to keep the drain short).
//! - **Drain**: after the soak time chaos stops and publishers stop publishing; each
//!   comes back if it is away, completes its open flows and disconnects. Subscribers get
//!   until every message they are owed has arrived and no QoS 2 flow is open, then
//!   [`QUIET`] for late duplicates, and disconnect.
//!
//! # Guarantees asserted
//! A message is *acknowledged* when the broker answered its PUBLISH: PUBACK for QoS 1,
//! PUBREC for QoS 2 (the broker owns it from then on, §4.3.3). The broker routes a
//! message when its PUBLISH arrives, before the acknowledgement, so every acknowledged
//! message was routed to every subscription that existed then — all of them: every
//! subscriber subscribed before the first publish and no session ends. While a client is
//! away its QoS 1/2 messages wait in its session (the mailbox is sized so that none is
//! dropped, see `soak_config`), so when a message was published does not matter. A
//! message whose acknowledgement was lost with its connection is resent by its
//! publisher, so the broker may route it twice (QoS 1) or, deduplicating by packet id,
//! once (QoS 2). So, for each subscriber and each message, with `E` the QoS it is
//! delivered at (the published QoS capped by the highest QoS granted to the
//! subscriber's matching filters, [MQTT-3.3.4-2]):
//! - no matching filter: never delivered; each delivery has QoS `E`, a topic that one of
//!   the subscriber's filters matches, and an intact payload;
//! - `E` = 0: at most once (QoS 0 messages of an absent client are lost);
//! - `E` = 1: at least once if acknowledged; duplicates are counted, not failed;
//! - `E` = 2: at most once; exactly once if acknowledged;
//! - the first arrivals of one publisher's messages on one topic come in the order
//!   published (§4.6).
//!
//! And liveness: every resumed session is reported present ([MQTT-3.2.2-2] in 3.1.1,
//! [MQTT-3.2.2-3] in 5.0); the broker closes no connection that chaos did not cut; a
//! silent client's connection is closed on keep alive and its will published
//! ([MQTT-3.1.2-22], [MQTT-3.1.2-8]); no will is published for a connection ended by
//! DISCONNECT ([MQTT-3.1.2-10]); publishers complete every flow; subscribers end with
//! no QoS 2 flow open; the broker shuts down.
//!
//! `MIDGE_SOAK_SECONDS` sets the soak time (default 60; the whole test takes about 4 s
//! more); `MIDGE_SOAK_SEED` replays a seed (each run prints its own), though timing still
//! differs between runs.

#[path = "soak/client.rs"]
mod client;
mod common;
#[path = "soak/roles.rs"]
mod roles;

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use midge_broker::Config;
use midge_codec::{
    Ack, ConnAck, Connect, Decoder, Disconnect, LastWill, Packet, PacketId, ProtocolVersion,
    Publish, QoS, ReasonCode, Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter,
    TopicName, WillProperties,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use client::*;
use common::now;
use roles::*;

/// Subscribers: a tenth of them take every message (`soak/#`, `+/+/+`), the rest a part.
const SUBSCRIBERS: usize = 200;
/// Publishers.
const PUBLISHERS: usize = 100;
/// Topic groups: topics are `soak/G/qQ`, G below this.
const GROUPS: usize = 16;
/// Pause between two publishes of one publisher, in ms (uniform): about 350 messages
/// and 15,000 deliveries a second in all, which a debug build on two shared cores
/// handles with room to spare.
const PUBLISH_EVERY_MS: (u64, u64) = (100, 400);
/// How long the subscribers that batch their acknowledgements hold them, in ms.
const ACK_DELAY_MS: (u64, u64) = (2, 15);
/// QoS 1/2 flows a publisher keeps open at most; below the broker's Receive Maximum (20).
const WINDOW: usize = 10;
/// Most messages a publisher publishes right before a cut (see `Publisher::on_cut`).
const ON_CUT_PUBLISHES: usize = 3;
/// Padding of the big messages (see [`padding`]).
const BIG_PAYLOAD: usize = 16 * 1024;
/// Receive buffer of the clients' sockets: small, as on a small device, so that a
/// client that stops reading pushes back on the broker sooner.
const RECV_BUFFER: u32 = 32 * 1024;
/// Pause between two connection cuts.
const CHAOS_EVERY: Duration = Duration::from_millis(25);
/// How long a client goes on after being told of its cut, in ms (a third of the cuts
/// come at once).
const CUT_AFTER_MS: (u64, u64) = (0, 50);
/// Keep alive of every client, in seconds: they send PINGREQ after [`PING_IDLE`]
/// without sending anything, and the broker closes a connection that has been silent
/// for one and a half times this ([MQTT-3.1.2-22]).
const KEEP_ALIVE: u16 = 3;
const PING_IDLE: Duration = Duration::from_secs(1);
/// How long a hung client waits for the broker to close its connection (the will of
/// that connection to be published), from the moment it goes silent: one and a half
/// keep-alive periods, and slack for a loaded machine.
const HANG_LIMIT: Duration = Duration::from_millis(KEEP_ALIVE as u64 * 1500 + 2500);
/// Session Expiry Interval of the 5.0 sessions: longer than any run.
const SESSION_EXPIRY: u32 = 3600;
/// Longest wait for a CONNACK (a take-over waits for the old connection to end).
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for every subscriber's SUBACK at the start.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait, once publishing stops, for the publishers to complete their flows.
const FLOWS_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait, after that, for the subscribers to get one more message they must get:
/// a broker that is slow (a loaded machine) gets the time it needs as long as it makes
/// progress, a stuck one fails after this.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest wait in all for the subscribers to catch up.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(120);
/// Watched for late duplicates once the subscribers have everything.
const QUIET: Duration = Duration::from_millis(500);
/// Violations listed in a failure message.
const SHOWN: usize = 25;

/// Where the run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Publishing, connections cut.
    Soak,
    /// No more publishes nor cuts: flows complete, subscribers catch up.
    Drain,
    /// Every client leaves.
    Stop,
}

/// The soak time and seed, from the environment.
fn settings() -> (Duration, u64) {
    let secs = std::env::var("MIDGE_SOAK_SECONDS")
        .ok()
        .map(|s| s.parse::<u64>().expect("MIDGE_SOAK_SECONDS: whole seconds"))
        .unwrap_or(60);
    let seed = std::env::var("MIDGE_SOAK_SEED")
        .ok()
        .map(|s| {
            let s = s.trim_start_matches("0x");
            u64::from_str_radix(s, 16).expect("MIDGE_SOAK_SEED: hexadecimal")
        })
        .unwrap_or_else(|| std::collections::hash_map::RandomState::new().hash_one(0u8));
    (Duration::from_secs(secs), seed)
}

/// The broker's configuration for the soak. The mailbox (a persistent session's queue
/// while its client is away) must never drop a QoS 1/2 message, or the at-least-once
/// assertions would fail for a legitimate reason: `max_queued_messages` is set above the
/// most messages the run can route to one session — every message published (one per
/// `PUBLISH_EVERY_MS.0` at most, per publisher) plus, per cut, those published right
/// before it and the PUBLISHes resent after it (at most `ON_CUT_PUBLISHES + WINDOW`) —
/// doubled for slack. The other limits keep their defaults (bytes unlimited, 20 in
/// flight).
fn soak_config(soak: Duration) -> Config {
    let ms = soak.as_millis() as usize;
    let publishes = (ms / PUBLISH_EVERY_MS.0 as usize + 1) * PUBLISHERS;
    let per_cut = ON_CUT_PUBLISHES + WINDOW;
    let resends = (ms / CHAOS_EVERY.as_millis() as usize + 1) * per_cut;
    let mut config = Config::local_ephemeral();
    config.max_queued_messages = 2 * (publishes + resends);
    config.max_queued_bytes = 0;
    config
}

type Clients<R> = Vec<(Arc<Mutex<R>>, JoinHandle<()>)>;

/// Starts a task per role; `senders` gets the channels chaos cuts them through.
fn spawn_clients<R: Role>(
    ctx: &Arc<Ctx>,
    roles: Vec<R>,
    phase: &watch::Receiver<Phase>,
    rng: &Rng,
    salt: usize,
    senders: &mut Vec<mpsc::Sender<Chaos>>,
) -> Clients<R> {
    roles
        .into_iter()
        .enumerate()
        .map(|(i, role)| {
            let role = Arc::new(Mutex::new(role));
            let (tx, rx) = mpsc::channel(1);
            senders.push(tx);
            let rng = rng.fork(salt + i);
            let task = tokio::spawn(drive(ctx.clone(), role.clone(), rx, phase.clone(), rng));
            (role, task)
        })
        .collect()
}

/// Waits until `ready` holds, polling; false after `limit`.
async fn wait_until(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = now() + limit;
    loop {
        if ready() {
            return true;
        }
        if now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Joins client tasks within `limit`; returns how many did not end (they are aborted).
async fn join_all(tasks: Vec<JoinHandle<()>>, limit: Duration) -> usize {
    let deadline = tokio::time::Instant::from_std(now() + limit);
    let mut late = 0;
    for mut task in tasks {
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(result) => result.expect("client task panicked"),
            Err(_) => {
                task.abort();
                // Awaited, so that the task has dropped its role when this returns.
                let _ = task.await;
                late += 1;
            }
        }
    }
    late
}

/// The roles, taken out of their mutexes once their tasks have ended.
fn take<R>(roles: Vec<Arc<Mutex<R>>>) -> Vec<R> {
    roles
        .into_iter()
        .map(|role| match Arc::try_unwrap(role) {
            Ok(role) => role.into_inner().expect("lock poisoned"),
            Err(_) => panic!("a client task still holds its role"),
        })
        .collect()
}

/// [MQTT-4.3.2-*] [MQTT-4.3.3-*] [MQTT-4.4.0-1] [MQTT-3.1.2-4] [MQTT-3.1.2-5]
/// [MQTT-3.1.4-3] [MQTT-3.3.4-2] [MQTT-3.1.2-22] [MQTT-3.1.2-10]: under a minute of
/// random connection cuts, every acknowledged QoS 1 message reaches each subscriber it
/// matches at least once, and every acknowledged QoS 2 message exactly once (see the
/// module docs for all that is checked).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_soak_keeps_qos_guarantees_across_abrupt_reconnects() {
    let (soak, seed) = settings();
    let hard_limit =
        soak + SETUP_TIMEOUT + HANG_LIMIT + FLOWS_TIMEOUT + CATCH_UP_LIMIT + 2 * IO_TIMEOUT;
    let outcome = tokio::time::timeout(hard_limit, run(soak, seed))
        .await
        .unwrap_or_else(|_| panic!("the soak did not end within {hard_limit:?} (seed {seed:#x})"));
    outcome.report();
    outcome.check();
}

/// What a run leaves to check: the clients' state once they have all left.
#[derive(Debug)]
struct Outcome {
    seed: u64,
    soak: Duration,
    publishers: Vec<Publisher>,
    subscribers: Vec<Subscriber>,
    /// The will watcher's records.
    wills: HashSet<String>,
    /// What the clients reported, and how many times.
    failures: (Vec<String>, u64),
    cuts_sent: u64,
    /// Tasks that had not ended in time: publishers, subscribers, the will watcher.
    late: [usize; 3],
    /// Whether the subscribers got all they must get (see [`catch_up`]).
    caught_up: bool,
    shut_down: bool,
    /// Setup, drain (publishing stopped → subscribers caught up), whole run.
    times: [Duration; 3],
}

/// Runs the soak: starts the broker and the clients, publishes and cuts for `soak`,
/// drains, and lets every client leave.
async fn run(soak: Duration, seed: u64) -> Outcome {
    let t0 = now();
    let rng = Rng(seed);
    let config = soak_config(soak);
    println!(
        "soak: {SUBSCRIBERS} subscribers, {PUBLISHERS} publishers (3.1.1 and 5.0), {} s, \
         seed {seed:#x}, max_queued_messages {}",
        soak.as_secs(),
        config.max_queued_messages
    );
    let broker = common::start_with(config).await;
    let ctx = Arc::new(Ctx::new(broker.local_addr()));
    let (phase_tx, phase) = watch::channel(Phase::Soak);
    // The will watcher is never cut and leaves last: it has a phase of its own.
    let (watcher_tx, watcher_phase) = watch::channel(Phase::Soak);
    let watcher = WillWatcher::new(ctx.clone());
    let mut unused = Vec::new();
    let watcher = spawn_clients(&ctx, vec![watcher], &watcher_phase, &rng, 0, &mut unused);

    // Subscribers first: every subscription exists before the first publish.
    let mut senders = Vec::new();
    let mut setup_rng = rng.fork(usize::MAX);
    let subscribers = (0..SUBSCRIBERS)
        .map(|i| Subscriber::new(i, &mut setup_rng))
        .collect();
    let subscribers = spawn_clients(&ctx, subscribers, &phase, &rng, 1, &mut senders);
    let ready = wait_until(SETUP_TIMEOUT, || {
        lock(&watcher[0].0).subscribed && subscribers.iter().all(|(s, _)| lock(s).subscribed)
    });
    assert!(
        ready.await,
        "subscribers not subscribed within {SETUP_TIMEOUT:?}"
    );
    let t_setup = now() - t0;

    let start = now();
    let publishers = (0..PUBLISHERS)
        .map(|i| Publisher::new(i, rng.fork(10_000 + i), start))
        .collect();
    let publishers = spawn_clients(&ctx, publishers, &phase, &rng, 20_000, &mut senders);
    let chaos = tokio::spawn(chaos(senders, start + soak, rng.fork(30_000)));
    show_progress(&ctx, &publishers, start, soak).await;

    // Drain: no more cuts nor publishes; publishers complete their flows and leave;
    // subscribers catch up, then leave; then the watcher.
    phase_tx.send_replace(Phase::Drain);
    let cuts_sent = chaos.await.expect("chaos task");
    let t_drain = now();
    let (publishers, late_publishers) = finish(publishers, FLOWS_TIMEOUT).await;
    let logs: Vec<Vec<Sent>> = publishers.iter().map(|p| p.log.clone()).collect();
    let caught_up = catch_up(&subscribers, &logs).await;
    let t_caught_up = now() - t_drain;
    tokio::time::sleep(QUIET).await;
    phase_tx.send_replace(Phase::Stop);
    let (subscribers, late_subscribers) = finish(subscribers, IO_TIMEOUT).await;
    // A will that must not exist (of a connection that ended with DISCONNECT) comes now.
    tokio::time::sleep(QUIET).await;
    watcher_tx.send_replace(Phase::Stop);
    let (_, late_watcher) = finish(watcher, IO_TIMEOUT).await;
    let shut_down = tokio::time::timeout(IO_TIMEOUT, broker.shutdown())
        .await
        .is_ok();
    let failures = (
        lock(&ctx.failures).clone(),
        ctx.failure_count.load(Ordering::Relaxed),
    );
    Outcome {
        seed,
        soak,
        publishers,
        subscribers,
        wills: std::mem::take(&mut *lock(&ctx.wills)),
        failures,
        cuts_sent,
        late: [late_publishers, late_subscribers, late_watcher],
        caught_up,
        shut_down,
        times: [t_setup, t_caught_up, now() - t0],
    }
}

/// Sleeps through the soak, printing the count of messages published every 10 s.
async fn show_progress(ctx: &Ctx, publishers: &Clients<Publisher>, start: Instant, soak: Duration) {
    let until = start + soak;
    while now() < until {
        let left = until.saturating_duration_since(now());
        tokio::time::sleep(left.min(Duration::from_secs(10))).await;
        let published: u64 = publishers
            .iter()
            .map(|(p, _)| lock(p).published.iter().sum::<u64>())
            .sum();
        println!(
            "  {:>3} s: {published} published, {} failures",
            (now() - start).as_secs(),
            ctx.failure_count.load(Ordering::Relaxed)
        );
    }
}

/// Waits for the clients' tasks to end (they are aborted after `limit`); returns their
/// roles and how many were late.
async fn finish<R>(clients: Clients<R>, limit: Duration) -> (Vec<R>, usize) {
    let (roles, tasks): (Vec<_>, Vec<_>) = clients.into_iter().unzip();
    let late = join_all(tasks, limit).await;
    (take(roles), late)
}

/// Waits until every subscriber has every message it is owed (see [`owed`]) and no
/// QoS 2 flow open; false after [`CATCH_UP_TIMEOUT`] without progress, or after
/// [`CATCH_UP_LIMIT`].
async fn catch_up(subscribers: &Clients<Subscriber>, logs: &[Vec<Sent>]) -> bool {
    let mut left: Vec<Vec<(usize, u32)>> = subscribers
        .iter()
        .map(|(s, _)| owed(&lock(s), logs))
        .collect();
    let limit = now() + CATCH_UP_LIMIT;
    let mut outstanding = usize::MAX;
    let mut last_progress = now();
    loop {
        let mut all = true;
        let mut count = 0;
        for ((s, _), left) in subscribers.iter().zip(left.iter_mut()) {
            let s = lock(s);
            left.retain(|&(p, seq)| s.count(p, seq) == 0);
            all &= left.is_empty() && s.unreleased.is_empty();
            count += left.len() + s.unreleased.len();
        }
        if all {
            return true;
        }
        let t = now();
        if count < outstanding {
            outstanding = count;
            last_progress = t;
        }
        if t >= limit || t >= last_progress + CATCH_UP_TIMEOUT {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The messages `subscriber` must get, as (publisher, seq): those acknowledged and
/// delivered to it at QoS 1 or 2.
fn owed(subscriber: &Subscriber, logs: &[Vec<Sent>]) -> Vec<(usize, u32)> {
    let mut owed = Vec::new();
    for (p, log) in logs.iter().enumerate() {
        for (seq, sent) in log.iter().enumerate() {
            let e = subscriber.table[usize::from(sent.group)][sent.qos as usize];
            if sent.acked && e.is_some_and(|e| e != QoS::AtMostOnce) {
                owed.push((p, seq as u32));
            }
        }
    }
    owed
}

/// Checks every (subscriber, message) pair against the guarantees; returns the
/// violations and the QoS 1 duplicates.
fn verify(subscribers: &[Subscriber], logs: &[Vec<Sent>]) -> (Vec<String>, u64, u64, u64) {
    let mut violations = Vec::new();
    let (mut owed_q1, mut owed_q2, mut duplicates) = (0, 0, 0);
    for s in subscribers {
        for (p, log) in logs.iter().enumerate() {
            if s.counts[p].len() > log.len() {
                violations.push(format!("{}: got {p}:{} never published", s.name, log.len()));
            }
            for (seq, sent) in log.iter().enumerate() {
                let count = s.count(p, seq as u32);
                let e = s.table[usize::from(sent.group)][sent.qos as usize];
                let ok = match e {
                    None => count == 0,
                    Some(QoS::AtMostOnce) => count <= 1,
                    Some(QoS::AtLeastOnce) => {
                        owed_q1 += u64::from(sent.acked);
                        duplicates += u64::from(count.saturating_sub(1));
                        !sent.acked || count >= 1
                    }
                    Some(QoS::ExactlyOnce) => {
                        owed_q2 += u64::from(sent.acked);
                        count == 1 || (!sent.acked && count == 0)
                    }
                };
                if !ok {
                    violations.push(format!(
                        "{} {:?}: message {p}:{seq} ({:?} on soak/{}/q{}, {}) arrived {count} \
                         times, delivered at {e:?}",
                        s.name,
                        s.filters,
                        sent.qos,
                        sent.group,
                        sent.qos as u8,
                        if sent.acked {
                            "acknowledged"
                        } else {
                            "not acknowledged"
                        },
                    ));
                }
            }
        }
    }
    (violations, owed_q1, owed_q2, duplicates)
}

/// Figures of the whole run, summed over the clients.
#[derive(Debug, Default)]
struct Totals {
    /// Messages published, and acknowledged, by QoS.
    published: [u64; 3],
    acked: [u64; 3],
    /// PUBLISHes resent with DUP and PUBRELs resent by publishers after reconnects.
    resent: [u64; 2],
    /// PUBLISHes received by subscribers, by delivered QoS, and those with DUP set.
    delivered: [u64; 3],
    dup_flag: u64,
    /// QoS 2 PUBLISHes resent for an unreleased id, and PUBRELs for a released one.
    qos2_resent: u64,
    unknown_pubrel: u64,
    /// Cuts applied, by kind ([`CUTS`]).
    cuts: [u64; 5],
    reconnects: u64,
    unexpected: u64,
}

impl Outcome {
    fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for p in &self.publishers {
            for sent in &p.log {
                t.published[sent.qos as usize] += 1;
                t.acked[sent.qos as usize] += u64::from(sent.acked);
            }
            t.resent[0] += p.resent_publish;
            t.resent[1] += p.resent_pubrel;
        }
        for s in &self.subscribers {
            for q in 0..3 {
                t.delivered[q] += s.arrivals[q];
            }
            t.dup_flag += s.dup_flag;
            t.qos2_resent += s.qos2_resent;
            t.unknown_pubrel += s.unknown_pubrel;
        }
        for c in self.conn_stats().map(|(_, c)| c) {
            for (total, n) in t.cuts.iter_mut().zip(c.cuts) {
                *total += n;
            }
            t.reconnects += c.connects.saturating_sub(1);
            t.unexpected += c.unexpected;
        }
        t
    }

    fn conn_stats(&self) -> impl Iterator<Item = (&str, &ConnStats)> {
        let publishers = self.publishers.iter().map(|p| (p.name.as_str(), &p.conn));
        let subscribers = self.subscribers.iter().map(|s| (s.name.as_str(), &s.conn));
        publishers.chain(subscribers)
    }

    fn logs(&self) -> Vec<Vec<Sent>> {
        self.publishers.iter().map(|p| p.log.clone()).collect()
    }

    fn report(&self) {
        let t = self.totals();
        let (_, owed_q1, owed_q2, duplicates) = verify(&self.subscribers, &self.logs());
        let [setup, drain, total] = self.times.map(|d| d.as_secs_f64());
        println!(
            "published: QoS 0 {}, QoS 1 {} ({} acknowledged), QoS 2 {} ({} acknowledged); \
             resent after reconnects: {} PUBLISH (DUP), {} PUBREL",
            t.published[0],
            t.published[1],
            t.acked[1],
            t.published[2],
            t.acked[2],
            t.resent[0],
            t.resent[1],
        );
        println!(
            "delivered: QoS 0 {}, QoS 1 {}, QoS 2 {} PUBLISHes ({} with DUP); owed at QoS 1 \
             {owed_q1} ({duplicates} duplicates), at QoS 2 {owed_q2} (exactly once; resent \
             QoS 2 PUBLISHes deduplicated {}, PUBRELs for released ids {})",
            t.delivered[0],
            t.delivered[1],
            t.delivered[2],
            t.dup_flag,
            t.qos2_resent,
            t.unknown_pubrel,
        );
        println!(
            "chaos: {} cuts ({} close, {} reset, {} torn, {} take-over, {} hang), {} \
             reconnects, {} unexpected disconnections; {} wills",
            self.cuts_sent,
            t.cuts[0],
            t.cuts[1],
            t.cuts[2],
            t.cuts[3],
            t.cuts[4],
            t.reconnects,
            t.unexpected,
            self.wills.len(),
        );
        println!(
            "time: setup {setup:.1} s, soak {} s, drain {drain:.1} s, total {total:.1} s",
            self.soak.as_secs(),
        );
    }

    /// Asserts the guarantees (module docs).
    fn check(&self) {
        let seed = self.seed;
        let (failures, failure_count) = &self.failures;
        assert!(
            failures.is_empty(),
            "{failure_count} failures seen by the clients (seed {seed:#x}), first ones:\n{}",
            failures.join("\n")
        );
        let (violations, ..) = verify(&self.subscribers, &self.logs());
        assert!(
            violations.is_empty(),
            "{} delivery guarantees broken (seed {seed:#x}), first ones:\n{}",
            violations.len(),
            violations[..violations.len().min(SHOWN)].join("\n")
        );
        let [late_publishers, late_subscribers, late_watcher] = self.late;
        assert_eq!(
            late_publishers, 0,
            "publishers that did not complete their flows"
        );
        let open_flows: usize = self.publishers.iter().map(|p| p.inflight.len()).sum();
        assert_eq!(open_flows, 0, "publisher flows left open");
        assert!(
            self.caught_up,
            "subscribers did not catch up: no progress for {CATCH_UP_TIMEOUT:?}, or not \
             done within {CATCH_UP_LIMIT:?}"
        );
        let open_qos2: usize = self.subscribers.iter().map(|s| s.unreleased.len()).sum();
        assert_eq!(open_qos2, 0, "QoS 2 flows left open at subscribers");
        assert_eq!(late_subscribers, 0, "subscriber tasks that did not end");
        assert_eq!(late_watcher, 0, "the will watcher did not end");
        // [MQTT-3.1.2-10]: the will of a connection that ended with DISCONNECT is deleted.
        let wrong_wills: Vec<String> = self
            .conn_stats()
            .filter_map(|(name, c)| c.disconnected.map(|n| format!("{name}:{n}")))
            .filter(|key| self.wills.contains(key))
            .collect();
        assert!(
            wrong_wills.is_empty(),
            "wills published for connections that ended with DISCONNECT: {wrong_wills:?}"
        );
        assert!(
            self.shut_down,
            "the broker did not shut down within {IO_TIMEOUT:?}"
        );
        let t = self.totals();
        assert!(
            t.acked[1] > 0 && t.acked[2] > 0 && t.reconnects > 0,
            "the soak did nothing: {t:?}"
        );
    }
}
