//! Operator state in sled: one tree per stateful operator, written once per batch.
//!
//! Operators keep their open state in memory (bounded by what is open: windows not yet closed by the
//! watermark) and write what a batch changed to sled in one atomic batch, so sled always holds the state
//! as of a batch boundary. Keys are ordered bytes chosen by the operator so that what is evicted together is
//! contiguous (the aggregation puts the window end first). Recovery from this state across restarts, with
//! a version per batch, is the checkpoint's job.
//!
//! Without a checkpoint nothing is ever restored, so the state is not written at all
//! ([`StateStore::in_memory`]): a temporary sled database written every batch only to be deleted cost CPU
//! and grew the process's memory with every batch (sled's page table and log; `docs/benchmarks.md`).

pub(crate) mod changelog;
pub(crate) mod local_copy;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;

/// sled's page cache (default 1 GiB). Operators keep their open state in memory, so sled's cache only
/// needs to hold what a batch writes.
const CACHE_BYTES: u64 = 16 << 20;

fn config() -> sled::Config {
    sled::Config::new().cache_capacity(CACHE_BYTES)
}

/// One batch's changes to one operator table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableChanges {
    /// The table's name.
    pub table: String,
    /// Keys written, with their values.
    pub upserts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys removed.
    pub removals: Vec<Vec<u8>>,
}

/// A sled database that its owner may replace between batches with a compacted copy (a checkpoint's
/// next generation): every handle reaches the database in use through it.
#[derive(Clone)]
pub struct SharedDb(Arc<RwLock<sled::Db>>);

impl SharedDb {
    /// Shares `db`.
    pub fn new(db: sled::Db) -> SharedDb {
        SharedDb(Arc::new(RwLock::new(db)))
    }

    /// The database in use (a cheap handle).
    pub fn current(&self) -> sled::Db {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts `db` in the place of the database in use, and returns that one.
    pub(crate) fn replace(&self, db: sled::Db) -> sled::Db {
        std::mem::replace(&mut *self.0.write().unwrap_or_else(|e| e.into_inner()), db)
    }
}

/// A sled database holding the state of a pipeline's operators, or nothing for a pipeline without a
/// checkpoint.
#[derive(Clone)]
pub struct StateStore {
    /// `None`: the state lives only in the operators' memory.
    db: Option<SharedDb>,
    /// In a checkpoint, tables keep each batch's changes here until the batch commits.
    deferred: Option<Arc<Mutex<Vec<TableChanges>>>>,
}

impl StateStore {
    /// No store: the operators keep their state in memory, and nothing is written (a pipeline without a
    /// checkpoint, which never restores).
    pub fn in_memory() -> StateStore {
        StateStore {
            db: None,
            deferred: None,
        }
    }

    /// No database, but each batch's changes are kept until taken ([`StateStore::take_changes`]): a group
    /// member's task, whose changes go to its changelog (`changelog.rs`) and whose state is rebuilt from
    /// it.
    pub fn changes_only() -> StateStore {
        StateStore {
            db: None,
            deferred: Some(Arc::default()),
        }
    }

    /// A store in a temporary folder, removed when the store is dropped (for tests and benchmarks of the
    /// writing itself).
    pub fn temporary() -> anyhow::Result<StateStore> {
        let db = config()
            .temporary(true)
            .open()
            .context("opening a temporary sled state store")?;
        Ok(StateStore {
            db: Some(SharedDb::new(db)),
            deferred: None,
        })
    }

    /// A store in `path`, created if missing.
    pub fn open(path: &Path) -> anyhow::Result<StateStore> {
        let db = config()
            .path(path)
            .open()
            .with_context(|| format!("opening the sled state store at {}", path.display()))?;
        Ok(StateStore {
            db: Some(SharedDb::new(db)),
            deferred: None,
        })
    }

    /// The state trees of a checkpoint's database, whose tables hold each batch's changes back until the
    /// checkpoint takes them ([`StateStore::take_changes`]) and applies them when the batch commits.
    pub fn deferred(db: SharedDb) -> StateStore {
        StateStore {
            db: Some(db),
            deferred: Some(Arc::default()),
        }
    }

    /// The changes tables made since the last call, in a deferred store (empty otherwise).
    pub fn take_changes(&self) -> Vec<TableChanges> {
        match &self.deferred {
            Some(changes) => {
                std::mem::take(&mut *changes.lock().unwrap_or_else(|e| e.into_inner()))
            }
            None => Vec::new(),
        }
    }

    /// The table of one operator.
    pub fn table(&self, name: &str) -> anyhow::Result<StateTable> {
        if let Some(db) = &self.db {
            db.current()
                .open_tree(tree_name(name))
                .with_context(|| format!("opening state table {name}"))?;
        }
        Ok(StateTable {
            db: self.db.clone(),
            name: name.to_string(),
            deferred: self.deferred.clone(),
        })
    }
}

/// The sled tree name of operator table `name`.
pub(crate) fn tree_name(name: &str) -> String {
    format!("state/{name}")
}

/// One operator's state: ordered byte keys to byte values.
#[derive(Clone)]
pub struct StateTable {
    /// The database; `None` in an in-memory store, where nothing is kept.
    db: Option<SharedDb>,
    name: String,
    deferred: Option<Arc<Mutex<Vec<TableChanges>>>>,
}

impl StateTable {
    /// Whether changes are kept at all: an operator can skip encoding them for an in-memory store.
    pub fn is_stored(&self) -> bool {
        self.db.is_some() || self.deferred.is_some()
    }

    /// The table's tree in the database in use (opening a tree sled already has open is a map look-up).
    fn tree(&self) -> anyhow::Result<Option<sled::Tree>> {
        self.db
            .as_ref()
            .map(|db| db.current().open_tree(tree_name(&self.name)))
            .transpose()
            .with_context(|| format!("opening state table {}", self.name))
    }

    /// Applies a batch's changes atomically: upserts, then removals. In a checkpoint's store the changes are
    /// held until the batch commits.
    pub fn apply(
        &self,
        upserts: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        removals: impl IntoIterator<Item = Vec<u8>>,
    ) -> anyhow::Result<()> {
        if let Some(deferred) = &self.deferred {
            deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(TableChanges {
                    table: self.name.clone(),
                    upserts: upserts.into_iter().collect(),
                    removals: removals.into_iter().collect(),
                });
            return Ok(());
        }
        let Some(tree) = self.tree()? else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for (key, value) in upserts {
            batch.insert(key, value);
        }
        for key in removals {
            batch.remove(key);
        }
        tree.apply_batch(batch)
            .context("writing operator state to sled")
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.tree().ok().flatten().map_or(0, |tree| tree.len())
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the whole store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db
            .as_ref()
            .map_or(0, |db| db.current().size_on_disk().unwrap_or(0))
    }

    /// Every entry, in key order (for recovery and inspection).
    pub fn entries(&self) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let Some(tree) = self.tree()? else {
            return Ok(Vec::new());
        };
        tree.iter()
            .map(|item| {
                item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .context("reading operator state")
            })
            .collect()
    }
}
