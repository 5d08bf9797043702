//! The checkpoint's database: its trees (layout in the module doc of `checkpoint`), how a batch is
//! planned, staged and committed in it, and how it stays small: old batch records are removed as batches
//! commit, and the database is copied into a fresh generation when its folder has doubled.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context};
use serde::Deserialize;
use sled::transaction::ConflictableTransactionResult;
use sled::Transactional;

use super::format;
use super::generations::Generations;
use super::{CommittedBatch, PlanFingerprint, PlannedBatch};
use crate::state::{tree_name, SharedDb, StateStore, TableChanges};

/// The checkpoint layout version; a checkpoint written by another version is refused.
const FORMAT: u32 = 1;

/// Committed batches whose records a checkpoint keeps by default (Spark's `minBatchesToRetain`, also 100).
pub(crate) const DEFAULT_BATCHES_TO_RETAIN: u64 = 100;

/// The folder is not copied into a new generation below this size, however much it grew: a copy costs a
/// pass over the live data, and a few MiB on disk cost nothing.
const COMPACT_FROM_BYTES: u64 = 8 << 20;

/// A pipeline's checkpoint database.
pub struct Checkpoint {
    path: PathBuf,
    /// How many of the last committed batches keep their `offsets` and `commits` records.
    retain: u64,
    db: SharedDb,
    generations: Mutex<Generations>,
    /// The folder's size after the last copy (or at open): the next copy is due at twice this.
    compacted_size: Mutex<u64>,
    query_id: String,
    state: StateStore,
}

fn read<T: for<'de> Deserialize<'de>>(
    tree: &sled::Tree,
    key: &[u8],
    what: &str,
) -> anyhow::Result<Option<T>> {
    match tree.get(key).with_context(|| format!("reading {what}"))? {
        None => Ok(None),
        Some(bytes) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("decoding {what}"))?,
        )),
    }
}

pub(super) fn last<T: for<'de> Deserialize<'de>>(
    tree: &sled::Tree,
    what: &str,
) -> anyhow::Result<Option<T>> {
    match tree.last().with_context(|| format!("reading {what}"))? {
        None => Ok(None),
        Some((_, bytes)) => Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("decoding {what}"))?,
        )),
    }
}

impl Checkpoint {
    /// Opens the checkpoint at `path`, creating it when the folder does not exist.
    ///
    /// A folder that is not a readable Weir checkpoint is an error, never a silent fresh start.
    pub fn open(path: &Path) -> anyhow::Result<Checkpoint> {
        let fresh = !path.exists();
        let refuse = |why: String| {
            anyhow::anyhow!(
                "the checkpoint at {} cannot be used: {why}. It was left as it is; restore it, or choose a new \
                 checkpointLocation to start over",
                path.display()
            )
        };
        if !fresh && !Generations::exist(path) {
            return Err(refuse(
                "the folder exists but holds no Weir checkpoint".into(),
            ));
        }
        let (generations, db) = Generations::open(path).map_err(|e| refuse(format!("{e:#}")))?;
        let meta = db
            .open_tree("meta")
            .map_err(|e| refuse(format!("tree meta: {e}")))?;
        let query_id = match meta.get("query").map_err(|e| refuse(e.to_string()))? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None if fresh => {
                let id = uuid::Uuid::new_v4().to_string();
                meta.insert("query", id.as_bytes())
                    .map_err(|e| refuse(e.to_string()))?;
                meta.insert("format", FORMAT.to_string().as_bytes())
                    .map_err(|e| refuse(e.to_string()))?;
                db.flush().map_err(|e| refuse(e.to_string()))?;
                id
            }
            None => {
                return Err(refuse(
                    "it has no query id (damaged, or not written by Weir)".into(),
                ))
            }
        };
        let format = meta
            .get("format")
            .map_err(|e| refuse(e.to_string()))?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        if format.as_deref() != Some(&FORMAT.to_string()) {
            return Err(refuse(format!(
                "its format is {}, this Weir writes format {FORMAT}",
                format.unwrap_or_else(|| "missing".into())
            )));
        }
        let size = db.size_on_disk().unwrap_or(0);
        let db = SharedDb::new(db);
        Ok(Checkpoint {
            path: path.to_path_buf(),
            retain: DEFAULT_BATCHES_TO_RETAIN,
            state: StateStore::deferred(db.clone()),
            db,
            generations: Mutex::new(generations),
            compacted_size: Mutex::new(size),
            query_id,
        })
    }

    /// Keeps the records of the last `batches` committed batches (at least 1) and removes older ones as
    /// batches commit; the default is [`DEFAULT_BATCHES_TO_RETAIN`].
    pub fn retaining(mut self, batches: u64) -> Checkpoint {
        self.retain = batches.max(1);
        self
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The query id, stable over the checkpoint's life (Spark's `id`).
    pub fn query_id(&self) -> &str {
        &self.query_id
    }

    /// The operator state store; its tables hold each batch's changes until the batch commits.
    pub fn state(&self) -> &StateStore {
        &self.state
    }

    /// The database in use.
    pub(super) fn db(&self) -> sled::Db {
        self.db.current()
    }

    /// A tree of the database in use.
    pub(super) fn tree(&self, name: &str) -> anyhow::Result<sled::Tree> {
        self.db
            .current()
            .open_tree(name)
            .with_context(|| format!("opening the checkpoint's {name} tree"))
    }

    fn flush(&self) -> anyhow::Result<()> {
        self.db
            .current()
            .flush()
            .context("flushing the checkpoint")?;
        Ok(())
    }

    /// Bytes the checkpoint takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.current().size_on_disk().unwrap_or(0)
    }

    /// Records the plan on first use; afterwards refuses a plan whose changes would corrupt the state.
    pub fn check_plan(&self, plan: &PlanFingerprint) -> anyhow::Result<()> {
        match self.plan()? {
            None => {
                self.tree("meta")?
                    .insert("plan", serde_json::to_vec(plan)?)
                    .context("writing the plan to the checkpoint")?;
                self.flush()
            }
            Some(earlier) => self.refuse_changes(&earlier, plan),
        }
    }

    /// Refuses a plan whose changes from the recorded one would corrupt the state, recording nothing
    /// (`weir validate`).
    pub fn check_plan_unchanged(&self, plan: &PlanFingerprint) -> anyhow::Result<()> {
        match self.plan()? {
            None => Ok(()),
            Some(earlier) => self.refuse_changes(&earlier, plan),
        }
    }

    fn refuse_changes(
        &self,
        earlier: &PlanFingerprint,
        plan: &PlanFingerprint,
    ) -> anyhow::Result<()> {
        let changes = plan.differences(earlier);
        if changes.is_empty() {
            return Ok(());
        }
        bail!(
            "the pipeline differs from the one that wrote the checkpoint at {} in ways that would corrupt its \
             state: {}. Undo the change, or use a new checkpointLocation to start over",
            self.path.display(),
            changes.join("; ")
        )
    }

    /// The plan recorded by the first run, if any.
    pub fn plan(&self) -> anyhow::Result<Option<PlanFingerprint>> {
        read(&self.tree("meta")?, b"plan", "the plan")
    }

    /// The last committed batch.
    pub fn last_commit(&self) -> anyhow::Result<Option<CommittedBatch>> {
        last(&self.tree("commits")?, "the last committed batch")
    }

    /// The plan of batch `batch`, if written.
    pub fn planned(&self, batch: u64) -> anyhow::Result<Option<PlannedBatch>> {
        read(
            &self.tree("offsets")?,
            &batch.to_be_bytes(),
            "a planned batch",
        )
    }

    /// Writes a batch's plan before it runs (write-ahead).
    pub fn write_planned(&self, planned: &PlannedBatch) -> anyhow::Result<()> {
        self.tree("offsets")?
            .insert(planned.batch.to_be_bytes(), serde_json::to_vec(planned)?)
            .context("writing the batch's offsets to the checkpoint")?;
        self.flush()
    }

    /// Stages a batch's commit record and state changes, durably, before its Kafka transaction commits.
    pub fn stage(&self, commit: &CommittedBatch, changes: &[TableChanges]) -> anyhow::Result<()> {
        self.tree("pending")?
            .insert(
                commit.batch.to_be_bytes(),
                format::encode_pending(commit, changes)?,
            )
            .context("staging the batch's state in the checkpoint")?;
        self.flush()
    }

    /// The staged batch, if any: its commit record and state changes.
    pub fn pending(&self) -> anyhow::Result<Option<(CommittedBatch, Vec<TableChanges>)>> {
        match self
            .tree("pending")?
            .last()
            .context("reading the staged batch")?
        {
            None => Ok(None),
            Some((_, bytes)) => Ok(Some(format::decode_pending(&bytes)?)),
        }
    }

    /// Makes a batch current: applies its state changes and writes its commit record in one sled
    /// transaction, and drops what was staged for it. Then removes the records of batches older than the
    /// retained ones, and copies the database into a new generation when its folder has doubled.
    pub fn commit(&self, commit: &CommittedBatch, changes: &[TableChanges]) -> anyhow::Result<()> {
        let mut names: Vec<String> = changes.iter().map(|c| tree_name(&c.table)).collect();
        names.sort();
        names.dedup();
        let mut trees = vec![self.tree("commits")?, self.tree("pending")?];
        for name in &names {
            trees.push(self.tree(name)?);
        }
        let key = commit.batch.to_be_bytes();
        let record = serde_json::to_vec(commit)?;
        trees
            .as_slice()
            .transaction(|views| -> ConflictableTransactionResult<(), ()> {
                views[0].insert(&key, record.as_slice())?;
                views[1].remove(&key)?;
                for change in changes {
                    let index = 2 + names
                        .binary_search(&tree_name(&change.table))
                        .expect("every table was opened");
                    for (k, v) in &change.upserts {
                        views[index].insert(k.as_slice(), v.as_slice())?;
                    }
                    for k in &change.removals {
                        views[index].remove(k.as_slice())?;
                    }
                }
                Ok(())
            })
            .map_err(|e: sled::transaction::TransactionError<()>| {
                anyhow::anyhow!("committing batch {} to the checkpoint: {e:?}", commit.batch)
            })?;
        self.forget_before((commit.batch + 1).saturating_sub(self.retain))?;
        self.flush()?;
        self.compact_if_grown()
    }

    /// Removes the `offsets` and `commits` records of batches before `batch`: recovery needs only the last
    /// committed batch and the one staged, so older records are history, kept `retain` deep for inspection.
    fn forget_before(&self, batch: u64) -> anyhow::Result<()> {
        for name in ["offsets", "commits"] {
            let tree = self.tree(name)?;
            let mut old = sled::Batch::default();
            for key in tree.range(..batch.to_be_bytes()).keys() {
                old.remove(key.context("reading old batch records")?);
            }
            tree.apply_batch(old)
                .context("removing old batch records from the checkpoint")?;
        }
        Ok(())
    }

    /// Copies the database into a new generation once its folder is twice as large as after the last copy
    /// (and at least [`COMPACT_FROM_BYTES`]). Called after a commit, when nothing is staged.
    fn compact_if_grown(&self) -> anyhow::Result<()> {
        let size = self.size_on_disk();
        let mut compacted = self
            .compacted_size
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if size < COMPACT_FROM_BYTES || size < compacted.saturating_mul(2) {
            return Ok(());
        }
        let mut generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let copy = generations
            .copy(&self.db.current())
            .with_context(|| format!("compacting the checkpoint at {}", self.path.display()))?;
        let old = self.db.replace(copy);
        // The old generation closes when its last handle goes: flushed and dropped before its files are.
        old.flush()
            .context("flushing the checkpoint's old generation")?;
        drop(old);
        generations.remove_others()?;
        *compacted = self.size_on_disk();
        tracing::debug!(
            before = size,
            after = *compacted,
            "checkpoint copied into a new generation"
        );
        Ok(())
    }

    /// Drops a staged batch whose Kafka transaction did not commit.
    pub fn discard_pending(&self) -> anyhow::Result<()> {
        self.tree("pending")?
            .clear()
            .context("clearing the staged batch")?;
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Offsets;

    fn offsets(batch: u64) -> Offsets {
        [(
            "tx".to_string(),
            [("0".to_string(), batch as i64 * 10)].into(),
        )]
        .into()
    }

    fn committed(batch: u64) -> CommittedBatch {
        CommittedBatch {
            batch,
            end: offsets(batch + 1),
            watermark: Default::default(),
            output_rows: batch,
            committed_at_ms: 0,
        }
    }

    /// A batch's state changes: window `batch % 5` rewritten with a 200 KiB value (over sled's 128 KiB
    /// threshold for keeping a value in a file of its own), window `(batch + 2) % 5` removed: three open.
    fn changes(batch: u64) -> Vec<TableChanges> {
        vec![TableChanges {
            table: "aggregate".into(),
            upserts: vec![(
                (batch % 5).to_be_bytes().to_vec(),
                vec![batch as u8; 200 << 10],
            )],
            removals: vec![((batch + 2) % 5).to_be_bytes().to_vec()],
        }]
    }

    #[test]
    fn after_1000_batches_only_the_retained_records_are_kept_and_a_restart_resumes_exactly() {
        let path = std::env::temp_dir().join(format!("weir-retention-{}", uuid::Uuid::new_v4()));
        let checkpoint = Checkpoint::open(&path).unwrap().retaining(10);
        for batch in 0..1000 {
            checkpoint
                .write_planned(&PlannedBatch {
                    batch,
                    start: offsets(batch),
                    end: offsets(batch + 1),
                })
                .unwrap();
            checkpoint
                .stage(&committed(batch), &changes(batch))
                .unwrap();
            checkpoint
                .commit(&committed(batch), &changes(batch))
                .unwrap();
        }
        assert_eq!(checkpoint.tree("commits").unwrap().len(), 10);
        assert_eq!(checkpoint.tree("offsets").unwrap().len(), 10);
        assert_eq!(checkpoint.planned(989).unwrap(), None);
        assert!(checkpoint.planned(990).unwrap().is_some());
        // 400 MB of state were written (staged, then applied); the folder was copied into new generations
        // on the way and stays small.
        let generation = std::fs::read_to_string(path.join("CURRENT")).unwrap();
        assert_ne!(generation.trim(), "gen-000000");
        assert!(
            checkpoint.size_on_disk() < 20 << 20,
            "{} bytes",
            checkpoint.size_on_disk()
        );
        let state: Vec<_> = checkpoint
            .state()
            .table("aggregate")
            .unwrap()
            .entries()
            .unwrap();
        drop(checkpoint);

        let reopened = Checkpoint::open(&path).unwrap();
        assert_eq!(reopened.last_commit().unwrap(), Some(committed(999)));
        assert_eq!(reopened.pending().unwrap(), None);
        let restored = reopened
            .state()
            .table("aggregate")
            .unwrap()
            .entries()
            .unwrap();
        assert_eq!(restored, state);
        assert_eq!(restored.len(), 3);
        assert_eq!(reopened.query_id().len(), 36);
        drop(reopened);
        std::fs::remove_dir_all(&path).unwrap();
    }
}
