//! The literal next levels of a topic-trie node: the children by level name.
//!
//! A large node (`sensors/+` over thousands of devices) holds a child per device, and
//! each child costs what the map keeps for it. A hash map holding the nodes themselves
//! keeps its free room (a table is 44 to 87% full) in node-sized slots, and each level
//! name in an allocation of its own (32 bytes at least): about 190 bytes per child.
//! [`Levels`] keeps the nodes in a dense list and hashes only their places in it, so
//! that the free room costs five bytes a slot, and keeps the names one after another
//! in one string: about 80 bytes per child.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Nodes by level name: a dense list, and a hash table of places in it.
#[derive(Debug, Clone, Default)]
pub(super) struct Levels<N> {
    /// Places in `nodes`, hashed by their level name.
    places: HashTable<u32>,
    nodes: Vec<(Name, N)>,
    /// The nodes' level names, one after another.
    names: String,
    /// Bytes of `names` that no node names any more: the names are packed again once
    /// they are most of it.
    unused: usize,
    /// Seeded per map: level names come from clients (no fixed-key hash flooding).
    hasher: foldhash::fast::RandomState,
}

/// Where a node's level name is in [`Levels::names`].
#[derive(Debug, Clone, Copy)]
struct Name {
    start: u32,
    len: u32,
}

impl<N> Levels<N> {
    pub(super) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The level name of the node at `place`.
    fn name(&self, place: u32) -> &str {
        name(&self.names, self.nodes[place as usize].0)
    }

    /// The place of `level`'s node, if there is one.
    fn place(&self, level: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(level);
        let place = self.places.find(hash, |&place| self.name(place) == level)?;
        Some(*place as usize)
    }

    pub(super) fn get(&self, level: &str) -> Option<&N> {
        let place = self.place(level)?;
        Some(&self.nodes[place].1)
    }

    pub(super) fn get_mut(&mut self, level: &str) -> Option<&mut N> {
        let place = self.place(level)?;
        Some(&mut self.nodes[place].1)
    }

    /// The node of `level`, made by `node()` if there is none.
    pub(super) fn get_or_insert_with(&mut self, level: &str, node: impl FnOnce() -> N) -> &mut N {
        let place = match self.place(level) {
            Some(place) => place,
            None => {
                let place = self.nodes.len();
                let hash = self.hasher.hash_one(level);
                let name = Name {
                    start: as_u32(self.names.len()),
                    len: as_u32(level.len()),
                };
                self.names.push_str(level);
                self.nodes.push((name, node()));
                let (names, nodes, hasher) = (&self.names, &self.nodes, &self.hasher);
                self.places.insert_unique(hash, as_u32(place), |&other| {
                    hasher.hash_one(self::name(names, nodes[other as usize].0))
                });
                place
            }
        };
        &mut self.nodes[place].1
    }

    /// Removes `level`'s node; the last node takes its place in the list.
    pub(super) fn remove(&mut self, level: &str) -> Option<N> {
        let hash = self.hasher.hash_one(level);
        let (names, nodes) = (&self.names, &self.nodes);
        let (place, _) = self
            .places
            .find_entry(hash, |&place| name(names, nodes[place as usize].0) == level)
            .ok()?
            .remove();
        let place = place as usize;
        let (gone, node) = self.nodes.swap_remove(place);
        if place < self.nodes.len() {
            // The last node moved to `place`.
            let from = as_u32(self.nodes.len());
            let hash = self.hasher.hash_one(self.name(as_u32(place)));
            *self
                .places
                .find_mut(hash, |&other| other == from)
                .expect("every node has a place") = as_u32(place);
        }
        self.unused += gone.len as usize;
        if self.nodes.is_empty() {
            self.names.clear();
            self.unused = 0;
        } else if self.unused > 4096 && self.unused > self.names.len() / 2 {
            self.pack();
        }
        Some(node)
    }

    /// Copies the names still in use to a new string, in the nodes' order.
    fn pack(&mut self) {
        let mut names = String::with_capacity(self.names.len() - self.unused);
        for (name, _) in &mut self.nodes {
            let start = as_u32(names.len());
            names.push_str(self::name(&self.names, *name));
            name.start = start;
        }
        self.names = names;
        self.unused = 0;
    }
}

/// The level name at `at` in `names`.
fn name(names: &str, at: Name) -> &str {
    &names[at.start as usize..(at.start + at.len) as usize]
}

/// A place or a name's position as the map keeps it.
fn as_u32(n: usize) -> u32 {
    u32::try_from(n).expect("a node's levels fit in 4 GiB")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::Levels;

    /// Names are packed once mostly unused, and the nodes keep theirs.
    #[test]
    fn names_are_packed_after_removals() {
        let mut levels = Levels::default();
        for n in 0..100 {
            *levels.get_or_insert_with(&format!("level-{n:03}-{}", "x".repeat(100)), || 0) = n;
        }
        for n in 0..90 {
            assert_eq!(
                levels.remove(&format!("level-{n:03}-{}", "x".repeat(100))),
                Some(n)
            );
        }
        assert!(
            levels.names.len() < 20 * 110,
            "packed: {} bytes",
            levels.names.len()
        );
        for n in 90..100 {
            assert_eq!(
                levels.get(&format!("level-{n:03}-{}", "x".repeat(100))),
                Some(&n)
            );
        }
    }

    proptest! {
        /// Inserts and removes in any order give what a plain map gives.
        #[test]
        fn levels_behave_as_a_map(ops in proptest::collection::vec((0u8..40, any::<bool>()), 0..400)) {
            let mut levels = Levels::default();
            let mut map = HashMap::new();
            // Long names, so that removals leave enough unused to pack the names.
            let long = |n: u8| format!("{n}{}", "x".repeat(300));
            for (n, insert) in ops {
                let level = long(n);
                if insert {
                    *levels.get_or_insert_with(&level, || 0u32) += 1;
                    *map.entry(level.clone()).or_insert(0u32) += 1;
                } else {
                    prop_assert_eq!(levels.remove(&level), map.remove(&level));
                }
                prop_assert_eq!(levels.is_empty(), map.is_empty());
                for n in 0u8..40 {
                    let level = long(n);
                    prop_assert_eq!(levels.get(&level), map.get(&level));
                }
            }
        }
    }
}
