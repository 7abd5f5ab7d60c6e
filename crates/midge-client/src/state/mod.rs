//! The client's protocol state, sans I/O (DESIGN.md; STYLE.md rule 2).
//!
//! [`ClientState`] holds everything MQTT asks a client to remember — packet
//! identifiers, the QoS 1 and 2 flows in both directions, the server's Receive Maximum,
//! topic aliases both ways, the keep-alive deadlines, the subscriptions to make again —
//! and decides every protocol question. It reads no socket and no clock: the caller
//! passes `now` in and carries out what comes out. The tokio driver (`eventloop.rs`) is
//! one such caller; the unit tests (`tests/`) are another, with a virtual clock.
//!
//! Files: `mod.rs` (the state, connections, CONNACK, resume, keep alive),
//! `requests.rs` (publish, subscribe, unsubscribe, and sending what waits),
//! `acks.rs` (acknowledgements of our requests), `inbound.rs` (messages from the
//! server), `outbound.rs` (flows and packet ids), `alias.rs` (topic aliases), `auth.rs`
//! (enhanced authentication: AUTH challenges and re-authentication).
//!
//! # Calling contract
//! The methods come in four kinds (as in quinn-proto's `Connection`):
//! - **connection events**: [`ClientState::connect`] when a new transport is open
//!   (queues the CONNECT), [`ClientState::handle_packet`] for each decoded packet,
//!   [`ClientState::handle_connection_lost`] when the transport is gone,
//!   [`ClientState::handle_delivered`] when the application has taken a message;
//! - **requests**: [`ClientState::publish`], [`ClientState::subscribe`],
//!   [`ClientState::unsubscribe`], [`ClientState::reauthenticate`],
//!   [`ClientState::disconnect`], [`ClientState::close`], each with a token `T` that
//!   comes back in [`Output::Completed`];
//! - **time**: [`ClientState::handle_timeout`] once [`ClientState::poll_timeout`] has
//!   passed;
//! - **output**: after any of the above, drain [`ClientState::poll_transmit`] (packets to
//!   write, in order) and [`ClientState::poll_output`] (events for the application), then
//!   ask [`ClientState::poll_timeout`] again.
//!
//! With an [`crate::Authenticator`], the exchange before the CONNACK is more than one
//! round trip: keep reading, handling and writing until [`ClientState::is_connected`]
//! (or an `Err`). `connect` itself fails when the authenticator cannot start.
//!
//! An `Err` from `handle_packet` or `handle_timeout` means the connection must end:
//! write what `poll_transmit` still gives (a DISCONNECT with the reason, in 5.0), close
//! the transport and call `handle_connection_lost`. The state survives; the next
//! `connect` resumes the session, resending what was in flight ([MQTT-4.4.0-1]).

mod acks;
mod alias;
mod auth;
mod inbound;
mod outbound;
mod requests;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use midge_codec::{
    Ack, ConnAck, Connect, Disconnect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, SubAck,
    Subscribe, SubscribeProperties, SubscriptionOptions, TopicFilter, UnsubAck, Unsubscribe,
    UserProperty,
};

use crate::error::ClientError;
use crate::options::ConnectOptions;
use alias::{InboundAliases, OutboundAliases};
pub(crate) use auth::SharedAuthenticator;
pub use inbound::DeliveryAck;
use inbound::Inbound;
use outbound::{Control, Flow, Outbound, Stage};

/// What the state machine reports to its caller, from [`ClientState::poll_output`].
#[derive(Debug)]
pub enum Output<T> {
    /// The server accepted the connection; its CONNACK.
    Connected(Box<ConnAck>),
    /// An application message arrived, its topic alias resolved and removed. Hand it
    /// to the application, then give `ack` (QoS 1 and 2) to
    /// [`ClientState::handle_delivered`]: only then is the PUBACK or PUBREC sent, so
    /// that an application that falls behind holds the server back through our Receive
    /// Maximum instead of piling messages up in memory.
    Message {
        /// The message.
        publish: Publish,
        /// What acknowledges it once delivered; `None` for QoS 0.
        ack: Option<DeliveryAck>,
    },
    /// A request finished.
    Completed(T, Result<Completion, ClientError>),
}

/// How a request finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// A publication.
    Published(Published),
    /// A subscription: the SUBACK.
    Subscribed(SubAck),
    /// An unsubscription: the UNSUBACK.
    Unsubscribed(UnsubAck),
    /// A re-authentication: the server's AUTH Success.
    Reauthenticated(Box<midge_codec::Auth>),
}

/// The outcome of a publication that the server accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Published {
    /// The PUBACK (QoS 1) or PUBREC (QoS 2); `None` for QoS 0, which is done once
    /// handed to the connection.
    pub ack: Option<Ack>,
    /// The PUBCOMP (QoS 2). `None` for QoS 0 and 1, and for a QoS 2 message whose
    /// session the server lost after its PUBREC (the server owned the message by then).
    pub complete: Option<Ack>,
}

impl Published {
    /// The reason code of the PUBACK or PUBREC; Success for QoS 0. A success code
    /// other than 0x00 is 0x10 (No matching subscribers).
    pub fn reason_code(&self) -> ReasonCode {
        self.ack
            .as_ref()
            .map_or(ReasonCode::Success, |ack| ack.reason_code)
    }
}

/// Where the current transport stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No transport: requests queue up.
    Idle,
    /// CONNECT queued, CONNACK awaited.
    Connecting,
    /// CONNACK received.
    Connected,
    /// Disconnected by the application or given up: requests fail.
    Closed,
}

/// What the server's CONNACK allows (5.0; the defaults hold for 3.x).
#[derive(Debug, Clone, Copy)]
struct ServerLimits {
    /// QoS 1/2 publications it accepts unacknowledged ([MQTT-3.3.4-7]).
    receive_maximum: u16,
    /// Largest packet it accepts; `None`: the protocol's maximum.
    maximum_packet_size: Option<u32>,
    /// Highest QoS it accepts.
    maximum_qos: QoS,
    /// Whether it accepts retained messages.
    retain_available: bool,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            receive_maximum: u16::MAX,
            maximum_packet_size: None,
            maximum_qos: QoS::ExactlyOnce,
            retain_available: true,
        }
    }
}

/// A subscription the server granted, kept to be made again on a new session.
#[derive(Debug, Clone)]
struct Granted {
    /// The options asked for.
    options: SubscriptionOptions,
    /// Its Subscription Identifier.
    id: Option<u32>,
    /// The user properties of its SUBSCRIBE.
    user_properties: Vec<UserProperty>,
}

/// One client's MQTT state across connections. See the module docs for the calling
/// contract; `T` is the caller's token for a request (the driver uses a oneshot sender).
#[derive(Debug)]
pub struct ClientState<T> {
    /// The CONNECT sent on every connection. Its client id becomes the server's assigned
    /// one; its clean start is recomputed for each connection.
    connect: Connect,
    /// Clean start the application asked for.
    clean_start: bool,
    /// Whether a CONNACK has ever accepted us: reconnects may then resume.
    connected_before: bool,
    /// Whether the CONNECT in progress asked to resume the session.
    resuming: bool,
    /// Where the transport stands.
    phase: Phase,
    /// Session Expiry Interval in effect (CONNECT's, or the CONNACK's override).
    session_expiry: u32,
    /// What the server allows on this connection.
    server: ServerLimits,
    /// Keep alive in effect: ours, or the Server Keep Alive ([MQTT-3.1.2-21]).
    keep_alive: Duration,
    /// When the last packet went out: a PINGREQ is due one keep alive later
    /// ([MQTT-3.1.2-20]).
    last_sent: Option<Instant>,
    /// When the oldest unanswered PINGREQ went out; the server is presumed gone one keep
    /// alive later.
    ping_sent: Option<Instant>,
    /// Replace topics by aliases when the server allows.
    auto_topic_alias: bool,
    /// Subscribe again when a reconnect finds no session.
    resubscribe: bool,
    /// Most requests waiting before [`ClientState::can_accept`] says no.
    max_queued: usize,
    /// Our Receive Maximum: QoS 2 messages we accept awaiting PUBREL ([MQTT-3.3.4-9]).
    receive_maximum: u16,
    /// Outbound flows, packet ids, waiting requests.
    outbound: Outbound<T>,
    /// Inbound QoS 1 messages not yet delivered, and QoS 2 messages until their PUBREL,
    /// by packet id: a resent PUBLISH with one of these ids is not delivered again
    /// ([MQTT-4.3.3-10]); their number is bounded by our Receive Maximum
    /// ([MQTT-3.3.4-9]).
    inbound: HashMap<u16, Inbound>,
    /// Counts sessions: bumped when the server has lost ours, so that acknowledgements
    /// of messages from the old one are not sent.
    session: u64,
    /// Topic aliases the server set on this connection.
    aliases_in: InboundAliases,
    /// Topic aliases we set on this connection.
    aliases_out: OutboundAliases,
    /// Subscriptions granted, by filter, for resubscribing.
    subscriptions: HashMap<TopicFilter, Granted>,
    /// Packets to write, in order.
    transmit: VecDeque<Packet>,
    /// Events for the caller.
    outputs: VecDeque<Output<T>>,
    /// The application's enhanced authentication method, if any.
    authenticator: Option<auth::SharedAuthenticator>,
    /// The request of the re-authentication under way.
    reauth: Option<T>,
    /// Our own cap on QoS 1 and 2 publications in flight, below the server's Receive
    /// Maximum.
    max_inflight: u16,
}

impl<T> ClientState<T> {
    /// A state for `options`, with no connection yet.
    pub fn new(options: &ConnectOptions) -> Self {
        let connect = Connect {
            protocol: options.version,
            clean_start: options.clean_start,
            keep_alive: options.keep_alive,
            client_id: options.client_id.clone(),
            will: options.will.clone(),
            username: options.username.clone(),
            password: options.password.clone(),
            properties: if options.version.is_v5() {
                options.properties.clone()
            } else {
                Default::default()
            },
        };
        ClientState {
            session_expiry: connect.properties.session_expiry_interval.unwrap_or(0),
            receive_maximum: connect.properties.receive_maximum.unwrap_or(u16::MAX),
            aliases_in: InboundAliases::new(connect.properties.topic_alias_maximum.unwrap_or(0)),
            clean_start: options.clean_start,
            keep_alive: Duration::from_secs(u64::from(options.keep_alive)),
            connect,
            connected_before: false,
            resuming: false,
            phase: Phase::Idle,
            server: ServerLimits::default(),
            last_sent: None,
            ping_sent: None,
            auto_topic_alias: options.auto_topic_alias,
            resubscribe: options.resubscribe,
            max_queued: options.max_queued_requests,
            outbound: Outbound::default(),
            inbound: HashMap::new(),
            session: 0,
            aliases_out: OutboundAliases::default(),
            subscriptions: HashMap::new(),
            transmit: VecDeque::new(),
            outputs: VecDeque::new(),
            authenticator: options.authenticator.clone(),
            reauth: None,
            max_inflight: options.max_inflight.unwrap_or(u16::MAX),
        }
    }

    /// The protocol version.
    pub fn version(&self) -> ProtocolVersion {
        self.connect.protocol
    }

    /// The client identifier: the configured one, or the one the server assigned.
    pub fn client_id(&self) -> &str {
        &self.connect.client_id
    }

    /// Whether a CONNACK has accepted the current transport.
    pub fn is_connected(&self) -> bool {
        self.phase == Phase::Connected
    }

    /// Whether the client is closed for good.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether the session outlives a connection, so that a reconnect resumes it: in
    /// 5.0 a Session Expiry Interval above 0, in 3.x a clean session of 0.
    pub fn session_persists(&self) -> bool {
        if self.version().is_v5() {
            self.session_expiry > 0
        } else {
            !self.clean_start
        }
    }

    /// Requests sent and not yet acknowledged.
    pub fn inflight_len(&self) -> usize {
        self.outbound.flows_len()
    }

    /// Requests waiting to be sent (for a connection, or for room in the server's
    /// Receive Maximum).
    pub fn queued_len(&self) -> usize {
        self.outbound.pending_len()
    }

    /// Whether the caller should hand over more requests: false once
    /// `max_queued_requests` wait, so that memory stays bounded.
    pub fn can_accept(&self) -> bool {
        self.outbound.pending_len() < self.max_queued
    }

    /// Starts a connection on a new transport: queues the CONNECT. A reconnect asks to
    /// resume (clean start 0) when the session outlives the connection. Fails only when
    /// the [`crate::Authenticator`] cannot start; nothing is queued then.
    pub fn connect(&mut self, now: Instant) -> Result<(), ClientError> {
        if self.phase == Phase::Closed {
            return Ok(());
        }
        self.auth_connect()?;
        self.resuming = if self.connected_before {
            self.session_persists() || !self.clean_start
        } else {
            !self.clean_start
        };
        self.connect.clean_start = !self.resuming;
        self.transmit.clear();
        self.transmit
            .push_back(Packet::Connect(Box::new(self.connect.clone())));
        self.phase = Phase::Connecting;
        self.last_sent = Some(now);
        self.ping_sent = None;
        Ok(())
    }

    /// The transport is gone. Flows in flight are kept, to be resent on resume; a
    /// re-authentication under way fails.
    pub fn handle_connection_lost(&mut self, _now: Instant) {
        self.abort_reauth(&ClientError::connection_lost(
            "the connection was lost during re-authentication",
        ));
        if self.phase != Phase::Closed {
            self.phase = Phase::Idle;
        }
        self.transmit.clear();
        self.ping_sent = None;
    }

    /// When [`ClientState::handle_timeout`] is due: the next PINGREQ, or the deadline
    /// for the PINGRESP. `None` without a connection or without keep alive.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Connected || self.keep_alive.is_zero() {
            return None;
        }
        let ping_due = self.last_sent.map(|t| t + self.keep_alive);
        let pong_due = self.ping_sent.map(|t| t + self.keep_alive);
        match (ping_due, pong_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Keep alive: sends a PINGREQ when nothing went out for a keep alive
    /// ([MQTT-3.1.2-20]); fails when a PINGREQ went unanswered for a keep alive.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ClientError> {
        if self.phase != Phase::Connected || self.keep_alive.is_zero() {
            return Ok(());
        }
        if let Some(sent) = self.ping_sent {
            if now >= sent + self.keep_alive {
                return Err(ClientError::timeout(format!(
                    "no PINGRESP within the keep alive of {} s",
                    self.keep_alive.as_secs()
                )));
            }
        }
        if self.last_sent.is_none_or(|t| now >= t + self.keep_alive) {
            self.transmit.push_back(Packet::PingReq);
            self.last_sent = Some(now);
            self.ping_sent.get_or_insert(now);
        }
        Ok(())
    }

    /// The next packet to write, if any.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Packet> {
        let packet = self.transmit.pop_front()?;
        self.last_sent = Some(now);
        Some(packet)
    }

    /// The next event for the caller, if any.
    pub fn poll_output(&mut self) -> Option<Output<T>> {
        self.outputs.pop_front()
    }

    fn complete(&mut self, token: T, result: Result<Completion, ClientError>) {
        self.outputs.push_back(Output::Completed(token, result));
    }

    fn complete_opt(&mut self, token: Option<T>, result: Result<Completion, ClientError>) {
        if let Some(token) = token {
            self.complete(token, result);
        }
    }

    /// Ends the session's connection normally: queues `disconnect` if connected, and
    /// fails every request still waiting or in flight. The state is closed for good.
    pub fn disconnect(&mut self, disconnect: Disconnect) {
        if self.phase == Phase::Connected {
            self.transmit.push_back(Packet::Disconnect(disconnect));
        }
        self.close(ClientError::closed());
    }

    /// Closes the state for good (the caller gives up reconnecting): every request still
    /// waiting or in flight fails with `error`.
    pub fn close(&mut self, error: ClientError) {
        self.phase = Phase::Closed;
        self.abort_reauth(&error);
        for flow in self.outbound.drain_in_order() {
            match flow {
                Flow::Publish { token, .. } => self.complete(token, Err(error.clone())),
                Flow::Subscribe { token, .. } | Flow::Unsubscribe { token, .. } => {
                    self.complete_opt(token, Err(error.clone()))
                }
            }
        }
        while let Some((_, token)) = self.outbound.pending_publish.pop_front() {
            self.complete(token, Err(error.clone()));
        }
        while let Some(control) = self.outbound.pending_control.pop_front() {
            let (Control::Subscribe { token, .. } | Control::Unsubscribe { token, .. }) = control;
            self.complete_opt(token, Err(error.clone()));
        }
    }

    /// Handles one packet from the server. `Err`: the connection must end (see the
    /// module docs); for a protocol error a 5.0 DISCONNECT with its reason is queued.
    pub fn handle_packet(&mut self, packet: Packet, now: Instant) -> Result<(), ClientError> {
        let result = match self.phase {
            Phase::Connecting => match packet {
                Packet::ConnAck(ack) => self.handle_connack(*ack),
                Packet::Auth(auth) => self.handle_auth(auth),
                other => Err(ClientError::protocol(
                    ReasonCode::ProtocolError,
                    format!("[MQTT-3.2.0-1] {} before CONNACK", other.packet_type()),
                )),
            },
            Phase::Connected => self.handle_connected_packet(packet, now),
            // Packets after the transport was declared lost or closed are stale.
            Phase::Idle | Phase::Closed => Ok(()),
        };
        if let Err(e) = &result {
            self.on_error(e);
            self.abort_reauth(e);
        }
        result
    }

    /// Queues the DISCONNECT that tells a 5.0 server why we close ([MQTT-4.13.1-1]'s
    /// client counterpart, §4.13).
    fn on_error(&mut self, error: &ClientError) {
        if !error.is_protocol() || !self.version().is_v5() || self.phase != Phase::Connected {
            return;
        }
        let reason = error
            .reason_code()
            .filter(|r| r.is_valid_for(midge_codec::PacketType::Disconnect))
            .unwrap_or(ReasonCode::ProtocolError);
        self.transmit
            .push_back(Packet::Disconnect(Disconnect::new(reason)));
    }

    /// A decode error on the current connection: queues the 5.0 DISCONNECT with its
    /// reason code. The caller then ends the connection.
    pub fn handle_decode_error(&mut self, error: &ClientError) {
        self.on_error(error);
    }

    fn handle_connected_packet(
        &mut self,
        packet: Packet,
        _now: Instant,
    ) -> Result<(), ClientError> {
        match packet {
            Packet::Publish(publish) => self.handle_publish(publish),
            Packet::PubAck(ack) => {
                self.handle_puback(ack);
                Ok(())
            }
            Packet::PubRec(ack) => {
                self.handle_pubrec(ack);
                Ok(())
            }
            Packet::PubRel(ack) => {
                self.handle_pubrel(ack);
                Ok(())
            }
            Packet::PubComp(ack) => {
                self.handle_pubcomp(ack);
                Ok(())
            }
            Packet::SubAck(ack) => {
                self.handle_suback(ack);
                Ok(())
            }
            Packet::UnsubAck(ack) => {
                self.handle_unsuback(ack);
                Ok(())
            }
            Packet::PingResp => {
                self.ping_sent = None;
                Ok(())
            }
            Packet::Disconnect(d) => Err(ClientError::server_disconnect(d)),
            Packet::ConnAck(_) => Err(ClientError::protocol(
                ReasonCode::ProtocolError,
                "[MQTT-3.2.0-2] a second CONNACK",
            )),
            Packet::Auth(auth) => self.handle_auth(auth),
            // The client decoder refuses packets only clients send.
            other => Err(ClientError::protocol(
                ReasonCode::ProtocolError,
                format!("{} sent by the server", other.packet_type()),
            )),
        }
    }

    fn handle_connack(&mut self, ack: ConnAck) -> Result<(), ClientError> {
        if ack.reason_code.is_error() {
            self.phase = Phase::Idle;
            return Err(ClientError::refused(
                ack.reason_code,
                ack.properties.reason_string.as_deref(),
            ));
        }
        self.auth_connack(&ack)?;
        let p = &ack.properties;
        self.server = ServerLimits {
            receive_maximum: p
                .receive_maximum
                .unwrap_or(u16::MAX)
                .min(self.max_inflight)
                .max(1),
            maximum_packet_size: p.maximum_packet_size,
            maximum_qos: p.maximum_qos.unwrap_or(QoS::ExactlyOnce),
            retain_available: p.retain_available.unwrap_or(true),
        };
        if let Some(keep_alive) = p.server_keep_alive {
            // [MQTT-3.1.2-21], [MQTT-3.2.2-21].
            self.keep_alive = Duration::from_secs(u64::from(keep_alive));
        }
        if let Some(id) = &p.assigned_client_identifier {
            // Reconnects must name the session the server made for us.
            self.connect.client_id = id.clone();
        }
        if let Some(expiry) = p.session_expiry_interval {
            self.session_expiry = expiry;
        }
        self.aliases_out.reset(if self.version().is_v5() {
            p.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        });
        self.aliases_in.reset();
        self.phase = Phase::Connected;
        self.connected_before = true;
        self.ping_sent = None;
        if ack.session_present && self.resuming {
            self.resend();
        } else {
            self.restart_session();
        }
        self.outputs.push_back(Output::Connected(Box::new(ack)));
        self.pump();
        Ok(())
    }

    /// The session was resumed: resends, in their original order and with their
    /// original packet ids, the PUBLISHes not acknowledged (DUP set) and the PUBRELs not
    /// completed ([MQTT-4.4.0-1], [MQTT-4.6.0-1], [MQTT-3.3.1-1]); a QoS 2 PUBLISH is
    /// never resent after its PUBREL ([MQTT-4.3.3-6]). SUBSCRIBE and UNSUBSCRIBE not
    /// acknowledged go again too, so that their requests complete.
    fn resend(&mut self) {
        for id in self.outbound.ids_in_order() {
            let packet = match self.outbound.get_mut(id) {
                Some(Flow::Publish {
                    publish,
                    stage: Stage::Sent,
                    ..
                }) => {
                    let mut again = publish.clone();
                    again.dup = true;
                    self.send_publish(again);
                    continue;
                }
                Some(Flow::Publish {
                    stage: Stage::Released(_),
                    ..
                }) => Packet::PubRel(Ack::new(id)),
                Some(Flow::Subscribe {
                    filters,
                    properties,
                    ..
                }) => Packet::Subscribe(Subscribe {
                    packet_id: id,
                    filters: filters.clone(),
                    properties: properties.clone(),
                }),
                Some(Flow::Unsubscribe {
                    filters,
                    properties,
                    ..
                }) => Packet::Unsubscribe(Unsubscribe {
                    packet_id: id,
                    filters: filters.clone(),
                    properties: properties.clone(),
                }),
                None => continue,
            };
            self.transmit.push_back(packet);
        }
    }

    /// The server has no session for us ([MQTT-3.2.2-5]): the protocol state is
    /// discarded, but no request is lost. Publications not yet acknowledged are sent
    /// again as new messages (DUP 0, new packet ids) ahead of those waiting; a QoS 2
    /// message already PUBREC'd completes (the server owned it); SUBSCRIBE/UNSUBSCRIBE in
    /// flight are sent again; and, with `resubscribe`, the granted subscriptions are
    /// made again first.
    fn restart_session(&mut self) {
        self.inbound.clear();
        self.session += 1;
        let mut republish = Vec::new();
        let mut controls = Vec::new();
        for flow in self.outbound.drain_in_order() {
            match flow {
                Flow::Publish {
                    stage: Stage::Released(rec),
                    token,
                    ..
                } => {
                    let done = Published {
                        ack: Some(rec),
                        complete: None,
                    };
                    self.complete(token, Ok(Completion::Published(done)));
                }
                Flow::Publish {
                    mut publish, token, ..
                } => {
                    publish.packet_id = None;
                    publish.dup = false;
                    republish.push((publish, token));
                }
                other => controls.extend(other.into_control()),
            }
        }
        for item in republish.into_iter().rev() {
            self.outbound.pending_publish.push_front(item);
        }
        for control in controls.into_iter().rev() {
            self.outbound.pending_control.push_front(control);
        }
        if self.resubscribe {
            let mut granted: Vec<_> = self.subscriptions.drain().collect();
            granted.sort_by(|a, b| a.0.cmp(&b.0));
            for (filter, g) in granted.into_iter().rev() {
                self.outbound
                    .pending_control
                    .push_front(Control::Subscribe {
                        filters: vec![(filter, g.options)],
                        properties: SubscribeProperties {
                            subscription_identifier: g.id,
                            user_properties: g.user_properties,
                        },
                        token: None,
                    });
            }
        } else {
            self.subscriptions.clear();
        }
    }
}
