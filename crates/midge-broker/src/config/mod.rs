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

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to bind, e.g. `127.0.0.1:1883` or `[::]:1883`; port 0 picks a
    /// free port. An IPv6 socket is IPv6-only, so `0.0.0.0:1883` and `[::]:1883` are two
    /// listeners that together cover every interface (as Mosquitto binds them).
    pub bind: SocketAddr,
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
    /// Mosquitto's `per_listener_settings`, kept from a mosquitto.conf. Midge has one set
    /// of security settings for all listeners today, so it changes nothing yet: the
    /// mosquitto.conf reader merges per-listener `allow_anonymous` values (refusing
    /// anonymous clients everywhere if they differ). Default: false.
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
                ListenerConfig {
                    bind: "127.0.0.1:1883".parse().expect("valid address"),
                },
                ListenerConfig {
                    bind: "[::1]:1883".parse().expect("valid address"),
                },
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
            listeners: vec![ListenerConfig {
                bind: "127.0.0.1:0".parse().expect("valid address"),
            }],
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
            if let Some(other) = self.listeners[..index]
                .iter()
                .find(|other| overlaps(other.bind, listener.bind))
            {
                return Err(InvalidValue {
                    key: "listener.bind",
                    listener: Some(index),
                    problem: if other.bind == listener.bind {
                        format!("{} is already a listener", listener.bind)
                    } else {
                        format!("{} overlaps the listener on {}", listener.bind, other.bind)
                    },
                });
            }
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

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout.max(1))
    }
}

/// Said of `persistence = true` until the broker uses the store (issue #6, phase 2):
/// the store, its tools and these keys exist; connections do not write to it yet.
pub(crate) const PERSISTENCE_NOT_WIRED: &str = "persistence is read and checked, but the broker \
     does not use its store yet (issue #6, phase 2): sessions and retained messages are kept in \
     memory";

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
