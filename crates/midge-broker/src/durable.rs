//! Persistence wired into the broker: what the broker writes to its store, when, and
//! what a restart rebuilds from it (docs/persistence.md, "Wiring plan").
//!
//! With persistence off there is no [`Durable`] and none of this runs. With it on:
//! - routing a QoS 1/2 message to a persistent session pushes the delivery into the
//!   session's mailbox with a sequence number and, under the mailbox lock, sends the
//!   store a `PushOutgoing` (and the body, once per message): a [`Routing`] gathers the
//!   last commit of one publication, which the publisher's PUBACK or PUBREC waits for;
//! - a retained message is stored (body and index entry) under its shard's lock;
//! - the session's own changes ([`crate::session::Change`]) become ops in
//!   `connection.rs`, which holds the packets that depend on them until they are durable;
//! - [`restore`] rebuilds sessions, their queues and inflight messages, wills and the
//!   retained index at start.
//!
//! Records keep times as Unix milliseconds; the broker works with `Instant`s. One pair
//! (instant, Unix time) read at start converts between the two.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use midge_codec::{TopicFilter, TopicName};

use crate::Shared;
use crate::message::{Delivery, Message, Settle, StoreId};
use crate::registry::PendingWill;
use crate::session::{Resumed, Session, SessionSubscription};
use crate::store::{
    Commit, DiskStore, MessageSource, MsgId, Op, OpenMode, Ops, OutgoingRecord, OutgoingState,
    Persistence, RestoreMode, Restored, RetainedRecord, SessionRecord, StoredMessage,
    SubscriptionRecord, ToStored, UnixMillis, WillRecord, format,
};

/// The broker's persistence: the store's handle and the clock base.
#[derive(Debug)]
pub(crate) struct Durable {
    store: Persistence,
    /// An instant and the Unix time it was, read together at start.
    base: Instant,
    base_unix: UnixMillis,
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
        let durable = Durable {
            store,
            base: now,
            base_unix: unix,
        };
        Ok((durable, restored))
    }

    /// Stops the writer once the requests already sent are written.
    pub(crate) fn close(&self) {
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
        message
            .store_id
            .get_or_init(|| self.store.next_message_id())
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
                id: sub.id,
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

/// One publication's writes to the store, as the router pushes it into persistent
/// sessions' mailboxes ([`crate::registry::SessionEntry::push`]).
#[derive(Debug)]
pub(crate) struct Routing<'a> {
    durable: &'a Durable,
    /// Whether the body went with an earlier push of this publication.
    body_sent: bool,
    /// The last commit made: once it is durable, every earlier one is.
    pub(crate) last: Option<Commit>,
    /// The stored deliveries' flows; `None` before the first, or once a commit that
    /// no acknowledgement can stand for was made (the retained store).
    pub(crate) settle: Option<Arc<Settle>>,
    /// Whether only the commit can release the publisher (see `settle`).
    commit_only: bool,
}

impl<'a> Routing<'a> {
    pub(crate) fn new(durable: &'a Durable) -> Self {
        Routing {
            durable,
            body_sent: false,
            last: None,
            settle: None,
            commit_only: false,
        }
    }

    /// The [`Settle`] that a stored delivery of this publication reports to.
    pub(crate) fn settle(&mut self) -> Arc<Settle> {
        self.settle.get_or_insert_with(Arc::default).clone()
    }

    /// What the publisher's acknowledgement waits for, if anything.
    pub(crate) fn gate(self) -> Option<crate::router::AckGate> {
        let settle = self.settle.filter(|_| !self.commit_only);
        self.last
            .map(|commit| crate::router::AckGate::new(commit, settle))
    }

    /// The ops for pushing `delivery` into `client_id`'s queue under `seq`.
    pub(crate) fn push_ops(&self, client_id: &Arc<str>, seq: u64, delivery: &Delivery) -> Ops {
        let id = self.durable.id_of(&delivery.message);
        let push = Op::PushOutgoing {
            client_id: client_id.clone(),
            seq,
            record: outgoing_record(id, delivery),
        };
        if !self.body_sent {
            // Encoded by the writer, and only if the delivery outlives its batch.
            let source = MessageSource {
                message: Arc::downgrade(&delivery.message) as std::sync::Weak<dyn ToStored>,
                expires_at: delivery.message.expires_at.map(|at| self.durable.unix(at)),
            };
            return Ops::Two(Op::PutMessageFrom(id, source), push);
        }
        Ops::One(push)
    }

    /// Sends ops made by [`Routing::push_ops`] (the delivery was queued).
    pub(crate) fn send(&mut self, ops: Ops) {
        self.body_sent = true;
        self.last = Some(self.durable.commit(ops));
    }

    /// Notes a commit made for this publication elsewhere (the retained store).
    pub(crate) fn made(&mut self, commit: Commit) {
        self.last = Some(commit);
        self.commit_only = true;
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
        let (entry, generation) = shared
            .registry
            .connect(&record.client_id, shared.config.mailbox_limits());
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
                    id: sub.id,
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
        let mut slot = entry.slot.lock().await;
        slot.session = Some(Box::new(session));
        if let Some(will) = &record.will {
            if let Some(message) = durable.message(None, &will.message) {
                slot.will = Some(PendingWill {
                    message: Arc::new(message),
                });
                let at = durable.instant(will.publish_at);
                crate::connection::schedule_will(
                    shared,
                    &entry,
                    generation,
                    at.saturating_duration_since(now),
                );
            }
        }
        drop(slot);
        // A session whose connection the crash cut still counts its expiry from now.
        let expiry = match record.expires_at {
            Some(at) => Some(durable.instant(at).saturating_duration_since(now)),
            None if record.session_expiry == u32::MAX => None,
            None => Some(Duration::from_secs(u64::from(record.session_expiry))),
        };
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
