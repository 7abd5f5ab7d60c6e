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

pub mod retained;
pub mod trie;

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use midge_codec::{QoS, RetainHandling, SubscriptionOptions, TopicFilter};
use smallvec::SmallVec;

use crate::mailbox::Pushed;
use crate::message::{Delivery, Message};
use crate::registry::SessionEntry;
use retained::RetainedStore;
use trie::Trie;

/// One subscription as the router sees it.
#[derive(Debug, Clone)]
struct Route {
    entry: Arc<SessionEntry>,
    options: SubscriptionOptions,
    id: Option<u32>,
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
}

impl RetainedShard {
    fn with<R>(&self, f: impl FnOnce(&mut RetainedStore) -> R) -> R {
        let mut store = self.store.lock().expect("retained lock poisoned");
        let result = f(&mut store);
        self.len.store(store.len(), Ordering::Relaxed);
        result
    }
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
        }
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
        let route = Route {
            entry: entry.clone(),
            options,
            id,
        };
        let matching = filter.matching_filter();
        if filter.is_shared() {
            let name: Arc<str> = Arc::from(filter.as_str());
            let fresh_turn = Arc::default();
            self.write(|subs| subs.subscribe_shared(matching, &name, &fresh_turn, &route));
        } else {
            self.write(|subs| subs.direct.insert(matching, entry.id, route.clone()));
        }
        let send_retained = match options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendAtSubscribeIfNew => !existed,
            RetainHandling::DoNotSend => false,
        };
        // Retained messages are not sent for shared subscriptions (§4.8.2).
        if !send_retained || filter.is_shared() {
            return Vec::new();
        }
        let mut messages = Vec::new();
        for shard in &self.retained {
            if shard.len.load(Ordering::Relaxed) > 0 {
                shard.with(|store| store.matching_into(matching, now, &mut messages));
            }
        }
        messages
            .into_iter()
            .map(|message| Delivery {
                qos: self.delivery_qos(message.qos, options.qos),
                // [MQTT-3.3.1-8] (3.1.1): sent because of a new subscription: RETAIN set.
                retain: true,
                subscription_ids: id.into_iter().collect(),
                shared_group: None,
                message,
            })
            .collect()
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
        Delivery {
            qos: self.delivery_qos(message.qos, member.options.qos),
            message,
            // Retained messages are not sent for shared subscriptions, and a forwarded
            // message goes out with RETAIN only under Retain As Published.
            retain: false,
            subscription_ids: member.id.into_iter().collect(),
            shared_group: Some(group.name.clone()),
        }
    }

    /// Sends `delivery`, which came through a shared subscription of the session
    /// `leaving` and never reached it, to another member of that group (§4.8.2: a
    /// member that leaves hands its undelivered messages over). Returns false, and the
    /// message is dropped, when the group has no other member or the message expired.
    pub fn redeliver_shared(&self, delivery: Delivery, leaving: u64, now: Instant) -> bool {
        let Some(name) = delivery.shared_group else {
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
        pick.entry
            .push(self.shared_delivery(delivery.message, group, pick))
            != Pushed::Dropped
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
        Some(Delivery {
            message: message.clone(),
            qos,
            retain,
            subscription_ids: route.id.into_iter().collect(),
            shared_group: None,
        })
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
        self.publish_noting(message, &mut Vec::new())
    }

    /// As [`Router::publish`], and adds to `congested` the sessions whose mailboxes are
    /// congested (see [`crate::mailbox`]): the publisher waits for them.
    pub fn publish_noting(
        &self,
        message: Arc<Message>,
        congested: &mut Vec<Arc<SessionEntry>>,
    ) -> usize {
        if message.retain {
            let hash = self.retained_hasher.hash_one(message.topic.as_str());
            // A topic always lands in the same shard, where its newer retained message
            // replaces the older one.
            let shard = usize::try_from(hash % RETAINED_SHARDS as u64).unwrap_or(0);
            self.retained[shard].with(|store| store.store(message.clone()));
        }
        let subs = self.active.load();
        let mut lists: SmallVec<[&[(u64, Route)]; 8]> = SmallVec::new();
        subs.direct.matches(&message.topic, |list| lists.push(list));
        let mut queued = match lists.as_slice() {
            [] => 0,
            // One filter: its sessions are distinct.
            [list] => {
                let mut queued = 0;
                for (_, route) in list.iter() {
                    if let Some(delivery) = self.direct_delivery(&message, route) {
                        queued += note(route.entry.push(delivery), &route.entry, congested);
                    }
                }
                queued
            }
            lists => OVERLAPS.with(|overlaps| match overlaps.try_borrow_mut() {
                Ok(mut overlaps) => {
                    self.deliver_overlapping(&message, lists, &mut overlaps, congested)
                }
                Err(_) => self.deliver_overlapping(&message, lists, &mut Vec::new(), congested),
            }),
        };
        if !subs.shared.is_empty() {
            subs.shared.matches(&message.topic, |groups| {
                for (_, group) in groups {
                    if let Some(pick) = Self::pick_member(group, None) {
                        let delivery = self.shared_delivery(message.clone(), group, pick);
                        queued += note(pick.entry.push(delivery), &pick.entry, congested);
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
            let mut delivery = Delivery {
                message: message.clone(),
                qos: QoS::AtMostOnce,
                retain: false,
                subscription_ids: Vec::new(),
                shared_group: None,
            };
            for route in routes.clone() {
                let Some(one) = self.direct_delivery_options(message, route) else {
                    continue;
                };
                entry = Some(&route.entry);
                delivery.qos = delivery.qos.max(one.0);
                delivery.retain |= one.1;
                if route.id.is_some() && delivery.subscription_ids.is_empty() {
                    // One allocation for all of the session's identifiers.
                    let ids = routes.clone().filter_map(|r| r.id);
                    delivery.subscription_ids.reserve_exact(ids.count());
                }
                delivery.subscription_ids.extend(route.id);
            }
            if let Some(entry) = entry {
                queued += note(entry.push(delivery), entry, congested);
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
