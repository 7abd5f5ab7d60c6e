//! The bounded queue of messages routed to one session, and its policy when full.
//!
//! Publishers push into a session's mailbox; the session's connection task drains it.
//! While the client is offline the mailbox is the persistent session's queue. It is
//! bounded in messages and bytes (DESIGN.md "Bounded memory"): when full, a QoS 0
//! message is dropped first — an older queued QoS 0 message makes room for a QoS 1/2
//! one — and otherwise the new message is dropped; every drop is counted.
//!
//! Flow control: a connected client's mailbox that reaches its limits is *congested*.
//! It still takes messages, up to twice its limits, and tells the publisher
//! ([`Pushed::Congested`]), whose connection then — if every session the message went to
//! is congested, so that no subscriber that keeps up is held back — stops reading until
//! the mailbox has drained to half its limits — so a subscriber that is merely behind slows its
//! publishers down instead of losing their messages. A subscriber that does not drain
//! in time is marked *shedding* by the publisher that waited for it: from then on, until
//! it has drained to half its limits, it is held to its limits by dropping, as above,
//! and makes no publisher wait — so a stalled subscriber never slows the others for
//! long.

use std::collections::VecDeque;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;

use midge_codec::QoS;

use crate::durable::HeldEntry;
use crate::message::Delivery;
use crate::parking::Reviver;

/// Limits of one mailbox.
#[derive(Debug, Clone, Copy)]
pub struct MailboxLimits {
    /// Most messages queued (`max_queued_messages`); 0: no limit.
    pub max_messages: usize,
    /// Most payload bytes queued (`max_queued_bytes`); 0: no limit.
    pub max_bytes: usize,
    /// Whether QoS 0 messages are queued for offline clients (`queue_qos0_messages`).
    pub queue_qos0_offline: bool,
}

impl Default for MailboxLimits {
    fn default() -> Self {
        MailboxLimits {
            max_messages: 1000,
            max_bytes: 0,
            queue_qos0_offline: false,
        }
    }
}

/// What the mailboxes of a broker share: their limits, and the count of the messages
/// they dropped. (One pointer in each mailbox, where a copy of each took four words.)
#[derive(Debug, Default)]
pub struct MailboxCommon {
    pub limits: MailboxLimits,
    /// Messages dropped by all the mailboxes, ever.
    pub dropped: AtomicU64,
    /// Revives the parked connections of the mailboxes (see [`Mailbox::park`]).
    pub(crate) reviver: Reviver,
}

impl MailboxCommon {
    /// Shared settings with `limits`, and no drop yet; no connection parks.
    pub fn new(limits: MailboxLimits) -> Arc<Self> {
        Self::parking(limits, Reviver::default())
    }

    /// Shared settings with `limits`; parked connections are revived by `reviver`.
    pub(crate) fn parking(limits: MailboxLimits, reviver: Reviver) -> Arc<Self> {
        Arc::new(MailboxCommon {
            limits,
            dropped: AtomicU64::new(0),
            reviver,
        })
    }
}

/// Whom a delivery into the empty mailbox wakes, once the mailbox's lock is released.
#[derive(Debug)]
pub(crate) enum Wakeup {
    Nobody,
    /// The task of the connection that drains the mailbox.
    Task(Waker),
    /// The connection parked at `place` (see `crate::parking`).
    Parked {
        reviver: Reviver,
        place: u32,
    },
}

impl Wakeup {
    /// Wakes the connection of the session `entry` (the mailbox's).
    pub(crate) fn wake(self, entry: u64) {
        match self {
            Wakeup::Nobody => {}
            Wakeup::Task(waker) => waker.wake(),
            Wakeup::Parked { reviver, place } => reviver.revive(place, entry),
        }
    }
}

/// [`Mailbox::parked_at`] when no connection is parked on the mailbox.
const NOT_PARKED: u32 = u32::MAX;

/// Payload bytes queued in a connected client's mailbox at which its publishers are
/// asked to wait, whatever the configured limits: large messages are handed on a few
/// at a time instead of a thousand of them piling up in memory.
pub const FLOW_BYTES: usize = 256 * 1024;

/// What became of a pushed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Queued, and the mailbox is congested: the publisher should wait until it has
    /// drained ([`Mailbox::is_relieved`]).
    Congested,
    /// Dropped (counted).
    Dropped,
}

/// A session's queue of deliveries.
#[derive(Debug)]
pub struct Mailbox {
    queue: VecDeque<Delivery>,
    /// Payload bytes queued.
    bytes: usize,
    /// The limits, and the broker-wide count of drops that this mailbox adds to.
    common: Arc<MailboxCommon>,
    /// Whether a connection is draining the mailbox.
    online: bool,
    /// Held to its limits by dropping, without making publishers wait (see the module
    /// documentation).
    shedding: bool,
    /// For a session kept in the persistence store: the sequence number of the next
    /// QoS 1/2 delivery (see `crate::durable`).
    next_seq: Option<NonZeroU64>,
    /// The connection to wake when a delivery comes into the empty mailbox: it
    /// registers while it has found the mailbox empty (see [`Mailbox::wait`]).
    waker: Option<Waker>,
    /// Or, while its connection is parked, the connection's place in the parker's slab
    /// ([`NOT_PARKED`]: none; see [`Mailbox::park`]). A place, not a waker of its own:
    /// that was an allocation more for every parked connection.
    parked_at: u32,
    /// The store entries held back for deliveries of this session, in sequence order
    /// (see `crate::durable::Deferrals`).
    /// (Boxed, made on the first: only sessions kept in the store hold entries, and an
    /// empty `VecDeque` is four words in every session's entry.)
    #[allow(clippy::box_collection)]
    held: Option<Box<VecDeque<HeldEntry>>>,
    /// Whether the mailbox is listed as holding entries back.
    listed: bool,
}

impl Mailbox {
    /// An empty, offline mailbox.
    pub fn new(limits: MailboxLimits) -> Self {
        Self::with(MailboxCommon::new(limits))
    }

    /// An empty, offline mailbox with `common`'s limits, whose drops are also counted
    /// there.
    pub fn with(common: Arc<MailboxCommon>) -> Self {
        Mailbox {
            queue: VecDeque::new(),
            bytes: 0,
            common,
            online: false,
            shedding: false,
            next_seq: None,
            waker: None,
            parked_at: NOT_PARKED,
            held: None,
            listed: false,
        }
    }

    /// Has `waker` woken by the next delivery pushed while the mailbox is empty. Called
    /// by the connection that drains the mailbox, under the same lock as its last
    /// `pop`, so that no push in between goes unnoticed.
    pub fn wait(&mut self, waker: &Waker) {
        self.parked_at = NOT_PARKED;
        match &self.waker {
            Some(known) if known.will_wake(waker) => {}
            _ => self.waker = Some(waker.clone()),
        }
    }

    /// For a connection that parks at `place` in the parker's slab: the next delivery
    /// pushed while the mailbox is empty revives it ([`Wakeup::Parked`]), until the
    /// revived connection waits again ([`Mailbox::wait`]).
    pub(crate) fn park(&mut self, place: u32) {
        self.waker = None;
        self.parked_at = place;
    }

    /// The parked connection's wake-up, if its connection is parked (its kick uses it).
    pub(crate) fn parked(&self) -> Wakeup {
        match self.parked_at {
            NOT_PARKED => Wakeup::Nobody,
            place => Wakeup::Parked {
                reviver: self.common.reviver.clone(),
                place,
            },
        }
    }

    /// Gives back the queue's room if it is empty (a connection that parks).
    pub fn shrink(&mut self) {
        if self.queue.is_empty() {
            self.queue = VecDeque::new();
        }
    }

    /// Whom to wake for a push that found the mailbox empty (see [`Mailbox::wait`] and
    /// [`Mailbox::park`]); wake it once the lock is released.
    pub(crate) fn take_wakeup(&mut self) -> Wakeup {
        match self.waker.take() {
            Some(waker) => Wakeup::Task(waker),
            None => {
                let wakeup = self.parked();
                self.parked_at = NOT_PARKED;
                wakeup
            }
        }
    }

    /// Makes the mailbox number the QoS 1/2 deliveries of a session kept in the store,
    /// starting at `next_seq` (at least the number it reached); `None`: the session is
    /// not kept.
    pub fn set_persistent(&mut self, next_seq: Option<u64>) {
        let reached = self.next_seq.map_or(1, NonZeroU64::get);
        self.next_seq = next_seq.and_then(|n| NonZeroU64::new(n.max(reached)));
        if next_seq.is_none() {
            // Their entries are not wanted any more.
            self.held = None;
        }
    }

    /// Whether the session is kept in the store.
    pub fn is_persistent(&self) -> bool {
        self.next_seq.is_some()
    }

    /// The sequence number for a QoS 1/2 delivery about to be pushed, if the session is
    /// kept in the store.
    pub fn next_seq(&mut self, qos: QoS) -> Option<u64> {
        let seq = self.next_seq.as_mut().filter(|_| qos != QoS::AtMostOnce)?;
        let this = seq.get();
        *seq = seq.saturating_add(1);
        Some(this)
    }

    /// Whether a live connection drains the mailbox.
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// Holds a delivery's store entry back; returns whether the mailbox must now be
    /// listed as holding some.
    pub(crate) fn hold(&mut self, held: HeldEntry) -> bool {
        self.held.get_or_insert_with(Box::default).push_back(held);
        !std::mem::replace(&mut self.listed, true)
    }

    /// Takes out the held entry of delivery `seq`, if it is held, and drops it (it
    /// need not be stored: the delivery's flow ended). Returns whether it was held.
    pub(crate) fn release_held(&mut self, seq: u64) -> bool {
        let Some(held) = self.held.as_deref_mut() else {
            return false;
        };
        // Deliveries mostly end in order: the oldest first.
        let at = match held.front() {
            Some(first) if first.seq == seq => 0,
            _ => match held.binary_search_by_key(&seq, |held| held.seq) {
                Ok(at) => at,
                Err(_) => return false,
            },
        };
        held.remove(at);
        true
    }

    /// Whether some store entry is held back.
    pub(crate) fn holds_entries(&self) -> bool {
        self.held.as_ref().is_some_and(|held| !held.is_empty())
    }

    /// Moves the entries held back since epochs up to `until` into `due`.
    pub(crate) fn take_held(&mut self, until: u64, due: &mut Vec<HeldEntry>) {
        if let Some(held) = self.held.as_deref_mut() {
            let n = held.partition_point(|held| held.epoch <= until);
            due.extend(held.drain(..n));
        }
    }

    /// Whether the mailbox must stay listed: some store entry is still held back. If
    /// none is, it is no longer listed.
    pub(crate) fn keep_listed(&mut self) -> bool {
        self.listed = self.holds_entries();
        self.listed
    }

    /// Marks the mailbox as drained by a live connection, or not.
    pub fn set_online(&mut self, online: bool) {
        self.online = online;
        if !online {
            // The connection is gone: its task is not kept alive by its waker.
            self.waker = None;
            self.parked_at = NOT_PARKED;
        }
    }

    /// Number of queued deliveries.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    fn count_drop(&mut self) {
        self.common.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether adding `size` bytes would pass the limits multiplied by `factor`.
    fn full_for(&self, size: usize, factor: usize) -> bool {
        let l = &self.common.limits;
        (l.max_messages > 0 && self.queue.len() >= l.max_messages * factor)
            || (l.max_bytes > 0 && self.bytes + size > l.max_bytes * factor)
    }

    /// Whether publishers are asked to wait for this mailbox: it is drained by a
    /// connection, not shedding, and at its limits or at [`FLOW_BYTES`].
    fn congested(&self) -> bool {
        let l = &self.common.limits;
        self.online
            && !self.shedding
            && ((l.max_messages > 0 && self.queue.len() >= l.max_messages)
                || (l.max_bytes > 0 && self.bytes >= l.max_bytes)
                || self.bytes >= FLOW_BYTES)
    }

    /// Whether the mailbox has drained to half its limits (and of [`FLOW_BYTES`]):
    /// publishers waiting for it go on, and it stops shedding.
    pub fn is_relieved(&self) -> bool {
        let l = &self.common.limits;
        let over_messages = l.max_messages > 0 && self.queue.len() > l.max_messages / 2;
        let over_bytes = l.max_bytes > 0 && self.bytes > l.max_bytes / 2;
        !(over_messages || over_bytes || self.bytes > FLOW_BYTES / 2)
    }

    /// Whether the mailbox is shedding.
    pub fn is_shedding(&self) -> bool {
        self.shedding
    }

    /// A publisher waited for this mailbox in vain: hold it to its limits by dropping
    /// until it has drained (see the module documentation). Returns true if it was not
    /// shedding already.
    pub fn shed(&mut self) -> bool {
        if self.is_relieved() || self.shedding {
            return false;
        }
        self.shedding = true;
        true
    }

    /// Queues `delivery`, applying the policy above.
    pub fn push(&mut self, delivery: Delivery) -> Pushed {
        self.push_with(delivery.qos, delivery.message.payload.len(), || delivery)
    }

    /// Queues the delivery that `make` builds, at `qos` with `size` payload bytes,
    /// applying the policy above; `make` runs only if it is queued. The router builds
    /// its deliveries here, where they are queued: built ahead and handed over, the
    /// delivery would be written field by field and copied with wide loads, which wait
    /// for those narrow stores (a stall per delivery).
    #[inline]
    pub fn push_with(&mut self, qos: QoS, size: usize, make: impl FnOnce() -> Delivery) -> Pushed {
        let qos0 = qos == QoS::AtMostOnce;
        if qos0 && !self.online && !self.common.limits.queue_qos0_offline {
            self.count_drop();
            return Pushed::Dropped;
        }
        // A congestion-controlled mailbox may hold up to twice its limits: the messages
        // that publishers pushed before they noticed and paused.
        let factor = if self.online && !self.shedding { 2 } else { 1 };
        while self.full_for(size, factor) {
            let oldest_qos0 = if qos0 {
                None
            } else {
                self.queue.iter().position(|d| d.qos == QoS::AtMostOnce)
            };
            match oldest_qos0.and_then(|i| self.queue.remove(i)) {
                Some(evicted) => {
                    self.bytes -= evicted.message.payload.len();
                    self.count_drop();
                }
                None => {
                    self.count_drop();
                    return Pushed::Dropped;
                }
            }
        }
        self.bytes += size;
        self.queue.push_back(make());
        if self.congested() {
            Pushed::Congested
        } else {
            Pushed::Queued
        }
    }

    /// Takes the oldest delivery.
    pub fn pop(&mut self) -> Option<Delivery> {
        let delivery = self.queue.pop_front()?;
        self.bytes -= delivery.message.payload.len();
        if self.shedding && self.is_relieved() {
            self.shedding = false;
        }
        Some(delivery)
    }

    /// Takes out, in order, the deliveries for which `pred` holds.
    pub fn take_if(&mut self, mut pred: impl FnMut(&Delivery) -> bool) -> Vec<Delivery> {
        let mut taken = Vec::new();
        let mut kept = VecDeque::with_capacity(self.queue.len());
        for delivery in self.queue.drain(..) {
            if pred(&delivery) {
                self.bytes -= delivery.message.payload.len();
                taken.push(delivery);
            } else {
                kept.push_back(delivery);
            }
        }
        self.queue = kept;
        taken
    }

    /// Empties the mailbox (the session ended), held store entries included.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.bytes = 0;
        self.held = None;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use midge_codec::QoS;

    use super::{Mailbox, MailboxCommon, MailboxLimits, Pushed};
    use crate::message::Delivery;

    fn delivery(qos: QoS) -> Delivery {
        crate::message::test_delivery("t", qos)
    }

    fn online(max_messages: usize) -> Mailbox {
        let mut mailbox = Mailbox::new(MailboxLimits {
            max_messages,
            ..MailboxLimits::default()
        });
        mailbox.set_online(true);
        mailbox
    }

    /// A connected client's mailbox at its limit asks publishers to wait, holds up to
    /// twice its limit, and is relieved at half of it.
    #[test]
    fn congestion_holds_twice_the_limit_and_relieves_at_half() {
        let mut mailbox = online(4);
        for _ in 0..3 {
            assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Queued);
        }
        for _ in 3..8 {
            assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Congested);
        }
        assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Dropped);
        assert_eq!(
            mailbox
                .common
                .dropped
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        while mailbox.len() > 2 {
            assert!(!mailbox.is_relieved());
            mailbox.pop();
        }
        assert!(mailbox.is_relieved());
    }

    /// A shedding mailbox drops at its limit and makes nobody wait, until it has
    /// drained to half of it.
    #[test]
    fn shedding_drops_at_the_limit_until_drained() {
        let mut mailbox = online(4);
        for _ in 0..5 {
            mailbox.push(delivery(QoS::AtLeastOnce));
        }
        assert!(mailbox.shed());
        assert!(!mailbox.shed(), "already shedding");
        assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Dropped);
        mailbox.pop();
        assert_eq!(mailbox.len(), 4);
        assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Dropped);
        mailbox.pop();
        mailbox.pop();
        assert!(!mailbox.is_shedding());
        assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Queued);
    }

    /// An offline session's queue is held to its limits: nobody drains it, so nobody
    /// waits for it.
    #[test]
    fn offline_mailbox_is_never_congested() {
        let mut mailbox = online(2);
        mailbox.set_online(false);
        assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Queued);
        assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Queued);
        assert_eq!(mailbox.push(delivery(QoS::AtLeastOnce)), Pushed::Dropped);
    }

    /// Large messages congest a mailbox at `FLOW_BYTES`, long before its message limit.
    #[test]
    fn large_messages_congest_at_flow_bytes() {
        let mut mailbox = online(1000);
        let big = |qos| {
            let mut d = delivery(qos);
            let mut m = (*d.message).clone();
            m.payload = Bytes::from(vec![0u8; 16 * 1024]);
            d.message = Arc::new(m);
            d
        };
        let per = super::FLOW_BYTES / (16 * 1024);
        for _ in 1..per {
            assert_eq!(mailbox.push(big(QoS::AtLeastOnce)), Pushed::Queued);
        }
        assert_eq!(mailbox.push(big(QoS::AtLeastOnce)), Pushed::Congested);
        while !mailbox.is_relieved() {
            mailbox.pop();
        }
        assert_eq!(mailbox.len(), per / 2);
    }

    /// Drops add to the broker-wide counter.
    #[test]
    fn drops_are_counted_broker_wide() {
        let common = MailboxCommon::new(MailboxLimits::default());
        let mut a = Mailbox::with(Arc::clone(&common));
        let mut b = Mailbox::with(Arc::clone(&common));
        a.push(delivery(QoS::AtMostOnce));
        b.push(delivery(QoS::AtMostOnce));
        assert_eq!(common.dropped.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
