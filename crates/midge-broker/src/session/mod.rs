//! The session state machine, sans I/O (DESIGN.md, STYLE.md rule 2).
//!
//! A [`Session`] takes inputs — a decoded packet from its client
//! ([`Session::handle_packet`]), a message routed to it ([`Session::handle_delivery`]),
//! the passing of time ([`Session::handle_timeout`]) — and appends [`Action`]s for the
//! caller to carry out: packets to send, messages to route, subscriptions to add or
//! remove, the connection to close. It never does I/O and never reads the clock: every
//! input takes `now`, and [`Session::poll_deadline`] says when to call
//! [`Session::handle_timeout`] next.
//!
//! A session outlives its connections: on a new connection the caller calls
//! [`Session::connect`], which resends unacknowledged messages with DUP set
//! ([MQTT-4.4.0-1]).
//!
//! Calling contract for the I/O shell (`connection.rs`):
//! 1. `connect()` once per network connection, after the CONNECT has been accepted;
//! 2. for each decoded packet, `handle_packet()`; for each routed message, while
//!    `has_room()`, `handle_delivery()`;
//! 3. carry out the actions in order; sleep until `poll_deadline()` and then call
//!    `handle_timeout()`;
//! 4. when the connection ends, keep the `Session` if it is persistent.

#[cfg(test)]
mod auth_tests;
mod inflight;
#[cfg(test)]
mod persist_tests;
mod subscriptions;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use midge_codec::{
    Ack, AckProperties, ConnAck, ConnAckProperties, Connect, Disconnect, Packet, PacketId,
    ProtocolVersion, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions, TopicFilter,
    TopicName, UnsubAck, Unsubscribe,
};

use crate::message::{Delivery, Message, PublishForm};
use crate::router::trie::FastSet;
use crate::store::OutgoingState;
pub use inflight::Outgoing;
pub use subscriptions::Subscriptions;

/// The broker-wide settings a session obeys.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// QoS 1/2 publications a client may have unacknowledged at once (our Receive
    /// Maximum, from `max_inflight_messages`).
    pub receive_maximum: u16,
    /// Largest packet accepted from a client.
    pub max_packet_size: u32,
    /// Highest topic alias a client may use.
    pub topic_alias_maximum: u16,
    /// Largest keep alive accepted; 0: no limit.
    pub max_keepalive: u16,
    /// Whether retained messages are supported.
    pub retain_available: bool,
    /// Highest QoS supported.
    pub max_qos: QoS,
    /// Deliver at the subscription's QoS even when published at a lower one (Mosquitto's
    /// `upgrade_outgoing_qos`).
    pub upgrade_outgoing_qos: bool,
    /// Largest PUBLISH payload accepted, in bytes; 0: no limit (Mosquitto's
    /// `message_size_limit`).
    pub message_size_limit: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            receive_maximum: 20,
            max_packet_size: midge_codec::MAX_PACKET_SIZE as u32,
            topic_alias_maximum: 10,
            max_keepalive: 0,
            retain_available: true,
            max_qos: QoS::ExactlyOnce,
            upgrade_outgoing_qos: false,
            message_size_limit: 0,
        }
    }
}

/// What the caller must do, in order.
#[derive(Debug)]
pub enum Action {
    /// Send this packet to the client.
    Send(Packet),
    /// Send the message's shared encoding in `form` ([`Message::encoded`]), with this
    /// packet id (QoS 1 and 2): encoded once for every subscriber that gets it in the
    /// same form. Until a second subscriber has it made, the PUBLISH is written
    /// straight from the message ([`Message::write_publish`]). The action holds the message, not a
    /// copy of the encoding's handle: a QoS 0 delivery hands its own over.
    SendShared {
        /// The message.
        message: Arc<Message>,
        /// The form of its shared encoding.
        form: PublishForm,
        /// The packet id to write in.
        packet_id: Option<PacketId>,
    },
    /// Route this message to its subscribers (and store it if retained).
    Publish(Arc<Message>),
    /// Add or replace a subscription; then deliver the retained messages the
    /// retain-handling option asks for.
    Subscribe {
        /// The filter, `$share/` prefix included.
        filter: TopicFilter,
        /// Options with the granted QoS.
        options: SubscriptionOptions,
        /// Subscription identifier, if given.
        id: Option<u32>,
        /// Whether the subscription existed before (for Retain Handling 1).
        existed: bool,
    },
    /// Remove a subscription.
    Unsubscribe(TopicFilter),
    /// Write this change of a persistent session to the persistence store (only for a
    /// session marked with [`Session::set_durable`], and for deliveries the store holds).
    /// The packets that follow it wait until it is durable when [`Change::gates`] says so.
    Persist(Change),
    /// Close the connection. `reason` is sent in a DISCONNECT to 5.0 clients when the
    /// server closes; `None` when the client disconnected normally.
    Close {
        /// Why the server closes, if it does.
        reason: Option<ReasonCode>,
        /// Whether the will message is published.
        publish_will: bool,
    },
}

/// A change of a persistent session's stored state (`crate::durable`). `seq` numbers a
/// delivery in the store ([`Delivery::seq`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// An incoming QoS 2 PUBLISH was taken under this packet id: PUBREC follows.
    IncomingAdded(u16),
    /// PUBREL for this id: PUBCOMP follows, and the id may carry a new message.
    IncomingReleased(u16),
    /// A QoS 2 delivery is sent under this packet id: the PUBLISH follows.
    OutgoingSent {
        /// The delivery.
        seq: u64,
        /// Its packet id.
        id: u16,
    },
    /// PUBREC received for a QoS 2 delivery: the PUBREL follows.
    OutgoingReleased {
        /// The delivery.
        seq: u64,
        /// Its packet id.
        id: u16,
    },
    /// A delivery's flow ended (acknowledged, expired, refused or too big).
    OutgoingDone {
        /// The delivery.
        seq: u64,
    },
    /// The subscriptions changed: the SUBACK or UNSUBACK follows.
    Subscriptions,
}

impl Change {
    /// Whether the packets after it wait until it is durable. Each packet that waits
    /// would otherwise let a crash break a promise: a PUBREC or PUBCOMP whose id state
    /// is lost lets a duplicate through or drops a message; a QoS 2 PUBLISH or PUBREL
    /// whose state is lost is resent in a form the client takes as new; a SUBACK for a
    /// lost subscription. A finished flow's removal need not wait: if it is lost, the
    /// message or PUBREL is resent, which the protocol allows.
    pub fn gates(self) -> bool {
        !matches!(self, Change::OutgoingDone { .. })
    }
}

/// A persistent session as the store gave it back at restart (see
/// [`Session::restore`]).
#[derive(Debug)]
pub struct Resumed {
    /// Protocol version of its last connection.
    pub version: ProtocolVersion,
    /// Session Expiry Interval in seconds.
    pub session_expiry: u32,
    /// Last packet id handed out.
    pub last_packet_id: u16,
    /// The subscriptions.
    pub subscriptions: Subscriptions,
    /// Incoming QoS 2 packet ids awaiting PUBREL.
    pub incoming_qos2: HashSet<u16>,
    /// Outgoing deliveries in order, with where each was in its flow.
    pub outgoing: Vec<(Delivery, OutgoingState)>,
}

/// The access decisions a session asks for, on the client's behalf: set by the I/O shell
/// with [`Session::set_authorizer`] (the broker's answers come from `auth::acl`, with the
/// ACL current at the time of asking). Implementations decide and do nothing else; a
/// session without one allows everything.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Whether the client may publish to `topic` (after topic-alias resolution).
    fn may_publish(&self, topic: &str) -> bool;
    /// Whether the client may subscribe to `filter`.
    fn may_subscribe(&self, filter: &str) -> bool;
    /// Whether a message published to `topic` may be delivered to the client.
    fn may_receive(&self, topic: &str) -> bool;
}

/// A subscription held by a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSubscription {
    /// Options with the granted QoS.
    pub options: SubscriptionOptions,
    /// Subscription identifier (never 0: the codec refuses it, §3.8.2.1.2). Non-zero, so
    /// that the session's list entry with its filter takes 40 bytes, not 48.
    pub id: Option<NonZeroU32>,
}

/// One client's session. See the module docs for the calling contract.
#[derive(Debug)]
pub struct Session {
    /// The client identifier, shared with routed messages as their origin.
    client_id: Arc<str>,
    /// Broker-wide settings, shared by all sessions.
    config: Arc<SessionConfig>,
    /// Protocol version of the current (or last) connection.
    version: ProtocolVersion,
    /// Keep alive of the current connection in seconds; zero: none.
    keep_alive: u16,
    /// When the last packet arrived (for the keep-alive deadline).
    last_received: Instant,
    /// Session expiry interval in seconds; `u32::MAX` never expires.
    session_expiry: u32,
    /// Whether the CONNECT set a session expiry of 0 (checked on DISCONNECT, §3.14.2.2.2).
    connect_expiry_zero: bool,
    /// The client's Maximum Packet Size.
    client_max_packet_size: u32,
    /// Whether reason strings may be sent on packets other than CONNACK/DISCONNECT.
    request_problem_information: bool,
    /// Subscriptions by filter (`$share/…` included).
    subscriptions: Subscriptions,
    /// Outgoing QoS 1/2 flows and the queue behind the client's Receive Maximum.
    outgoing: Outgoing,
    /// Packet ids of incoming QoS 2 messages that await PUBREL ([MQTT-4.3.3-10]).
    incoming_qos2: IdSet,
    /// Topic aliases the client set on this connection ([MQTT-3.3.2-7]: not carried over).
    /// (Boxed: most connections never use aliases, and an empty map is six words.)
    #[allow(clippy::box_collection)]
    aliases_in: Option<Box<HashMap<u16, TopicName>>>,
    /// Access decisions for the current connection's client; `None`: everything allowed.
    authorizer: Option<Arc<dyn Authorizer>>,
    /// Whether the session is kept in the persistence store: it then reports its
    /// changes as [`Action::Persist`].
    durable: bool,
}

/// A set of packet ids, boxed from its first id on: most sessions never have one, and an
/// empty `HashSet` is six words. (Kept once made: a QoS 2 publisher would otherwise
/// allocate it again for each message.) A [`FastSet`], as the outgoing flights are in
/// a `FastMap`: SipHash was 1.3% of a QoS 2 broker's time.
#[derive(Debug, Default)]
#[allow(clippy::box_collection)] // The point: one word while empty.
struct IdSet(Option<Box<FastSet<u16>>>);

impl IdSet {
    fn contains(&self, id: &u16) -> bool {
        self.0.as_ref().is_some_and(|set| set.contains(id))
    }

    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |set| set.len())
    }

    fn insert(&mut self, id: u16) -> bool {
        self.0.get_or_insert_with(Box::default).insert(id)
    }

    fn remove(&mut self, id: &u16) -> bool {
        self.0.as_mut().is_some_and(|set| set.remove(id))
    }
}

impl From<HashSet<u16>> for IdSet {
    fn from(set: HashSet<u16>) -> Self {
        IdSet((!set.is_empty()).then(|| Box::new(set.into_iter().collect())))
    }
}

impl Session {
    /// A new, empty session.
    pub fn new(client_id: Arc<str>, config: impl Into<Arc<SessionConfig>>, now: Instant) -> Self {
        Session {
            client_id,
            config: config.into(),
            version: ProtocolVersion::V311,
            keep_alive: 0,
            last_received: now,
            session_expiry: 0,
            connect_expiry_zero: true,
            client_max_packet_size: midge_codec::MAX_PACKET_SIZE as u32,
            request_problem_information: true,
            subscriptions: Subscriptions::default(),
            outgoing: Outgoing::default(),
            incoming_qos2: IdSet::default(),
            aliases_in: None,
            authorizer: None,
            durable: false,
        }
    }

    /// A persistent session as the store kept it: disconnected, with its subscriptions,
    /// its incoming QoS 2 ids, and its deliveries (inflight ones under their packet ids,
    /// to be resent on the next connection; queued ones behind them).
    pub fn restore(
        client_id: Arc<str>,
        config: impl Into<Arc<SessionConfig>>,
        now: Instant,
        r: Resumed,
    ) -> Self {
        let mut session = Session::new(client_id, config, now);
        session.version = r.version;
        session.session_expiry = r.session_expiry;
        session.connect_expiry_zero = r.session_expiry == 0;
        session.subscriptions = r.subscriptions;
        session.incoming_qos2 = IdSet::from(r.incoming_qos2);
        session.outgoing.restore(r.last_packet_id, r.outgoing);
        session.durable = true;
        session
    }

    /// Marks the session as kept in the persistence store, or not.
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    /// Whether the session is kept in the persistence store.
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// The last packet id handed out to an outgoing message.
    pub fn last_packet_id(&self) -> u16 {
        self.outgoing.last_packet_id()
    }

    /// The client identifier.
    pub fn client_id(&self) -> &Arc<str> {
        &self.client_id
    }

    /// Protocol version of the current connection.
    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Session expiry interval in seconds (`u32::MAX`: never).
    pub fn session_expiry(&self) -> u32 {
        self.session_expiry
    }

    /// The session's subscriptions.
    pub fn subscriptions(&self) -> &Subscriptions {
        &self.subscriptions
    }

    /// Number of QoS 1/2 messages sent and not yet acknowledged.
    pub fn inflight_len(&self) -> usize {
        self.outgoing.inflight_len()
    }

    /// (store sequence number, packet id) of each stored QoS 1 message sent and not yet
    /// acknowledged: the store records them when the connection ends, so that after a
    /// restart they are resent with DUP under the same packet id ([MQTT-4.4.0-1]).
    pub fn qos1_sent(&self) -> Vec<(u64, u16)> {
        self.outgoing.qos1_sent()
    }

    /// Number of messages waiting for room in the client's Receive Maximum.
    pub fn pending_len(&self) -> usize {
        self.outgoing.pending_len()
    }

    /// Starts a new network connection on this session: records what the CONNECT
    /// negotiated, sends the CONNACK, then resends unacknowledged messages with DUP and
    /// PUBRELs ([MQTT-4.4.0-1]) and what was queued.
    pub fn connect(
        &mut self,
        connect: &Connect,
        session_present: bool,
        assigned_client_id: Option<&str>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let v5 = connect.protocol.is_v5();
        self.version = connect.protocol;
        self.last_received = now;
        let mut keep_alive = connect.keep_alive;
        let mut server_keep_alive = None;
        if v5
            && self.config.max_keepalive > 0
            && (keep_alive == 0 || keep_alive > self.config.max_keepalive)
        {
            keep_alive = self.config.max_keepalive;
            server_keep_alive = Some(keep_alive);
        }
        self.keep_alive = keep_alive;
        let props = &connect.properties;
        self.session_expiry = if v5 {
            props.session_expiry_interval.unwrap_or(0)
        } else if connect.clean_start {
            0
        } else {
            u32::MAX
        };
        self.connect_expiry_zero = self.session_expiry == 0;
        self.client_max_packet_size = props
            .maximum_packet_size
            .unwrap_or(midge_codec::MAX_PACKET_SIZE as u32);
        self.request_problem_information = props.request_problem_information.unwrap_or(true);
        // [MQTT-3.3.4-9]: never more than the client's Receive Maximum in flight, and
        // never more than `max_inflight_messages` either (a 3.1.1 client has no Receive
        // Maximum: without this bound one that never acknowledges would hold 65,535).
        self.outgoing.set_receive_maximum(
            props
                .receive_maximum
                .unwrap_or(u16::MAX)
                .min(self.config.receive_maximum),
        );
        self.aliases_in = None;
        self.outgoing.reset_topic_aliases(if v5 {
            props.topic_alias_maximum.unwrap_or(0)
        } else {
            0
        });

        let mut ack = ConnAck {
            // MQTT 3.1 has no Session Present flag: that CONNACK byte is reserved.
            session_present: session_present && self.version != ProtocolVersion::V31,
            reason_code: ReasonCode::Success,
            properties: ConnAckProperties::default(),
        };
        if v5 {
            let p = &mut ack.properties;
            p.receive_maximum = Some(self.config.receive_maximum);
            p.topic_alias_maximum = Some(self.config.topic_alias_maximum);
            if self.config.max_packet_size < midge_codec::MAX_PACKET_SIZE as u32 {
                p.maximum_packet_size = Some(self.config.max_packet_size);
            }
            if self.config.max_qos < QoS::ExactlyOnce {
                p.maximum_qos = Some(self.config.max_qos);
            }
            if !self.config.retain_available {
                p.retain_available = Some(false);
            }
            p.wildcard_subscription_available = Some(true);
            p.subscription_identifiers_available = Some(true);
            p.shared_subscription_available = Some(true);
            p.assigned_client_identifier = assigned_client_id.map(Into::into);
            p.server_keep_alive = server_keep_alive;
        }
        out.push(Action::Send(Packet::ConnAck(Box::new(ack))));
        self.outgoing
            .resend(self.version, self.max_size(), now, out);
    }

    /// The client's Maximum Packet Size, as the outgoing side counts.
    fn max_size(&self) -> usize {
        self.client_max_packet_size as usize
    }

    /// Gives back the room kept for work under way when there is none: the outgoing
    /// window, the incoming QoS 2 ids (a connection that parks).
    pub fn shrink(&mut self) {
        self.outgoing.shrink();
        if self.incoming_qos2.len() == 0 {
            self.incoming_qos2 = IdSet::default();
        }
    }

    /// When [`Session::handle_timeout`] must be called next: the keep-alive deadline,
    /// one and a half keep-alive periods after the last packet ([MQTT-3.1.2-22]).
    pub fn poll_deadline(&self) -> Option<Instant> {
        if self.keep_alive == 0 {
            None
        } else {
            Some(self.last_received + self.keep_alive() * 3 / 2)
        }
    }

    /// The keep alive in force on this connection; zero: none.
    pub fn keep_alive(&self) -> Duration {
        Duration::from_secs(u64::from(self.keep_alive))
    }

    /// Closes the connection if its keep alive has run out.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.poll_deadline().is_some_and(|deadline| now >= deadline) {
            out.push(Action::Close {
                reason: Some(ReasonCode::KeepAliveTimeout),
                publish_will: true,
            });
        }
    }

    /// Sets the access decisions for the client of the current connection (its username
    /// may differ from the last connection's): call it before [`Session::connect`].
    pub fn set_authorizer(&mut self, authorizer: Option<Arc<dyn Authorizer>>) {
        self.authorizer = authorizer;
    }

    /// Whether another routed message can be taken now: false while messages already
    /// wait for room in the client's Receive Maximum, so the caller's bounded queue is
    /// where the backlog stays.
    pub fn has_room(&self) -> bool {
        self.outgoing.pending_len() == 0
    }

    /// Takes a message routed to this session: sends it now, or queues it behind the
    /// client's Receive Maximum ([MQTT-3.3.4-9]).
    ///
    /// A message the client may not read is skipped silently (Mosquitto checks read
    /// access on every delivery, so an ACL change applies to connected clients).
    pub fn handle_delivery(&mut self, delivery: Delivery, now: Instant, out: &mut Vec<Action>) {
        if let Some(authorizer) = &self.authorizer {
            if !authorizer.may_receive(&delivery.message.topic) {
                return inflight::done(&delivery, out);
            }
        }
        self.outgoing
            .deliver(delivery, self.version, self.max_size(), now, out);
    }

    /// Handles one packet from the client.
    pub fn handle_packet(&mut self, packet: Packet, now: Instant, out: &mut Vec<Action>) {
        self.last_received = now;
        match packet {
            Packet::Publish(publish) => self.handle_publish(publish, now, out),
            Packet::PubAck(ack) => self.handle_puback(ack, now, out),
            Packet::PubRec(ack) => self.handle_pubrec(ack, now, out),
            Packet::PubRel(ack) => self.handle_pubrel(ack, out),
            Packet::PubComp(ack) => self.handle_pubcomp(ack, now, out),
            Packet::Subscribe(subscribe) => self.handle_subscribe(subscribe, out),
            Packet::Unsubscribe(unsubscribe) => self.handle_unsubscribe(unsubscribe, out),
            Packet::PingReq => out.push(Action::Send(Packet::PingResp)),
            Packet::Disconnect(disconnect) => self.handle_disconnect(disconnect, out),
            // [MQTT-3.1.0-2]: a second CONNECT is a protocol error.
            Packet::Connect(_) => close(out, ReasonCode::ProtocolError),
            // [MQTT-4.12.0-7]: AUTH without an Authentication Method in CONNECT (one is
            // refused at CONNECT) is a Protocol Error. 0x8C is not a DISCONNECT reason
            // code ([MQTT-3.14.2-1]).
            Packet::Auth(_) => close(out, ReasonCode::ProtocolError),
            // The decoder's direction check keeps server-only packets out.
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                close(out, ReasonCode::ProtocolError)
            }
        }
    }

    fn handle_publish(&mut self, publish: Publish, now: Instant, out: &mut Vec<Action>) {
        let Some(topic) = self.resolve_topic(&publish, out) else {
            return;
        };
        if publish.qos > self.config.max_qos {
            return close(out, ReasonCode::QoSNotSupported);
        }
        if publish.retain && !self.config.retain_available {
            return close(out, ReasonCode::RetainNotSupported);
        }
        if !publish.properties.subscription_identifiers.is_empty() {
            // [MQTT-3.3.4-6]: a client never sends subscription identifiers.
            return close(out, ReasonCode::ProtocolError);
        }
        let limit = self.config.message_size_limit as usize;
        if limit > 0 && publish.payload.len() > limit {
            return self.drop_oversized(&publish, out);
        }
        if !self.may_publish(&topic) {
            return self.refuse_publish(&publish, out);
        }
        let mut properties = publish.properties;
        if let Some(set) = properties.existing_mut() {
            set.topic_alias = None;
        }
        let expires_at = properties
            .message_expiry_interval
            .map(|secs| now + Duration::from_secs(u64::from(secs)));
        let message = Arc::new(Message {
            encoded: Default::default(),
            store_id: Default::default(),
            topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
            origin: Some(self.client_id.clone()),
        });
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => out.push(Action::Publish(message)),
            (QoS::AtLeastOnce, Some(id)) => {
                out.push(Action::Publish(message));
                send_ack(out, Packet::PubAck, id);
            }
            (QoS::ExactlyOnce, Some(id)) => {
                // [MQTT-4.3.3-10] exactly once: a resent PUBLISH whose id awaits PUBREL is
                // acknowledged again but not routed again.
                if !self.incoming_qos2.contains(&id.get()) {
                    // Only a 5.0 client was told our Receive Maximum; a 3.1/3.1.1 client
                    // may have as many flows open as it has packet ids (bounded: 65,535).
                    if self.version.is_v5()
                        && self.incoming_qos2.len() >= usize::from(self.config.receive_maximum)
                    {
                        return close(out, ReasonCode::ReceiveMaximumExceeded);
                    }
                    self.incoming_qos2.insert(id.get());
                    out.push(Action::Publish(message));
                    if self.durable {
                        out.push(Action::Persist(Change::IncomingAdded(id.get())));
                    }
                }
                send_ack(out, Packet::PubRec, id);
            }
            // The decoder guarantees a packet id for QoS > 0.
            (_, None) => close(out, ReasonCode::ProtocolError),
        }
    }

    fn may_publish(&self, topic: &str) -> bool {
        self.authorizer
            .as_ref()
            .is_none_or(|a| a.may_publish(topic))
    }

    /// A PUBLISH the client may not send is not routed. 5.0: its QoS 1/2 flow ends with
    /// reason code 0x87 Not authorized ([MQTT-3.4.2-1], [MQTT-3.5.2-1]); 3.1/3.1.1 has no
    /// way to say so: it is acknowledged as usual and dropped, as Mosquitto does.
    /// A PUBLISH over `message_size_limit`: dropped as Mosquitto drops it, the QoS 1/2
    /// flow completes, with 0x83 for 5.0 (as mosquitto.conf(5) documents; 0x95 is no
    /// PUBACK/PUBREC code). (Rare, as the other refusals: out of line, so that the
    /// per-message path stays compact.)
    #[cold]
    #[inline(never)]
    fn drop_oversized(&mut self, publish: &Publish, out: &mut Vec<Action>) {
        let ack = |id| Ack {
            reason_code: ReasonCode::ImplementationSpecificError,
            ..Ack::new(id)
        };
        let ack = match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => Packet::PubAck(ack(id)),
            (QoS::ExactlyOnce, Some(id)) => Packet::PubRec(ack(id)),
            _ => return,
        };
        out.push(Action::Send(
            self.explain(ack, "payload exceeds message_size_limit"),
        ));
    }

    #[cold]
    #[inline(never)]
    fn refuse_publish(&mut self, publish: &Publish, out: &mut Vec<Action>) {
        let v5 = self.version.is_v5();
        let ack = |id| Ack {
            reason_code: if v5 {
                ReasonCode::NotAuthorized
            } else {
                ReasonCode::Success
            },
            ..Ack::new(id)
        };
        let ack = match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => Packet::PubAck(ack(id)),
            (QoS::ExactlyOnce, Some(id)) => {
                if !v5 {
                    // The client goes on with PUBREL, answered with PUBCOMP.
                    self.incoming_qos2.insert(id.get());
                }
                Packet::PubRec(ack(id))
            }
            _ => return,
        };
        out.push(Action::Send(
            self.explain(ack, "not authorized to publish to this topic"),
        ));
    }

    /// Applies the Topic Alias of an incoming PUBLISH ([MQTT-3.3.2-12]), or closes the
    /// connection with 0x94 / 0x82.
    fn resolve_topic(&mut self, publish: &Publish, out: &mut Vec<Action>) -> Option<TopicName> {
        let Some(alias) = publish.properties.topic_alias else {
            return Some(publish.topic.clone());
        };
        if alias == 0 || alias > self.config.topic_alias_maximum {
            close(out, ReasonCode::TopicAliasInvalid);
            return None;
        }
        if publish.topic.is_empty() {
            let topic = self
                .aliases_in
                .as_ref()
                .and_then(|map| map.get(&alias))
                .cloned();
            if topic.is_none() {
                close(out, ReasonCode::ProtocolError);
            }
            topic
        } else {
            self.aliases_in
                .get_or_insert_with(Box::default)
                .insert(alias, publish.topic.clone());
            Some(publish.topic.clone())
        }
    }

    fn handle_puback(&mut self, ack: Ack, now: Instant, out: &mut Vec<Action>) {
        self.outgoing
            .acknowledge(ack.packet_id, QoS::AtLeastOnce, out);
        self.outgoing
            .send_pending(self.version, self.max_size(), now, out);
    }

    fn handle_pubrec(&mut self, ack: Ack, now: Instant, out: &mut Vec<Action>) {
        if ack.reason_code.is_error() {
            // [MQTT-4.4.0-2] the flow ends here; the message is discarded.
            self.outgoing
                .acknowledge(ack.packet_id, QoS::ExactlyOnce, out);
            self.outgoing
                .send_pending(self.version, self.max_size(), now, out);
        } else if self.outgoing.release(ack.packet_id, out) {
            send_ack(out, Packet::PubRel, ack.packet_id);
        } else {
            let mut rel = Ack::new(ack.packet_id);
            rel.reason_code = ReasonCode::PacketIdentifierNotFound;
            let rel = self.explain(
                Packet::PubRel(rel),
                "no QoS 2 message awaits PUBREC under this packet identifier",
            );
            out.push(Action::Send(rel));
        }
    }

    fn handle_pubcomp(&mut self, ack: Ack, now: Instant, out: &mut Vec<Action>) {
        self.outgoing.complete(ack.packet_id, out);
        self.outgoing
            .send_pending(self.version, self.max_size(), now, out);
    }

    fn handle_pubrel(&mut self, ack: Ack, out: &mut Vec<Action>) {
        if self.incoming_qos2.remove(&ack.packet_id.get()) {
            if self.durable {
                out.push(Action::Persist(Change::IncomingReleased(
                    ack.packet_id.get(),
                )));
            }
            return send_ack(out, Packet::PubComp, ack.packet_id);
        }
        let mut comp = Ack::new(ack.packet_id);
        if self.version.is_v5() {
            comp.reason_code = ReasonCode::PacketIdentifierNotFound;
        }
        let comp = self.explain(
            Packet::PubComp(comp),
            "no QoS 2 message awaits PUBREL under this packet identifier",
        );
        out.push(Action::Send(comp));
    }

    #[cold]
    #[inline(never)]
    fn handle_subscribe(&mut self, subscribe: Subscribe, out: &mut Vec<Action>) {
        let id = subscribe.properties.subscription_identifier;
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        for (filter, mut options) in subscribe.filters {
            options.qos = options.qos.min(self.config.max_qos);
            if let Some(authorizer) = &self.authorizer {
                if !authorizer.may_subscribe(filter.as_str()) {
                    // 5.0: 0x87 Not authorized; 3.1.1: 0x80 Failure (the codec maps it).
                    codes.push(ReasonCode::NotAuthorized);
                    continue;
                }
            }
            let sub = SessionSubscription {
                options,
                id: id.and_then(NonZeroU32::new),
            };
            // The session keeps a copy of its own: the filter decoded from the packet
            // shares (and would keep) the whole SUBSCRIBE's buffer.
            let existed = self.subscriptions.insert(filter.detached(), sub).is_some();
            codes.push(match options.qos {
                QoS::AtMostOnce => ReasonCode::Success,
                QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
            });
            out.push(Action::Subscribe {
                filter,
                options,
                id,
                existed,
            });
        }
        if self.durable && codes.iter().any(|c| !c.is_error()) {
            out.push(Action::Persist(Change::Subscriptions));
        }
        out.push(Action::Send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            reason_codes: codes,
            properties: AckProperties::default(),
        })));
    }

    #[cold]
    #[inline(never)]
    fn handle_unsubscribe(&mut self, unsubscribe: Unsubscribe, out: &mut Vec<Action>) {
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in unsubscribe.filters {
            if self.subscriptions.remove(&filter).is_some() {
                codes.push(ReasonCode::Success);
                out.push(Action::Unsubscribe(filter));
            } else {
                codes.push(ReasonCode::NoSubscriptionExisted);
            }
        }
        let missing = codes.contains(&ReasonCode::NoSubscriptionExisted);
        if self.durable && codes.contains(&ReasonCode::Success) {
            out.push(Action::Persist(Change::Subscriptions));
        }
        let mut ack = Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            reason_codes: codes,
            properties: AckProperties::default(),
        });
        if missing {
            ack = self.explain(ack, "no subscription with this exact topic filter existed");
        }
        out.push(Action::Send(ack));
    }

    #[cold]
    #[inline(never)]
    fn handle_disconnect(&mut self, disconnect: Disconnect, out: &mut Vec<Action>) {
        if let Some(expiry) = disconnect.properties.session_expiry_interval {
            // §3.14.2.2.2: a session that had expiry 0 cannot be given one now.
            if self.connect_expiry_zero && expiry != 0 {
                return close(out, ReasonCode::ProtocolError);
            }
            self.session_expiry = expiry;
        }
        out.push(Action::Close {
            reason: None,
            // [MQTT-3.14.4-3]: Normal disconnection discards the will; 0x04 publishes it.
            publish_will: disconnect.reason_code == ReasonCode::DisconnectWithWillMessage,
        });
    }

    /// Takes out the deliveries that came through shared subscriptions and have not
    /// reached the client, for the caller to hand to other members of their groups
    /// (§4.8.2). `group: Some(filter)` takes those of one `$share/NAME/FILTER` (the client
    /// unsubscribed from it: messages it already holds stay, for it to acknowledge);
    /// `None` takes those of every group, unacknowledged QoS 1 messages included (the
    /// session ends). Sent QoS 2 messages are never taken ([MQTT-4.8.2-5]).
    pub fn take_shared_deliveries(&mut self, group: Option<&TopicFilter>) -> Vec<Delivery> {
        self.outgoing
            .take_shared(group.map(TopicFilter::as_str), group.is_none())
    }

    /// Adds a reason string to an acknowledgement, if the client asked for problem
    /// information ([MQTT-3.1.2-29]) and the packet still fits in the client's Maximum
    /// Packet Size ([MQTT-3.4.2-2] and its siblings).
    fn explain(&self, packet: Packet, reason: &str) -> Packet {
        if !self.version.is_v5() || !self.request_problem_information {
            return packet;
        }
        let mut explained = packet.clone();
        match &mut explained {
            Packet::PubAck(a) | Packet::PubRec(a) | Packet::PubRel(a) | Packet::PubComp(a) => {
                a.properties.reason_string = Some(reason.into());
            }
            Packet::SubAck(a) => a.properties.reason_string = Some(reason.into()),
            Packet::UnsubAck(a) => a.properties.reason_string = Some(reason.into()),
            _ => return packet,
        }
        match explained.encoded_len(self.version) {
            Ok(len) if len <= self.max_size() => explained,
            _ => packet,
        }
    }

    /// Removes every subscription (the session ends), returning their filters.
    pub fn take_subscriptions(&mut self) -> Vec<TopicFilter> {
        self.subscriptions.take_filters()
    }
}

/// Sends the acknowledgement `kind` with `id` and nothing else, built where it lands in
/// `out` (pushed, the 128-byte action would be copied from the narrow stores that built
/// it, a stall per acknowledgement; see `inflight::Sending::push`).
fn send_ack(out: &mut Vec<Action>, kind: fn(Ack) -> Packet, id: PacketId) {
    out.extend(std::iter::once_with(|| Action::Send(kind(Ack::new(id)))));
}

fn close(out: &mut Vec<Action>, reason: ReasonCode) {
    out.push(Action::Close {
        reason: Some(reason),
        publish_will: true,
    });
}

/// Builds the PUBLISH that carries `delivery` to a client.
pub(crate) fn publish_packet(
    delivery: &Delivery,
    packet_id: Option<PacketId>,
    dup: bool,
    now: Instant,
) -> Publish {
    let message = &delivery.message;
    let mut publish = message.publish(delivery.qos, delivery.retain, packet_id);
    publish.dup = dup;
    let properties = &mut publish.properties;
    // Set only where there is something to say: a message with no properties (most)
    // allocates no property set here.
    let expiry = message.remaining_expiry(now);
    if expiry.is_some() || properties.message_expiry_interval.is_some() {
        properties.message_expiry_interval = expiry;
    }
    let ids = delivery.subscription_ids();
    if !(ids.is_empty() && properties.subscription_identifiers.is_empty()) {
        properties.subscription_identifiers = ids.to_vec();
    }
    publish
}

impl Session {
    /// Overrides the session expiry interval (Mosquitto's `persistent_client_expiration`
    /// for 3.1/3.1.1 clients).
    pub fn set_session_expiry(&mut self, seconds: u32) {
        self.session_expiry = seconds;
    }
}
