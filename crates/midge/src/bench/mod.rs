//! `midge bench`: a load generator for any MQTT broker, in the spirit of emqtt-bench.
//!
//! A run turns its scenario into a [`scenario::Plan`], opens every connection
//! (`conn.rs`, at `--conn-rate`), subscribes, then lets the publishers (`publisher.rs`)
//! and subscribers (`subscriber.rs`) run for `--duration`. They are lean tasks on
//! `midge-codec` directly, not on `midge-client`: the bench must be much faster than the
//! broker it measures. Each payload carries the publisher's id, a sequence number and a
//! timestamp (`stats.rs`), from which the subscribers measure end-to-end latency and
//! find lost and duplicated messages. `report.rs` prints the summary or `--json`.

mod conn;
mod publisher;
mod report;
mod scenario;
mod stats;
mod subscriber;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use midge_codec::{ProtocolVersion, QoS};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use conn::{Link, Target};
use report::{ConnReport, MsgReport, Report};
use scenario::{Plan, Scenario, Shape};
use stats::{Counters, HEADER_LEN, Latency, SeqTracker, histogram, now, record};

/// Options of `midge bench`.
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub(crate) struct BenchArgs {
    /// The load shape.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Broker host.
    #[arg(short = 'h', long, default_value = "127.0.0.1")]
    host: String,
    /// Broker port.
    #[arg(short = 'p', long, default_value_t = 1883)]
    port: u16,
    /// Connections (conn), publishers (pub, fan-in), subscribers (sub, fan-out, shared)
    /// or pairs (pairs).
    #[arg(short = 'c', long, default_value_t = 1)]
    clients: usize,
    /// shared: publishers.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// shared: shared-subscription groups ($share/gN/...) the subscribers are dealt into.
    #[arg(long, default_value_t = 1)]
    groups: usize,
    /// QoS of publications and subscriptions.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    qos: u8,
    /// Payload size in bytes (at least 24: the bench's header).
    #[arg(short = 's', long = "size", default_value_t = 64)]
    payload_size: usize,
    /// Messages per second per publisher; 0: unthrottled, bounded by --inflight.
    #[arg(short = 'r', long, default_value_t = 0.0)]
    rate: f64,
    /// QoS 1/2: most messages awaiting acknowledgement per publisher (also capped by
    /// the broker's Receive Maximum). 20 is Mosquitto's and Midge's default Receive
    /// Maximum, which some brokers enforce even on 3.1.1 clients, who are never told it.
    #[arg(long, default_value_t = 20)]
    inflight: usize,
    /// Seconds to publish (or to hold connections, for conn).
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Topic template (`%i`: the client's index). Defaults per scenario: bench/%i,
    /// bench/fan-in/%i, bench/fan-out, bench/pair/%i, bench/shared/%i; sub: bench/#.
    #[arg(short = 't', long)]
    topic: Option<String>,
    /// Protocol version: 31, 311 or 5 (also mqttv31, mqttv311, mqttv5).
    #[arg(short = 'V', long = "protocol-version", default_value = "311", value_parser = parse_version)]
    version: ProtocolVersion,
    /// Source addresses to connect from, in turn (e.g. 127.0.0.1,127.0.0.2), to pass
    /// the ephemeral-port limit of one address.
    #[arg(long = "bind", value_delimiter = ',')]
    sources: Vec<IpAddr>,
    /// New connections per second; 0: as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    conn_rate: f64,
    /// Most connection attempts under way at once.
    #[arg(long, default_value_t = 256)]
    conn_parallel: usize,
    /// Subscribers keep their sessions (3.1/3.1.1: clean session 0; 5.0: a Session
    /// Expiry Interval of one hour): a broker with persistence on then writes their
    /// QoS 1/2 messages to disk before acknowledging them. The sessions stay on the
    /// broker after the run.
    #[arg(long)]
    persistent: bool,
    /// Runtime worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "31" | "3.1" | "mqttv31" => Ok(ProtocolVersion::V31),
        "311" | "3.1.1" | "4" | "mqttv311" => Ok(ProtocolVersion::V311),
        "5" | "5.0" | "mqttv5" => Ok(ProtocolVersion::V5),
        _ => Err(format!("unknown protocol version {s:?} (31, 311 or 5)")),
    }
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.payload_size < HEADER_LEN {
        bail!("--size must be at least {HEADER_LEN} (the bench's header)");
    }
    if !(args.duration > 0.0 && args.duration.is_finite()) {
        bail!("--duration must be a positive number of seconds");
    }
    // Each connection is a file: thousands of them need more than the usual soft limit.
    if let Err(error) = crate::limits::raise_open_files() {
        eprintln!("midge bench: cannot raise the open file limit: {error}");
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // On a worker thread, not the calling one: the tasks it spawns (one per connection)
    // and their results then need no hand-over from one thread to another (with
    // `--threads 1`, or on one core, each would be a wake-up of the other thread).
    let json = args.json;
    let report = runtime
        .block_on(runtime.spawn(async move { bench(&args).await }))
        .context("the bench task failed")??;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.summary());
    }
    Ok(())
}

/// Everything the tasks of one run share.
#[derive(Debug)]
struct Run {
    target: Target,
    qos: QoS,
    origin: Instant,
    counters: Arc<Counters>,
}

async fn bench(args: &BenchArgs) -> anyhow::Result<Report> {
    let broker = resolve(&args.host, args.port, &args.sources).await?;
    let qos = QoS::from_u8(args.qos)?;
    let plan = Plan::new(&Shape {
        scenario: args.scenario,
        clients: args.clients,
        publishers: args.publishers,
        groups: args.groups,
        topic: args.topic.clone(),
    });
    let run = Arc::new(Run {
        target: Target {
            broker,
            sources: args.sources.clone(),
            version: args.version,
            client_prefix: format!("midge-bench-{}-", std::process::id()),
            timeout: Duration::from_secs(30),
            persistent_subscribers: args.persistent,
        },
        qos,
        origin: now(),
        counters: Arc::new(Counters::default()),
    });
    let progress = (!args.quiet).then(|| tokio::spawn(progress(run.counters.clone())));

    // Connect everything first: subscribers (subscribed), publishers, idle connections.
    let opening = now();
    let mut roles = Vec::new();
    roles.extend(
        plan.subscribers
            .iter()
            .enumerate()
            .map(|(i, s)| (Role::Sub(s.filter.clone()), i)),
    );
    roles.extend((0..plan.publishers.len()).map(|i| (Role::Pub, i)));
    roles.extend((0..plan.idle).map(|i| (Role::Idle, i)));
    let attempted = roles.len() as u64;
    let (mut links, connect_latency) =
        open_all(&run, roles, args.conn_rate, args.conn_parallel).await;
    let opened_s = now().duration_since(opening).as_secs_f64();
    let established = Counters::get(&run.counters.connected);
    if established < attempted && !matches!(args.scenario, Scenario::Conn) {
        bail!(
            "{} of {attempted} connections failed",
            attempted - established
        );
    }

    // Run.
    let start = now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut subs = spawn_subscribers(&run, &plan, &mut links, &stop_rx);
    let sent_by = run_publishers(args, &run, &plan, &mut links, deadline).await?;
    tokio::time::sleep_until(deadline.into()).await;
    let publish_s = now().duration_since(start).as_secs_f64();
    let expected = expected_total(&plan, &sent_by);
    drain(&run.counters, expected).await;
    let _ = stop_tx.send(true);
    drop(links); // idle connections close here
    let (trackers, latency) = collect(&plan, &mut subs).await?;
    if let Some(task) = progress {
        task.abort();
    }

    let sent: u64 = sent_by.iter().sum();
    let received = Counters::get(&run.counters.received);
    let (lost, duplicated) = delivery(&plan, &trackers, &sent_by);
    // Loss is known only when our publishers send to our subscribers.
    let checked = !plan.publishers.is_empty() && !plan.receivers.is_empty();
    let first_to_last = (Counters::get(&run.counters.last_received) as f64 / 1e9
        - start.duration_since(run.origin).as_secs_f64())
    .max(publish_s.min(1e-3));
    Ok(Report {
        scenario: args.scenario,
        broker: broker.to_string(),
        protocol: args.version.to_string(),
        qos: args.qos,
        payload_size: args.payload_size,
        publishers: plan.publishers.len(),
        subscribers: plan.subscribers.len(),
        duration_s: publish_s,
        connections: ConnReport {
            attempted,
            established,
            failed: Counters::get(&run.counters.conn_failed),
            per_second: established as f64 / opened_s.max(1e-9),
            latency: Latency::of(&connect_latency),
        },
        messages: MsgReport {
            qos: args.qos,
            sent,
            acked: Counters::get(&run.counters.acked),
            received,
            expected: checked.then_some(expected),
            lost: checked.then_some(lost),
            duplicated,
            sent_per_second: sent as f64 / publish_s,
            received_per_second: if received == 0 {
                0.0
            } else {
                received as f64 / first_to_last
            },
        },
        latency: Latency::of(&latency),
    })
}

/// Starts a task per subscriber; each reports its receiver's index and what it saw.
fn spawn_subscribers(
    run: &Arc<Run>,
    plan: &Plan,
    links: &mut Links,
    stop: &watch::Receiver<bool>,
) -> JoinSet<(usize, anyhow::Result<subscriber::SubResult>)> {
    let mut subs = JoinSet::new();
    for (i, spec) in plan.subscribers.iter().enumerate() {
        let link = links.remove(&(RoleKey::Sub, i)).expect("connected");
        let (run, stop, receiver) = (run.clone(), stop.clone(), spec.receiver);
        subs.spawn(async move {
            let result = subscriber::run(link, run.origin, stop, run.counters.clone()).await;
            (receiver, result)
        });
    }
    subs
}

/// Runs every publisher to the deadline; returns the messages each sent, by id.
async fn run_publishers(
    args: &BenchArgs,
    run: &Arc<Run>,
    plan: &Plan,
    links: &mut Links,
    deadline: Instant,
) -> anyhow::Result<Vec<u64>> {
    let mut pubs = JoinSet::new();
    for spec in &plan.publishers {
        let link = links
            .remove(&(RoleKey::Pub, spec.id as usize))
            .expect("connected");
        let template =
            publisher::Template::new(args.version, &spec.topic, run.qos, args.payload_size)?;
        let config = publisher::PubConfig {
            qos: run.qos,
            payload_size: args.payload_size,
            rate: (args.rate > 0.0).then_some(args.rate),
            inflight: args.inflight,
            origin: run.origin,
            deadline,
            grace: Duration::from_secs(5),
        };
        let (id, counters) = (spec.id, run.counters.clone());
        pubs.spawn(async move {
            let result = publisher::run(link, id, template, config, counters).await;
            (id, result)
        });
    }
    let mut sent_by = vec![0u64; plan.publishers.len()];
    while let Some(joined) = pubs.join_next().await {
        let (id, result) = joined?;
        sent_by[id as usize] = result.with_context(|| format!("publisher {id}"))?;
    }
    Ok(sent_by)
}

async fn resolve(host: &str, port: u16, sources: &[IpAddr]) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .collect();
    let want_v6 = sources.first().map(IpAddr::is_ipv6);
    addrs
        .iter()
        .find(|a| want_v6.is_none_or(|v6| a.is_ipv6() == v6))
        .copied()
        .with_context(|| format!("{host} has no address of the source addresses' family"))
}

#[derive(Debug, Clone)]
enum Role {
    Sub(String),
    Pub,
    Idle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RoleKey {
    Sub,
    Pub,
    Idle,
}

type Links = std::collections::HashMap<(RoleKey, usize), Link>;

/// Opens (and subscribes) every connection, `rate` per second, `parallel` at a time.
async fn open_all(
    run: &Arc<Run>,
    roles: Vec<(Role, usize)>,
    rate: f64,
    parallel: usize,
) -> (Links, Histogram<u64>) {
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let start = now();
    let mut tasks = JoinSet::new();
    for (n, (role, index)) in roles.into_iter().enumerate() {
        if rate > 0.0 {
            let slot = start + Duration::from_secs_f64(n as f64 / rate);
            tokio::time::sleep_until(slot.into()).await;
        }
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let run = run.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let began = now();
            let (key, name) = match &role {
                Role::Sub(_) => (RoleKey::Sub, "sub"),
                Role::Pub => (RoleKey::Pub, "pub"),
                Role::Idle => (RoleKey::Idle, "conn"),
            };
            let mut link = run.target.connect(index, name).await;
            if let (Ok(l), Role::Sub(filter)) = (&mut link, &role) {
                if let Err(e) = l.subscribe(filter, run.qos).await {
                    link = Err(e);
                }
            }
            ((key, index), link, now().duration_since(began))
        });
    }
    let mut links = Links::new();
    let mut latency = histogram();
    while let Some(joined) = tasks.join_next().await {
        let Ok((key, link, took)) = joined else {
            continue;
        };
        match link {
            Ok(link) => {
                Counters::add(&run.counters.connected, 1);
                record(&mut latency, took);
                links.insert(key, link);
            }
            Err(e) => {
                if Counters::get(&run.counters.conn_failed) == 0 {
                    eprintln!("midge bench: connection failed: {e:#}");
                }
                Counters::add(&run.counters.conn_failed, 1);
            }
        }
    }
    (links, latency)
}

/// Messages the receivers should get: each of their publishers' messages once.
fn expected_total(plan: &Plan, sent_by: &[u64]) -> u64 {
    let all: u64 = sent_by.iter().sum();
    plan.receivers
        .iter()
        .map(|r| match &r.publishers {
            None => all,
            Some(ids) => ids.iter().map(|&id| sent_by[id as usize]).sum(),
        })
        .sum()
}

/// Waits for messages still on their way: until all expected arrived, or none came in
/// the last half second (10 s at most).
async fn drain(counters: &Counters, expected: u64) {
    let mut last = Counters::get(&counters.received);
    let mut quiet = 0;
    for _ in 0..200 {
        if last >= expected || quiet >= 10 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = Counters::get(&counters.received);
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
}

/// Joins the subscribers: one merged tracker per receiver, one latency histogram.
async fn collect(
    plan: &Plan,
    subs: &mut JoinSet<(usize, anyhow::Result<subscriber::SubResult>)>,
) -> anyhow::Result<(Vec<SeqTracker>, Histogram<u64>)> {
    let mut trackers = vec![SeqTracker::default(); plan.receivers.len()];
    let mut latency = histogram();
    while let Some(joined) = subs.join_next().await {
        let (receiver, result) = joined?;
        let result = result.context("subscriber")?;
        trackers[receiver].merge(&result.tracker);
        latency.add(&result.latency)?;
    }
    Ok((trackers, latency))
}

/// Lost and duplicated messages over all receivers.
fn delivery(plan: &Plan, trackers: &[SeqTracker], sent_by: &[u64]) -> (u64, u64) {
    let (mut lost, mut duplicated) = (0, 0);
    for (receiver, tracker) in plan.receivers.iter().zip(trackers) {
        let ids: Vec<u32> = match &receiver.publishers {
            None => (0..sent_by.len() as u32).collect(),
            Some(ids) => ids.clone(),
        };
        for id in ids {
            let sent = sent_by[id as usize];
            lost += sent - tracker.unique_from(id, sent).min(sent);
        }
        duplicated += tracker.duplicated;
    }
    (lost, duplicated)
}

/// Prints a progress line to stderr each second.
async fn progress(counters: Arc<Counters>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut prev = (0, 0, 0);
    for elapsed in 1.. {
        tick.tick().await;
        let now = (
            Counters::get(&counters.sent),
            Counters::get(&counters.acked),
            Counters::get(&counters.received),
        );
        eprintln!(
            "{}",
            report::progress_line(
                elapsed,
                Counters::get(&counters.connected),
                now.0 - prev.0,
                now.1 - prev.1,
                now.2 - prev.2,
            )
        );
        prev = now;
    }
}
