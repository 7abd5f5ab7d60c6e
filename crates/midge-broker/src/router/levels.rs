//! The literal next levels of a topic-trie node: the children by level name.
//!
//! A large node (`sensors/+` over thousands of devices) holds a child per device, and
//! each child costs what the map keeps for it. A hash map holding the nodes themselves
//! keeps its free room (a table is 44 to 87% full) in node-sized slots, and each level
//! name in an allocation of its own (32 bytes at least): about 190 bytes per child.
//! [`Levels`] keeps the nodes in a dense list and hashes only their places in it, so
//! that the free room costs five bytes a slot; a short name (most are) is kept in the
//! list beside its node, and longer ones one after another in one buffer: about 80
//! bytes per child. A lookup reads the table, then the node's entry, where it finds
//! a short name to compare.

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Nodes by level name: a dense list, and a hash table of places in it.
#[derive(Debug, Clone, Default)]
pub(super) struct Levels<N> {
    /// Places in `nodes`, hashed by their level name.
    places: HashTable<u32>,
    nodes: Vec<(Name, N)>,
    /// The long level names, one after another.
    long_names: Vec<u8>,
    /// Bytes of `long_names` that no node names any more: the names are packed again
    /// once they are most of it.
    unused: usize,
    /// Seeded per map: level names come from clients (no fixed-key hash flooding).
    hasher: foldhash::fast::RandomState,
}

/// Longest name kept in the node's entry.
const SHORT: usize = 14;

/// A node's level name: in place when short, else where it is in
/// [`Levels::long_names`]. (Sixteen bytes, as a `Box<str>` was, without its allocation.)
#[derive(Debug, Clone, Copy)]
enum Name {
    Short { len: u8, bytes: [u8; SHORT] },
    Long { start: u32, len: u32 },
}

impl<N> Levels<N> {
    pub(super) fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The level name of the node at `place`.
    fn name(&self, place: u32) -> &[u8] {
        bytes(&self.long_names, &self.nodes[place as usize].0)
    }

    /// The place of `level`'s node, if there is one.
    fn place(&self, level: &str) -> Option<usize> {
        let level = level.as_bytes();
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
                let level = level.as_bytes();
                let place = self.nodes.len();
                let hash = self.hasher.hash_one(level);
                let name = match level.len() {
                    len @ 0..=SHORT => {
                        let mut bytes = [0; SHORT];
                        bytes[..len].copy_from_slice(level);
                        Name::Short {
                            len: len as u8,
                            bytes,
                        }
                    }
                    len => {
                        let start = as_u32(self.long_names.len());
                        self.long_names.extend_from_slice(level);
                        Name::Long {
                            start,
                            len: as_u32(len),
                        }
                    }
                };
                self.nodes.push((name, node()));
                let (long_names, nodes, hasher) = (&self.long_names, &self.nodes, &self.hasher);
                self.places.insert_unique(hash, as_u32(place), |&other| {
                    hasher.hash_one(bytes(long_names, &nodes[other as usize].0))
                });
                place
            }
        };
        &mut self.nodes[place].1
    }

    /// Removes `level`'s node; the last node takes its place in the list.
    pub(super) fn remove(&mut self, level: &str) -> Option<N> {
        let level = level.as_bytes();
        let hash = self.hasher.hash_one(level);
        let (long_names, nodes) = (&self.long_names, &self.nodes);
        let (place, _) = self
            .places
            .find_entry(hash, |&place| {
                bytes(long_names, &nodes[place as usize].0) == level
            })
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
        if let Name::Long { len, .. } = gone {
            self.unused += len as usize;
        }
        if self.nodes.is_empty() {
            self.long_names.clear();
            self.unused = 0;
        } else if self.unused > 4096 && self.unused > self.long_names.len() / 2 {
            self.pack();
        }
        Some(node)
    }

    /// Copies the long names still in use to a new buffer, in the nodes' order.
    fn pack(&mut self) {
        let mut long_names = Vec::with_capacity(self.long_names.len() - self.unused);
        for (name, _) in &mut self.nodes {
            if let Name::Long { start, len } = name {
                let at = as_u32(long_names.len());
                long_names
                    .extend_from_slice(&self.long_names[*start as usize..(*start + *len) as usize]);
                *start = at;
            }
        }
        self.long_names = long_names;
        self.unused = 0;
    }
}

/// The bytes of `name`, whose long form is in `long_names`.
fn bytes<'a>(long_names: &'a [u8], name: &'a Name) -> &'a [u8] {
    match name {
        Name::Short { len, bytes } => &bytes[..usize::from(*len)],
        Name::Long { start, len } => &long_names[*start as usize..(*start + *len) as usize],
    }
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
            levels.long_names.len() < 20 * 110,
            "packed: {} bytes",
            levels.long_names.len()
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
            // Short names, kept in place, and long ones, enough for removals to leave
            // room to pack.
            let name = |n: u8| match n % 2 {
                0 => n.to_string(),
                _ => format!("{n}{}", "x".repeat(300)),
            };
            for (n, insert) in ops {
                let level = name(n);
                if insert {
                    *levels.get_or_insert_with(&level, || 0u32) += 1;
                    *map.entry(level.clone()).or_insert(0u32) += 1;
                } else {
                    prop_assert_eq!(levels.remove(&level), map.remove(&level));
                }
                prop_assert_eq!(levels.is_empty(), map.is_empty());
                for n in 0u8..40 {
                    let level = name(n);
                    prop_assert_eq!(levels.get(&level), map.get(&level));
                }
            }
        }
    }
}
