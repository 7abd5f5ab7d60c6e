//! The crash test of issue #6: `midge serve` with persistence on is killed with SIGKILL
//! at random moments while publishers send numbered QoS 1 and QoS 2 messages to three
//! persistent subscribers (two connected, whose flows are cut by the kills, and one
//! away until the end, whose messages wait in the store), and restarted each time on the same port and store. At the
//! end every message that was acknowledged to its publisher (PUBACK for QoS 1, PUBREC
//! for QoS 2) must have reached each subscriber: QoS 1 at least once, QoS 2 exactly
//! once (no number twice). Unacknowledged messages may or may not arrive; the
//! publishers do not retry them.
//!
//! The kill schedule comes from a seed printed at the start; `MIDGE_CRASH_SEED=N`
//! replays it (the timing of the load around the kills varies from run to run).
//!
//! Four publishers are raw MQTT clients (midge-codec over TCP, Clean Start 1) so that
//! "acknowledged" is exactly the PUBACK or PUBREC seen. A fifth publishes QoS 2 with
//! midge-client over a persistent session, which resends what was in flight after each
//! restart: the broker's incoming QoS 2 packet ids must survive the kills for those
//! messages to arrive exactly once. The subscribers are midge-client
//! clients with a persistent session (5.0 with a Session Expiry Interval, 3.1.1 with
//! Clean Session 0) and `resubscribe` off, so that a lost session shows as lost
//! messages. midge-client keeps its QoS 2 receive state (packet ids awaiting PUBREL)
//! across reconnects when the session is resumed, as [MQTT-4.3.3-10] asks of a receiver,
//! so a QoS 2 PUBLISH resent with DUP after a restart is not delivered twice by the
//! client.

mod support;

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use midge_client::{ConnectOptions, Event, ReconnectPolicy};
use midge_codec::{Ack, Connect, Decoder, Packet, PacketId, ProtocolVersion, Publish, QoS};
use support::{MIDGE, TempDir, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Kills and restarts.
const ROUNDS: usize = 12;
/// Time between a start (the broker listening) and its kill, in ms: 100 to 600.
const PAUSE_MS: (u64, u64) = (100, 600);
/// QoS 1/2 messages a publisher has in flight.
const WINDOW: usize = 8;
/// Each publisher's topic, QoS and protocol version. The last one is the persistent
/// session publisher ([`session_publisher`]).
const TOPICS: [(&str, QoS, ProtocolVersion); 5] = [
    ("crash/q1/a", QoS::AtLeastOnce, ProtocolVersion::V5),
    ("crash/q1/b", QoS::AtLeastOnce, ProtocolVersion::V311),
    ("crash/q2/a", QoS::ExactlyOnce, ProtocolVersion::V5),
    ("crash/q2/b", QoS::ExactlyOnce, ProtocolVersion::V311),
    ("crash/q2/session", QoS::ExactlyOnce, ProtocolVersion::V5),
];
/// The index in [`TOPICS`] of the persistent session publisher.
const SESSION_PUBLISHER: usize = 4;
/// The persistent subscribers: client id, version, and whether it stays away during the
/// kills (its messages are queued in the store) and connects only at the end.
const SUBSCRIBERS: [(&str, ProtocolVersion, bool); 3] = [
    ("crash-sub-v5", ProtocolVersion::V5, false),
    ("crash-sub-v311", ProtocolVersion::V311, false),
    ("crash-sub-offline", ProtocolVersion::V5, true),
];

/// The test's clock: its one reading place (the workspace bans `Instant::now` elsewhere).
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

/// splitmix64: small, seeded, replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// `MIDGE_CRASH_SEED`, or a fresh one from the standard library's random hash keys.
fn seed() -> u64 {
    if let Ok(seed) = std::env::var("MIDGE_CRASH_SEED") {
        return seed.parse().expect("MIDGE_CRASH_SEED is a u64");
    }
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x0063_7261_7368);
    hasher.finish()
}

/// `midge serve -c conf`, its stderr in `log`.
fn spawn_broker(conf: &Path, log: &Path) -> Child {
    Command::new(MIDGE)
        .arg("serve")
        .arg("-c")
        .arg(conf)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .expect("midge starts")
}

/// Waits (up to 20 s) until the broker listens on `port`; fails if it exits.
async fn wait_listening(child: &mut Child, port: u16, log: &Path) {
    for _ in 0..1000 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!(
                "midge exited with {status}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "midge does not listen on {port}:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// The last `lines` lines of the file at `path`.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What one publisher did.
#[derive(Debug, Default)]
struct Published {
    /// Numbers sent (0..sent).
    sent: u64,
    /// Numbers acknowledged (PUBACK or PUBREC with a success code).
    acked: Vec<u64>,
    /// Connections made.
    connections: u32,
    /// Reconnects that found no session (the session publisher).
    sessions_lost: u32,
}

/// Writes `packets` in one write; false if the connection is gone.
async fn write(stream: &mut TcpStream, version: ProtocolVersion, packets: &[Packet]) -> bool {
    let mut buf = BytesMut::new();
    for packet in packets {
        packet.encode(version, &mut buf).expect("packet encodes");
    }
    stream.write_all(&buf).await.is_ok()
}

/// The next packet within `wait`; `None` on a timeout, a closed connection or bad bytes.
async fn read(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    rbuf: &mut BytesMut,
    wait: Duration,
) -> Option<Packet> {
    loop {
        match decoder.decode(rbuf) {
            Ok(Some(packet)) => return Some(packet),
            Ok(None) => {}
            Err(_) => return None,
        }
        match tokio::time::timeout(wait, stream.read_buf(rbuf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// Publishes numbered messages on topic `index` until `stop`, reconnecting with a clean
/// session whenever the connection is lost; messages in flight on a lost connection are
/// not sent again.
async fn publisher(port: u16, index: usize, stop: Arc<AtomicBool>) -> Published {
    let (name, qos, version) = TOPICS[index];
    let mut out = Published::default();
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut decoder = Decoder::client(version);
        let mut rbuf = BytesMut::with_capacity(4096);
        let mut connect = Connect::new(version, format!("crash-pub-{index}"));
        connect.keep_alive = 0;
        if !write(&mut stream, version, &[Packet::Connect(Box::new(connect))]).await {
            continue;
        }
        match read(&mut stream, &mut decoder, &mut rbuf, Duration::from_secs(5)).await {
            Some(Packet::ConnAck(ack)) if !ack.reason_code.is_error() => {}
            _ => continue,
        }
        out.connections += 1;
        // Packet id → (number, PUBREC seen).
        let mut inflight: HashMap<u16, (u64, bool)> = HashMap::new();
        let mut last_id: u16 = 0;
        loop {
            let stopping = stop.load(Ordering::SeqCst);
            if stopping && inflight.is_empty() {
                break;
            }
            let mut batch = Vec::new();
            while !stopping && inflight.len() < WINDOW {
                last_id = last_id.wrapping_add(1).max(1);
                if inflight.contains_key(&last_id) {
                    continue;
                }
                let mut p = Publish::new(
                    midge_codec::TopicName::new(name).expect("topic"),
                    Bytes::from(out.sent.to_string()),
                );
                p.qos = qos;
                p.packet_id = PacketId::new(last_id);
                inflight.insert(last_id, (out.sent, false));
                out.sent += 1;
                batch.push(Packet::Publish(p));
            }
            if !batch.is_empty() && !write(&mut stream, version, &batch).await {
                break;
            }
            let wait = Duration::from_secs(if stopping { 2 } else { 5 });
            match read(&mut stream, &mut decoder, &mut rbuf, wait).await {
                Some(Packet::PubAck(ack)) => {
                    let entry = inflight.remove(&ack.packet_id.get());
                    if let (Some((n, _)), false) = (entry, ack.reason_code.is_error()) {
                        out.acked.push(n);
                    }
                }
                Some(Packet::PubRec(rec)) => {
                    let id = rec.packet_id;
                    match inflight.get_mut(&id.get()) {
                        Some((n, released)) if !*released => {
                            if rec.reason_code.is_error() {
                                inflight.remove(&id.get());
                            } else {
                                out.acked.push(*n);
                                *released = true;
                                if !write(&mut stream, version, &[Packet::PubRel(Ack::new(id))])
                                    .await
                                {
                                    break;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                Some(Packet::PubComp(comp)) => {
                    inflight.remove(&comp.packet_id.get());
                }
                // A DISCONNECT, a timeout, a closed connection.
                _ => break,
            }
        }
    }
    out
}

/// Publishes numbered QoS 2 messages on the last topic with midge-client over a
/// persistent session (5.0, Session Expiry 3600 s) until `stop`, [`WINDOW`] at a time.
/// Across the broker's restarts the client resumes the session and resends what is in
/// flight (the PUBLISH with DUP and its packet id, or the PUBREL); the broker must
/// recognise a resent PUBLISH by the incoming packet id it kept ([MQTT-4.3.3-10]), so
/// that every message arrives exactly once. A message counts as acknowledged once its
/// request resolves with the PUBREC; when the requests still open at the stop have
/// not resolved within 20 s, they are left.
async fn session_publisher(port: u16, stop: Arc<AtomicBool>) -> Published {
    let (name, qos, version) = TOPICS[SESSION_PUBLISHER];
    let options = ConnectOptions::new()
        .server(format!("127.0.0.1:{port}"))
        .version(version)
        .client_id("crash-pub-session")
        .clean_start(false)
        .session_expiry_interval(3600)
        .keep_alive(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ));
    let (client, mut events) = midge_client::Client::connect(options)
        .await
        .expect("the session publisher connects");
    let connections = Arc::new(Mutex::new((0u32, 0u32)));
    let record = connections.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let Event::Connected(ack) = event {
                let mut c = record.lock().unwrap();
                c.0 += 1;
                if c.0 > 1 && !ack.session_present {
                    c.1 += 1;
                }
            }
        }
    });
    let mut out = Published::default();
    let mut requests = tokio::task::JoinSet::new();
    let settle = |out: &mut Published, done: Result<(u64, bool), tokio::task::JoinError>| {
        if let Ok((n, true)) = done {
            out.acked.push(n);
        }
    };
    while !stop.load(Ordering::SeqCst) {
        while requests.len() < WINDOW {
            let (client, n) = (client.clone(), out.sent);
            out.sent += 1;
            requests.spawn(async move {
                let done = client.publish(name, qos, n.to_string()).await;
                (n, done.is_ok_and(|p| !p.reason_code().is_error()))
            });
        }
        if let Some(done) = requests.join_next().await {
            settle(&mut out, done);
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(done) = requests.join_next().await {
            settle(&mut out, done);
        }
    })
    .await;
    let _ = client.disconnect().await;
    let (connects, lost) = *connections.lock().unwrap();
    out.connections = connects;
    out.sessions_lost = lost;
    out
}

/// What one subscriber received.
#[derive(Debug, Default)]
struct Received {
    /// (topic index, number) → times received.
    counts: HashMap<(usize, u64), u32>,
    /// Messages on an unknown topic, with a payload that is not a number, or at a QoS
    /// other than their publisher's.
    strange: Vec<String>,
    /// CONNACKs, and those with Session Present 0 after the first (for a subscriber
    /// that resumes at the end: including the first).
    connects: u32,
    sessions_lost: u32,
}

/// A persistent subscriber to `crash/#` at QoS 2 that records what it receives; with
/// `resume`, it resumes its session (which must be there) and does not subscribe.
async fn subscriber(
    port: u16,
    client_id: &str,
    version: ProtocolVersion,
    resume: bool,
) -> (midge_client::Client, Arc<Mutex<Received>>) {
    let mut options = ConnectOptions::new()
        .server(format!("127.0.0.1:{port}"))
        .version(version)
        .client_id(client_id)
        .clean_start(false)
        .keep_alive(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
        .resubscribe(false)
        .event_capacity(4096);
    if version.is_v5() {
        options = options.session_expiry_interval(3600);
    }
    let (client, mut events) = midge_client::Client::connect(options)
        .await
        .expect("the subscriber connects");
    let received = Arc::new(Mutex::new(Received::default()));
    let record = received.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let mut r = record.lock().unwrap();
            match event {
                Event::Connected(ack) => {
                    r.connects += 1;
                    if (resume || r.connects > 1) && !ack.session_present {
                        r.sessions_lost += 1;
                    }
                }
                Event::Message(p) => {
                    let index = TOPICS.iter().position(|t| t.0 == p.topic.as_str());
                    let number = std::str::from_utf8(&p.payload)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok());
                    match (index, number) {
                        (Some(i), Some(n)) if TOPICS[i].1 == p.qos => {
                            *r.counts.entry((i, n)).or_default() += 1;
                        }
                        _ => r.strange.push(format!("{p:?}")),
                    }
                }
                _ => {}
            }
        }
    });
    if !resume {
        let granted = client
            .subscribe("crash/#", QoS::ExactlyOnce)
            .await
            .expect("SUBACK");
        assert_eq!(granted, QoS::ExactlyOnce);
    }
    (client, received)
}

/// Whether every acknowledged message has reached every subscriber.
fn complete(acked: &[Vec<u64>], subscribers: &[Arc<Mutex<Received>>]) -> bool {
    subscribers.iter().all(|s| {
        let r = s.lock().unwrap();
        acked
            .iter()
            .enumerate()
            .all(|(i, numbers)| numbers.iter().all(|n| r.counts.contains_key(&(i, *n))))
    })
}

#[test]
fn acknowledged_messages_survive_sigkill() {
    let started = now();
    let seed = seed();
    println!("crash test seed: {seed} (replay the kill schedule with MIDGE_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let dir = TempDir::new();
    let port = free_port();
    let store = dir.path.join("store");
    let conf = persistent_config(&dir, &store, port, "max_queued_messages = 0\n");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let log = |round: usize| dir.path.join(format!("midge-{round}.log"));
    let mut broker = spawn_broker(&conf, &log(0));

    let (published, subscribers) = runtime.block_on(async {
        wait_listening(&mut broker, port, &log(0)).await;
        let mut clients = Vec::new();
        let mut subscribers = Vec::new();
        for (id, version, away) in SUBSCRIBERS {
            let (client, received) = subscriber(port, id, version, false).await;
            if away {
                client.disconnect().await.expect("DISCONNECT");
            }
            clients.push(client);
            subscribers.push(received);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let publishers: Vec<_> = (0..TOPICS.len())
            .map(|i| match i {
                SESSION_PUBLISHER => tokio::spawn(session_publisher(port, stop.clone())),
                _ => tokio::spawn(publisher(port, i, stop.clone())),
            })
            .collect();
        for round in 1..=ROUNDS {
            let pause = rng.between(PAUSE_MS.0, PAUSE_MS.1);
            tokio::time::sleep(Duration::from_millis(pause)).await;
            broker.kill().expect("SIGKILL");
            broker.wait().expect("the broker ends");
            println!("round {round:2}: SIGKILL {pause} ms after the start");
            broker = spawn_broker(&conf, &log(round));
            wait_listening(&mut broker, port, &log(round)).await;
        }
        // Some load on the last broker, then the publishers finish what is in flight.
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::SeqCst);
        let mut published = Vec::new();
        for p in publishers {
            published.push(p.await.expect("publisher"));
        }
        let acked: Vec<Vec<u64>> = published.iter().map(|p| p.acked.clone()).collect();
        // The subscribers that stayed away come back for their queued messages.
        for (i, (id, version, away)) in SUBSCRIBERS.into_iter().enumerate() {
            if away {
                let (client, received) = subscriber(port, id, version, true).await;
                clients[i] = client;
                subscribers[i] = received;
            }
        }
        // Wait for the subscribers to catch up, then a little more for duplicates.
        let deadline = now() + Duration::from_secs(30);
        while !complete(&acked, &subscribers) && now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for client in clients {
            let _ = client.disconnect().await;
        }
        (published, subscribers)
    });
    let _ = broker.kill();
    let _ = broker.wait();

    let mut failures = Vec::new();
    for (i, (name, qos, _)) in TOPICS.iter().enumerate() {
        let p = &published[i];
        let acked: HashSet<u64> = p.acked.iter().copied().collect();
        println!(
            "{name} ({qos:?}): {} sent, {} acknowledged, {} connections",
            p.sent,
            acked.len(),
            p.connections
        );
        assert!(!acked.is_empty(), "{name}: nothing was acknowledged");
        if p.sessions_lost > 0 {
            failures.push(format!(
                "{name}: the publisher's session was lost {} times",
                p.sessions_lost
            ));
        }
        for ((id, _, _), s) in SUBSCRIBERS.iter().zip(&subscribers) {
            let r = s.lock().unwrap();
            let mut missing: Vec<u64> = acked
                .iter()
                .filter(|n| !r.counts.contains_key(&(i, **n)))
                .copied()
                .collect();
            missing.sort_unstable();
            let mut twice: Vec<u64> = r
                .counts
                .iter()
                .filter(|((t, _), c)| *t == i && **c > 1)
                .map(|((_, n), _)| *n)
                .collect();
            twice.sort_unstable();
            let received = r.counts.keys().filter(|(t, _)| *t == i).count();
            let unsent = r
                .counts
                .keys()
                .filter(|(t, n)| *t == i && *n >= p.sent)
                .count();
            println!(
                "  {id}: {received} distinct received, {} more than once, {} acknowledged missing",
                twice.len(),
                missing.len()
            );
            if !missing.is_empty() {
                failures.push(format!(
                    "{id} {name}: {} acknowledged and never received: {:?}",
                    missing.len(),
                    &missing[..missing.len().min(20)]
                ));
            }
            if *qos == QoS::ExactlyOnce && !twice.is_empty() {
                failures.push(format!(
                    "{id} {name}: {} QoS 2 messages received more than once: {:?}",
                    twice.len(),
                    &twice[..twice.len().min(20)]
                ));
            }
            if unsent > 0 {
                failures.push(format!("{id} {name}: {unsent} numbers never sent"));
            }
        }
    }
    for ((id, _, _), s) in SUBSCRIBERS.iter().zip(&subscribers) {
        let r = s.lock().unwrap();
        println!(
            "{id}: {} connections, {} without its session",
            r.connects, r.sessions_lost
        );
        if r.sessions_lost > 0 {
            failures.push(format!(
                "{id}: the session was lost {} times",
                r.sessions_lost
            ));
        }
        if !r.strange.is_empty() {
            failures.push(format!("{id}: unexpected messages: {:?}", r.strange));
        }
    }
    println!("{ROUNDS} kills in {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        failures.is_empty(),
        "seed {seed}:\n{}\nthe last broker's log, its end:\n{}",
        failures.join("\n"),
        tail(&log(ROUNDS), 40)
    );
}

/// A `midge.toml` in `dir`: persistence on in `store`, anonymous clients, one listener
/// on `port`, and `extra` keys.
fn persistent_config(dir: &TempDir, store: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    dir.file(
        "midge.toml",
        &format!(
            "allow_anonymous = true\n\
             persistence = true\n\
             persistence_location = {:?}\n\
             {extra}\
             [[listener]]\n\
             bind = \"127.0.0.1:{port}\"\n",
            store.display().to_string()
        ),
    )
}

/// `midge serve` on a store cut short (as by a disk that lost its tail) refuses to start:
/// exit status 1 and an error that names the file, never a crash.
#[test]
fn serve_refuses_a_truncated_store_naming_the_file() {
    let dir = TempDir::new();
    let port = free_port();
    let store = dir.path.join("store");
    let conf = persistent_config(&dir, &store, port, "");
    let log = dir.path.join("midge.log");
    let mut broker = spawn_broker(&conf, &log);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(wait_listening(&mut broker, port, &log));
    broker.kill().expect("SIGKILL");
    broker.wait().expect("the broker ends");
    let file = store.join("midge.redb");
    let bytes = std::fs::read(&file).expect("the store file exists");
    std::fs::write(&file, &bytes[..3000]).unwrap();
    let out = support::output({
        let mut command = Command::new(MIDGE);
        command
            .arg("serve")
            .arg("-c")
            .arg(&conf)
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE");
        command
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    // redb's assertion on the damaged file is caught, and says nothing of itself: the
    // user sees the error naming the file, not a panic.
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.contains("damaged"),
        "the error names the file: {stderr}"
    );
}
