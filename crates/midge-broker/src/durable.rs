//! Persistence wired into the broker: what the broker writes to its store, when, and
//! what a restart rebuilds from it (docs/persistence.md, "Wiring plan").
//!
//! With persistence off there is no [`Durable`] and none of this runs. With it on:
//! - routing a QoS 1/2 message to a persistent session pushes the delivery into the
//!   session's mailbox with a sequence number, and gives it a store entry (and the body,
//!   once per message): sent to the writer under the mailbox lock, or, for a QoS 1
//!   delivery to a live connection, held back for a millisecond or two in case its
//!   subscriber acknowledges it first ([`Deferrals`]). A [`Routing`] gathers what the
//!   publisher's PUBACK or PUBREC waits for (see [`crate::message::Settle`]);
//! - a retained message is stored (body and index entry) under its shard's lock;
//! - the session's own changes ([`crate::session::Change`]) become ops in
//!   `connection.rs`, which holds the packets that depend on them until they are durable;
//! - [`restore`] rebuilds sessions, their queues and inflight messages, wills and the
//!   retained index at start.
//!
//! Records keep times as Unix milliseconds; the broker works with `Instant`s. One pair
//! (instant, Unix time) read at start converts between the two.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use midge_codec::{QoS, TopicFilter, TopicName};

use crate::Shared;
use crate::mailbox::{Mailbox, Pushed};
use crate::message::{Delivery, Message, Settle, StoreId};
use crate::registry::{Offline, PendingWill, SessionEntry};
use crate::router::AckGate;
use crate::session::{Resumed, Session, SessionSubscription};
use crate::store::{
    Commit, DiskStore, MessageSource, MsgId, Op, OpenMode, Ops, OutgoingRecord, OutgoingState,
    Persistence, RestoreMode, Restored, RetainedRecord, SessionRecord, StoredMessage,
    SubscriptionRecord, ToStored, UnixMillis, WillRecord, format,
};

/// The broker's persistence: the store's handle, the clock base, and the store entries
/// held back.
#[derive(Debug)]
pub(crate) struct Durable {
    store: Persistence,
    clock: Clock,
    deferrals: Arc<Deferrals>,
}

/// An instant and the Unix time it was, read together at start: converts between the
/// two.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    base: Instant,
    base_unix: UnixMillis,
}

impl Clock {
    /// The Unix time of `at`.
    pub(crate) fn unix(&self, at: Instant) -> UnixMillis {
        match at.checked_duration_since(self.base) {
            Some(after) => self.base_unix.saturating_add(millis(after)),
            None => self
                .base_unix
                .saturating_sub(millis(self.base.duration_since(at))),
        }
    }

    /// The instant of Unix time `at` (the base instant for times before it).
    pub(crate) fn instant(&self, at: UnixMillis) -> Instant {
        self.base + Duration::from_millis(at.saturating_sub(self.base_unix))
    }
}

impl Durable {
    /// Opens (or creates) the store in `dir` and reads it as of `now` / `unix`. An error
    /// names the file; the broker then does not start.
    pub(crate) fn open(
        dir: &Path,
        now: Instant,
        unix: UnixMillis,
    ) -> std::io::Result<(Durable, Restored)> {
        let failed = |e: crate::store::StoreError| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
        };
        let store = DiskStore::open(dir, OpenMode::Create).map_err(failed)?;
        let store: Arc<dyn crate::store::Store> = Arc::new(store);
        let mut restored =
            crate::store::restore(&*store, unix, RestoreMode::Apply).map_err(failed)?;
        if restored.report.is_clean() {
            tracing::info!(report = %restored.report, "persistence store read");
        } else {
            tracing::warn!(report = %restored.report, "persistence store read: damaged records were dropped");
            for problem in &restored.report.problems {
                tracing::warn!(%problem, "persistence store: damaged record dropped");
            }
        }
        for client_id in &restored.report.expired_sessions {
            tracing::info!(%client_id, "session expired while the broker was down");
        }
        let store = Persistence::start(store, &mut restored);
        let clock = Clock {
            base: now,
            base_unix: unix,
        };
        let deferrals = Arc::new(Deferrals::default());
        store.set_ticker(Box::new(Flusher {
            deferrals: deferrals.clone(),
            clock,
            last: None,
        }));
        let durable = Durable {
            store,
            clock,
            deferrals,
        };
        Ok((durable, restored))
    }

    /// Sends what is held back, then stops the writer once the requests already sent
    /// are written.
    pub(crate) fn close(&self) {
        self.deferrals.flush(&self.store, self.clock, u64::MAX);
        self.store.close();
        let stats = self.store.stats();
        tracing::info!(
            commits = stats.requests,
            batches = stats.batches,
            ops = stats.ops,
            changes_written = stats.changes,
            "persistence store closed"
        );
    }

    /// The Unix time of `at`.
    pub(crate) fn unix(&self, at: Instant) -> UnixMillis {
        self.clock.unix(at)
    }

    /// The instant of Unix time `at` (the base instant for times before it).
    pub(crate) fn instant(&self, at: UnixMillis) -> Instant {
        self.clock.instant(at)
    }

    /// Sends `ops` to the writer (see [`Persistence::commit`]).
    pub(crate) fn commit(&self, ops: impl Into<Ops>) -> Commit {
        self.store.commit(ops)
    }

    /// Whether the writer has fallen far behind: connections stop reading meanwhile.
    pub(crate) fn is_backlogged(&self) -> bool {
        self.store.is_backlogged()
    }

    /// Completes once the writer has caught up (see [`Persistence::drained`]).
    pub(crate) async fn drained(&self) {
        self.store.drained().await;
    }

    /// Sends `ops` to the writer, for nobody to wait on (see [`Persistence::send`]).
    pub(crate) fn send(&self, ops: impl Into<Ops>) {
        self.store.send(ops);
    }

    /// The message's body id, given now if it has none.
    pub(crate) fn id_of(&self, message: &Message) -> MsgId {
        id_of(&self.store, message)
    }

    /// The message as the store keeps it.
    pub(crate) fn stored(&self, message: &Message) -> StoredMessage {
        message.to_stored(message.expires_at.map(|at| self.unix(at)))
    }

    /// The message of a stored body; `None` (logged) if it does not decode.
    pub(crate) fn message(&self, id: Option<MsgId>, stored: &StoredMessage) -> Option<Message> {
        let publish = match stored.decode_publish() {
            Ok(publish) => publish,
            Err(e) => {
                tracing::warn!(error = %e, "persistence store: a message body does not decode; dropped");
                return None;
            }
        };
        Some(Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: publish.properties,
            expires_at: stored.expires_at.map(|at| self.instant(at)),
            origin: stored.origin.as_deref().map(Arc::from),
            encoded: Default::default(),
            store_id: id.map(StoreId::known).unwrap_or_default(),
        })
    }

    /// Reads the body of a retained message; `None` (logged) if it cannot be read.
    pub(crate) fn load(&self, id: MsgId) -> Option<Arc<Message>> {
        match self.store.message(id) {
            Ok(Some(stored)) => self.message(Some(id), &stored).map(Arc::new),
            Ok(None) => {
                tracing::warn!(
                    id = id.0,
                    "persistence store: a retained message body is missing"
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "persistence store: cannot read a retained message");
                None
            }
        }
    }

    /// Stores a retained message, or deletes the topic's for an empty payload. Called
    /// under the topic's shard lock, so that the store sees a topic's changes in the
    /// order memory does. Returns the index entry to keep in memory.
    pub(crate) fn retain(&self, message: &Message) -> (Option<RetainedRecord>, Commit) {
        let topic = message.topic.as_str().to_string();
        if message.payload.is_empty() {
            return (None, self.commit(Ops::One(Op::DeleteRetained(topic))));
        }
        let id = self.id_of(message);
        let stored = self.stored(message);
        let record = RetainedRecord {
            message: id,
            expires_at: stored.expires_at,
            size: u32::try_from(message.payload.len()).unwrap_or(u32::MAX),
        };
        // Readable by subscriptions made before the write is done.
        self.store.hold(id, stored.clone());
        let ops = vec![
            Op::PutMessage(id, stored),
            Op::SetRetained { topic, record },
        ];
        (Some(record), self.commit(ops))
    }

    /// The record of `session`, connected (`expires_at: None`) or ended.
    pub(crate) fn session_record(
        &self,
        session: &Session,
        expires_at: Option<Instant>,
        will: Option<(&Message, Instant)>,
    ) -> SessionRecord {
        let mut subscriptions: Vec<SubscriptionRecord> = session
            .subscriptions()
            .iter()
            .map(|(filter, sub)| SubscriptionRecord {
                filter: filter.as_str().to_string(),
                options: format::options_byte(&sub.options),
                id: sub.id.map(NonZeroU32::get),
            })
            .collect();
        subscriptions.sort_by(|a, b| a.filter.cmp(&b.filter));
        SessionRecord {
            client_id: session.client_id().to_string(),
            protocol: session.version() as u8,
            session_expiry: session.session_expiry(),
            expires_at: expires_at.map(|at| self.unix(at)),
            last_packet_id: session.last_packet_id(),
            subscriptions,
            will: will.map(|(message, at)| WillRecord {
                message: self.stored(message),
                publish_at: self.unix(at),
            }),
        }
    }
}

impl ToStored for Message {
    fn to_stored(&self, expires_at: Option<UnixMillis>) -> StoredMessage {
        let publish = self.publish(self.qos, self.retain, None);
        StoredMessage::from_publish(publish, expires_at, self.origin.as_deref())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The store's record of a delivery to a persistent session.
pub(crate) fn outgoing_record(id: MsgId, delivery: &Delivery) -> OutgoingRecord {
    OutgoingRecord {
        message: id,
        qos: delivery.qos,
        retain: delivery.retain,
        subscription_ids: delivery.subscription_ids().to_vec(),
        shared_group: delivery.shared_group().map(|g| g.to_string()),
        state: OutgoingState::Queued,
    }
}

/// The message's body id in `store`, given now if it has none.
fn id_of(store: &Persistence, message: &Message) -> MsgId {
    message.store_id.get_or_init(|| store.next_message_id())
}

/// The store ops of `delivery` pushed into `client_id`'s queue under `seq`: its body
/// (encoded by the writer, and only if the delivery outlives its batch), and its entry.
fn entry_ops(
    store: &Persistence,
    clock: Clock,
    client_id: &Arc<str>,
    seq: u64,
    delivery: &Delivery,
) -> (Op, Op) {
    let id = id_of(store, &delivery.message);
    let source = MessageSource {
        message: Arc::downgrade(&delivery.message) as std::sync::Weak<dyn ToStored>,
        expires_at: delivery.message.expires_at.map(|at| clock.unix(at)),
    };
    let push = Op::PushOutgoing {
        client_id: client_id.clone(),
        seq,
        record: outgoing_record(id, delivery),
    };
    (Op::PutMessageFrom(id, source), push)
}

/// How long a QoS 1 delivery to a live connection holds its store entry back at least
/// (and at most twice as long, plus the writer's delay).
///
/// A delivery acknowledged by its subscriber within that time never reaches the
/// store's writer: neither its entry nor its removal is sent, which under load is
/// nearly every delivery (BENCHMARKS.md, "Persistence"). One that is not acknowledged
/// by then is sent to the writer like any other, and its publisher's PUBACK waits for
/// that commit: so a slow subscriber delays its publishers' acknowledgements by this
/// much, and nothing acknowledged is ever only in memory.
const HOLD: Duration = Duration::from_millis(1);

/// Store entries held back, by session: each held entry sits in its session's mailbox
/// ([`crate::mailbox::Mailbox::hold`]) beside the delivery, and the mailbox is listed
/// here. The store's writer thread sends those that have waited [`HOLD`]
/// ([`Flusher`]); the connection that sees a delivery's flow end first takes its entry
/// out, and then sends no removal either (`connection.rs`, `send_unsent`).
///
/// Order in the store: a held entry is taken out, and sent, under its mailbox's lock,
/// and the connection looks for it under the same lock before it sends the removal of
/// that delivery; so the writer sees the entry before its removal, or neither. The
/// session's end takes its held entries out with its queue, before the session's
/// deletion is sent.
#[derive(Debug, Default)]
pub(crate) struct Deferrals {
    /// The sessions whose mailboxes hold entries back, each once.
    listed: Mutex<Vec<Arc<SessionEntry>>>,
    /// Advanced every [`HOLD`] by the writer; each held entry notes the epoch it came in.
    epoch: AtomicU64,
    /// Held by a flush from start to end: the last one, at close, then finds every
    /// mailbox that an earlier one, still running, would list again.
    flushing: Mutex<()>,
}

impl Deferrals {
    /// Lists `entry`, whose mailbox now holds an entry back; returns whether the list
    /// was empty: the writer may then be asleep, and must be woken.
    fn list(&self, entry: Arc<SessionEntry>) -> bool {
        let mut listed = self.listed.lock().expect("deferrals lock poisoned");
        listed.push(entry);
        listed.len() == 1
    }

    /// Sends the entries held back in epochs up to `until`; returns whether some are
    /// still held.
    fn flush(&self, store: &Persistence, clock: Clock, until: u64) -> bool {
        let _flushing = self.flushing.lock().expect("deferrals lock poisoned");
        let entries = std::mem::take(&mut *self.listed.lock().expect("deferrals lock poisoned"));
        let mut still = Vec::new();
        let mut due = Vec::new();
        for entry in entries {
            let mut mailbox = entry.mailbox.lock().expect("mailbox lock poisoned");
            mailbox.take_held(until, &mut due);
            if !due.is_empty() {
                let mut ops = Vec::with_capacity(2 * due.len());
                for held in &due {
                    let (body, push) =
                        entry_ops(store, clock, &entry.client_id, held.seq, &held.delivery);
                    ops.extend([body, push]);
                }
                let ticket = store.send_numbered(ops);
                for held in &due {
                    if let Some(settle) = &held.delivery.settle {
                        settle.sent(ticket);
                    }
                }
            }
            let listed = mailbox.keep_listed();
            drop(mailbox);
            // Released once the lock is free: their publishers may be woken.
            due.clear();
            if listed {
                still.push(entry);
            }
        }
        let mut listed = self.listed.lock().expect("deferrals lock poisoned");
        listed.extend(still);
        !listed.is_empty()
    }
}

/// A delivery whose store entry is held back (see [`Deferrals`]). Dropping it releases
/// it from its publication's [`Settle`].
#[derive(Debug)]
pub(crate) struct HeldEntry {
    /// The delivery's sequence number in its session.
    pub(crate) seq: u64,
    /// The [`Deferrals`] epoch it came in.
    pub(crate) epoch: u64,
    delivery: Delivery,
}

impl Drop for HeldEntry {
    fn drop(&mut self) {
        if let Some(settle) = self.delivery.settle.take() {
            settle.released();
        }
    }
}

/// The writer's side of [`Deferrals`]: every [`HOLD`], a new epoch, and what came in
/// before the last one is sent.
#[derive(Debug)]
struct Flusher {
    deferrals: Arc<Deferrals>,
    clock: Clock,
    /// When the epoch last advanced.
    last: Option<Instant>,
}

impl crate::store::Ticker for Flusher {
    fn tick(&mut self, store: &Persistence, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < HOLD)
        {
            return !self
                .deferrals
                .listed
                .lock()
                .expect("deferrals lock poisoned")
                .is_empty();
        }
        self.last = Some(now);
        let epoch = self.deferrals.epoch.fetch_add(1, Ordering::Relaxed) + 1;
        self.deferrals
            .flush(store, self.clock, epoch.saturating_sub(2))
    }
}

/// Where a stored delivery's entry goes: held back beside it in its mailbox (with a copy
/// of the delivery), or to the writer now (its body and entry ops).
enum EntryGoes {
    Held(Delivery),
    Now(Op, Op),
}

/// One publication's writes to the store, as the router pushes it into persistent
/// sessions' mailboxes ([`crate::registry::SessionEntry::push`]).
#[derive(Debug)]
pub(crate) struct Routing<'a> {
    durable: &'a Durable,
    /// Whether the body went with an earlier entry of this publication sent at once.
    body_sent: bool,
    /// The retained store's commit: the publisher's acknowledgement waits for it,
    /// whatever the subscribers do.
    retained: Option<Commit>,
    /// The stored deliveries (`None` before the first).
    settle: Option<Arc<Settle>>,
}

impl<'a> Routing<'a> {
    pub(crate) fn new(durable: &'a Durable) -> Self {
        Routing {
            durable,
            body_sent: false,
            retained: None,
            settle: None,
        }
    }

    /// What the publisher's acknowledgement waits for, if anything.
    pub(crate) fn gate(self) -> Option<AckGate> {
        match (self.retained, self.settle) {
            (None, None) => None,
            (Some(commit), None) => Some(AckGate::commit(commit)),
            (commit, Some(settle)) => {
                Some(AckGate::new(commit, settle, self.durable.store.tickets()))
            }
        }
    }

    /// Pushes `delivery` into `entry`'s mailbox (locked), with its store entry if the
    /// session is kept in the store and the delivery is QoS 1/2: held back for a QoS 1
    /// delivery to a live connection (see [`Deferrals`]), else sent at once — before
    /// the lock is released, so that the connection that pops the delivery can only
    /// send the removal after it.
    pub(crate) fn push(
        &mut self,
        entry: &Arc<SessionEntry>,
        mailbox: &mut Mailbox,
        mut delivery: Delivery,
    ) -> Pushed {
        delivery.seq = mailbox.next_seq(delivery.qos);
        let Some(seq) = delivery.seq else {
            return mailbox.push(delivery);
        };
        let settle = self.settle.get_or_insert_with(Arc::default).clone();
        delivery.settle = Some(settle.clone());
        let hold = delivery.qos == QoS::AtLeastOnce
            && mailbox.is_online()
            && delivery.shared_group().is_none();
        let store = &self.durable.store;
        let entry_goes = match hold {
            true => EntryGoes::Held(delivery.clone()),
            false => {
                let (body, push) =
                    entry_ops(store, self.durable.clock, &entry.client_id, seq, &delivery);
                EntryGoes::Now(body, push)
            }
        };
        let pushed = mailbox.push(delivery);
        if pushed == Pushed::Dropped {
            return pushed;
        }
        // Before the lock is released: the delivery cannot end before.
        settle.opened();
        match entry_goes {
            EntryGoes::Held(delivery) => {
                settle.held();
                let deferrals = &self.durable.deferrals;
                let held = HeldEntry {
                    seq,
                    epoch: deferrals.epoch.load(Ordering::Relaxed),
                    delivery,
                };
                if mailbox.hold(held) && deferrals.list(entry.clone()) {
                    // Wakes the writer, which may sleep until a request comes.
                    store.send(Ops::List(Vec::new()));
                }
            }
            EntryGoes::Now(body, push) => {
                let ops = match std::mem::replace(&mut self.body_sent, true) {
                    true => Ops::One(push),
                    false => Ops::Two(body, push),
                };
                settle.sent(store.send_numbered(ops));
            }
        }
        pushed
    }

    /// Notes the retained store's commit for this publication.
    pub(crate) fn made(&mut self, commit: Commit) {
        self.retained = Some(commit);
    }
}

/// Rebuilds the broker's state from what the store gave back, before any listener
/// starts: the retained index, then the sessions (subscriptions, queues, inflight
/// messages, incoming QoS 2 ids, wills and their timers, expiry timers), then the wills
/// that came due while the broker was down.
pub(crate) async fn restore(shared: &Arc<Shared>, restored: Restored, now: Instant) {
    let Some(durable) = shared.durable.as_deref() else {
        return;
    };
    for (topic, record) in restored.retained {
        let Ok(topic) = TopicName::new(topic) else {
            continue;
        };
        let expires_at = record.expires_at.map(|at| durable.instant(at));
        shared.router.restore_retained(topic, record, expires_at);
    }
    // One message per body, shared by every session that holds it.
    let mut messages: HashMap<MsgId, Arc<Message>> = HashMap::new();
    for stored in restored.sessions {
        let record = stored.record;
        let (entry, generation) = shared.registry.connect(&record.client_id);
        let mut subscriptions = crate::session::Subscriptions::default();
        for sub in &record.subscriptions {
            let (Ok(filter), Ok(options)) = (
                TopicFilter::new(sub.filter.clone()),
                format::options_from_byte(sub.options),
            ) else {
                tracing::warn!(client_id = %record.client_id, filter = %sub.filter, "persistence store: a stored subscription is not valid; dropped");
                continue;
            };
            shared
                .router
                .restore_subscription(&entry, &filter, options, sub.id);
            subscriptions.insert(
                filter,
                SessionSubscription {
                    options,
                    id: sub.id.and_then(NonZeroU32::new),
                },
            );
        }
        let mut outgoing = Vec::with_capacity(stored.outgoing.len());
        let mut last_seq = 0;
        for (seq, out) in stored.outgoing {
            last_seq = seq;
            let message = match messages.get(&out.message) {
                Some(message) => message.clone(),
                None => {
                    let Some(body) = restored.messages.get(&out.message) else {
                        continue;
                    };
                    let Some(message) = durable.message(Some(out.message), body) else {
                        continue;
                    };
                    let message = Arc::new(message);
                    messages.insert(out.message, message.clone());
                    message
                }
            };
            let mut delivery = Delivery::new(message, out.qos, out.retain)
                .via(out.subscription_ids, out.shared_group.map(Arc::from));
            delivery.seq = Some(seq);
            outgoing.push((delivery, out.state));
        }
        let version = match record.protocol {
            3 => midge_codec::ProtocolVersion::V31,
            5 => midge_codec::ProtocolVersion::V5,
            _ => midge_codec::ProtocolVersion::V311,
        };
        let session = Session::restore(
            entry.client_id.clone(),
            shared.session_config.clone(),
            now,
            Resumed {
                version,
                session_expiry: record.session_expiry,
                last_packet_id: record.last_packet_id,
                subscriptions,
                incoming_qos2: stored.incoming.into_iter().collect::<HashSet<u16>>(),
                outgoing,
            },
        );
        entry.set_persistent(Some(last_seq + 1));
        // A session whose connection the crash cut still counts its expiry from now.
        let expiry = match record.expires_at {
            Some(at) => Some(durable.instant(at).saturating_duration_since(now)),
            None if record.session_expiry == u32::MAX => None,
            None => Some(Duration::from_secs(u64::from(record.session_expiry))),
        };
        let will = record.will.as_ref().and_then(|stored| {
            let message = durable.message(None, &stored.message)?;
            Some((Arc::new(message), durable.instant(stored.publish_at)))
        });
        let hold = entry.hold_slot().await;
        *hold.get() = Some(Box::new(Offline {
            session,
            will: will.as_ref().map(|(message, _)| PendingWill {
                message: message.clone(),
            }),
            expires_at: expiry.map(|wait| now + wait),
        }));
        // Scheduled with the slot held and the will in it: the timer takes the slot
        // after this.
        if let Some((_, at)) = will {
            crate::connection::schedule_will(
                shared,
                &entry,
                generation,
                at.saturating_duration_since(now),
            );
        }
        drop(hold);
        if let Some(wait) = expiry {
            crate::connection::schedule_expiry(shared, &entry, generation, wait);
        }
    }
    for will in restored.due_wills {
        if let Some(message) = durable.message(None, &will) {
            crate::connection::publish_will(shared, Arc::new(message), now);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Held-back store entries ([`Deferrals`]): what the writer gets, and when the
    //! publisher's acknowledgement may go.

    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    use midge_codec::QoS;

    use super::{Durable, Routing};
    use crate::mailbox::Pushed;
    use crate::message::test_delivery;
    use crate::registry::{Registry, SessionEntry};
    use crate::router::AckGate;
    use crate::store::tests::TempDir;

    #[allow(clippy::disallowed_methods)]
    fn now() -> Instant {
        Instant::now()
    }

    fn open(dir: &TempDir) -> Durable {
        Durable::open(dir.path(), now(), 1_000)
            .expect("store opens")
            .0
    }

    /// A store in a fresh directory, and a persistent session `c1` in it.
    struct Fixture {
        dir: TempDir,
        durable: Durable,
        _registry: Registry,
        entry: Arc<SessionEntry>,
    }

    /// The session is online (a live connection) or not.
    fn fixture(name: &str, online: bool) -> Fixture {
        let dir = TempDir::new(name);
        let durable = open(&dir);
        let registry = Registry::default();
        let (entry, _) = registry.connect("c1");
        entry.set_persistent(Some(1));
        entry.set_online(online);
        Fixture {
            dir,
            durable,
            _registry: registry,
            entry,
        }
    }

    /// Routes one QoS 1 delivery into `entry`; returns the publisher's gate.
    fn route(durable: &Durable, entry: &Arc<SessionEntry>) -> AckGate {
        let mut routing = Routing::new(durable);
        let pushed = entry.push(test_delivery("t", QoS::AtLeastOnce), Some(&mut routing));
        assert_eq!(pushed, Pushed::Queued);
        routing
            .gate()
            .expect("a stored delivery: the publisher waits")
    }

    fn poll(gate: &mut AckGate) -> Poll<Result<(), crate::store::CommitError>> {
        Pin::new(gate).poll(&mut Context::from_waker(Waker::noop()))
    }

    /// Waits (up to 5 s) for `gate`.
    fn wait(gate: &mut AckGate) {
        for _ in 0..5_000 {
            if let Poll::Ready(result) = poll(gate) {
                return result.expect("the commit succeeds");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the publisher was never released");
    }

    /// A delivery acknowledged while its entry is held back: the publisher is released
    /// at once, and neither the entry nor its removal reaches the writer.
    #[test]
    fn an_entry_acknowledged_while_held_back_never_reaches_the_writer() {
        let f = fixture("held-acked", true);
        let (durable, entry) = (&f.durable, &f.entry);
        let mut gate = route(durable, entry);
        assert!(poll(&mut gate).is_pending(), "held back, not acknowledged");
        // The connection pops it, the subscriber acknowledges it, and the removal it
        // would send finds the entry still held (`connection.rs`, `send_unsent`).
        let delivery = entry.mailbox.lock().unwrap().pop().expect("queued");
        delivery.settle.as_ref().expect("stored").done();
        assert!(poll(&mut gate).is_ready(), "acknowledged: released");
        let seq = delivery.seq.expect("numbered");
        assert!(entry.mailbox.lock().unwrap().release_held(seq));
        assert!(!entry.mailbox.lock().unwrap().holds_entries());
        durable.close();
        assert_eq!(durable.store.stats().ops, 0, "nothing written");
    }

    /// A delivery not acknowledged within the hold: its entry (and body) goes to the
    /// writer, and the publisher is released once that commit is durable.
    #[test]
    fn an_entry_not_acknowledged_is_sent_and_the_publisher_waits_for_its_commit() {
        let f = fixture("held-sent", true);
        let (durable, entry) = (&f.durable, &f.entry);
        let mut gate = route(durable, entry);
        wait(&mut gate);
        let mailbox = entry.mailbox.lock().unwrap();
        assert!(!mailbox.holds_entries(), "sent");
        assert_eq!(mailbox.len(), 1, "the delivery itself stays queued");
        drop(mailbox);
        let stats = durable.store.stats();
        assert_eq!(stats.ops, 2, "its body and its entry");
        assert_eq!(stats.changes, 2, "both written");
        durable.close();
    }

    /// A session that ends while its entries are held back drops them: the publisher
    /// is released (nothing is left to keep), and nothing reaches the writer.
    #[test]
    fn a_session_ending_drops_its_held_entries_and_releases_the_publisher() {
        let f = fixture("held-ended", true);
        let (durable, entry) = (&f.durable, &f.entry);
        let mut gate = route(durable, entry);
        assert!(poll(&mut gate).is_pending());
        entry.mailbox.lock().unwrap().clear();
        assert!(poll(&mut gate).is_ready(), "released");
        durable.close();
        assert_eq!(durable.store.stats().ops, 0);
    }

    /// A delivery to a session with no live connection is stored at once: nothing
    /// would acknowledge it soon.
    #[test]
    fn an_entry_for_an_offline_session_is_sent_at_once() {
        let f = fixture("held-offline", false);
        let (durable, entry) = (&f.durable, &f.entry);
        let mut gate = route(durable, entry);
        assert!(!entry.mailbox.lock().unwrap().holds_entries());
        wait(&mut gate);
        assert_eq!(durable.store.stats().ops, 2);
        durable.close();
    }

    /// Closing the store sends what is still held back: a graceful restart keeps it.
    #[test]
    fn closing_sends_the_entries_still_held_back() {
        let Fixture {
            dir,
            durable,
            entry,
            _registry,
        } = fixture("held-closed", true);
        let record = crate::store::SessionRecord {
            client_id: "c1".into(),
            protocol: 5,
            session_expiry: 60,
            expires_at: None,
            last_packet_id: 0,
            subscriptions: Vec::new(),
            will: None,
        };
        durable
            .store
            .commit_blocking(vec![crate::store::Op::PutSession(Box::new(record))])
            .unwrap();
        let gate = route(&durable, &entry);
        assert!(entry.mailbox.lock().unwrap().holds_entries());
        durable.close();
        assert_eq!(
            durable.store.stats().ops,
            3,
            "the session, the body, the entry"
        );
        // A publisher's gate does not keep the store open.
        drop(durable);
        let (durable, restored) = Durable::open(dir.path(), now(), 1_000).expect("reopens");
        drop(gate);
        assert!(restored.report.is_clean(), "{}", restored.report);
        assert_eq!(restored.sessions.len(), 1);
        assert_eq!(
            restored.sessions[0].outgoing.len(),
            1,
            "the delivery was kept"
        );
        durable.close();
    }
}
