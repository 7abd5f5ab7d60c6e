//! The soak's clients: the messages and the subscriptions, and the client side of
//! each session — [`Subscriber`], [`Publisher`], [`WillWatcher`].

use super::*;

/// A PUBLISH of soak message `seq` of publisher `p`.
pub(crate) fn soak_publish(p: usize, seq: u32, group: u8, qos: QoS) -> Publish {
    let name = format!("soak/{group}/q{}", qos as u8);
    let mut payload = format!("{p}:{seq}:").into_bytes();
    payload.resize(payload.len() + padding(seq), b'.');
    let mut publish = Publish::new(TopicName::new(name).expect("valid topic"), payload);
    publish.qos = qos;
    publish
}

/// The (publisher, seq, group, qos) a soak PUBLISH carries, from its topic and payload.
pub(crate) fn parse_soak(publish: &Publish) -> Option<(usize, u32, u8, QoS)> {
    let mut levels = publish.topic.as_str().split('/');
    let (Some("soak"), Some(group), Some(qos), None) =
        (levels.next(), levels.next(), levels.next(), levels.next())
    else {
        return None;
    };
    let group: u8 = group.parse().ok().filter(|&g| usize::from(g) < GROUPS)?;
    let qos = match qos {
        "q0" => QoS::AtMostOnce,
        "q1" => QoS::AtLeastOnce,
        "q2" => QoS::ExactlyOnce,
        _ => return None,
    };
    let payload = std::str::from_utf8(&publish.payload).ok()?;
    let mut fields = payload.splitn(3, ':');
    let p = fields.next()?.parse().ok()?;
    let seq = fields.next()?.parse().ok()?;
    let pad = fields.next()?;
    (pad.len() == padding(seq) && pad.bytes().all(|b| b == b'.')).then_some((p, seq, group, qos))
}

/// Bytes of padding in the payload of message `seq`: one in eight is big, so that the
/// broker's writes to a client that stalls before its cut fill the socket buffers.
pub(crate) fn padding(seq: u32) -> usize {
    if seq % 8 == 7 { BIG_PAYLOAD } else { 0 }
}

/// MQTT topic matching (`+`, `#`), written apart from the broker's trie: the oracle.
pub(crate) fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The QoS a message published at `qos` on `topic` is delivered at to a session with
/// `filters`: the published QoS capped by the highest granted QoS among the matching
/// filters ([MQTT-3.3.4-2] when they overlap); `None` if none matches.
pub(crate) fn delivery_qos(filters: &[(String, QoS)], topic: &str, qos: QoS) -> Option<QoS> {
    filters
        .iter()
        .filter(|(f, _)| topic_matches(f, topic))
        .map(|&(_, granted)| granted)
        .max()
        .map(|granted| granted.min(qos))
}

/// The filters of subscriber `i` and their QoS: wildcards of every shape, overlapping
/// filters with different QoS, a QoS 1 subscription that downgrades QoS 2 messages.
pub(crate) fn subscriber_filters(i: usize) -> Vec<(String, QoS)> {
    use QoS::{AtLeastOnce as Q1, ExactlyOnce as Q2};
    let g = i % GROUPS;
    let h = (i / GROUPS + g + 1) % GROUPS;
    let f = |s: String, q| (s, q);
    match i % 10 {
        0 if i % 20 == 0 => vec![f("soak/#".into(), Q2)],
        0 => vec![f("+/+/+".into(), Q1), f("soak/+/q2".into(), Q2)],
        1 => vec![f("soak/+/q1".into(), Q1)],
        2 => vec![f("soak/+/q2".into(), Q2)],
        3 => vec![f(format!("soak/{g}/+"), Q2)],
        4 => vec![f(format!("soak/{g}/+"), Q1), f(format!("+/{h}/q2"), Q2)],
        5 => vec![f(format!("soak/{g}/#"), Q2), f(format!("soak/{h}/q1"), Q1)],
        6 => vec![f(format!("soak/{g}/q2"), Q1), f(format!("soak/{h}/q0"), Q2)],
        7 => vec![f(format!("+/{g}/+"), Q2), f(format!("soak/{g}/q1"), Q1)],
        8 => vec![f(format!("soak/{g}/q1"), Q2), f(format!("soak/{h}/q2"), Q2)],
        _ => vec![f(format!("soak/{g}/+"), Q1)],
    }
}

/// The protocol version of client `i`: 3.1.1 and 5.0 alternate within each filter kind
/// (subscribers `i % 10` share a kind; `soak/#` is every twentieth).
pub(crate) fn version_of(i: usize) -> ProtocolVersion {
    if (i / 10 + i / 20) % 2 == 0 {
        ProtocolVersion::V311
    } else {
        ProtocolVersion::V5
    }
}

/// One subscriber: its filters, and the receiving side of its session.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(crate) name: String,
    pub(crate) version: ProtocolVersion,
    pub(crate) filters: Vec<(String, QoS)>,
    /// 5.0: the Receive Maximum it announces (some announce a small one, so that the
    /// broker queues behind it).
    pub(crate) receive_maximum: Option<u16>,
    /// Half the subscribers hold their acknowledgements back: if the connection is cut
    /// first, the broker resends PUBLISH (deduplicated for QoS 2) or PUBREL.
    pub(crate) held: Held,
    /// Delivery QoS by `[group][published qos]` (see [`delivery_qos`]).
    pub(crate) table: [[Option<QoS>; 3]; GROUPS],
    /// Whether a CONNACK was received before (the session must then be present).
    pub(crate) connected: bool,
    /// Whether the SUBACK came.
    pub(crate) subscribed: bool,
    /// Arrivals counted, by `[publisher][seq]`: a QoS 2 message once per flow.
    pub(crate) counts: Vec<Vec<u8>>,
    /// The seq of the last first arrival per publisher and topic, by
    /// `[(publisher * GROUPS + group) * 3 + qos]`: first arrivals keep the order of
    /// publication ([MQTT-4.6.0-6] in 5.0, §4.6 in 3.1.1).
    pub(crate) last_first: Vec<Option<u32>>,
    /// QoS 2 packet ids received and not yet released (PUBREL), with the message each
    /// carried: client session state, kept across reconnects ([MQTT-4.3.3-10]).
    pub(crate) unreleased: HashMap<u16, (usize, u32)>,
    /// PUBLISHes received, by delivered QoS.
    pub(crate) arrivals: [u64; 3],
    /// PUBLISHes received with DUP set.
    pub(crate) dup_flag: u64,
    /// QoS 2 PUBLISHes resent for an unreleased id: acknowledged, not counted.
    pub(crate) qos2_resent: u64,
    /// PUBRELs for an id not (or no longer) kept: answered with PUBCOMP.
    pub(crate) unknown_pubrel: u64,
    pub(crate) conn: ConnStats,
}

impl Subscriber {
    pub(crate) fn new(i: usize, rng: &mut Rng) -> Self {
        let version = version_of(i);
        let filters = subscriber_filters(i);
        let mut table = [[None; 3]; GROUPS];
        for (group, row) in table.iter_mut().enumerate() {
            for (q, cell) in row.iter_mut().enumerate() {
                let qos = QoS::from_u8(q as u8).expect("valid QoS");
                let topic = soak_publish(0, 0, group as u8, qos).topic;
                *cell = delivery_qos(&filters, topic.as_str(), qos);
            }
        }
        let receive_maximum = (version.is_v5() && rng.below(2) == 0).then_some(4);
        Subscriber {
            name: format!("soak-sub-{i}"),
            version,
            filters,
            receive_maximum,
            // Not both: a slow consumer with a small window would fall behind for good.
            held: Held::new(
                (receive_maximum.is_none() && rng.below(2) == 0).then(|| rng.millis(ACK_DELAY_MS)),
            ),
            table,
            connected: false,
            subscribed: false,
            counts: vec![Vec::new(); PUBLISHERS],
            last_first: vec![None; PUBLISHERS * GROUPS * 3],
            unreleased: HashMap::new(),
            arrivals: [0; 3],
            dup_flag: 0,
            qos2_resent: 0,
            unknown_pubrel: 0,
            conn: ConnStats::default(),
        }
    }

    pub(crate) fn count(&self, p: usize, seq: u32) -> u8 {
        self.counts[p].get(seq as usize).copied().unwrap_or(0)
    }

    /// Counts an arrival of `p:seq`, published on `soak/group/q{qos}`; checks that a
    /// first arrival comes after every earlier first arrival of that topic's messages.
    pub(crate) fn record(&mut self, p: usize, seq: u32, group: u8, qos: QoS) -> Result<(), String> {
        let counts = &mut self.counts[p];
        if counts.len() <= seq as usize {
            counts.resize(seq as usize + 1, 0);
        }
        let count = &mut counts[seq as usize];
        *count = count.saturating_add(1);
        if *count > 1 {
            return Ok(());
        }
        let last = &mut self.last_first[(p * GROUPS + usize::from(group)) * 3 + qos as usize];
        match *last {
            Some(before) if before > seq => Err(format!(
                "{}: {p}:{seq} (on soak/{group}/q{}) arrived after {p}:{before}",
                self.name, qos as u8
            )),
            _ => {
                *last = Some(seq);
                Ok(())
            }
        }
    }

    pub(crate) fn subscribe_packet(&self) -> Packet {
        Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).expect("non-zero"),
            filters: self
                .filters
                .iter()
                .map(|(f, q)| {
                    let filter = TopicFilter::new(f.as_str()).expect("valid filter");
                    (filter, SubscriptionOptions::new(*q))
                })
                .collect(),
            properties: SubscribeProperties::default(),
        })
    }

    pub(crate) fn on_publish(
        &mut self,
        publish: Publish,
        out: &mut Vec<Packet>,
    ) -> Result<(), String> {
        let name = &self.name;
        let Some((p, seq, group, qos)) = parse_soak(&publish).filter(|m| m.0 < PUBLISHERS) else {
            return Err(format!(
                "{name}: unknown message on {}",
                publish.topic.as_str()
            ));
        };
        let expected = self.table[usize::from(group)][qos as usize];
        if expected != Some(publish.qos) {
            return Err(format!(
                "{name} {:?}: message {p}:{seq} ({qos:?} on {}) delivered at {:?}, \
                 expected {expected:?}",
                self.filters,
                publish.topic.as_str(),
                publish.qos
            ));
        }
        self.arrivals[publish.qos as usize] += 1;
        self.dup_flag += u64::from(publish.dup);
        let id = publish.packet_id;
        match (publish.qos, id) {
            (QoS::AtMostOnce, _) => self.record(p, seq, group, qos),
            (QoS::AtLeastOnce, Some(id)) => {
                out.push(Packet::PubAck(Ack::new(id)));
                self.record(p, seq, group, qos)
            }
            (QoS::ExactlyOnce, Some(id)) => {
                match self.unreleased.get(&id.get()) {
                    Some(&kept) if kept == (p, seq) => self.qos2_resent += 1,
                    Some(&(kp, ks)) => {
                        return Err(format!(
                            "{name}: QoS 2 id {} carries {p}:{seq} while {kp}:{ks} awaits \
                             PUBREL under it",
                            id.get()
                        ));
                    }
                    None => {
                        self.unreleased.insert(id.get(), (p, seq));
                        out.push(Packet::PubRec(Ack::new(id)));
                        return self.record(p, seq, group, qos);
                    }
                }
                out.push(Packet::PubRec(Ack::new(id)));
                Ok(())
            }
            (_, None) => Err(format!("{name}: QoS {:?} without id", publish.qos)),
        }
    }

    /// Handles a packet; `acks` gets the acknowledgements to send.
    pub(crate) fn handle(&mut self, packet: Packet, acks: &mut Vec<Packet>) -> Result<(), String> {
        match packet {
            Packet::Publish(publish) => self.on_publish(publish, acks),
            Packet::PubRel(rel) => {
                if self.unreleased.remove(&rel.packet_id.get()).is_none() {
                    // Its PUBCOMP was lost with a connection: the broker resent PUBREL.
                    self.unknown_pubrel += 1;
                }
                acks.push(Packet::PubComp(Ack::new(rel.packet_id)));
                Ok(())
            }
            Packet::SubAck(ack) => {
                let expected: Vec<ReasonCode> = self
                    .filters
                    .iter()
                    .map(|(_, q)| match q {
                        QoS::AtMostOnce => ReasonCode::Success,
                        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
                    })
                    .collect();
                if ack.reason_codes != expected {
                    return Err(format!("{}: SUBACK {:?}", self.name, ack.reason_codes));
                }
                self.subscribed = true;
                Ok(())
            }
            other => Err(format!("{}: unexpected {other:?}", self.name)),
        }
    }
}

impl Role for Subscriber {
    fn name(&self) -> &str {
        &self.name
    }

    fn connect_packet(&self) -> Connect {
        let mut connect = persistent_connect(self.version, &self.name);
        connect.properties.receive_maximum = self.receive_maximum;
        connect
    }

    fn on_connack(&mut self, ack: &ConnAck) -> Result<Vec<Packet>, String> {
        check_connack(&self.name, ack, self.connected)?;
        self.connected = true;
        self.conn.connects += 1;
        self.held.clear();
        Ok(if self.subscribed {
            Vec::new()
        } else {
            vec![self.subscribe_packet()]
        })
    }

    fn on_packet(&mut self, packet: Packet, out: &mut Vec<Packet>) -> Result<(), String> {
        let mut acks = Vec::new();
        let result = self.handle(packet, &mut acks);
        self.held.push(&mut acks, out);
        result
    }

    fn next_timer(&self, _: Phase) -> Option<Instant> {
        self.held.until
    }

    fn on_timer(&mut self, _: Phase, now: Instant, out: &mut Vec<Packet>) {
        self.held.flush(now, out);
    }

    fn done(&self, phase: Phase) -> bool {
        phase == Phase::Stop
    }

    fn conn_stats(&mut self) -> &mut ConnStats {
        &mut self.conn
    }
}

/// One message a publisher sent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    pub(crate) group: u8,
    pub(crate) qos: QoS,
    /// PUBACK (QoS 1) or PUBREC (QoS 2) received: the broker owns the message.
    pub(crate) acked: bool,
}

/// An open outgoing QoS 1/2 flow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flight {
    pub(crate) seq: u32,
    /// PUBREC received, PUBREL sent: PUBCOMP awaited.
    pub(crate) released: bool,
}

/// One publisher: its sequence of messages and the sending side of its session.
#[derive(Debug)]
pub(crate) struct Publisher {
    pub(crate) index: usize,
    pub(crate) name: String,
    pub(crate) version: ProtocolVersion,
    pub(crate) rng: Rng,
    pub(crate) connected: bool,
    /// Every message published, by seq.
    pub(crate) log: Vec<Sent>,
    /// Open flows by packet id: client session state, kept across reconnects.
    pub(crate) inflight: HashMap<u16, Flight>,
    pub(crate) last_id: u16,
    pub(crate) next_publish: Instant,
    /// Half the publishers hold their PUBRELs back: if the connection is cut first,
    /// they resend them after the reconnect.
    pub(crate) held: Held,
    /// Messages published, by QoS.
    pub(crate) published: [u64; 3],
    /// PUBLISHes resent with DUP, and PUBRELs resent, after reconnects.
    pub(crate) resent_publish: u64,
    pub(crate) resent_pubrel: u64,
    pub(crate) conn: ConnStats,
}

impl Publisher {
    pub(crate) fn new(index: usize, rng: Rng, start: Instant) -> Self {
        let mut rng = rng;
        let next_publish = start + rng.millis((0, PUBLISH_EVERY_MS.1));
        let held = Held::new((rng.below(2) == 0).then(|| rng.millis(ACK_DELAY_MS)));
        Publisher {
            index,
            name: format!("soak-pub-{index}"),
            version: version_of(index),
            rng,
            connected: false,
            log: Vec::new(),
            inflight: HashMap::new(),
            last_id: 0,
            next_publish,
            held,
            published: [0; 3],
            resent_publish: 0,
            resent_pubrel: 0,
            conn: ConnStats::default(),
        }
    }

    /// A packet id not in use by an open flow ([MQTT-2.2.1-3]).
    pub(crate) fn next_id(&mut self) -> PacketId {
        loop {
            self.last_id = self.last_id.wrapping_add(1);
            if let Some(id) = PacketId::new(self.last_id) {
                if !self.inflight.contains_key(&id.get()) {
                    return id;
                }
            }
        }
    }

    pub(crate) fn flight(&self, id: PacketId, what: &str) -> Result<Flight, String> {
        self.inflight.get(&id.get()).copied().ok_or_else(|| {
            format!(
                "{}: {what} for id {} with no open flow",
                self.name,
                id.get()
            )
        })
    }
}

impl Role for Publisher {
    fn name(&self) -> &str {
        &self.name
    }

    fn connect_packet(&self) -> Connect {
        persistent_connect(self.version, &self.name)
    }

    fn on_connack(&mut self, ack: &ConnAck) -> Result<Vec<Packet>, String> {
        check_connack(&self.name, ack, self.connected)?;
        self.connected = true;
        self.conn.connects += 1;
        self.held.clear();
        // [MQTT-4.4.0-1]: resend unacknowledged PUBLISHes (DUP) and PUBRELs, in order.
        let mut open: Vec<(u16, Flight)> = self.inflight.iter().map(|(&i, &f)| (i, f)).collect();
        open.sort_by_key(|(_, f)| f.seq);
        let mut out = Vec::new();
        for (id, flight) in open {
            let id = PacketId::new(id).expect("non-zero");
            if flight.released {
                self.resent_pubrel += 1;
                out.push(Packet::PubRel(Ack::new(id)));
            } else {
                self.resent_publish += 1;
                let sent = self.log[flight.seq as usize];
                let mut publish = soak_publish(self.index, flight.seq, sent.group, sent.qos);
                publish.packet_id = Some(id);
                publish.dup = true;
                out.push(Packet::Publish(publish));
            }
        }
        Ok(out)
    }

    fn on_packet(&mut self, packet: Packet, out: &mut Vec<Packet>) -> Result<(), String> {
        let mut acks = Vec::new();
        let result = self.handle(packet, &mut acks);
        self.held.push(&mut acks, out);
        result
    }

    fn next_timer(&self, phase: Phase) -> Option<Instant> {
        let publish =
            (phase == Phase::Soak && self.inflight.len() < WINDOW).then_some(self.next_publish);
        match (publish, self.held.until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, phase: Phase, now: Instant, out: &mut Vec<Packet>) {
        self.held.flush(now, out);
        if phase == Phase::Soak && self.inflight.len() < WINDOW && now >= self.next_publish {
            self.publish_next(out);
            // Late (a full window, a reconnect): the next one is counted from now.
            self.next_publish = self.next_publish.max(now) + self.rng.millis(PUBLISH_EVERY_MS);
        }
    }

    /// Publishes a few messages right before the cut: their acknowledgements are lost
    /// (or their PUBLISHes, with a reset), so they are resent after the reconnect.
    fn on_cut(&mut self, phase: Phase, out: &mut Vec<Packet>) {
        let n = self.rng.below(ON_CUT_PUBLISHES + 1);
        for _ in 0..n {
            if phase == Phase::Soak && self.inflight.len() < WINDOW {
                self.publish_next(out);
            }
        }
    }

    fn done(&self, phase: Phase) -> bool {
        phase == Phase::Stop || (phase == Phase::Drain && self.inflight.is_empty())
    }

    fn conn_stats(&mut self) -> &mut ConnStats {
        &mut self.conn
    }
}

impl Publisher {
    /// Handles a packet; `acks` gets the acknowledgements to send.
    pub(crate) fn handle(&mut self, packet: Packet, acks: &mut Vec<Packet>) -> Result<(), String> {
        let name = &self.name;
        match packet {
            Packet::PubAck(ack) => {
                let flight = self.flight(ack.packet_id, "PUBACK")?;
                let sent = &mut self.log[flight.seq as usize];
                if sent.qos != QoS::AtLeastOnce || ack.reason_code.is_error() {
                    return Err(format!("{name}: {ack:?} for {:?}", sent.qos));
                }
                sent.acked = true;
                self.inflight.remove(&ack.packet_id.get());
            }
            Packet::PubRec(ack) => {
                let flight = self.flight(ack.packet_id, "PUBREC")?;
                let sent = &mut self.log[flight.seq as usize];
                if sent.qos != QoS::ExactlyOnce || ack.reason_code.is_error() {
                    return Err(format!("{name}: {ack:?} for {:?}", sent.qos));
                }
                sent.acked = true;
                self.inflight.insert(
                    ack.packet_id.get(),
                    Flight {
                        released: true,
                        ..flight
                    },
                );
                acks.push(Packet::PubRel(Ack::new(ack.packet_id)));
            }
            Packet::PubComp(ack) => {
                let flight = self.flight(ack.packet_id, "PUBCOMP")?;
                // 0x92 is fine: a PUBREL resent after the broker had completed the flow.
                if !flight.released
                    || ack.reason_code.is_error()
                        && self.version.is_v5()
                        && ack.reason_code != ReasonCode::PacketIdentifierNotFound
                {
                    return Err(format!("{name}: {ack:?} for {flight:?}"));
                }
                self.inflight.remove(&ack.packet_id.get());
            }
            other => return Err(format!("{name}: unexpected {other:?}")),
        }
        Ok(())
    }

    /// Publishes the next message of the sequence: a random group and QoS.
    pub(crate) fn publish_next(&mut self, out: &mut Vec<Packet>) {
        let seq = self.log.len() as u32;
        let group = self.rng.below(GROUPS) as u8;
        let qos = QoS::from_u8(self.rng.below(3) as u8).expect("valid QoS");
        let mut publish = soak_publish(self.index, seq, group, qos);
        if qos != QoS::AtMostOnce {
            let id = self.next_id();
            publish.packet_id = Some(id);
            let flight = Flight {
                seq,
                released: false,
            };
            self.inflight.insert(id.get(), flight);
        }
        self.log.push(Sent {
            group,
            qos,
            acked: false,
        });
        self.published[qos as usize] += 1;
        out.push(Packet::Publish(publish));
    }
}

/// Records every will (`soak-will/#` at QoS 1) in [`Ctx::wills`]. Never cut; it
/// leaves after every other client.
#[derive(Debug)]
pub(crate) struct WillWatcher {
    pub(crate) ctx: Arc<Ctx>,
    pub(crate) connected: bool,
    pub(crate) subscribed: bool,
    pub(crate) conn: ConnStats,
}

impl WillWatcher {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        WillWatcher {
            ctx,
            connected: false,
            subscribed: false,
            conn: ConnStats::default(),
        }
    }
}

impl Role for WillWatcher {
    const WILL: bool = false;

    fn name(&self) -> &str {
        "soak-wills"
    }

    fn connect_packet(&self) -> Connect {
        persistent_connect(ProtocolVersion::V5, self.name())
    }

    fn on_connack(&mut self, ack: &ConnAck) -> Result<Vec<Packet>, String> {
        check_connack(self.name(), ack, self.connected)?;
        self.connected = true;
        self.conn.connects += 1;
        if self.subscribed {
            return Ok(Vec::new());
        }
        Ok(vec![Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).expect("non-zero"),
            filters: vec![(
                TopicFilter::new("soak-will/#").expect("valid filter"),
                SubscriptionOptions::new(QoS::AtLeastOnce),
            )],
            properties: SubscribeProperties::default(),
        })])
    }

    fn on_packet(&mut self, packet: Packet, out: &mut Vec<Packet>) -> Result<(), String> {
        match packet {
            Packet::Publish(will) => {
                let payload = String::from_utf8_lossy(&will.payload).into_owned();
                lock(&self.ctx.wills).insert(payload);
                if let Some(id) = will.packet_id {
                    out.push(Packet::PubAck(Ack::new(id)));
                }
                Ok(())
            }
            Packet::SubAck(ack) if ack.reason_codes == [ReasonCode::GrantedQoS1] => {
                self.subscribed = true;
                Ok(())
            }
            other => Err(format!("{}: unexpected {other:?}", self.name())),
        }
    }

    fn next_timer(&self, _: Phase) -> Option<Instant> {
        None
    }

    fn on_timer(&mut self, _: Phase, _: Instant, _: &mut Vec<Packet>) {}

    fn done(&self, phase: Phase) -> bool {
        phase == Phase::Stop
    }

    fn conn_stats(&mut self) -> &mut ConnStats {
        &mut self.conn
    }
}
