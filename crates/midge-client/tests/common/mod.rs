//! Helpers for the client's integration tests: an in-process broker on `127.0.0.1:0`,
//! client options with a fast reconnect policy, bounded waits, and a TCP [`Proxy`] that
//! can cut connections or swallow one direction of traffic, to make faults happen on
//! cue. Every wait is bounded by [`TIMEOUT`].
// Each test binary uses its own subset; `pub` marks what the tests may use.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use midge_broker::{Broker, BrokerHandle, Config};
use midge_client::{
    Client, ClientError, ConnectOptions, Event, Events, Published, ReconnectPolicy,
};
use midge_codec::{ConnAck, ProtocolVersion, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest wait for anything that must happen.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How long "nothing arrives" is watched for, where no sentinel can be used.
pub const QUIET: Duration = Duration::from_millis(300);

/// Awaits `future`, failing the test after [`TIMEOUT`].
pub async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, future)
        .await
        .expect("timed out")
}

/// Starts a broker on a free port.
pub async fn broker() -> BrokerHandle {
    broker_with(Config::local_ephemeral()).await
}

/// Starts a broker with `config`.
pub async fn broker_with(config: Config) -> BrokerHandle {
    Broker::start(config).await.expect("broker starts")
}

/// Options for `addr` with client id `id`: 5.0, reconnecting within 20–200 ms.
pub fn options(addr: SocketAddr, id: &str) -> ConnectOptions {
    ConnectOptions::new()
        .server(addr)
        .client_id(id)
        .connect_timeout(Duration::from_secs(5))
        .reconnect(ReconnectPolicy::exponential(
            Duration::from_millis(20),
            Duration::from_millis(200),
        ))
}

/// Connects and takes the first event, which must be `Connected`.
pub async fn connect(options: ConnectOptions) -> (Client, Events) {
    let (client, mut events) = within(Client::connect(options)).await.expect("connects");
    match within(events.recv()).await {
        Some(Event::Connected(_)) => {}
        other => panic!("expected Connected, got {other:?}"),
    }
    (client, events)
}

/// A client "watcher" on `broker` subscribed to `filter` at QoS 1, to see what is
/// published.
pub async fn watcher(broker: &BrokerHandle, filter: &str) -> (Client, Events) {
    let (watcher, watch) = connect(options(broker.local_addr(), "watcher")).await;
    watcher
        .subscribe(filter, QoS::AtLeastOnce)
        .await
        .expect("subscribed");
    (watcher, watch)
}

/// Connects with `version`.
pub async fn connect_version(
    addr: SocketAddr,
    id: &str,
    version: ProtocolVersion,
) -> (Client, Events) {
    connect(options(addr, id).version(version)).await
}

/// The next message, within [`TIMEOUT`]. A lost connection on the way fails the test:
/// the tests that expect one wait for it with [`next_connection_event`] first.
pub async fn next_message(events: &mut Events) -> Publish {
    loop {
        match within(events.recv()).await {
            Some(Event::Message(message)) => return message,
            Some(Event::Disconnected(e)) => panic!("unexpected disconnection: {e}"),
            Some(_) => continue,
            None => panic!("the event stream ended"),
        }
    }
}

/// The next event that is not a message, within [`TIMEOUT`].
pub async fn next_connection_event(events: &mut Events) -> Event {
    loop {
        match within(events.recv()).await {
            Some(Event::Message(_)) => continue,
            Some(other) => return other,
            None => panic!("the event stream ended"),
        }
    }
}

/// The next connection event, which must be `Disconnected`: why.
pub async fn disconnected(events: &mut Events) -> ClientError {
    match next_connection_event(events).await {
        Event::Disconnected(e) => e,
        other => panic!("expected Disconnected, got {other:?}"),
    }
}

/// The next connection event, which must be `Connected`: the CONNACK.
pub async fn reconnected(events: &mut Events) -> Box<ConnAck> {
    match next_connection_event(events).await {
        Event::Connected(ack) => ack,
        other => panic!("expected Connected, got {other:?}"),
    }
}

/// A publication of each `(topic, payload)` at `qos`, each in a task of its own, so that
/// they can wait for a connection while the test goes on.
pub fn publish_in_background(
    client: &Client,
    qos: QoS,
    messages: impl IntoIterator<Item = (String, String)>,
) -> Vec<JoinHandle<Result<Published, ClientError>>> {
    messages
        .into_iter()
        .map(|(topic, payload)| {
            let client = client.clone();
            tokio::spawn(async move { client.publish(topic, qos, payload).await })
        })
        .collect()
}

/// Waits for each of the publications, which must succeed.
pub async fn all_published(pending: Vec<JoinHandle<Result<Published, ClientError>>>) {
    for task in pending {
        within(task).await.unwrap().unwrap();
    }
}

/// The topics of the next `n` messages, sorted.
pub async fn next_topics(events: &mut Events, n: usize) -> Vec<String> {
    let mut topics = Vec::with_capacity(n);
    for _ in 0..n {
        topics.push(next_message(events).await.topic.to_string());
    }
    topics.sort();
    topics
}

/// Checks that no message arrives for [`QUIET`].
pub async fn assert_quiet(events: &mut Events) {
    if let Ok(Some(message)) = tokio::time::timeout(QUIET, events.recv_message()).await {
        panic!("unexpected message {message:?}");
    }
}

/// A TCP proxy between clients and a broker, for fault injection.
#[derive(Debug)]
pub struct Proxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<ProxyShared>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct ProxyShared {
    upstream: SocketAddr,
    /// Swallow client → broker bytes.
    hold_up: AtomicBool,
    /// Swallow broker → client bytes.
    hold_down: AtomicBool,
    /// Bumped to close every open connection.
    cut: watch::Sender<u64>,
    /// Connections accepted so far.
    accepted: AtomicUsize,
}

impl Proxy {
    /// A proxy on a free port forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let shared = Arc::new(ProxyShared {
            upstream,
            hold_up: AtomicBool::new(false),
            hold_down: AtomicBool::new(false),
            cut: watch::channel(0).0,
            accepted: AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Proxy { addr, shared, task }
    }

    /// Swallows (`true`) or forwards (`false`) what clients send.
    pub fn hold_upstream(&self, hold: bool) {
        self.shared.hold_up.store(hold, Ordering::SeqCst);
    }

    /// Swallows (`true`) or forwards (`false`) what the broker sends.
    pub fn hold_downstream(&self, hold: bool) {
        self.shared.hold_down.store(hold, Ordering::SeqCst);
    }

    /// Closes every open connection, both sides, without a word: what a network
    /// failure looks like to the client and to the broker.
    pub fn cut(&self) {
        self.shared.cut.send_modify(|n| *n += 1);
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<ProxyShared>) {
    while let Ok((client, _)) = listener.accept().await {
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        let cut = shared.cut.subscribe();
        tokio::spawn(pipe(client, shared.clone(), cut));
    }
}

async fn pipe(client: TcpStream, shared: Arc<ProxyShared>, mut cut: watch::Receiver<u64>) {
    let Ok(server) = TcpStream::connect(shared.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let mut up = vec![0u8; 16 * 1024];
    let mut down = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            n = cr.read(&mut up) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) if !shared.hold_up.load(Ordering::SeqCst) => {
                    if sw.write_all(&up[..n]).await.is_err() { break; }
                }
                Ok(_) => {}
            },
            n = sr.read(&mut down) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) if !shared.hold_down.load(Ordering::SeqCst) => {
                    if cw.write_all(&down[..n]).await.is_err() { break; }
                }
                Ok(_) => {}
            },
            _ = cut.changed() => break,
        }
    }
}
