//! Routing: which sessions get a published message.
//!
//! The [`Router`] keeps the subscriptions and the retained messages. Publishing matches
//! the topic in the subscription trie ([`trie::Trie::matches`] reports, it delivers
//! nothing), then folds the matches into one delivery per session — the highest granted
//! QoS, every matching subscription identifier ([MQTT-3.3.4-2], [MQTT-3.3.4-4]) — picks
//! one member per shared-subscription group (members with a live connection first), and
//! pushes the deliveries into the sessions' mailboxes. A member that leaves its group
//! hands the messages that did not reach it to another member
//! ([`Router::redeliver_shared`]).
//!
//! # No lock on the per-message path
//!
//! Publishers read the subscriptions without taking any lock: the router keeps two
//! copies of them (left-right). Publishers load the active copy from an [`ArcSwap`],
//! which costs no write to a shared cache line. A SUBSCRIBE or UNSUBSCRIBE, under the
//! writers' mutex, changes the standby copy, swaps it in, waits for the publishers still
//! reading the old copy to finish (a few microseconds: a walk and its mailbox pushes,
//! whose locks are held only to push), and applies the same change to the old copy,
//! which becomes the standby one. A write costs twice an O(depth) change and never stalls a publisher;
//! memory is twice the trie's, whose values are mostly `Arc`s.
//!
//! Routing a message allocates nothing but what its deliveries carry (the subscription
//! identifiers): the topic's levels are walked in place, the matching filters' lists are
//! gathered on the stack, and overlapping subscriptions of one session are folded by
//! sorting a reused per-thread list of indexes instead of filling maps.
//!
//! Retained messages sit in tries of topics ([`retained`]), in [`RETAINED_SHARDS`]
//! shards by a hash of the whole topic, each behind its own mutex: a retained PUBLISH
//! locks one shard, so retained publishers on several cores seldom meet; a SUBSCRIBE's
//! filter walks every shard (each walk visits only what the filter can match).

mod levels;
pub mod retained;
pub mod trie;

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use midge_codec::{QoS, RetainHandling, SubscriptionOptions, TopicFilter};
use smallvec::SmallVec;

use crate::durable::{Durable, Routing};
use crate::mailbox::Pushed;
use crate::message::Settle;
use crate::message::{Delivery, Message};
use crate::registry::SessionEntry;
use crate::store::{Commit, CommitError, RetainedRecord, Tickets};
use retained::{Retained, RetainedStore};
use trie::Trie;

/// One subscription as the router sees it: 16 bytes, so that a trie list of one takes
/// the 24-byte allocation class, not the 48-byte one.
#[derive(Debug, Clone)]
struct Route {
    entry: Arc<SessionEntry>,
    options: SubscriptionOptions,
    /// The subscription identifier (never 0: the codec refuses a SUBSCRIBE with 0,
    /// §3.8.2.1.2).
    id: Option<NonZeroU32>,
}

impl Route {
    fn id(&self) -> Option<u32> {
        self.id.map(NonZeroU32::get)
    }
}

/// A shared subscription group, stored under its filter and keyed by its whole
/// `$share/NAME/FILTER`.
#[derive(Debug, Clone)]
struct Group {
    /// `$share/NAME/FILTER`: names the group in its deliveries.
    name: Arc<str>,
    /// The group's turn counter, so that each group rotates over its own members (a
    /// counter shared by several groups matching the same topic could give one member
    /// of each group every message). The same counter in both copies.
    turn: Arc<AtomicUsize>,
    /// One route per member session, in the order they joined.
    members: Vec<Route>,
}

/// All subscriptions: one copy of the two (see the module documentation).
#[derive(Debug, Default)]
struct Subscriptions {
    /// Non-shared subscriptions, keyed by session id.
    direct: Trie<u64, Route>,
    /// Shared subscription groups.
    shared: Trie<Arc<str>, Group>,
    /// Members of all groups.
    shared_members: usize,
}

impl Subscriptions {
    fn subscribe_shared(
        &mut self,
        filter: &str,
        name: &Arc<str>,
        fresh_turn: &Arc<AtomicUsize>,
        route: &Route,
    ) {
        let group = self
            .shared
            .get_or_insert_with(filter, name.clone(), || Group {
                name: name.clone(),
                turn: fresh_turn.clone(),
                members: Vec::new(),
            });
        let session = route.entry.id;
        match group.members.iter_mut().find(|r| r.entry.id == session) {
            Some(member) => *member = route.clone(),
            None => {
                group.members.push(route.clone());
                self.shared_members += 1;
            }
        }
    }

    fn unsubscribe_shared(&mut self, filter: &str, name: &Arc<str>, session: u64) -> bool {
        let Some(group) = self.shared.get_mut(filter, name) else {
            return false;
        };
        let Some(i) = group.members.iter().position(|r| r.entry.id == session) else {
            return false;
        };
        group.members.remove(i);
        self.shared_members -= 1;
        if group.members.is_empty() {
            self.shared.remove(filter, name);
        }
        true
    }
}

thread_local! {
    /// Publishing thread's reused list of (session id, list, entry) indexes, for
    /// folding overlapping subscriptions without allocating.
    static OVERLAPS: RefCell<Vec<(u64, usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// Shards of the retained messages.
pub const RETAINED_SHARDS: usize = 16;

/// One shard of the retained messages.
#[derive(Debug, Default)]
struct RetainedShard {
    store: Mutex<RetainedStore>,
    /// The store's length as of its last change, read without the lock so that a
    /// SUBSCRIBE skips empty shards. A message stored while a SUBSCRIBE runs may or may
    /// not be sent as retained, as with one lock.
    len: AtomicUsize,
    /// The store's payload bytes as of its last change, for the limits.
    bytes: AtomicU64,
}

impl RetainedShard {
    fn with<R>(&self, f: impl FnOnce(&mut RetainedStore) -> R) -> R {
        let mut store = self.store.lock().expect("retained lock poisoned");
        let result = f(&mut store);
        self.len.store(store.len(), Ordering::Relaxed);
        self.bytes.store(store.bytes(), Ordering::Relaxed);
        result
    }
}

/// What a publisher's PUBACK or PUBREC waits for, with persistence on: the retained
/// store's commit, if the message was retained, and its stored deliveries (see
/// [`Settle`]). Also what any packet waits for behind a store change (a commit alone).
/// Unpin and cancel-safe.
#[derive(Debug)]
pub struct AckGate {
    /// A commit that must be durable whatever the acknowledgements.
    commit: Option<Commit>,
    stored: Option<Stored>,
}

/// A publication's stored deliveries, as its acknowledgement waits for them.
#[derive(Debug)]
struct Stored {
    settle: Arc<Settle>,
    tickets: Tickets,
    /// The commit of the deliveries' last store entry, once none is held back.
    commit: Option<Commit>,
}

impl AckGate {
    /// Waits for `commit`.
    pub fn commit(commit: Commit) -> Self {
        AckGate {
            commit: Some(commit),
            stored: None,
        }
    }

    /// Waits for `commit` if given, and for the stored deliveries of `settle` (see
    /// [`Settle`]).
    pub(crate) fn new(commit: Option<Commit>, settle: Arc<Settle>, tickets: Tickets) -> Self {
        AckGate {
            commit,
            stored: Some(Stored {
                settle,
                tickets,
                commit: None,
            }),
        }
    }

    /// The result if it is known already, without waiting.
    pub fn try_result(&mut self) -> Option<Result<(), CommitError>> {
        if let Some(commit) = &mut self.commit {
            match commit.try_result()? {
                Ok(()) => self.commit = None,
                Err(e) => return Some(Err(e)),
            }
        }
        let Some(stored) = self.stored.as_mut() else {
            return Some(Ok(()));
        };
        if stored.settle.is_settled() {
            return Some(Ok(()));
        }
        stored.commit()?.try_result()
    }
}

impl Stored {
    /// The commit to wait for, once no store entry is held back.
    fn commit(&mut self) -> Option<&mut Commit> {
        if self.commit.is_none() {
            let ticket = self.settle.durable_at()?;
            self.commit = Some(self.tickets.commit(ticket));
        }
        self.commit.as_mut()
    }
}

impl std::future::Future for AckGate {
    type Output = Result<(), CommitError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::pin::Pin;
        use std::task::Poll;
        let this = &mut *self;
        if let Some(commit) = &mut this.commit {
            std::task::ready!(Pin::new(commit).poll(cx))?;
            this.commit = None;
        }
        let Some(stored) = this.stored.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        // Twice: the second time after registering, so that no change is missed.
        for registered in [false, true] {
            if stored.settle.is_settled() {
                return Poll::Ready(Ok(()));
            }
            if let Some(commit) = stored.commit() {
                if let Poll::Ready(result) = Pin::new(commit).poll(cx) {
                    return Poll::Ready(result);
                }
            }
            if !registered {
                stored.settle.register(cx.waker());
            }
        }
        Poll::Pending
    }
}

/// Limits on the retained messages (`max_retained_messages`, `max_retained_bytes`): a
/// new topic beyond them is not retained; an update of a retained topic always is.
#[derive(Debug, Default, Clone, Copy)]
pub struct RetainedLimits {
    /// Most retained messages; 0: no limit.
    pub max_messages: usize,
    /// Most payload bytes of retained messages; 0: no limit.
    pub max_bytes: u64,
}

/// The subscriptions and the retained messages.
#[derive(Debug)]
pub struct Router {
    /// The copy publishers read.
    active: ArcSwap<Subscriptions>,
    /// The other copy, not shared with anyone between two writes. A std mutex: held for
    /// one subscribe or unsubscribe, never across an await; it serialises writers only.
    standby: Mutex<Arc<Subscriptions>>,
    /// Retained messages, sharded by topic. Std mutexes: each held for one store or one
    /// filter walk, never across an await.
    retained: Box<[RetainedShard]>,
    /// Picks a topic's retained shard.
    retained_hasher: foldhash::fast::RandomState,
    /// Deliver at the granted QoS even if published lower.
    upgrade_outgoing_qos: bool,
    retained_limits: RetainedLimits,
    /// Whether a retained message was refused for the limits already (logged once).
    retained_refused: AtomicBool,
    /// The persistence store, if persistence is on (see `crate::durable`).
    durable: Option<Arc<Durable>>,
}

impl Router {
    /// An empty router.
    pub fn new(upgrade_outgoing_qos: bool) -> Self {
        Router {
            active: ArcSwap::from_pointee(Subscriptions::default()),
            standby: Mutex::new(Arc::new(Subscriptions::default())),
            retained: (0..RETAINED_SHARDS)
                .map(|_| RetainedShard::default())
                .collect(),
            retained_hasher: foldhash::fast::RandomState::default(),
            upgrade_outgoing_qos,
            retained_limits: RetainedLimits::default(),
            retained_refused: AtomicBool::new(false),
            durable: None,
        }
    }

    /// The router with these limits on retained messages.
    pub fn with_retained_limits(mut self, limits: RetainedLimits) -> Self {
        self.retained_limits = limits;
        self
    }

    /// The router writing to the persistence store.
    pub(crate) fn with_durable(mut self, durable: Option<Arc<Durable>>) -> Self {
        self.durable = durable;
        self
    }

    fn retained_shard(&self, topic: &str) -> &RetainedShard {
        let hash = self.retained_hasher.hash_one(topic);
        // A topic always lands in the same shard, where its newer retained message
        // replaces the older one.
        &self.retained[usize::try_from(hash % RETAINED_SHARDS as u64).unwrap_or(0)]
    }

    /// Whether a retained message of `size` bytes for a topic that has none (`old` is
    /// `None`) would pass the limits.
    fn over_retained_limits(&self, old: Option<u64>, size: u64) -> bool {
        let l = self.retained_limits;
        if old.is_some() || (l.max_messages == 0 && l.max_bytes == 0) {
            return false;
        }
        let count: usize = self
            .retained
            .iter()
            .map(|s| s.len.load(Ordering::Relaxed))
            .sum();
        let bytes: u64 = self
            .retained
            .iter()
            .map(|s| s.bytes.load(Ordering::Relaxed))
            .sum();
        (l.max_messages > 0 && count >= l.max_messages)
            || (l.max_bytes > 0 && bytes + size > l.max_bytes)
    }

    /// Stores `message` as its topic's retained message (or deletes it), within the
    /// limits; returns the store's commit with persistence on.
    fn retain(&self, message: &Arc<Message>) -> Option<Commit> {
        let topic = message.topic.as_str();
        self.retained_shard(topic).with(|store| {
            let size = message.payload.len() as u64;
            if size > 0 && self.over_retained_limits(store.size_of(topic), size) {
                if !self.retained_refused.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %topic, max_retained_messages = self.retained_limits.max_messages,
                        max_retained_bytes = self.retained_limits.max_bytes,
                        "retained message limit reached: new retained topics are not retained (logged once)"
                    );
                }
                return None;
            }
            let Some(durable) = &self.durable else {
                store.store(message.clone());
                return None;
            };
            let (record, commit) = durable.retain(message);
            let entry = record.map(|r| Retained::Stored {
                id: r.message,
                expires_at: message.expires_at,
                size: r.size,
            });
            store.set(topic, entry);
            Some(commit)
        })
    }

    /// Puts back a retained message the persistence store kept.
    pub(crate) fn restore_retained(
        &self,
        topic: midge_codec::TopicName,
        record: RetainedRecord,
        expires_at: Option<Instant>,
    ) {
        let entry = Retained::Stored {
            id: record.message,
            expires_at,
            size: record.size,
        };
        self.retained_shard(topic.as_str())
            .with(|store| store.set(topic.as_str(), Some(entry)));
    }

    /// Applies `change` to both copies of the subscriptions (see the module
    /// documentation) and returns its result on the first one. `change` must do the
    /// same to two equal copies.
    fn write<R>(&self, change: impl Fn(&mut Subscriptions) -> R) -> R {
        let mut standby = self.standby.lock().expect("router lock poisoned");
        let result = change(Arc::get_mut(&mut standby).expect("the standby copy is not shared"));
        let mut old = self.active.swap(Arc::clone(&standby));
        // `swap` turned every publisher's outstanding load of `old` into a counted
        // reference (arc-swap pays its readers' debts on swap): wait until they are done.
        // A publisher holds the copy only for one walk and its mailbox pushes.
        while Arc::strong_count(&old) > 1 {
            std::thread::yield_now();
        }
        change(Arc::get_mut(&mut old).expect("no publisher reads the old copy"));
        *standby = old;
        result
    }

    /// Adds or replaces `entry`'s subscription to `filter` ([MQTT-3.8.4-3]) and returns
    /// the retained messages to send for it, per its Retain Handling
    /// ([MQTT-3.3.1-9], [MQTT-3.3.1-10], [MQTT-3.3.1-11]).
    pub fn subscribe(
        &self,
        entry: &Arc<SessionEntry>,
        filter: &TopicFilter,
        options: SubscriptionOptions,
        id: Option<u32>,
        existed: bool,
        now: Instant,
    ) -> Vec<Delivery> {
        self.insert(entry, filter, options, id);
        let matching = filter.matching_filter();
        let send_retained = match options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendAtSubscribeIfNew => !existed,
            RetainHandling::DoNotSend => false,
        };
        // Retained messages are not sent for shared subscriptions (§4.8.2).
        if !send_retained || filter.is_shared() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for shard in &self.retained {
            if shard.len.load(Ordering::Relaxed) > 0 {
                shard.with(|store| store.matching_into(matching, now, &mut found));
            }
        }
        // Bodies kept on disk are read now, out of the shards' locks.
        found
            .into_iter()
            .filter_map(|retained| match retained {
                Retained::Message(message) => Some(message),
                Retained::Stored { id, .. } => self.durable.as_ref()?.load(id),
            })
            .map(|message| {
                let qos = self.delivery_qos(message.qos, options.qos);
                // [MQTT-3.3.1-8] (3.1.1): sent because of a new subscription: RETAIN set.
                Delivery::new(message, qos, true).via(id.into_iter().collect(), None)
            })
            .collect()
    }

    /// Adds or replaces `entry`'s subscription to `filter`, sending nothing.
    fn insert(
        &self,
        entry: &Arc<SessionEntry>,
        filter: &TopicFilter,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) {
        let route = Route {
            entry: entry.clone(),
            options,
            id: id.and_then(NonZeroU32::new),
        };
        let matching = filter.matching_filter();
        if filter.is_shared() {
            let name: Arc<str> = Arc::from(filter.as_str());
            let fresh_turn = Arc::default();
            self.write(|subs| subs.subscribe_shared(matching, &name, &fresh_turn, &route));
        } else {
            self.write(|subs| subs.direct.insert(matching, entry.id, route.clone()));
        }
    }

    /// Puts back a subscription of a session the persistence store kept.
    pub(crate) fn restore_subscription(
        &self,
        entry: &Arc<SessionEntry>,
        filter: &TopicFilter,
        options: SubscriptionOptions,
        id: Option<u32>,
    ) {
        self.insert(entry, filter, options, id);
    }

    /// Removes `entry`'s subscription to `filter`.
    pub fn unsubscribe(&self, entry: &SessionEntry, filter: &TopicFilter) -> bool {
        let matching = filter.matching_filter();
        if filter.is_shared() {
            let name: Arc<str> = Arc::from(filter.as_str());
            self.write(|subs| subs.unsubscribe_shared(matching, &name, entry.id))
        } else {
            self.write(|subs| subs.direct.remove(matching, &entry.id).is_some())
        }
    }

    /// One member of a shared subscription group other than `leaving`, in turn;
    /// members with a live connection first, so that an offline persistent member does
    /// not sit on the group's messages while others could take them.
    fn pick_member(group: &Group, leaving: Option<u64>) -> Option<&Route> {
        let eligible = |r: &&Route| Some(r.entry.id) != leaving;
        let online = |r: &&Route| r.entry.is_online();
        let turn = group.turn.fetch_add(1, Ordering::Relaxed);
        let members = || group.members.iter().filter(eligible);
        match members().filter(online).count() {
            0 => match members().count() {
                0 => None,
                n => members().nth(turn % n),
            },
            n => members().filter(online).nth(turn % n),
        }
    }

    fn shared_delivery(&self, message: Arc<Message>, group: &Group, member: &Route) -> Delivery {
        let qos = self.delivery_qos(message.qos, member.options.qos);
        // Retained messages are not sent for shared subscriptions, and a forwarded
        // message goes out with RETAIN only under Retain As Published.
        Delivery::new(message, qos, false)
            .via(member.id().into_iter().collect(), Some(group.name.clone()))
    }

    /// Sends `delivery`, which came through a shared subscription of the session
    /// `leaving` and never reached it, to another member of that group (§4.8.2: a
    /// member that leaves hands its undelivered messages over). Returns false, and the
    /// message is dropped, when the group has no other member or the message expired.
    pub fn redeliver_shared(&self, delivery: Delivery, leaving: u64, now: Instant) -> bool {
        let Some(name) = delivery.shared_group().cloned() else {
            return false;
        };
        if delivery.message.is_expired(now) {
            return false;
        }
        let Ok(filter) = TopicFilter::new(&*name) else {
            return false;
        };
        let subs = self.active.load();
        let Some(group) = subs.shared.get(filter.matching_filter(), &name) else {
            return false;
        };
        let Some(pick) = Self::pick_member(group, Some(leaving)) else {
            return false;
        };
        let mut routing = self.durable.as_deref().map(Routing::new);
        pick.entry.push(
            self.shared_delivery(delivery.message, group, pick),
            routing.as_mut(),
        ) != Pushed::Dropped
    }

    fn delivery_qos(&self, published: QoS, granted: QoS) -> QoS {
        if self.upgrade_outgoing_qos {
            granted
        } else {
            published.min(granted)
        }
    }

    /// Number of subscriptions.
    pub fn subscription_count(&self) -> usize {
        let subs = self.active.load();
        subs.direct.len() + subs.shared_members
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained
            .iter()
            .map(|shard| shard.with(|store| store.len()))
            .sum()
    }

    /// What `route` gets of `message`, before folding with the session's other matching
    /// subscriptions; `None` under No Local ([MQTT-3.8.3-3]).
    fn direct_delivery(&self, message: &Arc<Message>, route: &Route) -> Option<Delivery> {
        let (qos, retain) = self.direct_delivery_options(message, route)?;
        Some(Delivery::through(message.clone(), qos, retain, route.id()))
    }

    /// The QoS and RETAIN flag of `route`'s delivery of `message`; `None` under No
    /// Local ([MQTT-3.8.3-3]).
    fn direct_delivery_options(&self, message: &Message, route: &Route) -> Option<(QoS, bool)> {
        if route.options.no_local && message.origin.as_deref() == Some(&*route.entry.client_id) {
            return None;
        }
        let qos = self.delivery_qos(message.qos, route.options.qos);
        // [MQTT-3.3.1-12] [MQTT-3.3.1-13]: Retain As Published; 3.1.1 clears it
        // ([MQTT-3.3.1-9] of 3.1.1).
        let retain = message.retain && route.options.retain_as_published;
        Some((qos, retain))
    }

    /// Routes `message` to every matching session and stores it if it is retained.
    /// Returns the number of sessions it was queued for.
    pub fn publish(&self, message: Arc<Message>) -> usize {
        self.publish_noting(message, &mut Vec::new()).0
    }

    /// As [`Router::publish`], and adds to `congested` the sessions whose mailboxes are
    /// congested (see [`crate::mailbox`]): the publisher waits for them. With
    /// persistence on, also returns the last commit made for the message: once it is
    /// durable, the message is, for every persistent session it went to and as the
    /// retained message (the publisher's PUBACK or PUBREC waits for it).
    pub fn publish_noting(
        &self,
        message: Arc<Message>,
        congested: &mut Vec<Arc<SessionEntry>>,
    ) -> (usize, Option<AckGate>) {
        let mut routing = self.durable.as_deref().map(Routing::new);
        if message.retain {
            if let (Some(commit), Some(routing)) = (self.retain(&message), routing.as_mut()) {
                routing.made(commit);
            }
        }
        let queued = self.route(&message, congested, routing.as_mut());
        (queued, routing.and_then(Routing::gate))
    }

    /// Routes `run`, messages published one after another to the same topic, as
    /// [`Router::publish_noting`] would route each in turn, when it can route them
    /// together: persistence off, none of them retained, one filter matching the topic,
    /// and no shared subscription. The topic is then matched once, and each session's
    /// mailbox locked once for the whole run, its deliveries queued in order. Returns
    /// the deliveries queued and the sessions they went to (congested ones added to
    /// `congested`); `None`, having routed nothing, when it cannot.
    pub fn publish_run(
        &self,
        run: &[Arc<Message>],
        congested: &mut Vec<Arc<SessionEntry>>,
    ) -> Option<(usize, usize)> {
        let first = run.first()?;
        if self.durable.is_some() || run.iter().any(|m| m.retain || m.topic != first.topic) {
            return None;
        }
        let subs = self.active.load();
        if !subs.shared.is_empty() {
            let mut groups = false;
            subs.shared.matches(&first.topic, |_| groups = true);
            if groups {
                return None;
            }
        }
        let mut lists: SmallVec<[&[(u64, Route)]; 2]> = SmallVec::new();
        subs.direct.matches(&first.topic, |list| lists.push(list));
        let list = match lists.as_slice() {
            [] => return Some((0, 0)),
            [list] => *list,
            _ => return None,
        };
        let (mut queued, mut sessions) = (0, 0);
        for (_, route) in list.iter() {
            let options = |message: &Message| self.direct_delivery_options(message, route);
            let (n, congesting) = route.entry.push_run(run, options, route.id());
            if n > 0 {
                queued += n;
                sessions += 1;
                if congesting {
                    congested.push(route.entry.clone());
                }
            }
        }
        Some((queued, sessions))
    }

    fn route(
        &self,
        message: &Arc<Message>,
        congested: &mut Vec<Arc<SessionEntry>>,
        mut routing: Option<&mut Routing<'_>>,
    ) -> usize {
        let subs = self.active.load();
        let mut lists: SmallVec<[&[(u64, Route)]; 8]> = SmallVec::new();
        subs.direct.matches(&message.topic, |list| lists.push(list));
        let mut queued = match lists.as_slice() {
            [] => 0,
            // One filter: its sessions are distinct.
            [list] => {
                let mut queued = 0;
                for (_, route) in list.iter() {
                    if let Some(delivery) = self.direct_delivery(message, route) {
                        let pushed = route.entry.push(delivery, routing.as_deref_mut());
                        queued += note(pushed, &route.entry, congested);
                    }
                }
                queued
            }
            lists => OVERLAPS.with(|overlaps| match overlaps.try_borrow_mut() {
                Ok(mut overlaps) => self.deliver_overlapping(
                    message,
                    lists,
                    &mut overlaps,
                    congested,
                    routing.as_deref_mut(),
                ),
                Err(_) => self.deliver_overlapping(
                    message,
                    lists,
                    &mut Vec::new(),
                    congested,
                    routing.as_deref_mut(),
                ),
            }),
        };
        if !subs.shared.is_empty() {
            subs.shared.matches(&message.topic, |groups| {
                for (_, group) in groups {
                    if let Some(pick) = Self::pick_member(group, None) {
                        let delivery = self.shared_delivery(message.clone(), group, pick);
                        let pushed = pick.entry.push(delivery, routing.as_deref_mut());
                        queued += note(pushed, &pick.entry, congested);
                    }
                }
            });
        }
        queued
    }

    /// Delivers `message` to the sessions of several matching filters, once per session
    /// with the highest QoS, RETAIN if any subscription keeps it, and every
    /// subscription identifier in match order ([MQTT-3.3.4-2], [MQTT-3.3.4-3],
    /// [MQTT-3.3.4-4], [MQTT-3.3.4-5]). `overlaps` is scratch space.
    fn deliver_overlapping(
        &self,
        message: &Arc<Message>,
        lists: &[&[(u64, Route)]],
        overlaps: &mut Vec<(u64, usize, usize)>,
        congested: &mut Vec<Arc<SessionEntry>>,
        mut routing: Option<&mut Routing<'_>>,
    ) -> usize {
        overlaps.clear();
        for (l, list) in lists.iter().enumerate() {
            overlaps.extend(
                list.iter()
                    .enumerate()
                    .map(|(i, (session, _))| (*session, l, i)),
            );
        }
        overlaps.sort_unstable();
        let mut queued = 0;
        let mut rest = overlaps.as_slice();
        while let Some(&(session, _, _)) = rest.first() {
            let run = rest.iter().take_while(|(s, _, _)| *s == session).count();
            let routes = rest[..run].iter().map(|&(_, l, i)| &lists[l][i].1);
            rest = &rest[run..];
            let mut entry = None;
            let mut delivery = Delivery::new(message.clone(), QoS::AtMostOnce, false);
            let mut ids = Vec::new();
            for route in routes.clone() {
                let Some(one) = self.direct_delivery_options(message, route) else {
                    continue;
                };
                entry = Some(&route.entry);
                delivery.qos = delivery.qos.max(one.0);
                delivery.retain |= one.1;
                if route.id.is_some() && ids.is_empty() {
                    // One allocation for all of the session's identifiers.
                    ids.reserve_exact(routes.clone().filter_map(|r| r.id).count());
                }
                ids.extend(route.id());
            }
            if let Some(entry) = entry {
                let delivery = delivery.via(ids, None);
                queued += note(
                    entry.push(delivery, routing.as_deref_mut()),
                    entry,
                    congested,
                );
            }
        }
        overlaps.clear();
        queued
    }
}

/// Counts a queued delivery (1) and notes a congested mailbox for the publisher.
fn note(
    pushed: Pushed,
    entry: &Arc<SessionEntry>,
    congested: &mut Vec<Arc<SessionEntry>>,
) -> usize {
    match pushed {
        Pushed::Queued => 1,
        Pushed::Congested => {
            congested.push(entry.clone());
            1
        }
        Pushed::Dropped => 0,
    }
}

#[cfg(test)]
mod tests;
