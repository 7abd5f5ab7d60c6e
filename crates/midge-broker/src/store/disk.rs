//! The on-disk backend: one redb file, `midge.redb`, in the persistence directory.
//!
//! redb writes copy-on-write B-trees and commits by switching a checksummed root, so a
//! commit is all or nothing and a crash leaves the last committed state. Each
//! [`Store::write`] is one write transaction with immediate durability: it returns
//! after the file is fsynced. The group commit above (`commit.rs`) makes that one
//! fsync per batch of requests. Every error names the file.
//!
//! Damaged files: redb checks page checksums and returns errors, but a few damaged
//! bytes (in its allocator state, for one) trip assertions inside it instead. Every
//! call into redb therefore goes through `guarded`, which turns such a panic into
//! [`StoreError::Corrupt`] naming the file: the broker refuses to start with a clear
//! error (or stops acknowledging, if it happens while running) instead of crashing.
//!
//! redb's cache is capped ([`CACHE_BYTES`]): retained message bodies stay on disk and
//! are read when a subscription needs them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, ReadableTable, TableDefinition, TableError};

use super::format::{self, RecordError};
use super::{Batch, Store, StoreError, Table};

/// The file name inside the persistence directory.
pub const FILE_NAME: &str = "midge.redb";

/// Most memory redb may use as its page cache.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The meta table's key holding the format version.
const FORMAT_KEY: &[u8] = b"format";

fn definition(table: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    TableDefinition::new(table.name())
}

/// A store in one redb file.
#[derive(Debug)]
pub struct DiskStore {
    /// Always `Some` until drop, which closes it under [`guarded`] too (closing writes).
    db: Option<Database>,
    /// The file, for errors and logs.
    path: PathBuf,
    /// Transactions committed (each one fsync), for tests and stats.
    commits: AtomicU64,
}

/// Whether [`DiskStore::open`] may create a missing store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the directory and the file if missing (the broker).
    Create,
    /// The store must exist (`midge store check` and `dump`).
    Existing,
}

impl DiskStore {
    /// Opens the store in directory `dir` (or the file itself, if `dir` names a file),
    /// checking its format version.
    pub fn open(dir: &Path, mode: OpenMode) -> Result<Self, StoreError> {
        let file = if dir.is_file() {
            dir.to_path_buf()
        } else {
            dir.join(FILE_NAME)
        };
        guarded(&file, || Self::open_unguarded(dir, mode))
    }

    fn open_unguarded(dir: &Path, mode: OpenMode) -> Result<Self, StoreError> {
        let path = if dir.is_file() {
            dir.to_path_buf()
        } else {
            dir.join(FILE_NAME)
        };
        let open_error = |reason: String| StoreError::Open {
            path: path.clone(),
            reason,
        };
        let mut builder = Database::builder();
        builder.set_cache_size(CACHE_BYTES);
        let db = match mode {
            OpenMode::Create => {
                std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
                builder.create(&path)
            }
            OpenMode::Existing => {
                if !path.exists() {
                    return Err(open_error("no such file".to_string()));
                }
                builder.open(&path)
            }
        };
        let db = db.map_err(|e| classify(&path, e.to_string(), is_corruption_db(&e)))?;
        let store = DiskStore {
            db: Some(db),
            path,
            commits: AtomicU64::new(0),
        };
        store.check_format(mode)?;
        Ok(store)
    }

    fn db(&self) -> &Database {
        self.db.as_ref().expect("the database is open until drop")
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Transactions committed since open.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn check_format(&self, mode: OpenMode) -> Result<(), StoreError> {
        match self.get(Table::Meta, FORMAT_KEY)? {
            Some(value) => match format::open(&value) {
                Ok(_) => Ok(()),
                Err(RecordError::Version(found)) => Err(StoreError::Version {
                    path: self.path.clone(),
                    found,
                    supported: format::FORMAT_VERSION,
                }),
                Err(e) => Err(self.corrupt(format!("format record: {e}"))),
            },
            None if mode == OpenMode::Create => self.write(&vec![super::Change {
                table: Table::Meta,
                key: FORMAT_KEY.to_vec(),
                value: Some(format::encode_format()),
            }]),
            None => Err(self.corrupt("no format record: not a Midge store".to_string())),
        }
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    fn error(&self, e: impl Into<redb::Error>) -> StoreError {
        let e: redb::Error = e.into();
        let corrupt = matches!(e, redb::Error::Corrupted(_) | redb::Error::ValueTooLarge(_));
        classify(&self.path, e.to_string(), corrupt)
    }
}

fn is_corruption_db(e: &redb::DatabaseError) -> bool {
    match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(_)) => true,
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
            io.kind() == std::io::ErrorKind::InvalidData
        }
        redb::DatabaseError::RepairAborted => true,
        _ => false,
    }
}

fn classify(path: &Path, reason: String, corrupt: bool) -> StoreError {
    if corrupt {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            reason,
        }
    } else {
        StoreError::Io {
            path: path.to_path_buf(),
            reason,
        }
    }
}

impl Store for DiskStore {
    fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        guarded(&self.path, || self.write_unguarded(batch))
    }

    fn scan(&self, table: Table, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        guarded(&self.path, || self.scan_unguarded(table, visit))
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        guarded(&self.path, || self.get_unguarded(table, key))
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

impl DiskStore {
    fn write_unguarded(&self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self.db().begin_write().map_err(|e| self.error(e))?;
        for table in Table::ALL {
            let mut changes = batch.iter().filter(|c| c.table == table).peekable();
            if changes.peek().is_none() {
                continue;
            }
            let mut t = tx
                .open_table(definition(table))
                .map_err(|e| self.error(e))?;
            for change in changes {
                match &change.value {
                    Some(value) => {
                        t.insert(change.key.as_slice(), value.as_slice())
                            .map_err(|e| self.error(e))?;
                    }
                    None => {
                        t.remove(change.key.as_slice()).map_err(|e| self.error(e))?;
                    }
                }
            }
        }
        // Immediate durability (redb's default): fsynced when commit returns.
        tx.commit().map_err(|e| self.error(e))?;
        self.commits.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn scan_unguarded(
        &self,
        table: Table,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), StoreError> {
        let tx = self.db().begin_read().map_err(|e| self.error(e))?;
        let t = match tx.open_table(definition(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(self.error(e)),
        };
        for entry in t.iter().map_err(|e| self.error(e))? {
            let (k, v) = entry.map_err(|e| self.error(e))?;
            visit(k.value(), v.value());
        }
        Ok(())
    }

    fn get_unguarded(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db().begin_read().map_err(|e| self.error(e))?;
        let t = match tx.open_table(definition(table)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let value = t.get(key).map_err(|e| self.error(e))?;
        Ok(value.map(|v| v.value().to_vec()))
    }
}

impl Drop for DiskStore {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            let closed = guarded(&self.path, || {
                drop(db);
                Ok(())
            });
            if let Err(e) = closed {
                tracing::error!(error = %e, "closing the persistence store failed");
            }
        }
    }
}

thread_local! {
    /// Whether this thread is inside [`guarded`]: a panic there is caught and becomes a
    /// `StoreError::Corrupt` naming the file, so the panic hook stays quiet about it.
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once, a panic hook that says nothing of the panics [`guarded`] catches
/// (redb's assertions on damaged files: the error that names the file is what the user
/// sees) and hands every other panic to the hook that was there before.
fn quiet_guarded_panics() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(std::cell::Cell::get) {
                tracing::debug!(panic = %info, "storage engine panic caught (damaged store)");
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs a call into redb, turning a panic on damaged data into an error naming `path`.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    quiet_guarded_panics();
    let outer = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    result.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".to_string());
        Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            reason: format!("the storage engine failed on damaged data: {what}"),
        })
    })
}
