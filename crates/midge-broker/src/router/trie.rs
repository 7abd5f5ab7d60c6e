//! The topic-filter trie: pure matching, no delivery (STYLE.md rule 8).
//!
//! Levels are the keys; each node has literal children, a `+` child and the entries of
//! filters ending in `#` there. [`Trie::matches`] walks a topic name and reports every
//! entry whose filter matches it, never matching a topic that starts with `$` through a
//! leading wildcard ([MQTT-4.7.2-1]).

use std::collections::HashMap;

/// Entries stored under topic filters, keyed per filter by `K` (the subscriber).
#[derive(Debug)]
pub struct Trie<K, V> {
    root: Node<K, V>,
    len: usize,
}

#[derive(Debug)]
struct Node<K, V> {
    /// Literal next levels.
    children: HashMap<Box<str>, Node<K, V>>,
    /// The `+` next level.
    plus: Option<Box<Node<K, V>>>,
    /// Entries of filters that end at this node.
    here: HashMap<K, V>,
    /// Entries of filters that end with `#` after this node.
    hash: HashMap<K, V>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            here: HashMap::new(),
            hash: HashMap::new(),
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.here.is_empty()
            && self.hash.is_empty()
    }
}

impl<K, V> Default for Trie<K, V> {
    fn default() -> Self {
        Trie {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, V> Trie<K, V> {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of (filter, key) entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no filter is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` for `key` under `filter` (a valid topic filter), replacing and
    /// returning any previous value of that key under that filter.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                let old = node.hash.insert(key, value);
                self.len += usize::from(old.is_none());
                return old;
            }
            node = if level == "+" {
                node.plus.get_or_insert_with(Box::default)
            } else {
                node.children.entry(level.into()).or_default()
            };
        }
        let old = node.here.insert(key, value);
        self.len += usize::from(old.is_none());
        old
    }

    /// Removes `key`'s entry under `filter`, pruning empty nodes.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let old = remove_at(&mut self.root, &levels, key);
        self.len -= usize::from(old.is_some());
        old
    }

    /// Calls `f` with every entry stored under exactly `filter` (not those whose filters
    /// match it).
    pub fn entries<'a>(&'a self, filter: &str, mut f: impl FnMut(&'a K, &'a V)) {
        let mut node = &self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                node.hash.iter().for_each(|(k, v)| f(k, v));
                return;
            }
            let next = if level == "+" {
                node.plus.as_deref()
            } else {
                node.children.get(level)
            };
            match next {
                Some(next) => node = next,
                None => return,
            }
        }
        node.here.iter().for_each(|(k, v)| f(k, v));
    }

    /// Calls `f` with every entry whose filter matches `topic`. A key subscribed with
    /// several matching filters is reported once per filter.
    pub fn matches<'a>(&'a self, topic: &str, mut f: impl FnMut(&'a K, &'a V)) {
        let levels: Vec<&str> = topic.split('/').collect();
        let dollar = topic.starts_with('$');
        walk(&self.root, &levels, !dollar, &mut f);
    }
}

fn remove_at<K: std::hash::Hash + Eq, V>(
    node: &mut Node<K, V>,
    levels: &[&str],
    key: &K,
) -> Option<V> {
    let Some((&level, rest)) = levels.split_first() else {
        return node.here.remove(key);
    };
    if level == "#" && rest.is_empty() {
        return node.hash.remove(key);
    }
    if level == "+" {
        let child = node.plus.as_mut()?;
        let old = remove_at(child, rest, key);
        if child.is_empty() {
            node.plus = None;
        }
        old
    } else {
        let child = node.children.get_mut(level)?;
        let old = remove_at(child, rest, key);
        if child.is_empty() {
            node.children.remove(level);
        }
        old
    }
}

/// `wildcards_ok` is false only at the first level of a `$` topic.
fn walk<'a, K, V>(
    node: &'a Node<K, V>,
    levels: &[&str],
    wildcards_ok: bool,
    f: &mut impl FnMut(&'a K, &'a V),
) {
    // "a/#" matches "a" too: the parent level ([MQTT-4.7.1-2] note in §4.7.1.2).
    if wildcards_ok {
        node.hash.iter().for_each(|(k, v)| f(k, v));
    }
    let Some((&level, rest)) = levels.split_first() else {
        node.here.iter().for_each(|(k, v)| f(k, v));
        return;
    };
    if let Some(child) = node.children.get(level) {
        walk(child, rest, true, f);
    }
    if wildcards_ok {
        if let Some(child) = &node.plus {
            walk(child, rest, true, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matching(trie: &Trie<&'static str, ()>, topic: &str) -> Vec<&'static str> {
        let mut out = Vec::new();
        trie.matches(topic, |k, _| out.push(*k));
        out.sort();
        out
    }

    fn trie(filters: &[&'static str]) -> Trie<&'static str, ()> {
        let mut t = Trie::new();
        for f in filters {
            t.insert(f, *f, ());
        }
        t
    }

    /// conformance: v5 MQTT-4.7.1-1
    /// conformance: v5 MQTT-4.7.1-2
    /// conformance: v3.1.1 MQTT-4.7.1-2
    /// conformance: v3.1.1 MQTT-4.7.1-3
    #[test]
    fn wildcards_match_as_the_spec_examples_say() {
        let t = trie(&[
            "sport/tennis/player1/#",
            "sport/#",
            "#",
            "sport/tennis/+",
            "+/+",
            "/+",
            "+",
            "sport/+/player1",
        ]);
        assert_eq!(
            matching(&t, "sport/tennis/player1"),
            vec![
                "#",
                "sport/#",
                "sport/+/player1",
                "sport/tennis/+",
                "sport/tennis/player1/#"
            ]
        );
        assert_eq!(matching(&t, "sport"), vec!["#", "+", "sport/#"]);
        assert_eq!(matching(&t, "/finance"), vec!["#", "+/+", "/+"]);
        assert_eq!(
            matching(&t, "sport/tennis/player1/ranking"),
            vec!["#", "sport/#", "sport/tennis/player1/#"]
        );
    }

    /// conformance: v5 MQTT-4.7.2-1
    /// conformance: v3.1.1 MQTT-4.7.2-1
    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards() {
        let t = trie(&["#", "+/monitor/Clients", "$SYS/#", "$SYS/monitor/+"]);
        assert_eq!(
            matching(&t, "$SYS/monitor/Clients"),
            vec!["$SYS/#", "$SYS/monitor/+"]
        );
        assert_eq!(
            matching(&t, "x/monitor/Clients"),
            vec!["#", "+/monitor/Clients"]
        );
    }

    #[test]
    fn entries_lists_exactly_one_filter() {
        let t = trie(&["a/b", "a/+", "a/#", "#", "a/+/c"]);
        for filter in ["a/b", "a/+", "a/#", "#", "a/+/c"] {
            let mut found = Vec::new();
            t.entries(filter, |k, _| found.push(*k));
            assert_eq!(found, [filter]);
        }
        let mut found = Vec::new();
        t.entries("x/y", |k, _| found.push(*k));
        assert!(found.is_empty());
    }

    #[test]
    fn remove_prunes_and_counts() {
        let mut t = trie(&["a/b", "a/+", "a/#"]);
        assert_eq!(t.len(), 3);
        assert!(t.remove("a/+", &"a/+").is_some());
        assert!(t.remove("a/+", &"a/+").is_none());
        assert_eq!(matching(&t, "a/b"), vec!["a/#", "a/b"]);
        t.remove("a/b", &"a/b");
        t.remove("a/#", &"a/#");
        assert!(t.is_empty());
        assert!(t.root.is_empty());
    }
}
