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
//! - `listener/`: accept loops.
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
mod listener;
pub mod mailbox;
pub mod message;
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
pub use security::SecurityError;

/// State shared by every connection: an explicit, cheap-to-clone handle (no globals).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) session_config: session::SessionConfig,
    pub(crate) router: router::Router,
    pub(crate) registry: registry::Registry,
    /// The password file and ACL in force (reloaded by [`BrokerHandle::reload_auth`]).
    pub(crate) security: security::Security,
    /// Limits connections (`max_connections`); `None`: unlimited.
    pub(crate) connection_permits: Option<Arc<tokio::sync::Semaphore>>,
}

/// The broker.
#[derive(Debug)]
pub struct Broker;

impl Broker {
    /// Loads the password and ACL files, binds every listener of `config` and starts
    /// serving on the current runtime. A file that does not load fails the start with an
    /// `InvalidData` error naming the file and line.
    pub async fn start(config: Config) -> std::io::Result<BrokerHandle> {
        let security = security::Security::load(&config)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let shared = Arc::new(Shared {
            security,
            session_config: config.session_config(),
            router: router::Router::new(config.upgrade_outgoing_qos),
            registry: registry::Registry::default(),
            connection_permits: (config.max_connections > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(config.max_connections))),
            config,
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut addrs = Vec::new();
        for listener_config in &shared.config.listeners {
            let listener = listener::tcp::bind(listener_config.bind)?;
            let addr = listener.local_addr()?;
            addrs.push(addr);
            tasks.spawn(listener::tcp::accept_loop(
                listener,
                shared.clone(),
                shutdown_rx.clone(),
            ));
        }
        Ok(BrokerHandle {
            shared,
            addrs,
            shutdown: shutdown_tx,
            tasks,
        })
    }
}

/// A running broker: its addresses, and the way to stop it.
#[derive(Debug)]
pub struct BrokerHandle {
    /// For reloading the password and ACL files.
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl BrokerHandle {
    /// The bound addresses, one per listener, in configuration order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The first listener's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// Reads the password file and the ACL file again and puts them in force together,
    /// for new connections and for every check made on connected clients from now on
    /// (SIGHUP in `midge serve`, as Mosquitto). If either fails to load, the previous
    /// ones stay, the error (file and line) is logged at warn level and returned.
    pub fn reload_auth(&self) -> Result<(), SecurityError> {
        let security = &self.shared.security;
        let (passwords, acl) = security.files();
        match security.reload() {
            Ok(()) => {
                tracing::info!(password_file = ?passwords, acl_file = ?acl, "security files reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "security files not reloaded: keeping the previous ones");
                Err(e)
            }
        }
    }

    /// Stops accepting, closes every connection (5.0 clients get DISCONNECT 0x8B) and
    /// waits for the listeners and connections to finish.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
