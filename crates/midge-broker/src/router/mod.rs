//! Routing: which sessions get a published message.
//!
//! The [`Router`] keeps the subscription trie and the retained messages. Publishing
//! matches the topic in the trie ([`trie::Trie::matches`] reports, it delivers nothing),
//! then folds the matches into one delivery per session — the highest granted QoS, every
//! matching subscription identifier ([MQTT-3.3.4-2], [MQTT-3.3.4-4]) — picks one member
//! per shared-subscription group, and pushes the deliveries into the sessions' mailboxes.
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
}

/// The subscription trie and the retained messages.
#[derive(Debug)]
pub struct Router {
    subscriptions: RwLock<Trie<SubKey, Route>>,
    /// A std mutex: held for a store or a scan, never across an await.
    retained: Mutex<RetainedStore>,
    /// Rotates the choice of member in shared subscription groups.
    share_cursor: AtomicUsize,
    /// Deliver at the granted QoS even if published lower.
    upgrade_outgoing_qos: bool,
}

impl Router {
    /// An empty router.
    pub fn new(upgrade_outgoing_qos: bool) -> Self {
        Router {
            subscriptions: RwLock::new(Trie::new()),
            retained: Mutex::new(RetainedStore::default()),
            share_cursor: AtomicUsize::new(0),
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
        let route = Route {
            entry: entry.clone(),
            options,
            id,
        };
        self.subscriptions
            .write()
            .expect("router lock poisoned")
            .insert(filter.matching_filter(), key, route);
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
        if message.retain {
            self.retained
                .lock()
                .expect("retained lock poisoned")
                .store(message.clone());
        }
        let mut direct: HashMap<u64, Delivery> = HashMap::new();
        let mut targets: Vec<Arc<SessionEntry>> = Vec::new();
        let mut groups: HashMap<&str, Vec<&Route>> = HashMap::new();
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
                }
            });
            delivery.qos = delivery.qos.max(qos);
            delivery.retain |= retain;
            delivery.subscription_ids.extend(route.id);
        });
        let mut shared: Vec<(Arc<SessionEntry>, Delivery)> = Vec::new();
        for members in groups.values() {
            let pick = members[self.share_cursor.fetch_add(1, Ordering::Relaxed) % members.len()];
            shared.push((
                pick.entry.clone(),
                Delivery {
                    message: message.clone(),
                    qos: self.delivery_qos(message.qos, pick.options.qos),
                    retain: false,
                    subscription_ids: pick.id.into_iter().collect(),
                },
            ));
        }
        drop(trie);
        let mut queued = 0;
        for entry in targets {
            if let Some(delivery) = direct.remove(&entry.id) {
                queued += usize::from(entry.push(delivery));
            }
        }
        for (entry, delivery) in shared {
            queued += usize::from(entry.push(delivery));
        }
        queued
    }
}
