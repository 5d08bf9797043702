//! A group member's local copy of its tasks' state (`stateStoreLocation`), in sled, so that a restore reads
//! only the changelog written after it instead of the whole partition.
//!
//! The changelog is what makes a task's state movable; reading it from its start on every move costs time
//! in proportion to its length. Each committed batch's changes are therefore also applied to a sled tree per
//! task, marked with the input offset the state is as of and the changelog offset just past the batch's
//! records. A restore reads the changelog from that offset and brings the copy to the group's committed
//! offset with the attempts that lead there from the copy's (`changelog.rs`, `replay_onto`); when none do
//! (the copy is from a run whose last batch never committed, or the records were compacted away), the
//! changelog is replayed whole, as without a copy. Deleting the folder is therefore always safe.
//!
//! A copy is kept when its partition leaves: if the partition comes back, only what its other owners wrote
//! meanwhile is read.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::changelog::Restored;
use crate::kafka::{KeyedRecord, TopicPartition};

/// The key of a task's mark (keys of changes start with a table name, or are the changelog's position).
const MARK_KEY: &[u8] = b"\0local";

/// Where a task's copy stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mark {
    /// The input offset the state is as of.
    pub(crate) position: i64,
    /// The changelog offset after the last record of the batch that made the state: every attempt after
    /// it is at or past this offset.
    pub(crate) changelog_next: i64,
}

/// One task's copy, read back.
pub(crate) struct LocalCopy {
    pub(crate) mark: Mark,
    pub(crate) state: Restored,
}

/// The copies of an instance's tasks; see the module's doc.
pub(crate) struct LocalCopies {
    db: sled::Db,
}

impl LocalCopies {
    /// The copies in folder `path`, created if missing.
    pub(crate) fn open(path: &Path) -> anyhow::Result<LocalCopies> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(16 << 20)
            .open()
            .with_context(|| {
                format!(
                    "opening the local state copies at {} (stateStoreLocation; each instance needs a folder of its own)",
                    path.display()
                )
            })?;
        Ok(LocalCopies { db })
    }

    fn tree(&self, (topic, partition): &TopicPartition) -> anyhow::Result<sled::Tree> {
        self.db
            .open_tree(format!("task/{topic}/{partition}"))
            .context("opening a task's local state copy")
    }

    /// Task `tp`'s copy, if there is one.
    pub(crate) fn load(&self, tp: &TopicPartition) -> anyhow::Result<Option<LocalCopy>> {
        let tree = self.tree(tp)?;
        let Some(mark) = tree.get(MARK_KEY).context("reading a local state copy")? else {
            return Ok(None);
        };
        let mark: Mark = serde_json::from_slice(&mark).context("reading a local copy's mark")?;
        let mut state = Restored::default();
        for entry in tree.iter() {
            let (key, value) = entry.context("reading a local state copy")?;
            if key.as_ref() != MARK_KEY {
                state.apply(&key, Some(&value))?;
            }
        }
        Ok(Some(LocalCopy { mark, state }))
    }

    /// Makes `state`, as of `mark`, task `tp`'s copy (after a restore); `None`: the task has no committed
    /// state, and no copy.
    pub(crate) fn replace(
        &self,
        tp: &TopicPartition,
        state: &Restored,
        mark: Option<Mark>,
    ) -> anyhow::Result<()> {
        let tree = self.tree(tp)?;
        tree.clear().context("clearing a local state copy")?;
        let Some(mark) = mark else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        for (key, value) in state.changes()? {
            batch.insert(key, value);
        }
        batch.insert(MARK_KEY, serde_json::to_vec(&mark)?);
        tree.apply_batch(batch)
            .context("writing a local state copy")
    }

    /// Applies a committed batch's changelog `records` to task `tp`'s copy, which then stands at `mark`. A
    /// copy that is not where the batch started (a write of it failed) is dropped instead: it would be
    /// wrong, and a restore without it replays the changelog.
    pub(crate) fn advance(
        &self,
        tp: &TopicPartition,
        records: &[KeyedRecord],
        from: Option<i64>,
        mark: Mark,
    ) -> anyhow::Result<()> {
        let tree = self.tree(tp)?;
        let current: Option<Mark> = (tree.get(MARK_KEY)?)
            .map(|m| serde_json::from_slice(&m))
            .transpose()?;
        if from.is_some() && current.map(|m| m.position) != from {
            tree.clear()?;
            anyhow::bail!(
                "the copy stands at {:?}, the batch started at {from:?}",
                current.map(|m| m.position)
            );
        }
        let mut batch = sled::Batch::default();
        for (key, value, _) in records {
            match value {
                Some(value) => batch.insert(key.as_slice(), value.as_slice()),
                None => batch.remove(key.as_slice()),
            }
        }
        batch.insert(MARK_KEY, serde_json::to_vec(&mark)?);
        tree.apply_batch(batch)
            .context("writing a local state copy")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_follows_its_batches_and_refuses_one_that_does_not_follow_it() {
        let dir = std::env::temp_dir().join(format!("weir-local-copy-{}", uuid::Uuid::new_v4()));
        let copies = LocalCopies::open(&dir).unwrap();
        let tp = ("tx".to_string(), 3);
        assert!(copies.load(&tp).unwrap().is_none());
        let mut state = Restored::default();
        state.apply(b"aggregate\0k1", Some(b"1")).unwrap();
        let mark = |position, changelog_next| Mark {
            position,
            changelog_next,
        };
        copies.replace(&tp, &state, Some(mark(10, 5))).unwrap();
        let records: Vec<KeyedRecord> = vec![
            (b"aggregate\0k1".to_vec(), None, vec![]),
            (b"aggregate\0k2".to_vec(), Some(b"2".to_vec()), vec![]),
            (b"\0position".to_vec(), Some(b"42".to_vec()), vec![]),
        ];
        copies
            .advance(&tp, &records, Some(10), mark(20, 9))
            .unwrap();
        let copy = copies.load(&tp).unwrap().unwrap();
        assert_eq!(copy.mark, mark(20, 9));
        assert_eq!(copy.state.watermark, Some(42));
        let entries = &copy.state.tables["aggregate"];
        assert_eq!(entries.keys().collect::<Vec<_>>(), [&b"k2".to_vec()]);
        // A batch that does not start where the copy stands drops the copy.
        assert!(copies
            .advance(&tp, &records, Some(30), mark(40, 12))
            .is_err());
        assert!(copies.load(&tp).unwrap().is_none());
        // A task with nothing committed has no copy.
        copies.replace(&tp, &state, Some(mark(10, 5))).unwrap();
        copies.replace(&tp, &state, None).unwrap();
        assert!(copies.load(&tp).unwrap().is_none());
        drop(copies);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
