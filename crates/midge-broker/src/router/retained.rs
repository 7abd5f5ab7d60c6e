//! Retained messages: the last retained message of each topic, delivered to new
//! subscriptions ([MQTT-3.3.1-5], [MQTT-3.3.1-6], [MQTT-3.3.1-7]).
//!
//! The messages sit in a trie of topic levels, which a subscription's filter walks: a
//! literal level follows one child, `+` every child, `#` the whole subtree. So `a/b/+`
//! looks at the children of `a/b` only, not at a million unrelated topics. A topic that
//! starts with `$` is not reached through a leading wildcard ([MQTT-4.7.2-1]). Expired
//! messages are dropped when a walk comes across them or their topic is stored again.
//!
//! With persistence on, the store keeps only an index entry per topic
//! ([`Retained::Stored`]): the body stays on disk until a subscription needs it, so a
//! million retained messages cost memory for their topics, not their payloads.

use std::sync::Arc;
use std::time::Instant;

use super::trie::FastMap;
use crate::message::Message;
use crate::store::MsgId;

/// A topic's retained message: in memory, or in the persistence store.
#[derive(Debug, Clone)]
pub enum Retained {
    /// The message itself (persistence off).
    Message(Arc<Message>),
    /// Where the persistence store keeps it.
    Stored {
        /// The body's id.
        id: MsgId,
        /// When it expires.
        expires_at: Option<Instant>,
        /// Its payload size.
        size: u32,
    },
}

impl Retained {
    /// Payload bytes, for the retained byte limit.
    pub fn size(&self) -> u64 {
        match self {
            Retained::Message(m) => m.payload.len() as u64,
            Retained::Stored { size, .. } => u64::from(*size),
        }
    }

    fn is_expired(&self, now: Instant) -> bool {
        match self {
            Retained::Message(m) => m.is_expired(now),
            Retained::Stored { expires_at, .. } => expires_at.is_some_and(|at| at <= now),
        }
    }
}

/// Retained messages by topic.
#[derive(Debug, Default)]
pub struct RetainedStore {
    root: Node,
    len: usize,
    /// Payload bytes of the messages kept.
    bytes: u64,
}

#[derive(Debug, Default)]
struct Node {
    children: FastMap<Box<str>, Node>,
    /// The retained message of the topic that ends here.
    message: Option<Retained>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.message.is_none() && self.children.is_empty()
    }
}

impl RetainedStore {
    /// Stores `message` as the retained message of its topic, or removes the topic's
    /// retained message when the payload is empty ([MQTT-3.3.1-6], [MQTT-3.3.1-7]).
    pub fn store(&mut self, message: Arc<Message>) {
        let entry = (!message.payload.is_empty()).then(|| Retained::Message(message.clone()));
        self.set(message.topic.as_str(), entry);
    }

    /// Sets (`Some`) or removes (`None`) the retained message of `topic`; returns the one
    /// it replaced.
    pub fn set(&mut self, topic: &str, entry: Option<Retained>) -> Option<Retained> {
        let Some(entry) = entry else {
            let removed = remove(&mut self.root, topic.split('/'));
            if let Some(old) = &removed {
                self.len -= 1;
                self.bytes -= old.size();
            }
            return removed;
        };
        let mut node = &mut self.root;
        for level in topic.split('/') {
            // No key allocated for a level that exists (the usual case: a topic's
            // retained message replaced).
            if !node.children.contains_key(level) {
                node.children.insert(level.into(), Node::default());
            }
            node = node.children.get_mut(level).expect("just ensured");
        }
        self.bytes += entry.size();
        let old = node.message.replace(entry);
        match &old {
            Some(old) => self.bytes -= old.size(),
            None => self.len += 1,
        }
        old
    }

    /// The payload size of `topic`'s retained message, if it has one.
    pub fn size_of(&self, topic: &str) -> Option<u64> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_ref().map(Retained::size)
    }

    /// Payload bytes of the retained messages (expired ones not yet come across
    /// included).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Number of retained messages (expired ones not yet come across included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The unexpired retained messages whose topics match `filter` (a valid filter
    /// without `$share/`), dropping the expired ones met on the way.
    pub fn matching(&mut self, filter: &str, now: Instant) -> Vec<Retained> {
        let mut out = Vec::new();
        self.matching_into(filter, now, &mut out);
        out
    }

    /// [`RetainedStore::matching`], appending to `out`.
    pub fn matching_into(&mut self, filter: &str, now: Instant, out: &mut Vec<Retained>) {
        let mut walk = Walk {
            now,
            out,
            expired: 0,
            expired_bytes: 0,
        };
        walk.filter(&mut self.root, filter.split('/'), true);
        self.len -= walk.expired;
        self.bytes -= walk.expired_bytes;
    }
}

/// Removes the message of the topic of `levels`, pruning empty nodes, and returns it.
fn remove<'t>(node: &mut Node, mut levels: impl Iterator<Item = &'t str>) -> Option<Retained> {
    let Some(level) = levels.next() else {
        return node.message.take();
    };
    let child = node.children.get_mut(level)?;
    let removed = remove(child, levels);
    if child.is_empty() {
        node.children.remove(level);
    }
    removed
}

/// One filter's walk through the store.
struct Walk<'o> {
    now: Instant,
    out: &'o mut Vec<Retained>,
    expired: usize,
    expired_bytes: u64,
}

impl Walk<'_> {
    fn take(&mut self, node: &mut Node) {
        let Some(message) = &node.message else {
            return;
        };
        if message.is_expired(self.now) {
            self.expired_bytes += message.size();
            node.message = None;
            self.expired += 1;
        } else {
            self.out.push(message.clone());
        }
    }

    /// `root` is true at the first level, where wildcards skip `$` topics.
    fn filter<'f>(&mut self, node: &mut Node, mut levels: std::str::Split<'f, char>, root: bool) {
        let Some(level) = levels.next() else {
            self.take(node);
            return;
        };
        match level {
            "#" => {
                // "a/#" matches "a" too: the parent level.
                if !root {
                    self.take(node);
                }
                node.children.retain(|name, child| {
                    if !(root && name.starts_with('$')) {
                        self.subtree(child);
                    }
                    !child.is_empty()
                });
            }
            "+" => node.children.retain(|name, child| {
                if !(root && name.starts_with('$')) {
                    self.filter(child, levels.clone(), false);
                }
                !child.is_empty()
            }),
            _ => {
                if let Some(child) = node.children.get_mut(level) {
                    self.filter(child, levels, false);
                    if child.is_empty() {
                        node.children.remove(level);
                    }
                }
            }
        }
    }

    fn subtree(&mut self, node: &mut Node) {
        self.take(node);
        node.children.retain(|_, child| {
            self.subtree(child);
            !child.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_codec::{QoS, TopicName};
    use proptest::prelude::*;
    use std::time::Duration;

    /// The virtual clock's origin: the only real clock read in these tests.
    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn message(topic: &str, payload: &'static [u8], expires_at: Option<Instant>) -> Arc<Message> {
        Arc::new(Message {
            topic: TopicName::new(topic.to_owned()).expect("valid topic"),
            payload: Bytes::from_static(payload),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: Default::default(),
            expires_at,
            origin: None,
            encoded: Default::default(),
            store_id: Default::default(),
        })
    }

    fn topics(store: &mut RetainedStore, filter: &str, now: Instant) -> Vec<String> {
        let mut out: Vec<String> = store
            .matching(filter, now)
            .iter()
            .map(|m| match m {
                Retained::Message(m) => m.topic.as_str().to_owned(),
                Retained::Stored { .. } => unreachable!("only messages are stored here"),
            })
            .collect();
        out.sort();
        out
    }

    /// conformance: v5 MQTT-3.3.1-6
    /// conformance: v5 MQTT-3.3.1-7
    /// conformance: v5 MQTT-4.7.2-1
    #[test]
    fn stores_replaces_removes_and_walks_filters() {
        let now = epoch();
        let mut s = RetainedStore::default();
        for t in ["a", "a/b", "a/b/c", "a/x/c", "$SYS/up", "/lead", "a//c"] {
            s.store(message(t, b"1", None));
        }
        s.store(message("a/b", b"2", None));
        assert_eq!(s.len(), 7);
        assert_eq!(
            topics(&mut s, "a/#", now),
            ["a", "a//c", "a/b", "a/b/c", "a/x/c"]
        );
        assert_eq!(topics(&mut s, "a/+/c", now), ["a//c", "a/b/c", "a/x/c"]);
        assert_eq!(
            topics(&mut s, "#", now),
            ["/lead", "a", "a//c", "a/b", "a/b/c", "a/x/c"]
        );
        assert_eq!(topics(&mut s, "+/up", now), Vec::<String>::new());
        assert_eq!(topics(&mut s, "$SYS/#", now), ["$SYS/up"]);
        assert_eq!(topics(&mut s, "+/lead", now), ["/lead"]);
        s.store(message("a/b", b"", None));
        s.store(message("nothing/here", b"", None));
        assert_eq!(s.len(), 6);
        assert_eq!(topics(&mut s, "a/+", now), ["a/b/c"; 0]);
        assert_eq!(topics(&mut s, "a/b/c", now), ["a/b/c"]);
    }

    /// conformance: v5 MQTT-3.3.2-5
    #[test]
    fn expired_messages_are_not_sent_and_are_dropped() {
        let now = epoch();
        let mut s = RetainedStore::default();
        s.store(message("t/old", b"1", Some(now)));
        s.store(message("t/new", b"1", Some(now + Duration::from_secs(5))));
        assert_eq!(topics(&mut s, "t/+", now), ["t/new"]);
        assert_eq!(s.len(), 1);
        assert_eq!(
            topics(&mut s, "t/#", now + Duration::from_secs(9)),
            ["t/new"; 0]
        );
        assert!(s.is_empty());
        assert!(s.root.is_empty());
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just(String::new()),
            Just("$x".to_owned()),
        ]
    }

    proptest! {
        /// The store's walk agrees with the one-filter matcher.
        #[test]
        fn walk_agrees_with_topic_matches(
            stored in prop::collection::vec(prop::collection::vec(level(), 1..4), 0..20),
            deleted in prop::collection::vec(prop::collection::vec(level(), 1..4), 0..6),
            filter in (prop::collection::vec(prop_oneof![3 => level(), 1 => Just("+".to_owned())], 1..4), any::<bool>()),
        ) {
            let now = epoch();
            let mut s = RetainedStore::default();
            let mut model = std::collections::BTreeSet::new();
            for t in stored {
                let t = t.join("/");
                s.store(message(&t, b"1", None));
                model.insert(t);
            }
            for t in deleted {
                let t = t.join("/");
                s.store(message(&t, b"", None));
                model.remove(&t);
            }
            let (mut levels, hash) = filter;
            if hash {
                levels.push("#".to_owned());
            }
            let filter = levels.join("/");
            let expected: Vec<String> = model
                .iter()
                .filter(|t| midge_codec::topic_matches(&filter, t))
                .cloned()
                .collect();
            prop_assert_eq!(s.len(), model.len());
            prop_assert_eq!(topics(&mut s, &filter, now), expected);
        }
    }
}
