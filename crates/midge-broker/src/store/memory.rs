//! The in-memory backend: the default, where nothing survives a restart. Also what the
//! store tests run the shared layers against.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Batch, Store, StoreError, Table};

/// Every table's records, keyed by (table, key).
type Tables = BTreeMap<(Table, Vec<u8>), Vec<u8>>;

/// Tables in a `BTreeMap`.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// A std mutex: held for one batch or one scan, never across an await.
    tables: Mutex<Tables>,
    /// Batches written, for tests of group commit.
    writes: AtomicU64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// Number of batches written so far.
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl Store for MemoryStore {
    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut tables = self.tables.lock().expect("memory store lock poisoned");
        for change in batch {
            let key = (change.table, change.key.clone());
            match &change.value {
                Some(value) => tables.insert(key, value.clone()),
                None => tables.remove(&key),
            };
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn scan(&self, table: Table, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        let tables = self.tables.lock().expect("memory store lock poisoned");
        for ((_, key), value) in tables
            .range((table, Vec::new())..)
            .take_while(|((t, _), _)| *t == table)
        {
            visit(key, value);
        }
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tables = self.tables.lock().expect("memory store lock poisoned");
        Ok(tables.get(&(table, key.to_vec())).cloned())
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
