//! [`ConnectOptions`]: everything that shapes the CONNECT packet and the behaviour of the
//! connection (reconnect policy, timeouts, queue sizes), built with `new()` and setters.
//! The state machine (`state.rs`) turns it into CONNECT packets; the driver
//! (`eventloop.rs`) reads the address, timeouts and reconnect policy.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use midge_codec::{ByteString, ConnectProperties, LastWill, Packet, ProtocolVersion};

use crate::error::ClientError;

/// How to connect, and what to do when the connection drops.
///
/// ```
/// use std::time::Duration;
/// use midge_client::{ConnectOptions, ReconnectPolicy};
/// use midge_codec::ProtocolVersion;
///
/// let options = ConnectOptions::new()
///     .server("127.0.0.1:1883")
///     .version(ProtocolVersion::V5)
///     .client_id("sensor-17")
///     .keep_alive(Duration::from_secs(30))
///     .session_expiry_interval(3600)
///     .credentials("alice", "secret")
///     .reconnect(ReconnectPolicy::exponential(
///         Duration::from_millis(100),
///         Duration::from_secs(10),
///     ));
/// assert_eq!(options.get_client_id(), "sensor-17");
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    /// `host:port` to connect to; resolved again on every reconnect, so DNS changes
    /// are followed.
    pub(crate) server: String,
    /// Protocol version of every connection.
    pub(crate) version: ProtocolVersion,
    /// Client identifier; replaced by the server's Assigned Client Identifier when it
    /// sends one, so that reconnects resume the same session.
    pub(crate) client_id: ByteString,
    /// Clean Start (5.0) / Clean Session (3.x) of the first connection. Reconnects
    /// clear it when the session outlives the connection, to resume it.
    pub(crate) clean_start: bool,
    /// Keep alive in seconds; 0 turns it off.
    pub(crate) keep_alive: u16,
    /// The will message.
    pub(crate) will: Option<LastWill>,
    /// User name.
    pub(crate) username: Option<ByteString>,
    /// Password.
    pub(crate) password: Option<Bytes>,
    /// CONNECT properties (5.0): sent as they are.
    pub(crate) properties: ConnectProperties,
    /// When and how often to reconnect.
    pub(crate) reconnect: ReconnectPolicy,
    /// Longest wait for the TCP connection plus the CONNACK.
    pub(crate) connect_timeout: Duration,
    /// Whether outgoing topics are replaced by topic aliases when the server allows.
    pub(crate) auto_topic_alias: bool,
    /// Whether subscriptions are made again when a reconnect finds no session.
    pub(crate) resubscribe: bool,
    /// Capacity of the event channel the application reads.
    pub(crate) event_capacity: usize,
    /// Most requests queued inside the client (waiting for the connection or for room
    /// in the server's Receive Maximum) before `publish` and friends wait.
    pub(crate) max_queued_requests: usize,
    /// Most QoS 1 and 2 publications in flight at once, below the server's Receive
    /// Maximum; `None`: the server's alone.
    pub(crate) max_inflight: Option<u16>,
    /// Local address the socket is bound to before connecting; `None`: the system's
    /// choice.
    pub(crate) bind_address: Option<String>,
    /// Whether Nagle's algorithm is off (`TCP_NODELAY`).
    pub(crate) tcp_nodelay: bool,
    /// The SOCKS5 proxy to connect through, if any.
    pub(crate) proxy: Option<crate::socks::Socks5Proxy>,
    /// TLS over the socket (mqtts://, wss://), if set.
    pub(crate) tls: Option<crate::transport::TlsOptions>,
    /// The HTTP path of a WebSocket connection (ws://, wss://); `None`: plain MQTT.
    pub(crate) websocket_path: Option<String>,
    /// A Unix domain socket to connect to instead of `server`.
    pub(crate) unix_socket: Option<std::path::PathBuf>,
    /// Sees every packet sent and received.
    pub(crate) observer: Option<Arc<dyn PacketObserver>>,
    /// Answers the server's AUTH challenges (5.0 enhanced authentication).
    pub(crate) authenticator: Option<crate::state::SharedAuthenticator>,
}

/// Which way a packet went, for a [`PacketObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Written to the server (reported when it is queued for the socket).
    Sent,
    /// Read from the server (reported before the client acts on it).
    Received,
}

/// Sees every packet the client sends and receives, in order, on the connection task:
/// for packet logs such as `midge sub -d`'s. Keep it quick; it must not block.
///
/// Any `Fn(Direction, &str, &Packet) + Send + Sync` closure is one; its `&str` is the
/// client identifier in effect (the server's assigned one once known).
pub trait PacketObserver: Send + Sync {
    /// One packet went `direction`.
    fn packet(&self, direction: Direction, client_id: &str, packet: &Packet);
}

impl<F> PacketObserver for F
where
    F: Fn(Direction, &str, &Packet) + Send + Sync,
{
    fn packet(&self, direction: Direction, client_id: &str, packet: &Packet) {
        self(direction, client_id, packet)
    }
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions::new()
    }
}

impl ConnectOptions {
    /// Options for `localhost:1883`, MQTT 5.0, a random client id `midge-…`, clean start,
    /// keep alive 60 s, no session expiry, reconnect with
    /// [`ReconnectPolicy::default`], connect timeout 10 s.
    pub fn new() -> Self {
        ConnectOptions {
            server: "localhost:1883".to_owned(),
            version: ProtocolVersion::V5,
            client_id: random_client_id().into(),
            clean_start: true,
            keep_alive: 60,
            will: None,
            username: None,
            password: None,
            properties: ConnectProperties::default(),
            reconnect: ReconnectPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            auto_topic_alias: true,
            resubscribe: true,
            event_capacity: 256,
            max_queued_requests: 1000,
            max_inflight: None,
            bind_address: None,
            tcp_nodelay: true,
            proxy: None,
            tls: None,
            websocket_path: None,
            unix_socket: None,
            observer: None,
            authenticator: None,
        }
    }

    /// The server's address, `host:port` (a `SocketAddr` works too).
    pub fn server(mut self, addr: impl ToString) -> Self {
        self.server = addr.to_string();
        self
    }

    /// Protocol version: 3.1, 3.1.1 or 5.0 (the default).
    pub fn version(mut self, version: ProtocolVersion) -> Self {
        self.version = version;
        self
    }

    /// Client identifier. An empty one asks a 5.0 server to assign one (a 3.1.1 server
    /// accepts it only with clean start).
    pub fn client_id(mut self, id: impl Into<ByteString>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Clean Start (5.0) / Clean Session (3.x) for the first connection (default
    /// `true`). Reconnects always ask to resume a session that outlives its connection.
    pub fn clean_start(mut self, clean: bool) -> Self {
        self.clean_start = clean;
        self
    }

    /// Keep alive; whole seconds up to 65,535; zero turns it off. A 5.0 server may
    /// impose another (Server Keep Alive), which then applies.
    pub fn keep_alive(mut self, keep_alive: Duration) -> Self {
        self.keep_alive = u16::try_from(keep_alive.as_secs()).unwrap_or(u16::MAX);
        self
    }

    /// Session Expiry Interval in seconds (5.0): how long the server keeps the session
    /// after the connection ends; `u32::MAX` never expires. Default: absent (0).
    pub fn session_expiry_interval(mut self, seconds: u32) -> Self {
        self.properties.session_expiry_interval = Some(seconds);
        self
    }

    /// The will message, published by the server if the connection ends without a
    /// DISCONNECT.
    pub fn will(mut self, will: LastWill) -> Self {
        self.will = Some(will);
        self
    }

    /// User name and password.
    pub fn credentials(self, username: impl Into<ByteString>, password: impl Into<Bytes>) -> Self {
        self.username(username).password(password)
    }

    /// User name.
    pub fn username(mut self, username: impl Into<ByteString>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Password (binary data). MQTT 3.x allows it only with a user name.
    pub fn password(mut self, password: impl Into<Bytes>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Receive Maximum (5.0): QoS 1 and 2 messages the server may have in flight to us.
    /// Must not be 0.
    pub fn receive_maximum(mut self, max: u16) -> Self {
        self.properties.receive_maximum = Some(max);
        self
    }

    /// Maximum Packet Size (5.0): the largest packet we accept; the server drops larger
    /// messages for us. Also the decoder's limit in every version.
    pub fn maximum_packet_size(mut self, max: u32) -> Self {
        self.properties.maximum_packet_size = Some(max);
        self
    }

    /// Topic Alias Maximum (5.0): how many topic aliases the server may use towards us.
    /// Default: none.
    pub fn topic_alias_maximum(mut self, max: u16) -> Self {
        self.properties.topic_alias_maximum = Some(max);
        self
    }

    /// Request Response Information (5.0): ask for a response topic basis in CONNACK.
    pub fn request_response_information(mut self, request: bool) -> Self {
        self.properties.request_response_information = Some(request);
        self
    }

    /// Request Problem Information (5.0): whether the server may send reason strings and
    /// user properties on failures other than in CONNACK and DISCONNECT.
    pub fn request_problem_information(mut self, request: bool) -> Self {
        self.properties.request_problem_information = Some(request);
        self
    }

    /// Adds a user property to the CONNECT (5.0).
    pub fn user_property(
        mut self,
        name: impl Into<ByteString>,
        value: impl Into<ByteString>,
    ) -> Self {
        self.properties
            .user_properties
            .push((name.into(), value.into()));
        self
    }

    /// Authentication Method and Data (5.0) for a method that completes in CONNECT and
    /// CONNACK. For a method with challenges (AUTH packets), use
    /// [`ConnectOptions::authenticator`] instead.
    pub fn authentication(mut self, method: impl Into<ByteString>, data: Option<Bytes>) -> Self {
        self.properties.authentication_method = Some(method.into());
        self.properties.authentication_data = data;
        self
    }

    /// Enhanced authentication (5.0, §4.12): `authenticator` names the Authentication
    /// Method and gives the Authentication Data of each CONNECT, then answers each AUTH
    /// challenge (Continue Authentication, 0x18) of the server until its CONNACK; it also
    /// answers the challenges of a re-authentication started with
    /// [`crate::Client::reauthenticate`]. See [`crate::Authenticator`].
    pub fn authenticator(
        mut self,
        authenticator: impl crate::auth::Authenticator + 'static,
    ) -> Self {
        self.properties.authentication_method = Some(authenticator.method());
        self.properties.authentication_data = None;
        self.authenticator = Some(Arc::new(std::sync::Mutex::new(authenticator)));
        self
    }

    /// Replaces every CONNECT property at once (5.0).
    pub fn properties(mut self, properties: ConnectProperties) -> Self {
        self.properties = properties;
        self
    }

    /// Reconnect policy. Default: [`ReconnectPolicy::default`].
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    /// Longest wait for the TCP connection and the CONNACK. Default: 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether outgoing topic names are replaced by topic aliases (5.0) when the server
    /// allows them (default `true`). Aliases are assigned in order of first use until
    /// the server's Topic Alias Maximum is reached; any alias set by the application on
    /// a message is replaced.
    pub fn auto_topic_alias(mut self, enabled: bool) -> Self {
        self.auto_topic_alias = enabled;
        self
    }

    /// Whether a reconnect that finds no session on the server makes the subscriptions
    /// again (default `true`).
    pub fn resubscribe(mut self, enabled: bool) -> Self {
        self.resubscribe = enabled;
        self
    }

    /// Capacity of the event channel (default 256). When the application falls behind,
    /// QoS 1 and 2 messages stay unacknowledged (the server holds the rest back) and
    /// QoS 0 messages and connection events beyond twice this many are dropped; see
    /// [`crate::Events`].
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(1);
        self
    }

    /// Most requests the client queues while disconnected or while the server's Receive
    /// Maximum is full (default 1000); beyond that, requests wait.
    pub fn max_queued_requests(mut self, max: usize) -> Self {
        self.max_queued_requests = max.max(1);
        self
    }

    /// Most QoS 1 and 2 publications in flight (sent, not yet completed) at once; the
    /// server's Receive Maximum still applies when lower. Default: the server's alone.
    /// Zero is taken as one.
    pub fn max_inflight(mut self, max: u16) -> Self {
        self.max_inflight = Some(max.max(1));
        self
    }

    /// Binds the socket to this local address (an IP address or a host name, port 0)
    /// before connecting, to choose the interface. Default: the system's choice.
    pub fn bind_address(mut self, address: impl Into<String>) -> Self {
        self.bind_address = Some(address.into());
        self
    }

    /// Whether Nagle's algorithm is turned off (`TCP_NODELAY`, default `true`): small
    /// packets go out at once rather than being coalesced.
    pub fn tcp_nodelay(mut self, nodelay: bool) -> Self {
        self.tcp_nodelay = nodelay;
        self
    }

    /// Connects through a SOCKS5 proxy at `proxy` (`host:port`), with a user name and
    /// password if it asks for them (RFC 1929). The proxy resolves the server's name.
    pub fn socks5_proxy(
        mut self,
        proxy: impl ToString,
        credentials: Option<(String, String)>,
    ) -> Self {
        self.proxy = Some(crate::socks::Socks5Proxy {
            server: proxy.to_string(),
            credentials,
        });
        self
    }

    /// Connects over TLS (`mqtts://`; with [`ConnectOptions::websocket`], `wss://`).
    /// The server's certificate is checked against the host of
    /// [`ConnectOptions::server`] unless [`crate::TlsOptions::server_name`] says
    /// otherwise. Files are read again on every (re)connection.
    pub fn tls(mut self, tls: crate::transport::TlsOptions) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Speaks MQTT over WebSockets (`ws://server/path`, or `wss://` with
    /// [`ConnectOptions::tls`]): an HTTP upgrade to `path` asking for the subprotocol
    /// `mqtt`, then MQTT in binary frames ([MQTT-6.0.0-1]). Mosquitto serves any path;
    /// `/mqtt` is the usual one.
    pub fn websocket(mut self, path: impl Into<String>) -> Self {
        self.websocket_path = Some(path.into());
        self
    }

    /// Connects to a Unix domain socket at `path` instead of [`ConnectOptions::server`]
    /// (which then only names the host for TLS and WebSocket). Unix only.
    pub fn unix_socket(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.unix_socket = Some(path.into());
        self
    }

    /// Calls `observer` with every packet sent and received (see [`PacketObserver`]).
    ///
    /// With an observer, the connection task also takes incoming packets one at a time
    /// and lets the application run between them (and takes a [`crate::Client::disconnect`]
    /// before the next one), so that a packet log and what the application prints
    /// interleave in the order the packets came. That costs throughput: it is meant for
    /// debugging.
    ///
    /// ```
    /// use midge_client::{ConnectOptions, Direction};
    /// use midge_codec::Packet;
    ///
    /// let options = ConnectOptions::new().observe_packets(
    ///     |direction: Direction, id: &str, packet: &Packet| {
    ///         println!("{id} {direction:?} {}", packet.packet_type());
    ///     },
    /// );
    /// # let _ = options;
    /// ```
    pub fn observe_packets(mut self, observer: impl PacketObserver + 'static) -> Self {
        self.observer = Some(Arc::new(observer));
        self
    }

    /// The server address.
    pub fn get_server(&self) -> &str {
        &self.server
    }

    /// The protocol version.
    pub fn get_version(&self) -> ProtocolVersion {
        self.version
    }

    /// The client identifier.
    pub fn get_client_id(&self) -> &str {
        &self.client_id
    }

    /// The CONNECT properties.
    pub fn get_properties(&self) -> &ConnectProperties {
        &self.properties
    }

    /// Checks what the server would refuse as malformed, before connecting.
    pub(crate) fn validate(&self) -> Result<(), ClientError> {
        let v5 = self.version.is_v5();
        if self.properties.receive_maximum == Some(0) {
            return Err(ClientError::invalid(
                "a Receive Maximum of 0 is a protocol error (§3.1.2.11.3)",
            ));
        }
        if self.properties.maximum_packet_size == Some(0) {
            return Err(ClientError::invalid(
                "a Maximum Packet Size of 0 is a protocol error (§3.1.2.11.4)",
            ));
        }
        if !v5 && self.password.is_some() && self.username.is_none() {
            return Err(ClientError::invalid(
                "[MQTT-3.1.2-22] (3.1.1) a password needs a user name before MQTT 5.0",
            ));
        }
        if !v5 && self.client_id.is_empty() && !self.clean_start {
            return Err(ClientError::invalid(
                "[MQTT-3.1.3-7] (3.1.1) an empty client id needs clean session",
            ));
        }
        if self.version == ProtocolVersion::V31 && self.client_id.is_empty() {
            return Err(ClientError::invalid("MQTT 3.1 needs a client id"));
        }
        Ok(())
    }
}

/// Passwords are never printed (STYLE.md rule 15).
impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("server", &self.server)
            .field("version", &self.version)
            .field("client_id", &self.client_id)
            .field("clean_start", &self.clean_start)
            .field("keep_alive", &self.keep_alive)
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<REDACTED>"))
            .field("properties", &self.properties)
            .field("reconnect", &self.reconnect)
            .field("connect_timeout", &self.connect_timeout)
            .field("auto_topic_alias", &self.auto_topic_alias)
            .field("resubscribe", &self.resubscribe)
            .field("event_capacity", &self.event_capacity)
            .field("max_queued_requests", &self.max_queued_requests)
            .field("max_inflight", &self.max_inflight)
            .field("bind_address", &self.bind_address)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("proxy", &self.proxy)
            .field("tls", &self.tls)
            .field("websocket_path", &self.websocket_path)
            .field("unix_socket", &self.unix_socket)
            .field("observer", &self.observer.as_ref().map(|_| "<fn>"))
            .field("authenticator", &self.authenticator.is_some())
            .finish()
    }
}

/// When to reconnect after the connection drops: exponential backoff with jitter.
///
/// The n-th consecutive attempt (from 0) waits `min(initial × 2ⁿ, max)`, of which the
/// upper half is random ("equal jitter"), so that many clients dropped at once do not
/// come back at once. The count restarts after every successful CONNACK.
///
/// ```
/// use std::time::Duration;
/// use midge_client::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::exponential(Duration::from_millis(100), Duration::from_secs(1));
/// assert_eq!(policy.backoff(0, 0), Some(Duration::from_millis(50)));
/// assert_eq!(policy.backoff(3, 0), Some(Duration::from_millis(400)));
/// assert_eq!(policy.backoff(10, 0), Some(Duration::from_millis(500)));
/// assert_eq!(ReconnectPolicy::never().backoff(0, 0), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Whether to reconnect at all.
    enabled: bool,
    /// Delay before the first attempt.
    initial: Duration,
    /// Longest delay.
    max: Duration,
    /// Consecutive failed attempts before giving up; `None`: never give up.
    max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    /// Exponential from 250 ms up to 30 s, never giving up.
    fn default() -> Self {
        ReconnectPolicy::exponential(Duration::from_millis(250), Duration::from_secs(30))
    }
}

impl ReconnectPolicy {
    /// Never reconnect: a lost connection fails what is in flight and ends the client.
    pub fn never() -> Self {
        ReconnectPolicy {
            enabled: false,
            initial: Duration::ZERO,
            max: Duration::ZERO,
            max_attempts: Some(0),
        }
    }

    /// Exponential backoff from `initial` doubling up to `max`, never giving up.
    pub fn exponential(initial: Duration, max: Duration) -> Self {
        ReconnectPolicy {
            enabled: true,
            initial,
            max: max.max(initial),
            max_attempts: None,
        }
    }

    /// Gives up after `attempts` consecutive failed reconnects.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Whether this policy reconnects at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The delay before reconnect attempt `attempt` (0 for the first after a drop), with
    /// `random` choosing the jitter; `None` to give up.
    pub fn backoff(&self, attempt: u32, random: u64) -> Option<Duration> {
        if !self.enabled || self.max_attempts.is_some_and(|max| attempt >= max) {
            return None;
        }
        let full = self
            .initial
            .saturating_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
            .min(self.max);
        let half = full / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if nanos == 0 { 0 } else { random % (nanos + 1) };
        Some(half + Duration::from_nanos(jitter))
    }
}

/// A random `u64` from the standard library's per-process random hash keys: enough for
/// jitter and client ids, with no extra dependency and no clock.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x6d69_6467_6500_0000);
    hasher.finish()
}

/// `midge-` and 16 hex digits: 22 characters, within MQTT 3.1's limit of 23.
fn random_client_id() -> String {
    format!("midge-{:016x}", random_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let p = ReconnectPolicy::exponential(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 0..40 {
            let full = Duration::from_millis(100 << attempt.min(5)).min(Duration::from_secs(2));
            let low = p.backoff(attempt, 0).unwrap();
            let high = p.backoff(attempt, u64::MAX - 1).unwrap();
            assert_eq!(low, full / 2);
            assert!(high <= full && high >= low);
        }
        assert_eq!(p.clone().max_attempts(2).backoff(2, 0), None);
        assert!(p.clone().max_attempts(2).backoff(1, 0).is_some());
    }

    #[test]
    fn client_ids_are_random_and_short() {
        let a = random_client_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, random_client_id());
    }

    #[test]
    fn validation() {
        assert!(ConnectOptions::new().validate().is_ok());
        let bad = ConnectOptions::new()
            .version(ProtocolVersion::V311)
            .password("x");
        assert!(bad.validate().unwrap_err().is_invalid());
        assert!(ConnectOptions::new().receive_maximum(0).validate().is_err());
    }
}
