//! Operator state in sled: one tree per stateful operator, written once per batch.
//!
//! Operators keep their open state in memory (bounded by what is open: windows not yet closed by the
//! watermark) and write what a batch changed to sled in one atomic batch, so sled always holds the state
//! as of a batch boundary. Keys are ordered bytes chosen by the operator so that what is evicted together is
//! contiguous (the aggregation puts the window end first). Recovery from this state across restarts, with
//! a version per batch, is the checkpoint's job.

use std::path::Path;

use anyhow::Context;

/// sled's page cache (default 1 GiB). Operators keep their open state in memory, so sled's cache only
/// needs to hold what a batch writes.
const CACHE_BYTES: u64 = 16 << 20;

fn config() -> sled::Config {
    sled::Config::new().cache_capacity(CACHE_BYTES)
}

/// A sled database holding the state of a pipeline's operators.
#[derive(Clone)]
pub struct StateStore {
    db: sled::Db,
}

impl StateStore {
    /// A store in a temporary folder, removed when the store is dropped: state for one run.
    pub fn temporary() -> anyhow::Result<StateStore> {
        let db = config()
            .temporary(true)
            .open()
            .context("opening a temporary sled state store")?;
        Ok(StateStore { db })
    }

    /// A store in `path`, created if missing.
    pub fn open(path: &Path) -> anyhow::Result<StateStore> {
        let db = config()
            .path(path)
            .open()
            .with_context(|| format!("opening the sled state store at {}", path.display()))?;
        Ok(StateStore { db })
    }

    /// The table of one operator.
    pub fn table(&self, name: &str) -> anyhow::Result<StateTable> {
        let tree = self
            .db
            .open_tree(name)
            .with_context(|| format!("opening state table {name}"))?;
        Ok(StateTable {
            tree,
            db: self.db.clone(),
        })
    }
}

/// One operator's state: ordered byte keys to byte values.
#[derive(Clone)]
pub struct StateTable {
    tree: sled::Tree,
    db: sled::Db,
}

impl StateTable {
    /// Applies a batch's changes atomically: upserts, then removals.
    pub fn apply(
        &self,
        upserts: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        removals: impl IntoIterator<Item = Vec<u8>>,
    ) -> anyhow::Result<()> {
        let mut batch = sled::Batch::default();
        for (key, value) in upserts {
            batch.insert(key, value);
        }
        for key in removals {
            batch.remove(key);
        }
        self.tree
            .apply_batch(batch)
            .context("writing operator state to sled")
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// Bytes the whole store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// Every entry, in key order (for recovery and inspection).
    pub fn entries(&self) -> impl Iterator<Item = anyhow::Result<(Vec<u8>, Vec<u8>)>> + '_ {
        self.tree.iter().map(|item| {
            item.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .context("reading operator state")
        })
    }
}
