//! Typed broker configuration. Every field has a documented default; see
//! `midge.example.toml` at the repository root for the file form.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::mailbox::MailboxLimits;
use crate::session::SessionConfig;

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to bind, e.g. `127.0.0.1:1883` or `[::]:1883`; port 0 picks a
    /// free port.
    pub bind: SocketAddr,
}

/// The broker's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Listeners. Default: 127.0.0.1:1883 and [::1]:1883 (local only, like Mosquitto 2).
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Whether clients without a user name may connect. Default: true.
    pub allow_anonymous: bool,
    /// Most simultaneous connections; 0: no limit. Default: 0.
    pub max_connections: usize,
    /// Largest packet accepted, in bytes, fixed header included. Default: 268435460
    /// (the MQTT maximum).
    pub max_packet_size: u32,
    /// QoS 1/2 messages in flight per client, both directions (our Receive Maximum).
    /// Default: 20 (Mosquitto's).
    pub max_inflight_messages: u16,
    /// Messages queued per client beyond those in flight; 0: no limit. Default: 1000.
    pub max_queued_messages: usize,
    /// Payload bytes queued per client; 0: no limit. Default: 0.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for disconnected persistent sessions. Default: false.
    pub queue_qos0_messages: bool,
    /// Largest keep alive accepted, in seconds; 0: no limit. Default: 65535.
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
            max_connections: 0,
            max_packet_size: midge_codec::MAX_PACKET_SIZE as u32,
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
        }
    }

    pub(crate) fn mailbox_limits(&self) -> MailboxLimits {
        MailboxLimits {
            max_messages: self.max_queued_messages,
            max_bytes: self.max_queued_bytes,
            queue_qos0_offline: self.queue_qos0_messages,
        }
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout.max(1))
    }
}
