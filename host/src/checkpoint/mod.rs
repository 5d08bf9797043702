//! Checkpoints: what a restarted pipeline needs to resume exactly where its last committed batch ended.
//!
//! One sled database per pipeline, at `checkpointLocation`:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `query`, `plan` | the query id; the plan's [`PlanFingerprint`] |
//! | `offsets` | batch id | [`PlannedBatch`]: the offsets the batch reads, written before it runs (write-ahead) |
//! | `commits` | batch id | [`CommittedBatch`]: end offsets and watermark, written when its output is durable |
//! | `pending` | batch id | the batch's commit record and state changes, while its Kafka transaction commits |
//! | `state/<table>` | operator key | operator state as of the last committed batch |
//!
//! With exactly-once delivery the Kafka transaction is the commit point: the batch's state changes are
//! staged in `pending` before it, and applied (with the `commits` record) after it. After a crash between
//! the two, [`recover`] asks Kafka which offsets the consumer group committed, and applies or discards the
//! pending batch accordingly. With at-least-once delivery the `commits` record is the commit point.

mod format;
mod group;
mod inspect;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use sled::transaction::ConflictableTransactionResult;
use sled::Transactional;

pub use group::GroupOffsets;
pub use inspect::inspect;

use crate::config::Delivery;
use crate::source::TopicPartition;
use crate::state::{tree_name, StateStore, TableChanges};
use crate::window::WatermarkSnapshot;

/// The checkpoint layout version; a checkpoint written by another version is refused.
const FORMAT: u32 = 1;

/// Offsets by topic then partition, as Spark writes them: `{"tx": {"0": 42}}`.
pub type Offsets = BTreeMap<String, BTreeMap<String, i64>>;

/// Offsets keyed by (topic, partition), as the source uses them.
pub fn to_positions(offsets: &Offsets) -> BTreeMap<TopicPartition, i64> {
    offsets
        .iter()
        .flat_map(|(topic, partitions)| {
            partitions.iter().filter_map(move |(partition, offset)| {
                Some(((topic.clone(), partition.parse().ok()?), *offset))
            })
        })
        .collect()
}

/// What must not change between the runs that share a checkpoint: the source, and everything that shapes
/// the aggregation's state. Rate limits, filters, transforms after the state, and the output topic may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFingerprint {
    /// The topics read: `subscribe`, `subscribePattern` or `assign`.
    pub source: String,
    /// The group keys, when there is an aggregation.
    pub group_by: Vec<String>,
    /// The aggregates (`count(*) as n`, ...).
    pub aggregates: Vec<String>,
    /// The window, when there is one.
    pub window: Option<String>,
    /// The output mode.
    pub output_mode: Option<String>,
    /// The columns reaching the aggregation (the UDFs' output that feeds the state).
    pub state_input: Option<String>,
    /// The event-time column of the watermark.
    pub watermark_column: Option<String>,
}

impl PlanFingerprint {
    /// Each difference from `earlier` that would corrupt the state, as "what: was → now".
    fn differences(&self, earlier: &PlanFingerprint) -> Vec<String> {
        let mut changes = Vec::new();
        let mut compare = |what: &str, was: String, now: String| {
            if was != now {
                changes.push(format!("{what}: {was} → {now}"));
            }
        };
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        compare("source topics", earlier.source.clone(), self.source.clone());
        compare(
            "grouping keys",
            format!("{:?}", earlier.group_by),
            format!("{:?}", self.group_by),
        );
        compare(
            "aggregates",
            format!("{:?}", earlier.aggregates),
            format!("{:?}", self.aggregates),
        );
        compare("window", show(&earlier.window), show(&self.window));
        compare(
            "output mode",
            show(&earlier.output_mode),
            show(&self.output_mode),
        );
        compare(
            "columns feeding the state (UDF output schemas)",
            show(&earlier.state_input),
            show(&self.state_input),
        );
        compare(
            "watermark column",
            show(&earlier.watermark_column),
            show(&self.watermark_column),
        );
        changes
    }
}

/// A batch as planned, before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedBatch {
    /// The batch id, counting from 0 over the checkpoint's life.
    pub batch: u64,
    /// The first offset of each partition the batch reads.
    pub start: Offsets,
    /// One past the last offset of each partition the batch reads.
    pub end: Offsets,
}

/// A batch whose output is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBatch {
    /// The batch id.
    pub batch: u64,
    /// Where the next batch starts, per partition.
    pub end: Offsets,
    /// The watermark tracker after the batch.
    pub watermark: WatermarkSnapshot,
    /// Rows the batch wrote to the sink.
    pub output_rows: u64,
    /// When it committed, in ms since the epoch.
    pub committed_at_ms: i64,
}

/// Committed batches whose records a checkpoint keeps by default (Spark's `minBatchesToRetain`, also 100).
pub const DEFAULT_BATCHES_TO_RETAIN: u64 = 100;

/// A pipeline's checkpoint database.
pub struct Checkpoint {
    path: PathBuf,
    /// How many of the last committed batches keep their `offsets` and `commits` records.
    retain: u64,
    db: sled::Db,
    meta: sled::Tree,
    offsets: sled::Tree,
    commits: sled::Tree,
    pending: sled::Tree,
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

fn last<T: for<'de> Deserialize<'de>>(tree: &sled::Tree, what: &str) -> anyhow::Result<Option<T>> {
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
        if !fresh && !path.join("db").exists() && !path.join("conf").exists() {
            return Err(refuse(
                "the folder exists but holds no Weir checkpoint".into(),
            ));
        }
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(16 << 20)
            .open()
            .map_err(|e| refuse(format!("sled cannot open it ({e})")))?;
        let tree = |name: &str| {
            db.open_tree(name)
                .map_err(|e| refuse(format!("tree {name}: {e}")))
        };
        let meta = tree("meta")?;
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
        let checkpoint = Checkpoint {
            path: path.to_path_buf(),
            retain: DEFAULT_BATCHES_TO_RETAIN,
            offsets: tree("offsets")?,
            commits: tree("commits")?,
            pending: tree("pending")?,
            state: StateStore::deferred(db.clone()),
            meta,
            query_id,
            db,
        };
        Ok(checkpoint)
    }

    /// Keeps the records of the last `batches` committed batches (at least 1) and removes older ones as
    /// batches commit; the default is [`DEFAULT_BATCHES_TO_RETAIN`].
    pub fn retaining(mut self, batches: u64) -> Checkpoint {
        self.retain = batches.max(1);
        self
    }

    /// How many committed batches keep their records.
    pub fn retained(&self) -> u64 {
        self.retain
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

    /// Records the plan on first use; afterwards refuses a plan whose changes would corrupt the state.
    pub fn check_plan(&self, plan: &PlanFingerprint) -> anyhow::Result<()> {
        match read::<PlanFingerprint>(&self.meta, b"plan", "the checkpointed plan")? {
            None => {
                self.meta
                    .insert("plan", serde_json::to_vec(plan)?)
                    .context("writing the plan to the checkpoint")?;
                self.db.flush().context("flushing the checkpoint")?;
                Ok(())
            }
            Some(earlier) => {
                let changes = plan.differences(&earlier);
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
        }
    }

    /// The last committed batch.
    pub fn last_commit(&self) -> anyhow::Result<Option<CommittedBatch>> {
        last(&self.commits, "the last committed batch")
    }

    /// The plan of batch `batch`, if written.
    pub fn planned(&self, batch: u64) -> anyhow::Result<Option<PlannedBatch>> {
        read(&self.offsets, &batch.to_be_bytes(), "a planned batch")
    }

    /// Writes a batch's plan before it runs (write-ahead).
    pub fn write_planned(&self, planned: &PlannedBatch) -> anyhow::Result<()> {
        self.offsets
            .insert(planned.batch.to_be_bytes(), serde_json::to_vec(planned)?)
            .context("writing the batch's offsets to the checkpoint")?;
        self.db.flush().context("flushing the checkpoint")?;
        Ok(())
    }

    /// Stages a batch's commit record and state changes, durably, before its Kafka transaction commits.
    pub fn stage(&self, commit: &CommittedBatch, changes: &[TableChanges]) -> anyhow::Result<()> {
        self.pending
            .insert(
                commit.batch.to_be_bytes(),
                format::encode_pending(commit, changes)?,
            )
            .context("staging the batch's state in the checkpoint")?;
        self.db.flush().context("flushing the checkpoint")?;
        Ok(())
    }

    /// The staged batch, if any: its commit record and state changes.
    pub fn pending(&self) -> anyhow::Result<Option<(CommittedBatch, Vec<TableChanges>)>> {
        match self.pending.last().context("reading the staged batch")? {
            None => Ok(None),
            Some((_, bytes)) => Ok(Some(format::decode_pending(&bytes)?)),
        }
    }

    /// Makes a batch current: applies its state changes and writes its commit record in one sled
    /// transaction, and drops what was staged for it.
    pub fn commit(&self, commit: &CommittedBatch, changes: &[TableChanges]) -> anyhow::Result<()> {
        let mut names: Vec<String> = changes.iter().map(|c| tree_name(&c.table)).collect();
        names.sort();
        names.dedup();
        let mut trees = vec![self.commits.clone(), self.pending.clone()];
        for name in &names {
            trees.push(self.db.open_tree(name).context("opening a state tree")?);
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
        self.db.flush().context("flushing the checkpoint")?;
        Ok(())
    }

    /// Removes the `offsets` and `commits` records of batches before `batch`: recovery needs only the last
    /// committed batch and the one staged, so older records are history, kept `retain` deep for inspection.
    fn forget_before(&self, batch: u64) -> anyhow::Result<()> {
        for tree in [&self.offsets, &self.commits] {
            let mut old = sled::Batch::default();
            for key in tree.range(..batch.to_be_bytes()).keys() {
                old.remove(key.context("reading old batch records")?);
            }
            tree.apply_batch(old)
                .context("removing old batch records from the checkpoint")?;
        }
        Ok(())
    }

    /// Drops a staged batch whose Kafka transaction did not commit.
    pub fn discard_pending(&self) -> anyhow::Result<()> {
        self.pending.clear().context("clearing the staged batch")?;
        self.db.flush().context("flushing the checkpoint")?;
        Ok(())
    }
}

/// Where a recovered pipeline starts.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The next batch id.
    pub next_batch: u64,
    /// Per-partition positions, when a batch was ever committed.
    pub positions: Option<BTreeMap<TopicPartition, i64>>,
    /// The watermark tracker to restore.
    pub watermark: Option<WatermarkSnapshot>,
}

/// Settles a crash's leftovers and says where to resume.
///
/// With exactly-once delivery, a staged batch is applied if Kafka committed its transaction (the group's
/// committed offsets are the batch's end offsets) and discarded otherwise. Whether a checkpoint with no
/// committed batch was lost is checked once the source knows its partitions
/// (`Checkpointing::check_not_lost`).
pub fn recover(
    checkpoint: &Checkpoint,
    delivery: Delivery,
    group: &GroupOffsets,
) -> anyhow::Result<Resume> {
    if let Some((staged, changes)) = checkpoint.pending()? {
        let positions = to_positions(&staged.end);
        let committed = group.committed(positions.keys())?;
        let kafka_has_it = delivery == Delivery::ExactlyOnce
            && positions
                .iter()
                .all(|(tp, end)| committed.get(tp) == Some(end));
        if kafka_has_it {
            tracing::info!(
                batch = staged.batch,
                "the last batch committed in Kafka before the crash; applying its state"
            );
            checkpoint.commit(&staged, &changes)?;
        } else {
            tracing::info!(
                batch = staged.batch,
                "the last batch did not commit before the crash; it will be read again"
            );
            checkpoint.discard_pending()?;
        }
    }
    match checkpoint.last_commit()? {
        None => Ok(Resume::default()),
        Some(last) => Ok(Resume {
            next_batch: last.batch + 1,
            positions: Some(to_positions(&last.end)),
            watermark: Some(last.watermark),
        }),
    }
}
