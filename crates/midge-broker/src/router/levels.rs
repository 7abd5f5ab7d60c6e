//! The literal next levels of a topic-trie node: the children by level name.
//!
//! A large node (`sensors/+` over thousands of devices) holds a child per device, and
//! each child costs what the map keeps for it. A hash map holding the nodes themselves
//! keeps its free room (a table is 44 to 87% full) in node-sized slots: about 160 bytes
//! per child. [`Levels`] keeps the nodes in a dense list and hashes only their places
//! in it, so that the free room costs five bytes a slot: about 90 bytes per child.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Nodes by level name: a dense list, and a hash table of places in it.
#[derive(Debug, Clone, Default)]
pub(super) struct Levels<N> {
    /// Places in `nodes`, hashed by their level name.
    places: HashTable<u32>,
    nodes: Vec<(Box<str>, N)>,
    /// Seeded per map: level names come from clients (no fixed-key hash flooding).
    hasher: foldhash::fast::RandomState,
}

impl<N> Levels<N> {
    pub(super) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The place of `level`'s node, if there is one.
    fn place(&self, level: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(level);
        let nodes = &self.nodes;
        let place = self
            .places
            .find(hash, |&place| *nodes[place as usize].0 == *level)?;
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
                self.nodes.push((level.into(), node()));
                let (nodes, hasher) = (&self.nodes, &self.hasher);
                self.places.insert_unique(hash, as_place(place), |&other| {
                    hasher.hash_one(&*nodes[other as usize].0)
                });
                place
            }
        };
        &mut self.nodes[place].1
    }

    /// Removes `level`'s node; the last node takes its place in the list.
    pub(super) fn remove(&mut self, level: &str) -> Option<N> {
        let hash = self.hasher.hash_one(level);
        let nodes = &self.nodes;
        let (place, _) = self
            .places
            .find_entry(hash, |&place| *nodes[place as usize].0 == *level)
            .ok()?
            .remove();
        let place = place as usize;
        let (_, node) = self.nodes.swap_remove(place);
        if let Some((moved, _)) = self.nodes.get(place) {
            let from = as_place(self.nodes.len());
            let hash = self.hasher.hash_one(&**moved);
            *self
                .places
                .find_mut(hash, |&other| other == from)
                .expect("every node has a place") = as_place(place);
        }
        Some(node)
    }
}

/// A place in the list as the table keeps it.
fn as_place(place: usize) -> u32 {
    u32::try_from(place).expect("fewer than 2^32 levels under one node")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::Levels;

    proptest! {
        /// Inserts and removes in any order give what a plain map gives.
        #[test]
        fn levels_behave_as_a_map(ops in proptest::collection::vec((0u8..40, any::<bool>()), 0..400)) {
            let mut levels = Levels::default();
            let mut map = HashMap::new();
            for (n, insert) in ops {
                let level = n.to_string();
                if insert {
                    *levels.get_or_insert_with(&level, || 0u32) += 1;
                    *map.entry(level.clone()).or_insert(0u32) += 1;
                } else {
                    prop_assert_eq!(levels.remove(&level), map.remove(&level));
                }
                prop_assert_eq!(levels.is_empty(), map.is_empty());
                for n in 0u8..40 {
                    let level = n.to_string();
                    prop_assert_eq!(levels.get(&level), map.get(&level));
                }
            }
        }
    }
}
