//! The routed message: what a PUBLISH becomes once it is inside the broker.
//!
//! A [`Message`] is shared (`Arc`) between every subscriber it is routed to, so fan-out
//! copies a pointer, never the topic or the payload. Per-subscriber details (granted QoS,
//! the RETAIN flag after Retain As Published, subscription identifiers) travel beside it
//! in a [`Delivery`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use midge_codec::{
    Packet, PacketId, PlainPublish, ProtocolVersion, Publish, PublishProperties, QoS, Rare,
    TopicName,
};

use crate::store::MsgId;

/// An application message as published, with the properties that travel with it.
#[derive(Debug, Clone)]
pub struct Message {
    /// Topic name (aliases already resolved).
    pub topic: TopicName,
    /// Payload bytes, shared with the read buffer they arrived in.
    pub payload: Bytes,
    /// QoS as published.
    pub qos: QoS,
    /// RETAIN flag as published.
    pub retain: bool,
    /// Properties forwarded to subscribers: payload format, content type, response
    /// topic, correlation data and user properties in order ([MQTT-3.3.2-18]). Topic
    /// alias and subscription identifiers are per connection and are cleared.
    pub properties: Rare<PublishProperties>,
    /// When the Message Expiry Interval runs out, if one was set.
    pub expires_at: Option<Instant>,
    /// Client id of the publisher, for No Local ([MQTT-3.8.3-3]).
    pub origin: Option<Arc<str>>,
    /// The message encoded once as a PUBLISH, for every subscriber that receives it in
    /// the same form ([`Message::encoded`]).
    pub encoded: SharedEncoding,
    /// The id of its body in the persistence store, given the first time a persistent
    /// session or the retained index takes it (unset without persistence).
    pub store_id: StoreId,
}

/// A message's id in the persistence store ([`Message::store_id`]).
#[derive(Debug, Default)]
pub struct StoreId(OnceLock<MsgId>);

impl StoreId {
    /// An id already given (a message read back from the store).
    pub fn known(id: MsgId) -> Self {
        StoreId(OnceLock::from(id))
    }

    /// The id, given by `new` the first time.
    pub fn get_or_init(&self, new: impl FnOnce() -> MsgId) -> MsgId {
        *self.0.get_or_init(new)
    }
}

impl Clone for StoreId {
    /// A copy of the message is a new message, with a body of its own.
    fn clone(&self) -> Self {
        StoreId::default()
    }
}

/// The encoding subscribers share ([`Message::encoded`]): made when the second one asks,
/// so that a message with one subscriber is encoded once, straight into its buffer.
#[derive(Debug, Default)]
pub struct SharedEncoding {
    /// Whether a subscriber asked already.
    asked: AtomicBool,
    encoded: OnceLock<EncodedPublish>,
}

impl Clone for SharedEncoding {
    /// A copy of the message is a new message: nobody asked for it yet.
    fn clone(&self) -> Self {
        SharedEncoding::default()
    }
}

/// How a PUBLISH of a message looks on the wire, apart from its packet id: the same for
/// every subscriber that gets it with these, and no per-subscriber properties.
///
/// One byte: made and compared once per delivery, it stays in one register. (As three
/// `bool`-sized fields it was written to the stack a byte at a time and read back as a
/// word, a store-forwarding stall on every delivery: BENCHMARKS.md, session 7.)
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublishForm(u8);

impl PublishForm {
    /// For a 5.0 client or not (3.1 and 3.1.1 encode a PUBLISH alike), at the
    /// delivery's QoS, with the RETAIN flag sent.
    pub fn new(v5: bool, qos: QoS, retain: bool) -> Self {
        PublishForm(u8::from(v5) | (qos as u8) << 1 | u8::from(retain) << 3)
    }

    /// A 5.0 client.
    pub fn v5(self) -> bool {
        self.0 & 1 != 0
    }

    /// The delivery's QoS.
    pub fn qos(self) -> QoS {
        match (self.0 >> 1) & 3 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }

    /// The RETAIN flag sent.
    pub fn retain(self) -> bool {
        self.0 & 8 != 0
    }

    /// The version to encode for (3.1 and 3.1.1 encode a PUBLISH alike).
    pub fn version(self) -> ProtocolVersion {
        if self.v5() {
            ProtocolVersion::V5
        } else {
            ProtocolVersion::V311
        }
    }
}

impl std::fmt::Debug for PublishForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishForm")
            .field("v5", &self.v5())
            .field("qos", &self.qos())
            .field("retain", &self.retain())
            .finish()
    }
}

/// A message encoded as a first-time PUBLISH (DUP 0) in one [`PublishForm`]. At QoS 1
/// and 2, each copy gets its packet id written at `id_offset`.
#[derive(Debug, Clone)]
pub struct EncodedPublish {
    form: PublishForm,
    /// The whole packet; empty if the message cannot be encoded in this form.
    pub bytes: Bytes,
    /// Where the two bytes of the packet id go.
    pub id_offset: usize,
}

impl EncodedPublish {
    /// Appends the packet to `buf`, with packet id `id` at QoS 1 and 2.
    pub fn write(&self, id: Option<PacketId>, buf: &mut BytesMut) {
        let start = buf.len();
        buf.extend_from_slice(&self.bytes);
        if let Some(id) = id {
            let at = start + self.id_offset;
            buf[at..at + 2].copy_from_slice(&id.get().to_be_bytes());
        }
    }

    /// The packet as the client decodes it (for tests of the session).
    #[cfg(test)]
    pub(crate) fn decode(&self, id: Option<PacketId>) -> Packet {
        let mut buf = BytesMut::new();
        self.write(id, &mut buf);
        midge_codec::Decoder::client(self.form.version())
            .decode(&mut buf)
            .expect("decodes")
            .expect("whole packet")
    }
}

impl Message {
    /// True once the message's expiry interval has passed ([MQTT-3.3.2-5]).
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The message encoded as a PUBLISH in `form`, encoded by the second subscriber that
    /// asks (DESIGN.md: shared encoded messages for fan-out). One form is kept — in a
    /// fan-out, subscribers almost always share it — and `None` is returned for the
    /// others, and for a message with an expiry interval, whose forwarded value
    /// changes with time ([MQTT-3.3.2-6]); those are encoded per subscriber.
    ///
    /// The first subscriber to ask gets `None` and encodes its own packet: most
    /// messages have one subscriber, and for them a shared encoding would be a copy.
    pub fn encoded(&self, form: PublishForm) -> Option<&EncodedPublish> {
        if self.expires_at.is_some() {
            return None;
        }
        let shared = &self.encoded;
        let encoded = match shared.encoded.get() {
            Some(encoded) => encoded,
            None if !shared.asked.swap(true, Ordering::Relaxed) => return None,
            None => shared.encoded.get_or_init(|| self.encode(form)),
        };
        (encoded.form == form && !encoded.bytes.is_empty()).then_some(encoded)
    }

    /// The shared encoding in `form`, if a subscriber had it made: unlike
    /// [`Message::encoded`], asking does not count.
    pub fn encoded_now(&self, form: PublishForm) -> Option<&EncodedPublish> {
        self.encoded
            .encoded
            .get()
            .filter(|e| e.form == form && !e.bytes.is_empty())
    }

    /// The size of the PUBLISH that [`Message::write_publish`] writes in `form`; `None`
    /// when it cannot write it: the message has properties or an expiry interval (they
    /// go through the codec), or is too long for MQTT.
    pub fn direct_len(&self, form: PublishForm) -> Option<usize> {
        // The packet id's value does not change the size.
        let id = PacketId::new(1);
        self.plain(form, id)?.encoded_len(form.version())
    }

    /// Appends the message as a first-time PUBLISH in `form` with packet id `id`,
    /// written straight from the message: for a delivery with nothing of its own whose
    /// message has no shared encoding (most messages have one subscriber). The codec's
    /// bytes, without building a packet; only when [`Message::direct_len`] says it can.
    /// Returns false, having written nothing, when it cannot.
    pub fn write_publish(
        &self,
        form: PublishForm,
        id: Option<PacketId>,
        buf: &mut BytesMut,
    ) -> bool {
        self.plain(form, id)
            .is_some_and(|plain| plain.encode(form.version(), buf))
    }

    /// The message as a [`PlainPublish`] in `form`: not with properties or an expiry
    /// interval.
    fn plain(&self, form: PublishForm, id: Option<PacketId>) -> Option<PlainPublish<'_>> {
        (self.expires_at.is_none() && self.properties.is_empty()).then(|| PlainPublish {
            qos: form.qos(),
            retain: form.retain(),
            topic: self.topic.as_str(),
            packet_id: id.filter(|_| form.qos() != QoS::AtMostOnce),
            payload: &self.payload,
        })
    }

    /// The message as a PUBLISH (not a duplicate) with this QoS, RETAIN flag and packet
    /// id; its topic, payload and properties are shared, not copied.
    pub fn publish(&self, qos: QoS, retain: bool, packet_id: Option<PacketId>) -> Publish {
        Publish {
            dup: false,
            qos,
            retain,
            topic: self.topic.clone(),
            packet_id,
            payload: self.payload.clone(),
            properties: self.properties.clone(),
        }
    }

    fn encode(&self, form: PublishForm) -> EncodedPublish {
        // The packet id is a placeholder, overwritten in each copy.
        let packet_id =
            (form.qos() != QoS::AtMostOnce).then(|| PacketId::new(1).expect("non-zero"));
        let publish = self.publish(form.qos(), form.retain(), packet_id);
        let mut buf = BytesMut::new();
        if Packet::Publish(publish)
            .encode(form.version(), &mut buf)
            .is_err()
        {
            buf.clear();
        }
        // Fixed header (type byte, then the Remaining Length varint), then the topic
        // name (2-byte length + bytes), then the packet id.
        let varint = buf.iter().skip(1).take_while(|b| *b & 0x80 != 0).count() + 1;
        EncodedPublish {
            form,
            id_offset: 1 + varint + 2 + self.topic.as_str().len(),
            bytes: buf.freeze(),
        }
    }

    /// Whole seconds left before expiry, rounded up, for the forwarded Message Expiry
    /// Interval ([MQTT-3.3.2-6]).
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }
}

/// One message on its way to one session: 48 bytes, since a mailbox or an in-flight
/// window holds one per message (what few deliveries have is boxed).
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// QoS of this delivery: the minimum of the published and the granted QoS.
    pub qos: QoS,
    /// RETAIN flag to send.
    pub retain: bool,
    /// Its sequence number in a persistent session's store entries (`None`: not
    /// stored: persistence off, a session that is not persistent, or QoS 0).
    pub seq: Option<u64>,
    /// For a stored delivery of a publication whose acknowledgement waits: told when
    /// the delivery's flow ends (see [`Settle`]).
    pub settle: Option<Arc<Settle>>,
    /// Subscription identifiers and shared group, when there are any.
    via: Option<Box<Via>>,
}

/// How a delivery came, when it matters to the subscriber.
#[derive(Debug, Clone)]
struct Via {
    /// Subscription identifiers of every matching subscription ([MQTT-3.3.4-4]).
    subscription_ids: Vec<u32>,
    /// The shared subscription (`$share/NAME/FILTER`) this delivery came through, if
    /// any: when the member leaves the group before the message reached it, the
    /// message goes to another member (§4.8.2).
    shared_group: Option<Arc<str>>,
}

impl Delivery {
    /// `message` delivered at `qos` with this RETAIN flag, through no shared
    /// subscription, with no subscription identifier, and not stored.
    pub fn new(message: Arc<Message>, qos: QoS, retain: bool) -> Self {
        Delivery {
            message,
            qos,
            retain,
            seq: None,
            settle: None,
            via: None,
        }
    }

    /// `message` delivered at `qos` with this RETAIN flag through one subscription,
    /// with its identifier if it has one. Without one, no call to `via`, which would
    /// move the whole delivery.
    #[inline]
    pub fn through(message: Arc<Message>, qos: QoS, retain: bool, id: Option<u32>) -> Self {
        let delivery = Delivery::new(message, qos, retain);
        match id {
            Some(id) => delivery.via(vec![id], None),
            None => delivery,
        }
    }

    /// The delivery with these subscription identifiers and shared group.
    pub fn via(mut self, subscription_ids: Vec<u32>, shared_group: Option<Arc<str>>) -> Self {
        self.via = (!subscription_ids.is_empty() || shared_group.is_some()).then(|| {
            Box::new(Via {
                subscription_ids,
                shared_group,
            })
        });
        self
    }

    /// Subscription identifiers of every matching subscription ([MQTT-3.3.4-4]).
    pub fn subscription_ids(&self) -> &[u32] {
        self.via.as_ref().map_or(&[], |via| &via.subscription_ids)
    }

    /// The shared subscription (`$share/NAME/FILTER`) this delivery came through, if
    /// any: when the member leaves the group before the message reached it, the
    /// message goes to another member (§4.8.2).
    pub fn shared_group(&self) -> Option<&Arc<str>> {
        self.via.as_ref().and_then(|via| via.shared_group.as_ref())
    }
}

/// The stored deliveries of one publication, for the publisher's PUBACK or PUBREC.
///
/// With persistence on, that acknowledgement waits until the message is safe for every
/// persistent session it went to: durable in the store, or received and acknowledged
/// by the session's client, whichever comes first — a message its subscribers have
/// acknowledged has nothing left to lose. A subscriber that keeps up usually
/// acknowledges long before an fsync, so the fsync leaves the publisher's round trip.
///
/// A QoS 1 delivery to a session whose connection is live does not even send its store
/// entry at once: the entry is held back in the mailbox for a millisecond or two
/// ([`crate::durable::Deferrals`]), and sent only if the delivery has not been
/// acknowledged by then. Most never reach the store's writer.
///
/// So the publication is safe once every stored delivery's flow has ended (`open` is
/// zero), or once no entry is held back any more and the commit of the last one sent
/// (`ticket`) is durable.
#[derive(Debug, Default)]
pub struct Settle {
    /// Deliveries whose flow (PUBACK, or PUBCOMP, from their subscriber) has not ended.
    open: AtomicUsize,
    /// Deliveries whose store entry is held back: neither sent to the store's writer
    /// nor done with (acknowledged, or dropped with their session).
    held: AtomicUsize,
    /// The number of the last commit request that carried one of the deliveries'
    /// entries (0: none).
    ticket: AtomicU64,
    /// The publisher waiting for `open` or `held` to reach zero.
    waker: std::sync::Mutex<Option<std::task::Waker>>,
}

impl Settle {
    /// One more stored delivery.
    pub fn opened(&self) {
        self.open.fetch_add(1, Ordering::AcqRel);
    }

    /// A delivery's flow ended.
    pub fn done(&self) {
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wake();
        }
    }

    /// One more delivery whose store entry is held back.
    pub(crate) fn held(&self) {
        self.held.fetch_add(1, Ordering::AcqRel);
    }

    /// A delivery's store entry went to the writer in request `ticket`. Called before
    /// [`Settle::released`] for a held-back one.
    pub(crate) fn sent(&self, ticket: u64) {
        self.ticket.fetch_max(ticket, Ordering::AcqRel);
    }

    /// A held-back entry is held back no more: sent (see [`Settle::sent`]), or not
    /// needed (its delivery's flow ended, or its session did).
    pub(crate) fn released(&self) {
        if self.held.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.wake();
        }
    }

    fn wake(&self) {
        let waker = self.waker.lock().expect("settle lock poisoned").take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether every delivery's flow has ended.
    pub fn is_settled(&self) -> bool {
        self.open.load(Ordering::Acquire) == 0
    }

    /// The request whose commit makes the publication durable, once no store entry is
    /// held back any more (0: nothing was sent).
    pub(crate) fn durable_at(&self) -> Option<u64> {
        (self.held.load(Ordering::Acquire) == 0).then(|| self.ticket.load(Ordering::Acquire))
    }

    /// Has `waker` woken when every delivery's flow has ended, or when no store entry
    /// is held back any more; check both after registering.
    pub fn register(&self, waker: &std::task::Waker) {
        let mut slot = self.waker.lock().expect("settle lock poisoned");
        match &*slot {
            Some(known) if known.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }
}

/// A one-byte message to `topic` at `qos`, delivered at that QoS: for tests.
#[cfg(test)]
pub(crate) fn test_delivery(topic: &str, qos: QoS) -> Delivery {
    Delivery {
        message: Arc::new(Message {
            topic: TopicName::new(topic).expect("valid topic"),
            payload: Bytes::from_static(b"x"),
            qos,
            retain: false,
            properties: Default::default(),
            expires_at: None,
            origin: None,
            encoded: SharedEncoding::default(),
            store_id: Default::default(),
        }),
        qos,
        retain: false,
        seq: None,
        settle: None,
        via: None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::{Bytes, BytesMut};
    use midge_codec::{Packet, PacketId, ProtocolVersion, PublishProperties, QoS, TopicName};

    use super::{Delivery, Message, PublishForm};

    /// A mailbox or an in-flight window holds a delivery per message: it stays small,
    /// and what few deliveries have is boxed.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_delivery_is_48_bytes_and_keeps_what_is_boxed() {
        assert_eq!(std::mem::size_of::<Delivery>(), 48);
        let plain = crate::message::test_delivery("a/b", QoS::AtLeastOnce);
        assert!(plain.subscription_ids().is_empty() && plain.shared_group().is_none());
        let via = plain
            .clone()
            .via(vec![3, 9], Some(Arc::from("$share/g/a/b")));
        assert_eq!(via.subscription_ids(), [3, 9]);
        assert_eq!(via.shared_group().map(|g| &**g), Some("$share/g/a/b"));
        assert!(plain.via(Vec::new(), None).via.is_none());
    }

    /// Any instant: nothing here depends on the time.
    #[allow(clippy::disallowed_methods)]
    fn epoch() -> std::time::Instant {
        std::time::Instant::now()
    }

    fn message(properties: PublishProperties) -> Message {
        Message {
            topic: TopicName::new("sensors/kitchen/t").unwrap(),
            payload: Bytes::from(vec![7u8; 300]),
            qos: QoS::ExactlyOnce,
            retain: true,
            properties: properties.into(),
            expires_at: None,
            origin: None,
            encoded: Default::default(),
            store_id: Default::default(),
        }
    }

    /// A PUBLISH written straight from the message is byte for byte the codec's, across
    /// the Remaining Length's sizes; a message with properties or an expiry is left to
    /// the codec.
    #[test]
    fn a_publish_written_straight_equals_the_codecs() {
        for size in [0, 100, 107, 108, 16_000, 16_400, 2_100_000] {
            for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
                for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                    for retain in [false, true] {
                        let mut m = message(PublishProperties::default());
                        m.payload = Bytes::from(vec![5u8; size]);
                        let form = PublishForm::new(version.is_v5(), qos, retain);
                        let id = (qos != QoS::AtMostOnce).then(|| PacketId::new(513).unwrap());
                        let mut want = BytesMut::new();
                        Packet::Publish(m.publish(qos, retain, id))
                            .encode(version, &mut want)
                            .unwrap();
                        let mut got = BytesMut::from(&b"before"[..]);
                        assert!(m.write_publish(form, id, &mut got));
                        assert_eq!(&got[..6], b"before");
                        assert_eq!(got.len() - 6, want.len(), "{size} {version:?} {qos:?}");
                        assert_eq!(m.direct_len(form), Some(want.len()));
                        assert!(got[6..] == want[..], "{size} {version:?} {qos:?} {retain}");
                    }
                }
            }
        }
        let form = PublishForm::new(true, QoS::AtLeastOnce, false);
        let with_properties = message(PublishProperties {
            content_type: Some("text/plain".into()),
            ..PublishProperties::default()
        });
        let mut expiring = message(PublishProperties::default());
        expiring.expires_at = Some(epoch());
        for m in [with_properties, expiring] {
            let mut buf = BytesMut::new();
            assert_eq!(m.direct_len(form), None);
            assert!(!m.write_publish(form, PacketId::new(1), &mut buf) && buf.is_empty());
        }
    }

    /// The shared encoding, with its packet id written in, is byte for byte the packet
    /// the session would have encoded for that subscriber alone.
    #[test]
    fn shared_encoding_equals_the_per_subscriber_packet() {
        let properties = PublishProperties {
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..PublishProperties::default()
        };
        for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                for retain in [false, true] {
                    let message = Arc::new(message(properties.clone()));
                    let form = PublishForm::new(version.is_v5(), qos, retain);
                    assert_eq!(
                        (form.v5(), form.qos(), form.retain()),
                        (version.is_v5(), qos, retain)
                    );
                    assert!(
                        message.encoded(form).is_none(),
                        "the first asker encodes itself"
                    );
                    let encoded = message.encoded(form).expect("first form is kept");
                    let id = (qos != QoS::AtMostOnce).then(|| PacketId::new(0xBEEF).unwrap());
                    let mut shared = BytesMut::new();
                    encoded.write(id, &mut shared);
                    let delivery = Delivery::new(message.clone(), qos, retain);
                    let publish = crate::session::publish_packet(&delivery, id, false, epoch());
                    let mut own = BytesMut::new();
                    Packet::Publish(publish).encode(version, &mut own).unwrap();
                    assert_eq!(shared, own, "{version} {qos:?} retain {retain}");
                }
            }
        }
    }

    /// One form is kept; other forms, and messages with an expiry, are not shared.
    #[test]
    fn only_one_form_and_no_expiring_message_is_shared() {
        let m = message(PublishProperties::default());
        let v5 = PublishForm::new(true, QoS::AtLeastOnce, false);
        assert!(m.encoded(v5).is_none(), "the first asker encodes itself");
        assert!(m.encoded(v5).is_some());
        assert!(
            m.encoded(PublishForm::new(false, QoS::AtLeastOnce, false))
                .is_none()
        );
        assert!(m.encoded(v5).is_some());
        let mut expiring = message(PublishProperties::default());
        expiring.expires_at = Some(epoch());
        assert!(expiring.encoded(v5).is_none());
        assert!(expiring.encoded(v5).is_none());
    }

    /// A waker, and how many times it was woken.
    fn counting_waker() -> (std::task::Waker, impl Fn() -> usize) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        struct Count(AtomicUsize);
        impl std::task::Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = std::task::Waker::from(count.clone());
        (waker, move || count.0.load(Ordering::SeqCst))
    }

    /// A publication settles when the last of its stored deliveries ends, and wakes the
    /// publisher waiting for it then, not before.
    #[test]
    fn settle_wakes_the_publisher_when_the_last_delivery_ends() {
        let (waker, woken) = counting_waker();
        let settle = super::Settle::default();
        assert!(settle.is_settled(), "nothing stored: nothing to wait for");
        settle.opened();
        settle.opened();
        settle.register(&waker);
        assert!(!settle.is_settled());
        settle.done();
        assert_eq!(woken(), 0);
        settle.register(&waker);
        settle.done();
        assert_eq!(woken(), 1);
        assert!(settle.is_settled());
    }

    /// A publication whose entries were held back waits, short of its deliveries'
    /// acknowledgements, until none is held back, then for the last request sent.
    #[test]
    fn settle_says_which_commit_once_no_entry_is_held_back() {
        let (waker, woken) = counting_waker();
        let settle = super::Settle::default();
        // One delivery sent at once (request 3), two held back.
        settle.opened();
        settle.sent(3);
        for _ in 0..2 {
            settle.opened();
            settle.held();
        }
        settle.register(&waker);
        assert_eq!(settle.durable_at(), None);
        // The first held back is sent in request 9; the second is acknowledged first.
        settle.sent(9);
        settle.released();
        assert_eq!(settle.durable_at(), None);
        assert_eq!(woken(), 0);
        settle.done();
        settle.released();
        assert_eq!(woken(), 1);
        assert_eq!(settle.durable_at(), Some(9));
        assert!(!settle.is_settled(), "two deliveries are not acknowledged");
    }
}
