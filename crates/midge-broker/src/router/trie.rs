//! The topic-filter trie: pure matching, no delivery (STYLE.md rule 8).
//!
//! Levels are the keys; each node has literal children, a `+` child, the entries of
//! filters ending there and the entries of filters ending with `#` after it.
//! [`Trie::matches`] walks a topic name and reports, list by list, every entry whose
//! filter matches it, never matching a topic that starts with `$` through a leading
//! wildcard ([MQTT-4.7.2-1]). Matching allocates nothing: the topic's levels are
//! walked with a cloned `split` iterator, and each filter's entries are one slice.
//!
//! The trie is `Clone`: the router keeps two copies of it (router/mod.rs).

use std::collections::HashMap;
use std::hash::Hash;
use std::str::Split;

/// The maps of the tries: hashbrown's seeded fast hasher. Topic levels come from
/// clients, so the seed is random per map (no fixed-key hash flooding). (The sessions'
/// packet ids use it too, and [`FastSet`].)
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A set with [`FastMap`]'s hasher.
pub(crate) type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// Entries stored under topic filters, keyed per filter by `K` (the subscriber).
#[derive(Debug, Clone)]
pub struct Trie<K, V> {
    root: Node<K, V>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Node<K, V> {
    /// Literal next levels.
    children: Children<K, V>,
    /// Entries of filters that end at this node.
    here: Entries<K, V>,
    /// The `+` next level and the `#` entries, boxed together: most nodes have neither,
    /// and a node is most of a subscription's memory.
    wild: Option<Box<Wild<K, V>>>,
}

/// What a node has of wildcards.
#[derive(Debug, Clone)]
struct Wild<K, V> {
    /// The `+` next level.
    plus: Option<Box<Node<K, V>>>,
    /// Entries of filters that end with `#` after this node.
    hash: Option<Entries<K, V>>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: Children(None),
            here: Entries::default(),
            wild: None,
        }
    }
}

/// A node's literal next levels: no map at all for a leaf, which most nodes are (a
/// node is most of a subscription's memory, and an empty map is five words).
#[derive(Debug, Clone)]
struct Children<K, V>(Option<Box<ChildMap<K, V>>>);

/// The literal next levels of a node that has some.
type ChildMap<K, V> = super::levels::Levels<Node<K, V>>;

impl<K, V> Children<K, V> {
    fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|map| map.is_empty())
    }

    fn get(&self, level: &str) -> Option<&Node<K, V>> {
        self.0.as_ref()?.get(level)
    }

    fn get_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        self.0.as_mut()?.get_mut(level)
    }

    /// The child at `level`, created empty if there is none.
    fn get_or_insert(&mut self, level: &str) -> &mut Node<K, V> {
        self.0
            .get_or_insert_with(Box::default)
            .get_or_insert_with(level, Node::default)
    }

    fn remove(&mut self, level: &str) {
        if let Some(map) = &mut self.0 {
            map.remove(level);
            if map.is_empty() {
                self.0 = None;
            }
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.here.items().is_empty() && self.wild.is_none()
    }

    fn plus(&self) -> Option<&Node<K, V>> {
        self.wild.as_ref()?.plus.as_deref()
    }

    fn hash(&self) -> Option<&Entries<K, V>> {
        self.wild.as_ref()?.hash.as_ref()
    }

    /// The wildcards, made if there are none.
    fn wild_mut(&mut self) -> &mut Wild<K, V> {
        self.wild.get_or_insert_with(|| {
            Box::new(Wild {
                plus: None,
                hash: None,
            })
        })
    }

    /// Drops the wildcards once they have nothing.
    fn prune_wild(&mut self) {
        if self
            .wild
            .as_ref()
            .is_some_and(|w| w.plus.is_none() && w.hash.is_none())
        {
            self.wild = None;
        }
    }
}

/// Above this many entries under one filter, a key index is kept beside the list so
/// that inserting and removing stay O(1) (everyone subscribed to one topic).
const INDEX_FROM: usize = 32;

/// The entries of one filter: matching iterates them as a slice. One is kept in place
/// (most filters have one subscriber: no list to allocate), a few in a list, and past
/// [`INDEX_FROM`] a key index beside the list.
#[derive(Debug, Clone)]
enum Entries<K, V> {
    One((K, V)),
    Listed(Vec<(K, V)>),
    /// Boxed: most filters never have an index.
    Indexed(Box<Indexed<K, V>>),
}

/// A long list of entries, and where each key is in it.
#[derive(Debug, Clone)]
struct Indexed<K, V> {
    items: Vec<(K, V)>,
    index: FastMap<K, usize>,
}

impl<K, V> Default for Entries<K, V> {
    fn default() -> Self {
        Entries::Listed(Vec::new())
    }
}

impl<K, V> Entries<K, V> {
    fn items(&self) -> &[(K, V)] {
        match self {
            Entries::One(item) => std::slice::from_ref(item),
            Entries::Listed(items) => items,
            Entries::Indexed(indexed) => &indexed.items,
        }
    }

    fn item_mut(&mut self, i: usize) -> &mut (K, V) {
        match self {
            Entries::One(item) => item,
            Entries::Listed(items) => &mut items[i],
            Entries::Indexed(indexed) => &mut indexed.items[i],
        }
    }
}

impl<K: Hash + Eq + Clone, V> Entries<K, V> {
    fn position(&self, key: &K) -> Option<usize> {
        match self {
            Entries::One((k, _)) => (k == key).then_some(0),
            Entries::Listed(items) => items.iter().position(|(k, _)| k == key),
            Entries::Indexed(indexed) => indexed.index.get(key).copied(),
        }
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.position(key)?;
        Some(&mut self.item_mut(i).1)
    }

    /// The entry of `key`, inserted with `value()` if there is none; true if inserted.
    fn get_or_insert_with(&mut self, key: K, value: impl FnOnce() -> V) -> (&mut V, bool) {
        if let Some(i) = self.position(&key) {
            return (&mut self.item_mut(i).1, false);
        }
        let last = match self {
            Entries::Listed(items) if items.is_empty() => {
                *self = Entries::One((key, value()));
                0
            }
            Entries::One(_) => {
                let mut items = Vec::with_capacity(2);
                if let Entries::One(first) = std::mem::take(self) {
                    items.push(first);
                }
                items.push((key, value()));
                let last = items.len() - 1;
                *self = Entries::Listed(items);
                last
            }
            Entries::Listed(items) if items.len() < INDEX_FROM => {
                items.push((key, value()));
                items.len() - 1
            }
            Entries::Listed(items) => {
                let mut items = std::mem::take(items);
                items.push((key, value()));
                let index = items
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k.clone(), i))
                    .collect();
                let last = items.len() - 1;
                *self = Entries::Indexed(Box::new(Indexed { items, index }));
                last
            }
            Entries::Indexed(indexed) => {
                indexed.index.insert(key.clone(), indexed.items.len());
                indexed.items.push((key, value()));
                indexed.items.len() - 1
            }
        };
        (&mut self.item_mut(last).1, true)
    }

    fn insert(&mut self, key: K, value: V) -> Option<V> {
        let mut value = Some(value);
        let (slot, inserted) = self.get_or_insert_with(key, || value.take().expect("once"));
        match value {
            Some(value) if !inserted => Some(std::mem::replace(slot, value)),
            _ => None,
        }
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.position(key)?;
        match self {
            Entries::One(_) => match std::mem::take(self) {
                Entries::One((_, value)) => Some(value),
                _ => None,
            },
            Entries::Listed(items) => {
                let (_, value) = items.swap_remove(i);
                if items.len() == 1 {
                    // Back in place: the list goes.
                    if let Some(last) = items.pop() {
                        *self = Entries::One(last);
                    }
                }
                Some(value)
            }
            Entries::Indexed(indexed) => {
                let (_, value) = indexed.items.swap_remove(i);
                indexed.index.remove(key);
                if let Some((moved, _)) = indexed.items.get(i) {
                    indexed.index.insert(moved.clone(), i);
                }
                Some(value)
            }
        }
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

/// The levels leading to the node that holds `filter`'s entries, and whether they are
/// in its `#` list.
fn slot(filter: &str) -> (impl Iterator<Item = &str>, bool) {
    if filter == "#" {
        (None.into_iter().flatten(), true)
    } else if let Some(parent) = filter.strip_suffix("/#") {
        (Some(parent.split('/')).into_iter().flatten(), true)
    } else {
        (Some(filter.split('/')).into_iter().flatten(), false)
    }
}

impl<K: Hash + Eq + Clone, V> Trie<K, V> {
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

    fn list(&self, filter: &str) -> Option<&Entries<K, V>> {
        let (levels, hash) = slot(filter);
        let mut node = &self.root;
        for level in levels {
            node = if level == "+" {
                node.plus()?
            } else {
                node.children.get(level)?
            };
        }
        match hash {
            true => node.hash(),
            false => Some(&node.here),
        }
    }

    /// Stores `value` for `key` under `filter` (a valid topic filter), replacing and
    /// returning any previous value of that key under that filter.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let old = list_mut(&mut self.root, filter, true)
            .expect("created")
            .insert(key, value);
        self.len += usize::from(old.is_none());
        old
    }

    /// The value of `key` under `filter`, inserted with `value()` if there is none.
    pub fn get_or_insert_with(
        &mut self,
        filter: &str,
        key: K,
        value: impl FnOnce() -> V,
    ) -> &mut V {
        let (value, inserted) = list_mut(&mut self.root, filter, true)
            .expect("created")
            .get_or_insert_with(key, value);
        self.len += usize::from(inserted);
        value
    }

    /// The value of `key` under exactly `filter`.
    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        let list = self.list(filter)?;
        let i = list.position(key)?;
        Some(&list.items()[i].1)
    }

    /// The value of `key` under exactly `filter`, to change it in place.
    pub fn get_mut(&mut self, filter: &str, key: &K) -> Option<&mut V> {
        list_mut(&mut self.root, filter, false)?.get_mut(key)
    }

    /// Removes `key`'s entry under `filter`, pruning empty nodes.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let (levels, hash) = slot(filter);
        let old = remove_at(&mut self.root, levels, hash, key);
        self.len -= usize::from(old.is_some());
        old
    }

    /// The entries stored under exactly `filter` (not those whose filters match it).
    pub fn entries(&self, filter: &str) -> &[(K, V)] {
        self.list(filter).map_or(&[], |list| list.items())
    }

    /// Calls `f` with the entries of every filter that matches `topic`, one slice per
    /// filter; no slice is empty. A key subscribed with several matching filters is in
    /// several slices.
    pub fn matches<'a>(&'a self, topic: &str, mut f: impl FnMut(&'a [(K, V)])) {
        let dollar = topic.starts_with('$');
        walk(&self.root, topic.split('/'), !dollar, &mut f);
    }
}

/// The list holding `filter`'s entries, created if `create`.
fn list_mut<'n, K: Hash + Eq + Clone, V>(
    node: &'n mut Node<K, V>,
    filter: &str,
    create: bool,
) -> Option<&'n mut Entries<K, V>> {
    let (levels, hash) = slot(filter);
    let mut node = node;
    for level in levels {
        node = if level == "+" {
            if create {
                node.wild_mut().plus.get_or_insert_with(Box::default)
            } else {
                node.wild.as_mut()?.plus.as_deref_mut()?
            }
        } else if create {
            node.children.get_or_insert(level)
        } else {
            node.children.get_mut(level)?
        };
    }
    match (hash, create) {
        (true, true) => Some(node.wild_mut().hash.get_or_insert_with(Entries::default)),
        (true, false) => node.wild.as_mut()?.hash.as_mut(),
        (false, _) => Some(&mut node.here),
    }
}

fn remove_at<'f, K: Hash + Eq + Clone, V>(
    node: &mut Node<K, V>,
    mut levels: impl Iterator<Item = &'f str>,
    hash: bool,
    key: &K,
) -> Option<V> {
    let Some(level) = levels.next() else {
        if !hash {
            return node.here.remove(key);
        }
        let wild = node.wild.as_mut()?;
        let list = wild.hash.as_mut()?;
        let old = list.remove(key);
        if list.items().is_empty() {
            wild.hash = None;
            node.prune_wild();
        }
        return old;
    };
    if level == "+" {
        let wild = node.wild.as_mut()?;
        let child = wild.plus.as_mut()?;
        let old = remove_at(child, levels, hash, key);
        if child.is_empty() {
            wild.plus = None;
            node.prune_wild();
        }
        old
    } else {
        let child = node.children.get_mut(level)?;
        let old = remove_at(child, levels, hash, key);
        if child.is_empty() {
            node.children.remove(level);
        }
        old
    }
}

fn report<'a, K, V>(list: &'a Entries<K, V>, f: &mut impl FnMut(&'a [(K, V)])) {
    let items = list.items();
    if !items.is_empty() {
        f(items);
    }
}

/// `wildcards_ok` is false only at the first level of a `$` topic.
fn walk<'a, K, V>(
    node: &'a Node<K, V>,
    mut levels: Split<'_, char>,
    wildcards_ok: bool,
    f: &mut impl FnMut(&'a [(K, V)]),
) {
    // "a/#" matches "a" too: the parent level ([MQTT-4.7.1-2] note in §4.7.1.2).
    let wild = node.wild.as_deref().filter(|_| wildcards_ok);
    if let Some(hash) = wild.and_then(|w| w.hash.as_ref()) {
        report(hash, f);
    }
    let Some(level) = levels.next() else {
        report(&node.here, f);
        return;
    };
    if let Some(child) = wild.and_then(|w| w.plus.as_deref()) {
        walk(child, levels.clone(), true, f);
    }
    if let Some(child) = node.children.get(level) {
        walk(child, levels, true, f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn matching(trie: &Trie<String, ()>, topic: &str) -> Vec<String> {
        let mut out = Vec::new();
        trie.matches(topic, |list| {
            out.extend(list.iter().map(|(k, _)| k.clone()))
        });
        out.sort();
        out
    }

    fn trie(filters: &[&str]) -> Trie<String, ()> {
        let mut t = Trie::new();
        for f in filters {
            t.insert(f, (*f).to_owned(), ());
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
        let t = trie(&["a/b", "a/+", "a/#", "#", "a/+/c", "/#", "+/#"]);
        for filter in ["a/b", "a/+", "a/#", "#", "a/+/c", "/#", "+/#"] {
            let found: Vec<&str> = t.entries(filter).iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(found, [filter]);
        }
        assert!(t.entries("x/y").is_empty());
        assert!(t.entries("a/b/#").is_empty());
    }

    #[test]
    fn remove_prunes_and_counts() {
        let mut t = trie(&["a/b", "a/+", "a/#", "#", "/#"]);
        assert_eq!(t.len(), 5);
        assert!(t.remove("a/+", &"a/+".to_owned()).is_some());
        assert!(t.remove("a/+", &"a/+".to_owned()).is_none());
        assert_eq!(matching(&t, "a/b"), vec!["#", "a/#", "a/b"]);
        for f in ["a/b", "a/#", "#", "/#"] {
            assert!(t.remove(f, &f.to_owned()).is_some(), "{f}");
        }
        assert!(t.is_empty());
        assert!(t.root.is_empty());
    }

    #[test]
    fn many_keys_under_one_filter_keep_their_index() {
        let mut t: Trie<u32, u32> = Trie::new();
        for k in 0..200 {
            assert_eq!(t.insert("a/b", k, k), None);
        }
        assert_eq!(t.insert("a/b", 7, 70), Some(7));
        for k in (0..200).step_by(3) {
            assert!(t.remove("a/b", &k).is_some());
        }
        for k in 0..200 {
            let expected = match k {
                7 => Some(70),
                k if k % 3 == 0 => None,
                k => Some(k),
            };
            assert_eq!(t.get("a/b", &k).copied(), expected, "{k}");
        }
        assert_eq!(t.len(), 200 - 67);
        *t.get_mut("a/b", &8).expect("there") = 80;
        assert_eq!(t.get("a/b", &8), Some(&80));
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            Just(String::new()),
            Just("$x".to_owned()),
        ]
    }

    fn topic() -> impl Strategy<Value = String> {
        prop::collection::vec(level(), 1..5).prop_map(|l| l.join("/"))
    }

    fn filter() -> impl Strategy<Value = String> {
        let level = prop_oneof![3 => level(), 1 => Just("+".to_owned())];
        (prop::collection::vec(level, 1..5), any::<bool>()).prop_map(|(mut l, hash)| {
            if hash {
                l.push("#".to_owned());
            }
            l.join("/")
        })
    }

    proptest! {
        /// The entries under one filter, as they go from one in place to a list and to
        /// an indexed list and back, are what a map would hold.
        #[test]
        fn entries_of_a_filter_behave_as_a_map(
            ops in prop::collection::vec((0u32..48, any::<bool>()), 0..300),
        ) {
            let mut t: Trie<u32, u32> = Trie::new();
            let mut model = std::collections::HashMap::new();
            for (k, insert) in ops {
                if insert {
                    prop_assert_eq!(t.insert("a/b", k, k + 1), model.insert(k, k + 1));
                } else {
                    prop_assert_eq!(t.remove("a/b", &k), model.remove(&k));
                }
                let mut listed: Vec<(u32, u32)> = t.entries("a/b").to_vec();
                listed.sort_unstable();
                let mut expected: Vec<(u32, u32)> = model.iter().map(|(&k, &v)| (k, v)).collect();
                expected.sort_unstable();
                prop_assert_eq!(listed, expected);
                prop_assert_eq!(t.len(), model.len());
            }
            prop_assert_eq!(t.root.is_empty(), model.is_empty());
        }

        /// The trie agrees with the one-filter matcher on every filter and topic.
        #[test]
        fn trie_agrees_with_topic_matches(
            filters in prop::collection::vec(filter(), 0..24),
            topics in prop::collection::vec(topic(), 1..16),
            removed in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut t = Trie::new();
            let mut kept: Vec<String> = Vec::new();
            for f in &filters {
                if t.insert(f, f.clone(), ()).is_none() {
                    kept.push(f.clone());
                }
            }
            for r in removed {
                if kept.is_empty() {
                    break;
                }
                let f = kept.swap_remove(r.index(kept.len()));
                prop_assert!(t.remove(&f, &f).is_some());
            }
            prop_assert_eq!(t.len(), kept.len());
            for topic in &topics {
                let mut expected: Vec<String> = kept
                    .iter()
                    .filter(|f| midge_codec::topic_matches(f, topic))
                    .cloned()
                    .collect();
                expected.sort();
                prop_assert_eq!(matching(&t, topic), expected, "topic {:?}", topic);
            }
        }
    }
}
