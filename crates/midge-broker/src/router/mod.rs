//! Routing: which sessions get a published message.
//!
//! The [`Router`] keeps the subscription trie and the retained messages. Publishing
//! matches the topic in the trie ([`trie::Trie::matches`] reports, it delivers nothing),
//! then folds the matches into one delivery per session — the highest granted QoS, every
//! matching subscription identifier ([MQTT-3.3.4-2], [MQTT-3.3.4-4]) — picks one member
//! per shared-subscription group (members with a live connection first), and pushes the
//! deliveries into the sessions' mailboxes. A member that leaves its group hands the
//! messages that did not reach it to another member ([`Router::redeliver_shared`]).
//!
//! Locking: the trie sits behind a `RwLock`, read-locked per publish and write-locked
//! only by subscribe and unsubscribe; no lock is held while a mailbox is pushed into.

pub mod retained;
pub mod trie;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use midge_codec::{QoS, RetainHandling, SubscriptionOptions, TopicFilter};

use crate::mailbox::Pushed;
use crate::message::{Delivery, Message};
use crate::registry::SessionEntry;
use retained::RetainedStore;
use trie::Trie;

/// Trie key: the session, and for shared subscriptions the whole `$share/NAME/FILTER`,
/// which names the group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SubKey {
    session: u64,
    share: Option<Arc<str>>,
}

/// One subscription as the router sees it.
#[derive(Debug, Clone)]
struct Route {
    entry: Arc<SessionEntry>,
    options: SubscriptionOptions,
    id: Option<u32>,
    /// Shared subscriptions: the group's turn counter, one per group and shared by its
    /// members' routes, so that each group rotates over its own members (a counter
    /// shared by several groups matching the same topic could give one member of each
    /// group every message). `None` for non-shared subscriptions.
    turn: Option<Arc<AtomicUsize>>,
}

/// The subscription trie and the retained messages.
#[derive(Debug)]
pub struct Router {
    subscriptions: RwLock<Trie<SubKey, Route>>,
    /// A std mutex: held for a store or a scan, never across an await.
    retained: Mutex<RetainedStore>,
    /// Deliver at the granted QoS even if published lower.
    upgrade_outgoing_qos: bool,
}

impl Router {
    /// An empty router.
    pub fn new(upgrade_outgoing_qos: bool) -> Self {
        Router {
            subscriptions: RwLock::new(Trie::new()),
            retained: Mutex::new(RetainedStore::default()),
            upgrade_outgoing_qos,
        }
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
        let key = SubKey {
            session: entry.id,
            share: filter.is_shared().then(|| Arc::from(filter.as_str())),
        };
        let mut trie = self.subscriptions.write().expect("router lock poisoned");
        let turn = key.share.as_ref().map(|group| {
            let mut turn = None;
            trie.entries(filter.matching_filter(), |k, route: &Route| {
                if k.share.as_ref() == Some(group) {
                    turn = route.turn.clone();
                }
            });
            turn.unwrap_or_default()
        });
        let route = Route {
            entry: entry.clone(),
            options,
            id,
            turn,
        };
        trie.insert(filter.matching_filter(), key, route);
        drop(trie);
        let send_retained = match options.retain_handling {
            RetainHandling::SendAtSubscribe => true,
            RetainHandling::SendAtSubscribeIfNew => !existed,
            RetainHandling::DoNotSend => false,
        };
        // Retained messages are not sent for shared subscriptions (§4.8.2).
        if !send_retained || filter.is_shared() {
            return Vec::new();
        }
        let messages = self
            .retained
            .lock()
            .expect("retained lock poisoned")
            .matching(filter.matching_filter(), now);
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
        let key = SubKey {
            session: entry.id,
            share: filter.is_shared().then(|| Arc::from(filter.as_str())),
        };
        self.subscriptions
            .write()
            .expect("router lock poisoned")
            .remove(filter.matching_filter(), &key)
            .is_some()
    }

    /// One member of a shared subscription group, in turn; members with a live
    /// connection first, so that an offline persistent member does not sit on the
    /// group's messages while others could take them.
    fn pick_member<'a>(&self, members: &[&'a Route]) -> &'a Route {
        let turn = members[0]
            .turn
            .as_ref()
            .map_or(0, |turn| turn.fetch_add(1, Ordering::Relaxed));
        let online = members.iter().filter(|r| r.entry.is_online()).count();
        if online == 0 {
            members[turn % members.len()]
        } else {
            members
                .iter()
                .filter(|r| r.entry.is_online())
                .nth(turn % online)
                .expect("within the online count")
        }
    }

    fn shared_delivery(&self, message: Arc<Message>, group: &Arc<str>, member: &Route) -> Delivery {
        Delivery {
            qos: self.delivery_qos(message.qos, member.options.qos),
            message,
            // Retained messages are not sent for shared subscriptions, and a forwarded
            // message goes out with RETAIN only under Retain As Published.
            retain: false,
            subscription_ids: member.id.into_iter().collect(),
            shared_group: Some(group.clone()),
        }
    }

    /// Sends `delivery`, which came through a shared subscription of the session
    /// `leaving` and never reached it, to another member of that group (§4.8.2: a
    /// member that leaves hands its undelivered messages over). Returns false, and the
    /// message is dropped, when the group has no other member or the message expired.
    pub fn redeliver_shared(&self, delivery: Delivery, leaving: u64, now: Instant) -> bool {
        let Some(group) = delivery.shared_group else {
            return false;
        };
        if delivery.message.is_expired(now) {
            return false;
        }
        let Ok(filter) = TopicFilter::new(&*group) else {
            return false;
        };
        let trie = self.subscriptions.read().expect("router lock poisoned");
        let mut members = Vec::new();
        trie.entries(filter.matching_filter(), |key, route| {
            if key.session != leaving && key.share.as_ref() == Some(&group) {
                members.push(route);
            }
        });
        if members.is_empty() {
            return false;
        }
        let pick = self.pick_member(&members);
        let entry = pick.entry.clone();
        let delivery = self.shared_delivery(delivery.message, &group, pick);
        drop(trie);
        entry.push(delivery) != Pushed::Dropped
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
        self.subscriptions
            .read()
            .expect("router lock poisoned")
            .len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        self.retained.lock().expect("retained lock poisoned").len()
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
            self.retained
                .lock()
                .expect("retained lock poisoned")
                .store(message.clone());
        }
        let mut direct: HashMap<u64, Delivery> = HashMap::new();
        let mut targets: Vec<Arc<SessionEntry>> = Vec::new();
        let mut groups: HashMap<&Arc<str>, Vec<&Route>> = HashMap::new();
        let trie = self.subscriptions.read().expect("router lock poisoned");
        trie.matches(&message.topic, |key, route| {
            if let Some(share) = &key.share {
                groups.entry(share).or_default().push(route);
                return;
            }
            // [MQTT-3.8.3-3]: No Local.
            if route.options.no_local && message.origin.as_deref() == Some(&*route.entry.client_id)
            {
                return;
            }
            let qos = self.delivery_qos(message.qos, route.options.qos);
            // [MQTT-3.3.1-12] [MQTT-3.3.1-13]: Retain As Published; 3.1.1 clears it
            // ([MQTT-3.3.1-9] of 3.1.1).
            let retain = message.retain && route.options.retain_as_published;
            let delivery = direct.entry(route.entry.id).or_insert_with(|| {
                targets.push(route.entry.clone());
                Delivery {
                    message: message.clone(),
                    qos,
                    retain,
                    subscription_ids: Vec::new(),
                    shared_group: None,
                }
            });
            delivery.qos = delivery.qos.max(qos);
            delivery.retain |= retain;
            delivery.subscription_ids.extend(route.id);
        });
        let mut shared: Vec<(Arc<SessionEntry>, Delivery)> = Vec::new();
        for (group, members) in &groups {
            let pick = self.pick_member(members);
            shared.push((
                pick.entry.clone(),
                self.shared_delivery(message.clone(), group, pick),
            ));
        }
        drop(trie);
        let mut queued = 0;
        let mut push = |entry: Arc<SessionEntry>, delivery| match entry.push(delivery) {
            Pushed::Queued => queued += 1,
            Pushed::Congested => {
                queued += 1;
                congested.push(entry);
            }
            Pushed::Dropped => {}
        };
        for entry in targets {
            if let Some(delivery) = direct.remove(&entry.id) {
                push(entry, delivery);
            }
        }
        for (entry, delivery) in shared {
            push(entry, delivery);
        }
        queued
    }
}
