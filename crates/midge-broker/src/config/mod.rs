//! Typed broker configuration: one model ([`Config`]), two readers.
//!
//! [`load`] reads a file given to `midge serve -c` in either of two formats, told apart
//! by their syntax (see [`ConfigFormat::detect`]):
//! - Midge's own TOML (`toml_file.rs`): the fields of [`Config`] as keys, unknown keys
//!   refused. `midge.example.toml` at the repository root documents every key with its
//!   default; a test keeps the two in step.
//! - Mosquitto's `mosquitto.conf` (`mosquitto/`): its keys and semantics (defaults,
//!   listeners, durations, `include_dir`) translated onto the same [`Config`], so that one
//!   file can drive Mosquitto and Midge side by side. Keys that Midge does not support yet
//!   are [`ConfigWarning`]s; unknown keys and bad values are [`ConfigError`]s.
//!
//! Both readers end with [`Config::validate`], and every error names the file, the line
//! and the key. The broker itself (`lib.rs`) reads only the typed [`Config`].

mod error;
mod mosquitto;
mod toml_file;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use error::{ConfigError, ConfigWarning, InvalidValue, Location};

use crate::mailbox::MailboxLimits;
use crate::session::SessionConfig;

/// Largest payload MQTT can carry (a 268,435,455-byte Remaining Length, less the
/// smallest PUBLISH header): the upper bound of `message_size_limit`, as Mosquitto's.
pub const MAX_PAYLOAD_SIZE: u32 = 268_435_455;

/// Smallest `max_packet_size` accepted: below 20 bytes ordinary CONNECTs and PUBLISHes no
/// longer fit (Mosquitto's bound).
pub const MIN_PACKET_SIZE: u32 = 20;

/// One listening socket: where, which protocol (MQTT, or MQTT over WebSockets), with or
/// without TLS. The TLS keys are Mosquitto's, with their meaning: a listener with a
/// `certfile` is a TLS listener.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to bind, e.g. `127.0.0.1:1883` or `[::]:1883`; port 0 picks a
    /// free port. An IPv6 socket is IPv6-only, so `0.0.0.0:1883` and `[::]:1883` are two
    /// listeners that together cover every interface (as Mosquitto binds them). Give
    /// either this or `unix_socket`.
    #[serde(default)]
    pub bind: Option<SocketAddr>,
    /// Path of a Unix domain socket to listen on instead of `bind` (mosquitto.conf:
    /// `listener 0 PATH`). A socket file left there is replaced; another file is an
    /// error. Default: none.
    #[serde(default)]
    pub unix_socket: Option<PathBuf>,
    /// Expect a PROXY protocol header (version 1 or 2, as HAProxy and most load
    /// balancers send) at the start of every connection, and take the client's address
    /// from it; a connection without one is closed. Default: false.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// `mqtt` (default) or `websockets` (MQTT over WebSockets; `wss` with a `certfile`).
    #[serde(default)]
    pub protocol: ListenerProtocol,
    /// For `websockets`: the only HTTP path upgraded, e.g. `/mqtt`; other paths get 404.
    /// Default: none (every path, as Mosquitto).
    #[serde(default)]
    pub websockets_path: Option<String>,
    /// PEM file with the server certificate chain, leaf first. Makes this a TLS
    /// listener. Reloaded on SIGHUP. Default: none (plain TCP).
    #[serde(default)]
    pub certfile: Option<PathBuf>,
    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1). Needed with
    /// `certfile`. Reloaded on SIGHUP.
    #[serde(default)]
    pub keyfile: Option<PathBuf>,
    /// PEM file of CA certificates that client certificates are checked against.
    #[serde(default)]
    pub cafile: Option<PathBuf>,
    /// Directory of PEM CA certificate files (every file in it is read), as `cafile`.
    #[serde(default)]
    pub capath: Option<PathBuf>,
    /// Refuse clients without a certificate signed by `cafile` / `capath` (mutual TLS).
    /// Without it a client may still present one, which is then checked. Default: false.
    #[serde(default)]
    pub require_certificate: bool,
    /// The client certificate's Common Name is the client's user name; the CONNECT's
    /// user name and password are ignored and no password is checked. A client without
    /// a certificate is refused (0x86 / 4). Default: false.
    #[serde(default)]
    pub use_identity_as_username: bool,
    /// As `use_identity_as_username`, with the whole subject in RFC 2253 form
    /// (`CN=client,O=Example,C=DE`) as the user name. Default: false.
    #[serde(default)]
    pub use_subject_as_username: bool,
    /// Lowest TLS version accepted: `tlsv1.2` (default: 1.2 and 1.3) or `tlsv1.3`.
    #[serde(default)]
    pub tls_version: Option<TlsVersion>,
    /// This listener's `allow_anonymous`, with `per_listener_settings`; unset: the
    /// global one.
    #[serde(default)]
    pub allow_anonymous: Option<bool>,
    /// This listener's `password_file`, with `per_listener_settings`; unset: the global
    /// one.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// This listener's `acl_file`, with `per_listener_settings`; unset: the global one.
    #[serde(default)]
    pub acl_file: Option<PathBuf>,
}

/// The security settings in force on one listener: [`Config::listener_security`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecuritySettings {
    /// Whether clients without a user name may connect.
    pub allow_anonymous: bool,
    /// The password file, if any.
    pub password_file: Option<PathBuf>,
    /// The ACL file, if any.
    pub acl_file: Option<PathBuf>,
}

impl ListenerConfig {
    /// A plain MQTT listener on `bind`.
    pub fn new(bind: SocketAddr) -> Self {
        ListenerConfig {
            bind: Some(bind),
            unix_socket: None,
            proxy_protocol: false,
            protocol: ListenerProtocol::Mqtt,
            websockets_path: None,
            certfile: None,
            keyfile: None,
            cafile: None,
            capath: None,
            require_certificate: false,
            use_identity_as_username: false,
            use_subject_as_username: false,
            tls_version: None,
            allow_anonymous: None,
            password_file: None,
            acl_file: None,
        }
    }

    /// A plain MQTT listener on the Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        ListenerConfig {
            bind: None,
            unix_socket: Some(path.into()),
            ..ListenerConfig::new(SocketAddr::from(([0, 0, 0, 0], 0)))
        }
    }

    /// `127.0.0.1:1883`, or `unix:/run/midge.sock`: for log lines and errors.
    pub fn name(&self) -> String {
        match (&self.bind, &self.unix_socket) {
            (Some(addr), _) => addr.to_string(),
            (None, Some(path)) => format!("unix:{}", path.display()),
            (None, None) => "(no address)".to_string(),
        }
    }

    /// Whether this is a TLS listener (it has a `certfile`).
    pub fn is_tls(&self) -> bool {
        self.certfile.is_some()
    }

    /// The TLS settings' own checks: what goes with what.
    fn validate_tls(&self, index: usize) -> Result<(), InvalidValue> {
        let invalid = |key: &'static str, problem: &str| InvalidValue {
            key,
            listener: Some(index),
            problem: problem.to_string(),
        };
        if self.certfile.is_some() != self.keyfile.is_some() {
            let (key, missing) = if self.certfile.is_some() {
                ("listener.certfile", "keyfile")
            } else {
                ("listener.keyfile", "certfile")
            };
            return Err(InvalidValue {
                key,
                listener: Some(index),
                problem: format!(
                    "a TLS listener needs both certfile and keyfile: {missing} is missing"
                ),
            });
        }
        if self.websockets_path.is_some() && self.protocol != ListenerProtocol::Websockets {
            return Err(invalid(
                "listener.websockets_path",
                "is for a listener with protocol = \"websockets\"",
            ));
        }
        if self
            .websockets_path
            .as_deref()
            .is_some_and(|p| !p.starts_with('/'))
        {
            return Err(invalid("listener.websockets_path", "must start with `/`"));
        }
        if !self.is_tls() {
            let tls_only = [
                ("listener.cafile", self.cafile.is_some()),
                ("listener.capath", self.capath.is_some()),
                ("listener.require_certificate", self.require_certificate),
                (
                    "listener.use_identity_as_username",
                    self.use_identity_as_username,
                ),
                (
                    "listener.use_subject_as_username",
                    self.use_subject_as_username,
                ),
                ("listener.tls_version", self.tls_version.is_some()),
            ];
            if let Some((key, _)) = tls_only.into_iter().find(|(_, set)| *set) {
                return Err(invalid(
                    key,
                    "is a TLS setting: give certfile and keyfile too",
                ));
            }
            return Ok(());
        }
        if self.require_certificate && self.cafile.is_none() && self.capath.is_none() {
            return Err(invalid(
                "listener.require_certificate",
                "needs cafile or capath to check client certificates against",
            ));
        }
        if (self.use_identity_as_username || self.use_subject_as_username)
            && self.cafile.is_none()
            && self.capath.is_none()
        {
            let key = if self.use_identity_as_username {
                "listener.use_identity_as_username"
            } else {
                "listener.use_subject_as_username"
            };
            return Err(invalid(
                key,
                "needs cafile or capath: client certificates are requested and checked \
                 against them",
            ));
        }
        if self.use_identity_as_username && self.use_subject_as_username {
            return Err(invalid(
                "listener.use_subject_as_username",
                "use_identity_as_username is set too: choose one",
            ));
        }
        Ok(())
    }
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListenerProtocol {
    /// MQTT over TCP (or TLS).
    #[default]
    Mqtt,
    /// MQTT over WebSockets (or secure WebSockets): binary frames, subprotocol `mqtt`
    /// or `mqttv3.1`.
    Websockets,
}

/// The lowest TLS version a listener accepts (Mosquitto's `tls_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[serde(rename = "tlsv1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "tlsv1.3")]
    Tls13,
}

/// The broker's configuration. `Config::default()` is what `midge serve` runs with when
/// given no file: local-only listeners, anonymous clients allowed, state in memory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listeners. Default: `127.0.0.1:1883` and `[::1]:1883` (local only, like Mosquitto 2).
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Whether clients without a user name may connect. Default: true.
    pub allow_anonymous: bool,
    /// Mosquitto's `password_file`: `username:hash` lines as `mosquitto_passwd` and
    /// `midge passwd` write them. With it, a client that gives a username must give its
    /// password. The path is used as given (relative: to the working directory, as
    /// Mosquitto). Reloaded on SIGHUP. Default: none.
    pub password_file: Option<PathBuf>,
    /// Mosquitto's `acl_file`: which topics each client may publish to and receive,
    /// checked on every publish, subscribe and delivery. Without it every topic is allowed
    /// (except writing `$SYS/…`). Reloaded on SIGHUP. Default: none.
    pub acl_file: Option<PathBuf>,
    /// Mosquitto's `per_listener_settings`: when true, each listener may set its own
    /// `allow_anonymous`, `password_file` and `acl_file` (those it leaves out are the
    /// global ones), and a client is checked against its listener's. When false, the
    /// listeners may not set them. Default: false.
    pub per_listener_settings: bool,
    /// Most simultaneous connections, all listeners together; 0: no limit. Default: 0.
    pub max_connections: usize,
    /// Largest packet accepted, in bytes, fixed header included. Default: 268435460
    /// (the MQTT maximum).
    pub max_packet_size: u32,
    /// Largest PUBLISH payload accepted, in bytes; 0: no limit. A bigger message is
    /// dropped (QoS 1/2 flows still complete; 5.0 clients get reason 0x83), as Mosquitto
    /// does. Default: 0.
    pub message_size_limit: u32,
    /// QoS 1/2 messages in flight per client, both directions (our Receive Maximum).
    /// Default: 20 (Mosquitto's).
    pub max_inflight_messages: u16,
    /// Messages queued per client beyond those in flight; 0: no limit. Default: 1000.
    pub max_queued_messages: usize,
    /// Payload bytes queued per client; 0: no limit. Default: 0.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for disconnected persistent sessions. Default: false.
    pub queue_qos0_messages: bool,
    /// Largest keep alive accepted, in seconds; 0 or 65535: no limit. Default: 65535.
    pub max_keepalive: u16,
    /// Expire 3.1/3.1.1 persistent sessions after this many seconds; none: never.
    pub persistent_client_expiration: Option<u32>,
    /// Whether retained messages are supported. Default: true.
    pub retain_available: bool,
    /// Deliver at the subscription's QoS even when published at a lower one. Default: false.
    pub upgrade_outgoing_qos: bool,
    /// Highest topic alias clients may use. Default: 10 (Mosquitto's).
    pub max_topic_alias: u16,
    /// Seconds a new socket has to send CONNECT. Default: 10.
    pub connect_timeout: u64,
    /// Milliseconds between the checks for idle connections. A plain TCP connection idle
    /// for one to two of these periods is parked: it keeps its session, subscriptions
    /// and socket, and gives up its task until a packet, a delivery or its keep-alive
    /// deadline comes, which costs it a few hundred bytes less memory; clients see no
    /// difference. For its first two periods a new connection parks sooner, within a
    /// 32nd of one. 0: connections never park. Default: 1000.
    pub park_idle_ms: u64,
    /// Keep persistent sessions and retained messages on disk, in
    /// `persistence_location`, so that a restart restores them; a QoS 1/2 message is
    /// then acknowledged only once it is durable (docs/persistence.md). Default: false
    /// (state in memory).
    pub persistence: bool,
    /// The directory of the store (its file is `midge.redb`), created if missing.
    /// Relative: to the working directory, as Mosquitto. Default: none (the working
    /// directory).
    pub persistence_location: Option<PathBuf>,
    /// Most retained messages kept; a new topic beyond it is not retained (an update
    /// of a retained topic always is); 0: no limit. Default: 0.
    pub max_retained_messages: usize,
    /// Most payload bytes of retained messages kept, counted as `max_retained_messages`;
    /// 0: no limit. Default: 0.
    pub max_retained_bytes: u64,
    /// Logging: how much, and where to.
    pub log: LogConfig,
}

/// Logging (`[log]` in TOML; `log_type`, `log_dest` in a mosquitto.conf). Applied by
/// `midge serve`, not by the library.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Least severe level logged. `midge serve -v` raises it to `debug`; the `RUST_LOG`
    /// environment variable overrides both. Default: info.
    pub level: LogLevel,
    /// Log to standard error. Default: true.
    pub stderr: bool,
    /// Log to standard output. Default: false.
    pub stdout: bool,
    /// Also append log lines to this file. Default: none.
    pub file: Option<PathBuf>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: LogLevel::Info,
            stderr: true,
            stdout: false,
            file: None,
        }
    }
}

/// A log level, least verbose first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// One line per connection and disconnection, and the above.
    Info,
    /// Packets and decisions.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The name, as a `tracing` filter directive takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: vec![
                ListenerConfig::new("127.0.0.1:1883".parse().expect("valid address")),
                ListenerConfig::new("[::1]:1883".parse().expect("valid address")),
            ],
            allow_anonymous: true,
            password_file: None,
            acl_file: None,
            per_listener_settings: false,
            max_connections: 0,
            max_packet_size: midge_codec::MAX_PACKET_SIZE as u32,
            message_size_limit: 0,
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            max_keepalive: 65535,
            persistent_client_expiration: None,
            retain_available: true,
            upgrade_outgoing_qos: false,
            max_topic_alias: 10,
            connect_timeout: 10,
            park_idle_ms: 1000,
            persistence: false,
            persistence_location: None,
            max_retained_messages: 0,
            max_retained_bytes: 0,
            log: LogConfig::default(),
        }
    }
}

impl Config {
    /// A configuration with one listener on `127.0.0.1:0` (a free port): for tests.
    pub fn local_ephemeral() -> Self {
        Config {
            listeners: vec![ListenerConfig::new(
                "127.0.0.1:0".parse().expect("valid address"),
            )],
            ..Config::default()
        }
    }

    /// Checks what the types alone do not: ranges, and listeners that would not bind
    /// together. Both readers call it; call it on a [`Config`] built in code.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        if self.listeners.is_empty() {
            return Err(InvalidValue::new(
                "listener",
                "at least one listener is needed",
            ));
        }
        for (index, listener) in self.listeners.iter().enumerate() {
            listener.validate_tls(index)?;
            self.validate_listener_security(index)?;
            self.validate_address(index)?;
        }
        let max = midge_codec::MAX_PACKET_SIZE as u32;
        if !(MIN_PACKET_SIZE..=max).contains(&self.max_packet_size) {
            return Err(InvalidValue::new(
                "max_packet_size",
                format!(
                    "{} is out of range ({MIN_PACKET_SIZE} to {max} bytes)",
                    self.max_packet_size
                ),
            ));
        }
        if self.message_size_limit > MAX_PAYLOAD_SIZE {
            return Err(InvalidValue::new(
                "message_size_limit",
                format!(
                    "{} is more than MQTT allows ({MAX_PAYLOAD_SIZE} bytes; 0: no limit)",
                    self.message_size_limit
                ),
            ));
        }
        if self.max_inflight_messages == 0 {
            return Err(InvalidValue::new(
                "max_inflight_messages",
                "must be at least 1 (65535: as many as MQTT allows)",
            ));
        }
        if (1..10).contains(&self.max_keepalive) {
            return Err(InvalidValue::new(
                "max_keepalive",
                format!(
                    "{} s is too short: at least 10 s (0 or 65535: no limit)",
                    self.max_keepalive
                ),
            ));
        }
        if self.persistent_client_expiration == Some(0) {
            return Err(InvalidValue::new(
                "persistent_client_expiration",
                "must be at least 1 second (leave it out to keep sessions forever)",
            ));
        }
        if self.connect_timeout == 0 {
            return Err(InvalidValue::new(
                "connect_timeout",
                "must be at least 1 second",
            ));
        }
        if self
            .persistence_location
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(InvalidValue::new(
                "persistence_location",
                "the directory name is empty (leave it out for the working directory)",
            ));
        }
        if self
            .log
            .file
            .as_ref()
            .is_some_and(|f| f.as_os_str().is_empty())
        {
            return Err(InvalidValue::new("log.file", "the file name is empty"));
        }
        Ok(())
    }

    /// Exactly one of `bind` and `unix_socket`, and no two listeners on the same one.
    fn validate_address(&self, index: usize) -> Result<(), InvalidValue> {
        let listener = &self.listeners[index];
        let invalid = |key: &'static str, problem: String| InvalidValue {
            key,
            listener: Some(index),
            problem,
        };
        match (listener.bind, &listener.unix_socket) {
            (Some(_), Some(_)) => Err(invalid(
                "listener.unix_socket",
                "give either bind or unix_socket, not both".into(),
            )),
            (None, None) => Err(invalid(
                "listener.bind",
                "missing: give an address and port, or a unix_socket".into(),
            )),
            (None, Some(path)) => {
                if path.as_os_str().is_empty() {
                    return Err(invalid("listener.unix_socket", "the path is empty".into()));
                }
                match self.listeners[..index]
                    .iter()
                    .any(|other| other.unix_socket.as_ref() == Some(path))
                {
                    true => Err(invalid(
                        "listener.unix_socket",
                        format!("{} is already a listener", path.display()),
                    )),
                    false => Ok(()),
                }
            }
            (Some(bind), None) => {
                let other = self.listeners[..index]
                    .iter()
                    .filter_map(|other| other.bind)
                    .find(|other| overlaps(*other, bind));
                match other {
                    Some(other) if other == bind => Err(invalid(
                        "listener.bind",
                        format!("{bind} is already a listener"),
                    )),
                    Some(other) => Err(invalid(
                        "listener.bind",
                        format!("{bind} overlaps the listener on {other}"),
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    /// The security settings of listener `index`: its own where `per_listener_settings`
    /// is true and it sets them, else the global ones.
    pub fn listener_security(&self, index: usize) -> SecuritySettings {
        let global = SecuritySettings {
            allow_anonymous: self.allow_anonymous,
            password_file: self.password_file.clone(),
            acl_file: self.acl_file.clone(),
        };
        let Some(listener) = self
            .listeners
            .get(index)
            .filter(|_| self.per_listener_settings)
        else {
            return global;
        };
        SecuritySettings {
            allow_anonymous: listener.allow_anonymous.unwrap_or(global.allow_anonymous),
            password_file: listener.password_file.clone().or(global.password_file),
            acl_file: listener.acl_file.clone().or(global.acl_file),
        }
    }

    fn validate_listener_security(&self, index: usize) -> Result<(), InvalidValue> {
        let listener = &self.listeners[index];
        let set = [
            (
                "listener.allow_anonymous",
                listener.allow_anonymous.is_some(),
            ),
            ("listener.password_file", listener.password_file.is_some()),
            ("listener.acl_file", listener.acl_file.is_some()),
        ];
        match set.into_iter().find(|(_, set)| *set) {
            Some((key, _)) if !self.per_listener_settings => Err(InvalidValue {
                key,
                listener: Some(index),
                problem: "is a per-listener setting: set per_listener_settings = true \
                          (or set it globally)"
                    .to_string(),
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn session_config(&self) -> SessionConfig {
        SessionConfig {
            receive_maximum: self.max_inflight_messages.max(1),
            max_packet_size: self.max_packet_size,
            topic_alias_maximum: self.max_topic_alias,
            max_keepalive: if self.max_keepalive == 65535 {
                0
            } else {
                self.max_keepalive
            },
            retain_available: self.retain_available,
            max_qos: midge_codec::QoS::ExactlyOnce,
            upgrade_outgoing_qos: self.upgrade_outgoing_qos,
            message_size_limit: self.message_size_limit,
        }
    }

    pub(crate) fn mailbox_limits(&self) -> MailboxLimits {
        MailboxLimits {
            max_messages: self.max_queued_messages,
            max_bytes: self.max_queued_bytes,
            queue_qos0_offline: self.queue_qos0_messages,
        }
    }

    /// The directory of the persistence store: `persistence_location`, or the working
    /// directory.
    pub fn store_dir(&self) -> PathBuf {
        self.persistence_location
            .clone()
            .unwrap_or_else(|| PathBuf::from("."))
    }

    pub(crate) fn park_tick(&self) -> Duration {
        Duration::from_millis(self.park_idle_ms)
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout.max(1))
    }
}

/// Whether two listeners cannot both bind: same port (not 0), same address family, and
/// the same address or either one the family's wildcard.
fn overlaps(a: SocketAddr, b: SocketAddr) -> bool {
    let same_family = matches!(
        (a.ip(), b.ip()),
        (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_))
    );
    a.port() != 0
        && a.port() == b.port()
        && same_family
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// The two file formats `-c` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// Midge's TOML (`midge.example.toml`).
    Toml,
    /// Mosquitto's `mosquitto.conf`.
    Mosquitto,
}

impl ConfigFormat {
    /// Tells the formats apart by syntax alone, whatever the file is called. Ignoring
    /// blank lines and lines that start with `#`: a file is a mosquitto.conf when it has
    /// at least one line and none of its lines is a TOML table header (`[…]`) or a TOML
    /// assignment (a key, bare or quoted, followed by `=`); anything else is read as TOML.
    /// Mosquitto's
    /// lines are `key value…` with no `=` after the key, so each format's files are
    /// recognised, and a file that mixes both gets the TOML reader's error.
    pub fn detect(text: &str) -> ConfigFormat {
        let mut lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .peekable();
        if lines.peek().is_none() {
            return ConfigFormat::Toml;
        }
        let toml_like = |line: &str| {
            // A table header, or a quoted key: no mosquitto.conf key starts so.
            if line.starts_with(['[', '"', '\'']) {
                return true;
            }
            let key_end = line
                .find(|c: char| c.is_whitespace() || c == '=')
                .unwrap_or(line.len());
            line[key_end..].trim_start().starts_with('=')
        };
        if lines.any(toml_like) {
            ConfigFormat::Toml
        } else {
            ConfigFormat::Mosquitto
        }
    }

    /// `Midge TOML` or `mosquitto.conf`.
    pub fn name(self) -> &'static str {
        match self {
            ConfigFormat::Toml => "Midge TOML",
            ConfigFormat::Mosquitto => "mosquitto.conf",
        }
    }
}

/// A configuration read from a file, with what the reader has to tell about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedConfig {
    /// The validated configuration.
    pub config: Config,
    /// Which reader read it.
    pub format: ConfigFormat,
    /// Keys read but not supported (yet), or applied differently than in Mosquitto: the
    /// broker logs them at start.
    pub warnings: Vec<ConfigWarning>,
    /// Whether the file defines listeners. When it does not, the local-only default
    /// listeners are used, and `midge serve -p` replaces them (Mosquitto 2 ignores `-p`
    /// when the configuration file defines a listener).
    pub listeners_defined: bool,
}

impl LoadedConfig {
    /// What `midge serve` runs with when given no file.
    pub fn defaults() -> Self {
        LoadedConfig {
            config: Config::default(),
            format: ConfigFormat::Toml,
            warnings: Vec::new(),
            listeners_defined: false,
        }
    }
}

/// Reads and validates the configuration file at `path`, in either format.
pub fn load(path: impl AsRef<Path>) -> Result<LoadedConfig, ConfigError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates configuration `text`; `path` names it in errors and is where a
/// mosquitto.conf's `include_dir` is checked against.
pub fn parse(text: &str, path: &Path) -> Result<LoadedConfig, ConfigError> {
    match ConfigFormat::detect(text) {
        ConfigFormat::Toml => toml_file::parse(text, path),
        ConfigFormat::Mosquitto => mosquitto::parse(text, path),
    }
}

#[cfg(test)]
mod tests;
