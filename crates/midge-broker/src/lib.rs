//! The Midge MQTT broker as a library.
//!
//! [`Broker::start`] binds the configured listeners and serves MQTT 3.1, 3.1.1 and 5.0
//! clients on the current tokio runtime; the returned [`BrokerHandle`] reports the bound
//! addresses and shuts the broker down. Tests start it on `127.0.0.1:0`.
//!
//! # Layout
//! - `session/`: the sans-I/O session state machine — every protocol rule of a
//!   connection, tested without sockets or clocks.
//! - `router/`: the subscription trie (pure matching) and retained messages; routing
//!   pushes deliveries into the sessions' bounded mailboxes (`mailbox.rs`).
//! - `registry.rs`: sessions by client id, take-over, expiry.
//! - `connection.rs`: the tokio shell around a session: read → decode → session →
//!   encode → one batched write.
//! - `listener/`: accept loops and transports (TCP, TLS, WebSockets, Unix sockets, the
//!   PROXY protocol) that hand a byte stream to `connection.rs`.
//! - `config/`: typed configuration and its two readers (Midge TOML, mosquitto.conf).
//!
//! # Example
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let broker = midge_broker::Broker::start(midge_broker::Config::local_ephemeral()).await?;
//! println!("listening on {:?}", broker.local_addrs());
//! broker.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
mod connection;
mod durable;
mod listener;
pub mod mailbox;
pub mod message;
mod parking;
pub mod registry;
pub mod router;
mod security;
pub mod session;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

pub use config::{Config, ListenerConfig};
pub use listener::tls::TlsError;
pub use security::SecurityError;

/// State shared by every connection: an explicit, cheap-to-clone handle (no globals).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) session_config: Arc<session::SessionConfig>,
    pub(crate) router: router::Router,
    pub(crate) registry: registry::Registry,
    /// The password files and ACLs in force, one per distinct listener setting
    /// (reloaded by [`BrokerHandle::reload_auth`]).
    pub(crate) securities: Vec<Arc<security::Security>>,
    /// Limits connections (`max_connections`); `None`: unlimited.
    pub(crate) connection_permits: Option<Arc<tokio::sync::Semaphore>>,
    /// The persistence store, with persistence on (see `durable.rs`).
    pub(crate) durable: Option<Arc<durable::Durable>>,
    /// Idle connections, parked (see `parking.rs`).
    pub(crate) parking: parking::Parking,
}

/// The clock of `Broker::start`: an instant and the Unix time, read together (the
/// store's records keep Unix times).
#[allow(clippy::disallowed_methods)]
fn now() -> (std::time::Instant, store::UnixMillis) {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    (tokio::time::Instant::now().into_std(), unix)
}

/// The broker.
#[derive(Debug)]
pub struct Broker;

impl Broker {
    /// Loads the password, ACL, certificate and key files, binds every listener of
    /// `config` and starts serving on the current runtime. A file that does not load
    /// fails the start with an `InvalidData` error naming the file (and line).
    pub async fn start(config: Config) -> std::io::Result<BrokerHandle> {
        let invalid = |e: &dyn std::fmt::Display| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
        };
        // Listeners with the same settings share one `Security` (and one reload).
        let mut loaded: Vec<(config::SecuritySettings, Arc<security::Security>)> = Vec::new();
        let mut listener_security = Vec::new();
        for index in 0..config.listeners.len() {
            let settings = config.listener_security(index);
            let security = match loaded.iter().find(|(s, _)| *s == settings) {
                Some((_, security)) => security.clone(),
                None => {
                    let security =
                        Arc::new(security::Security::load(&settings).map_err(|e| invalid(&e))?);
                    loaded.push((settings, security.clone()));
                    security
                }
            };
            listener_security.push(security);
        }
        let (t0, unix) = now();
        // The store is read before anything listens; a store that cannot be read stops
        // the start, with the file named.
        let (durable, restored) = match config.persistence {
            true => {
                let (durable, restored) = durable::Durable::open(&config.store_dir(), t0, unix)?;
                (Some(Arc::new(durable)), Some(restored))
            }
            false => (None, None),
        };
        let retained_limits = router::RetainedLimits {
            max_messages: config.max_retained_messages,
            max_bytes: config.max_retained_bytes,
        };
        let parking = parking::Parking::start(config.park_tick())?;
        let shared = Arc::new(Shared {
            securities: loaded.into_iter().map(|(_, s)| s).collect(),
            session_config: Arc::new(config.session_config()),
            router: router::Router::new(config.upgrade_outgoing_qos)
                .with_retained_limits(retained_limits)
                .with_durable(durable.clone()),
            registry: registry::Registry::parking(config.mailbox_limits(), parking.reviver()),
            connection_permits: (config.max_connections > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(config.max_connections))),
            durable,
            parking,
            config,
        });
        if let Some(restored) = restored {
            durable::restore(&shared, restored, t0).await;
        }
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        let mut listeners = Vec::new();
        for (listener_config, security) in shared.config.listeners.iter().zip(listener_security) {
            let tls = match listener_config.is_tls() {
                true => {
                    Some(listener::tls::TlsServer::load(listener_config).map_err(|e| invalid(&e))?)
                }
                false => None,
            };
            let context = Arc::new(listener::ListenerContext {
                config: listener_config.clone(),
                tls,
                security,
                max_packet_size: shared.config.max_packet_size as usize,
            });
            let bound = match (listener_config.bind, &listener_config.unix_socket) {
                (Some(addr), _) => {
                    let bound = listener::tcp::bind(addr)?;
                    addrs.push(bound.local_addr()?);
                    listener::Bound::Tcp(bound)
                }
                #[cfg(unix)]
                (None, Some(path)) => {
                    listener::Bound::Unix(listener::unix::UnixListener::bind(path)?)
                }
                _ => {
                    return Err(invalid(&format!(
                        "listener {}: no address",
                        listener_config.name()
                    )));
                }
            };
            listeners.push(context.clone());
            tasks.spawn(listener::accept_loop(
                bound,
                context,
                shared.clone(),
                shutdown_rx.clone(),
            ));
        }
        Ok(BrokerHandle {
            shared,
            listeners,
            addrs,
            shutdown: shutdown_tx,
            tasks,
        })
    }
}

impl BrokerHandle {
    /// Tells the listeners and the connections still opening to stop, and asks every
    /// open connection to close (an open connection waits on its kick, not on the
    /// shutdown channel: see `connection::Conn`).
    fn stop_connections(&self) {
        let _ = self.shutdown.send(true);
        self.shared.parking.close();
        self.shared
            .registry
            .kick_all(midge_codec::ReasonCode::ServerShuttingDown);
    }
}

impl Drop for BrokerHandle {
    /// A handle dropped without [`BrokerHandle::shutdown`] stops the broker as well,
    /// without waiting.
    fn drop(&mut self) {
        self.stop_connections();
    }
}

/// Counters of a running broker ([`BrokerHandle::stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sessions, connected or not.
    pub sessions: usize,
    /// Messages dropped since the start because a client's queue was full (see
    /// [`mailbox`]) or a QoS 0 message found its client offline.
    pub messages_dropped: u64,
    /// Connections parked now: idle, they keep no task of their own (see
    /// [`Config::park_idle_ms`]).
    pub parked_connections: usize,
}

/// A running broker: its addresses, and the way to stop it.
#[derive(Debug)]
pub struct BrokerHandle {
    /// For reloading the password and ACL files.
    shared: Arc<Shared>,
    /// For reloading the TLS certificates.
    listeners: Vec<Arc<listener::ListenerContext>>,
    addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl BrokerHandle {
    /// The bound addresses, one per IP listener, in configuration order (Unix socket
    /// listeners are at their configured paths).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The first listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Counters of the running broker.
    pub fn stats(&self) -> Stats {
        Stats {
            sessions: self.shared.registry.len(),
            messages_dropped: self.shared.registry.dropped(),
            parked_connections: self.shared.parking.parked(),
        }
    }

    /// Reads the password files and ACL files again and puts them in force (each
    /// listener's pair together), for new connections and for every check made on
    /// connected clients from now on (SIGHUP in `midge serve`, as Mosquitto). A pair
    /// that fails to load keeps the previous one; the error (file and line) is logged
    /// at warn level, and the first one is returned.
    pub fn reload_auth(&self) -> Result<(), SecurityError> {
        let mut first_error = None;
        for security in &self.shared.securities {
            let (passwords, acl) = security.files();
            match security.reload() {
                Ok(()) => {
                    tracing::info!(password_file = ?passwords, acl_file = ?acl, "security files reloaded");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "security files not reloaded: keeping the previous ones");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Reads every TLS listener's certificate, key and CA files again and puts them in
    /// force for new connections; connections already made keep theirs and stay up
    /// (SIGHUP in `midge serve`). A listener whose files fail to load keeps its previous
    /// ones; its error (naming the file) is logged at warn level, and the first one is
    /// returned.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        let mut first_error = None;
        for tls in self.listeners.iter().filter_map(|l| l.tls.as_ref()) {
            match tls.reload() {
                Ok(()) => tracing::info!(listener = %tls.bind(), "TLS certificates reloaded"),
                Err(e) => {
                    tracing::warn!(listener = %tls.bind(), error = %e, "TLS certificates not reloaded: keeping the previous ones");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops accepting, closes every connection (5.0 clients get DISCONNECT 0x8B) and
    /// waits for the listeners and connections to finish.
    pub async fn shutdown(mut self) {
        self.stop_connections();
        while self.tasks.join_next().await.is_some() {}
        // Every connection has written its session's record: the store can close.
        if let Some(durable) = &self.shared.durable {
            durable.close();
        }
    }
}
