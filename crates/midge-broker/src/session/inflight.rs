//! Outgoing QoS 1/2 flows: packet-id allocation, the inflight window bounded by the
//! client's Receive Maximum ([MQTT-3.3.4-9]), the queue behind it, and resending on a
//! new connection in the original order ([MQTT-4.4.0-1], [MQTT-4.6.0-*]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use midge_codec::{Ack, Packet, PacketId, ProtocolVersion, Publish, QoS, TopicName};

use super::{Action, Change, publish_packet};
use crate::message::{Delivery, Message, PublishForm};
use crate::router::trie::FastMap;
use crate::store::OutgoingState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// What an outgoing flow awaits.
enum State {
    /// QoS 1 PUBLISH sent, PUBACK awaited.
    Qos1Sent,
    /// QoS 2 PUBLISH sent, PUBREC awaited.
    Qos2Sent,
    /// PUBREL sent, PUBCOMP awaited.
    Released,
}

#[derive(Debug)]
struct Flight {
    /// Order of first sending, to resend in the same order.
    seq: u64,
    delivery: Delivery,
    state: State,
    /// Not yet (re)sent on this connection: after a resume, the flights beyond the
    /// client's new Receive Maximum wait for room ([MQTT-3.3.4-9]).
    due: bool,
}

/// The outgoing side of a session.
#[derive(Debug)]
pub struct Outgoing {
    /// The client's Receive Maximum.
    receive_maximum: u16,
    /// Last packet id handed out.
    last_id: u16,
    /// Next sequence number.
    next_seq: u64,
    /// The flows under way and the queue behind them. Boxed, made by the first QoS 1/2
    /// delivery and kept while the connection lives (an empty map and queue are nine
    /// words); a parked connection drops it if it is empty ([`Outgoing::shrink`]).
    window: Option<Box<Window>>,
    /// The client's Topic Alias Maximum; 0: no aliases. (Here, not in `aliases`: beside
    /// the other two `u16`s it takes no word of its own.)
    alias_maximum: u16,
    /// Topic aliases this connection has taught the client.
    aliases: OutAliases,
}

/// The flows under way of an [`Outgoing`].
#[derive(Debug, Default)]
struct Window {
    /// Unacknowledged flows by packet id (ids this session hands out: a fast hash will do).
    inflight: FastMap<u16, Flight>,
    /// Deliveries waiting for room in the window, in order.
    pending: VecDeque<Delivery>,
    /// How many flights are `due`.
    due: usize,
}

impl Window {
    /// The window counts the flights sent on this connection and not yet completed.
    fn full(&self, receive_maximum: u16) -> bool {
        self.inflight.len() - self.due >= usize::from(receive_maximum)
    }

    /// Removes a flight, keeping the count of due ones.
    fn remove(&mut self, id: u16) -> Option<Flight> {
        let flight = self.inflight.remove(&id)?;
        if flight.due {
            self.due -= 1;
        }
        Some(flight)
    }
}

/// Outgoing topic aliases ([MQTT-3.3.2-11], [MQTT-3.1.2-26], [MQTT-3.1.2-27]): the first
/// `maximum` (the client's Topic Alias Maximum, `Outgoing::alias_maximum`) distinct
/// topics sent on a connection get an alias; later messages on those topics carry the
/// alias and an empty topic name. They are forgotten with the connection
/// ([MQTT-3.3.2-7]).
#[derive(Debug, Default)]
struct OutAliases {
    /// Boxed: most connections never use aliases, and an empty map is six words.
    #[allow(clippy::box_collection)]
    by_topic: Option<Box<HashMap<TopicName, u16>>>,
}

/// Whether outgoing PUBLISHes get aliases on a connection with `maximum`.
fn aliases_active(maximum: u16, version: ProtocolVersion) -> bool {
    version.is_v5() && maximum > 0
}

impl OutAliases {
    /// Uses a known alias, or proposes a new one (returned, to be committed once the
    /// packet is really sent).
    fn apply(
        &self,
        maximum: u16,
        publish: &mut Publish,
        version: ProtocolVersion,
    ) -> Option<(TopicName, u16)> {
        if !aliases_active(maximum, version) {
            return None;
        }
        let known = self.by_topic.as_deref();
        if let Some(&alias) = known.and_then(|map| map.get(&publish.topic)) {
            publish.properties.topic_alias = Some(alias);
            publish.topic = TopicName::default();
            return None;
        }
        let used = known.map_or(0, HashMap::len);
        if used >= usize::from(maximum) {
            return None;
        }
        let alias = used as u16 + 1;
        publish.properties.topic_alias = Some(alias);
        Some((publish.topic.clone(), alias))
    }

    fn commit(&mut self, new: Option<(TopicName, u16)>) {
        if let Some((topic, alias)) = new {
            self.by_topic
                .get_or_insert_with(Box::default)
                .insert(topic, alias);
        }
    }
}

impl Default for Outgoing {
    fn default() -> Self {
        Outgoing {
            receive_maximum: u16::MAX,
            last_id: 0,
            next_seq: 0,
            window: None,
            alias_maximum: 0,
            aliases: OutAliases::default(),
        }
    }
}

impl Outgoing {
    /// A new connection: the client's Topic Alias Maximum, and no alias known yet.
    pub(super) fn reset_topic_aliases(&mut self, maximum: u16) {
        self.alias_maximum = maximum;
        self.aliases.by_topic = None;
    }

    pub(super) fn set_receive_maximum(&mut self, max: u16) {
        self.receive_maximum = max.max(1);
    }

    pub(super) fn last_packet_id(&self) -> u16 {
        self.last_id
    }

    /// The window, made if there is none.
    fn window(&mut self) -> &mut Window {
        self.window.get_or_insert_with(Box::default)
    }

    /// Drops the window if nothing is under way (a connection that parks).
    pub(super) fn shrink(&mut self) {
        if self
            .window
            .as_ref()
            .is_some_and(|w| w.inflight.is_empty() && w.pending.is_empty())
        {
            self.window = None;
        }
    }

    /// Puts back what the persistence store kept: flights under their packet ids (to be
    /// resent on the next connection), queued deliveries behind them, in order.
    pub(super) fn restore(&mut self, last_id: u16, deliveries: Vec<(Delivery, OutgoingState)>) {
        self.last_id = last_id;
        if deliveries.is_empty() {
            return;
        }
        let w = self.window.get_or_insert_with(Box::default);
        for (delivery, state) in deliveries {
            let (id, state) = match state {
                OutgoingState::Queued => {
                    w.pending.push_back(delivery);
                    continue;
                }
                OutgoingState::Sent(id) if delivery.qos == QoS::AtLeastOnce => {
                    (id, State::Qos1Sent)
                }
                OutgoingState::Sent(id) => (id, State::Qos2Sent),
                OutgoingState::Released(id) => (id, State::Released),
            };
            if id == 0 || w.inflight.contains_key(&id) {
                w.pending.push_back(delivery);
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            w.inflight.insert(
                id,
                Flight {
                    seq,
                    delivery,
                    state,
                    due: false,
                },
            );
        }
    }

    pub(super) fn inflight_len(&self) -> usize {
        self.window.as_ref().map_or(0, |w| w.inflight.len())
    }

    /// (store sequence number, packet id) of each QoS 1 message sent and not yet
    /// acknowledged that the store keeps.
    pub(super) fn qos1_sent(&self) -> Vec<(u64, u16)> {
        let Some(w) = &self.window else {
            return Vec::new();
        };
        w.inflight
            .iter()
            .filter(|(_, f)| f.state == State::Qos1Sent)
            .filter_map(|(&id, f)| f.delivery.seq.map(|seq| (seq, id)))
            .collect()
    }

    pub(super) fn pending_len(&self) -> usize {
        self.window.as_ref().map_or(0, |w| w.pending.len())
    }

    /// Sends `delivery` now if the window allows, else queues it.
    pub(super) fn deliver(
        &mut self,
        delivery: Delivery,
        version: ProtocolVersion,
        max_size: usize,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if let Some(w) = &mut self.window {
            if !w.pending.is_empty()
                || (delivery.qos != QoS::AtMostOnce && w.full(self.receive_maximum))
            {
                w.pending.push_back(delivery);
                return;
            }
        }
        self.send_now(delivery, version, max_size, now, out);
    }

    fn send_now(
        &mut self,
        delivery: Delivery,
        version: ProtocolVersion,
        max_size: usize,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        // [MQTT-3.3.2-5]: an expired message is not delivered.
        if delivery.message.is_expired(now) {
            return done(&delivery, out);
        }
        let packet_id = match delivery.qos {
            QoS::AtMostOnce => None,
            _ => Some(self.next_packet_id()),
        };
        // The shared encoding, when nothing in this PUBLISH is particular to this
        // subscriber; otherwise a packet of its own.
        let form = PublishForm::new(version.is_v5(), delivery.qos, delivery.retain);
        // Or, until a second subscriber has the shared encoding made, written straight
        // from the message ([`Message::write_publish`]).
        let message = &delivery.message;
        let shared = (delivery.subscription_ids().is_empty()
            && !aliases_active(self.alias_maximum, version))
        .then(|| {
            message
                .encoded(form)
                .map(|e| e.bytes.len())
                .or_else(|| message.direct_len(form))
        })
        .flatten();
        // A packet of its own, or `None` for the shared encoding.
        let own = match shared {
            // [MQTT-3.1.2-24] [MQTT-3.1.2-25]: too big for the client: dropped, as if
            // sent.
            Some(len) if len > max_size => return done(&delivery, out),
            Some(_) => None,
            None => {
                let mut publish = publish_packet(&delivery, packet_id, false, now);
                let new_alias = self
                    .aliases
                    .apply(self.alias_maximum, &mut publish, version);
                let packet = Packet::Publish(publish);
                if packet
                    .encoded_len(version)
                    .map_or(true, |len| len > max_size)
                {
                    return done(&delivery, out);
                }
                // Only a packet that is sent teaches the client an alias.
                self.aliases.commit(new_alias);
                Some(packet)
            }
        };
        let Some(id) = packet_id else {
            // QoS 0: nothing to remember, and the delivery's message goes into the
            // action as it is.
            let sending = own.map_or(Sending::Shared(delivery.message), Sending::Own);
            return sending.push(form, None, out);
        };
        let sending = own.map_or_else(|| Sending::Shared(delivery.message.clone()), Sending::Own);
        let state = match delivery.qos {
            QoS::AtLeastOnce => State::Qos1Sent,
            _ => State::Qos2Sent,
        };
        if let (State::Qos2Sent, Some(seq)) = (state, delivery.seq) {
            // Durable before the PUBLISH leaves: resent after a crash under the
            // same id, it is recognised by the client.
            out.push(Action::Persist(Change::OutgoingSent { seq, id: id.get() }));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.window().inflight.insert(
            id.get(),
            Flight {
                seq,
                delivery,
                state,
                due: false,
            },
        );
        sending.push(form, Some(id), out);
    }

    /// Sends, while the window has room, the flights still due since the resume, then
    /// the queued deliveries.
    pub(super) fn send_pending(
        &mut self,
        version: ProtocolVersion,
        max_size: usize,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        self.send_due(version, now, out);
        loop {
            let Some(w) = &mut self.window else {
                return;
            };
            if w.due > 0 {
                return;
            }
            let Some(front) = w.pending.front() else {
                return;
            };
            if front.qos != QoS::AtMostOnce && w.full(self.receive_maximum) {
                return;
            }
            let delivery = w.pending.pop_front().expect("front exists");
            self.send_now(delivery, version, max_size, now, out);
        }
    }

    /// A packet id not in use ([MQTT-2.2.1-4]). The window is at most 65,535 wide, so
    /// one is always free when the window has room.
    fn next_packet_id(&mut self) -> PacketId {
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if let Some(id) = PacketId::new(self.last_id) {
                if !self
                    .window
                    .as_ref()
                    .is_some_and(|w| w.inflight.contains_key(&id.get()))
                {
                    return id;
                }
            }
        }
    }

    /// PUBACK, or a PUBREC with an error code: the flow of `qos` under `id` ends.
    pub(super) fn acknowledge(&mut self, id: PacketId, qos: QoS, out: &mut Vec<Action>) {
        let expected = if qos == QoS::AtLeastOnce {
            State::Qos1Sent
        } else {
            State::Qos2Sent
        };
        let Some(w) = &mut self.window else {
            return;
        };
        if w.inflight
            .get(&id.get())
            .is_some_and(|f| f.state == expected)
        {
            if let Some(flight) = w.remove(id.get()) {
                done(&flight.delivery, out);
            }
        }
    }

    /// PUBREC: the QoS 2 flow moves to PUBREL. False if no such flow exists.
    pub(super) fn release(&mut self, id: PacketId, out: &mut Vec<Action>) -> bool {
        let Some(w) = &mut self.window else {
            return false;
        };
        match w.inflight.get_mut(&id.get()) {
            Some(flight) if matches!(flight.state, State::Qos2Sent | State::Released) => {
                if let (State::Qos2Sent, Some(seq)) = (flight.state, flight.delivery.seq) {
                    out.push(Action::Persist(Change::OutgoingReleased {
                        seq,
                        id: id.get(),
                    }));
                }
                flight.state = State::Released;
                // Answered with PUBREL now: no longer waiting to be resent.
                if std::mem::take(&mut flight.due) {
                    w.due -= 1;
                }
                true
            }
            _ => false,
        }
    }

    /// PUBCOMP: the QoS 2 flow ends.
    pub(super) fn complete(&mut self, id: PacketId, out: &mut Vec<Action>) {
        let Some(w) = &mut self.window else {
            return;
        };
        if w.inflight
            .get(&id.get())
            .is_some_and(|f| f.state == State::Released)
        {
            if let Some(flight) = w.remove(id.get()) {
                done(&flight.delivery, out);
            }
        }
    }

    /// Takes out the deliveries that came through the shared subscription `group` (any
    /// shared subscription for `None`) and have not reached the client: those waiting
    /// for room in the window and, with `unacknowledged`, QoS 1 messages sent and not
    /// acknowledged, oldest first. QoS 2 messages already sent stay: their delivery must
    /// be completed by this client or not at all ([MQTT-4.8.2-4], [MQTT-4.8.2-5]).
    pub(super) fn take_shared(
        &mut self,
        group: Option<&str>,
        unacknowledged: bool,
    ) -> Vec<Delivery> {
        let matches = |d: &Delivery| match (d.shared_group(), group) {
            (Some(g), Some(wanted)) => **g == *wanted,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let mut taken = Vec::new();
        let Some(w) = &mut self.window else {
            return taken;
        };
        if unacknowledged {
            let mut ids: Vec<(u64, u16)> = w
                .inflight
                .iter()
                .filter(|(_, f)| f.state == State::Qos1Sent && matches(&f.delivery))
                .map(|(&id, f)| (f.seq, id))
                .collect();
            ids.sort_unstable();
            for (_, id) in ids {
                taken.extend(w.remove(id).map(|f| f.delivery));
            }
        }
        let (shared, kept): (VecDeque<Delivery>, VecDeque<Delivery>) =
            w.pending.drain(..).partition(|d| matches(d));
        w.pending = kept;
        taken.extend(shared);
        taken
    }

    /// On a new connection: resend every unacknowledged PUBLISH with DUP set and every
    /// PUBREL, in their original order ([MQTT-4.4.0-1], [MQTT-4.6.0-1]), as many as the
    /// client's Receive Maximum allows ([MQTT-3.3.4-9]) — the others as acknowledgements
    /// make room — then what was queued.
    pub(super) fn resend(
        &mut self,
        version: ProtocolVersion,
        max_size: usize,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if let Some(w) = &mut self.window {
            for flight in w.inflight.values_mut() {
                flight.due = true;
            }
            w.due = w.inflight.len();
        }
        self.send_pending(version, max_size, now, out);
    }

    /// Resends due flights, oldest first, while the window has room.
    fn send_due(&mut self, version: ProtocolVersion, now: Instant, out: &mut Vec<Action>) {
        let Some(w) = &mut self.window else {
            return;
        };
        if w.due == 0 || w.full(self.receive_maximum) {
            return;
        }
        let mut flights: Vec<(u64, u16)> = w
            .inflight
            .iter()
            .filter(|(_, f)| f.due)
            .map(|(id, f)| (f.seq, *id))
            .collect();
        flights.sort_unstable();
        for (_, id) in flights {
            if w.full(self.receive_maximum) {
                break;
            }
            let flight = w.inflight.get_mut(&id).expect("listed above");
            flight.due = false;
            w.due -= 1;
            let id = PacketId::new(id).expect("stored ids are non-zero");
            let packet = match flight.state {
                State::Released => Packet::PubRel(Ack::new(id)),
                _ => {
                    let mut publish = publish_packet(&flight.delivery, Some(id), true, now);
                    let new_alias = self
                        .aliases
                        .apply(self.alias_maximum, &mut publish, version);
                    self.aliases.commit(new_alias);
                    Packet::Publish(publish)
                }
            };
            out.push(Action::Send(packet));
        }
    }
}

/// What a delivery goes out as.
enum Sending {
    /// A packet of its own.
    Own(Packet),
    /// The message's shared encoding.
    Shared(Arc<Message>),
}

impl Sending {
    /// Pushes the send; a shared one in `form` with `packet_id`.
    ///
    /// A shared send's action is built where it lands in `out`. Built ahead and pushed
    /// (`Vec::push` keeps the value on the stack while the list may grow), the 128-byte
    /// action is written to the stack field by field, then copied with wide loads that
    /// wait for those narrow stores to reach the cache: a stall on every delivery of a
    /// fan-out. `extend` with `once_with` makes room first, then builds in place.
    fn push(self, form: PublishForm, packet_id: Option<PacketId>, out: &mut Vec<Action>) {
        match self {
            Sending::Own(packet) => out.push(Action::Send(packet)),
            Sending::Shared(message) => out.extend(std::iter::once_with(|| Action::SendShared {
                message,
                form,
                packet_id,
            })),
        }
    }
}

/// A delivery's flow ended: a stored one leaves the store.
pub(super) fn done(delivery: &Delivery, out: &mut Vec<Action>) {
    if let Some(seq) = delivery.seq {
        out.push(Action::Persist(Change::OutgoingDone { seq }));
    }
    if let Some(settle) = &delivery.settle {
        settle.done();
    }
}
