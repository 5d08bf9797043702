//! How a batch becomes durable when the pipeline has a checkpoint, by its delivery guarantee.
//!
//! Exactly once, for batch N:
//! 1. its planned offsets are written to the checkpoint (write-ahead);
//! 2. its rows, dead letters and late rows are produced inside a Kafka transaction;
//! 3. its end offsets join the transaction (`send_offsets_to_transaction`);
//! 4. its state changes and commit record are staged in the checkpoint;
//! 5. the transaction commits: **the commit point**;
//! 6. the staged state becomes current and the commit record is written, in one sled transaction.
//!
//! A crash before 5 aborts the transaction (the next producer with the same `transactional.id` fences it)
//! and the batch is read again; a crash between 5 and 6 is settled at the next start by
//! [`crate::checkpoint::recover`]. At least once, 2 is a flush and 6 the commit point, so a crash between
//! them writes the batch's output again.
//!
//! To files, 2 writes the batch's files and 5 lists them in the sink's committed-files log (see
//! `sink/files/`); there is no transaction, and the log answers whether a staged batch committed.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::checkpoint::{
    to_positions, Checkpoint, CommittedBatch, GroupOffsets, PlannedBatch, Resume,
};
use crate::kafka::TopicPartition;
use crate::progress::offsets_json;
use crate::source::SourceSpec;

use crate::sink::{CommittedFile, Delivery, FileSink, FilesLog, KafkaSink, SinkTarget};
use crate::state::TableChanges;
use crate::window::WatermarkSnapshot;
use anyhow::Context;

/// Fault injection for the crash tests: `WEIR_CRASH_AT=<point>:<batch>` aborts the process at that point of
/// the first batch numbered `batch` or later, as a power cut would. Points: `planned` (after the
/// write-ahead), `produced` (output sent, not committed; only batches that wrote rows, or a group member's
/// state changes or repartitioned rows), `staged` (exactly-once: state staged, transaction not committed),
/// `committed` (transaction committed, checkpoint not yet updated). `<point>:<batch>:stop` stops the process there instead (SIGSTOP, once), as a long
/// pause would, for the zombie tests of consumer groups.
pub(super) fn crash_point(point: &str, batch: u64) {
    static AT: OnceLock<Option<(String, u64, bool)>> = OnceLock::new();
    static STOPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let at = AT.get_or_init(|| {
        let value = std::env::var("WEIR_CRASH_AT").ok()?;
        let mut parts = value.split(':');
        let (point, batch) = (parts.next()?, parts.next()?.parse().ok()?);
        Some((point.to_string(), batch, parts.next() == Some("stop")))
    });
    let Some((at_point, at_batch, stop)) = at else {
        return;
    };
    if at_point != point || batch < *at_batch {
        return;
    }
    if !*stop {
        eprintln!("WEIR_CRASH_AT: aborting at {point} of batch {batch}");
        std::process::abort();
    }
    if !STOPPED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!("WEIR_CRASH_AT: stopping at {point} of batch {batch}");
        let pid = std::process::id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status();
    }
}

/// A pipeline's checkpoint with what it needs to commit batches.
pub(crate) struct Checkpointing {
    pub(crate) checkpoint: Checkpoint,
    /// The consumer group holding a copy of a Kafka source's offsets (`None` for a file source).
    pub(crate) group: Option<GroupOffsets>,
    /// `weir-<name>`: the group's name, and the exactly-once producer's `transactional.id`.
    pub(crate) id: String,
    pub(crate) delivery: Delivery,
    /// Where the run starts, as recovery found it.
    pub(crate) resume: Resume,
}

impl Checkpointing {
    /// The producer's `transactional.id`: one per pipeline, so a restarted run fences its crashed
    /// predecessor.
    pub(crate) fn transactional_id(&self) -> Option<String> {
        (self.delivery == Delivery::ExactlyOnce).then(|| self.id.clone())
    }

    /// Refuses to start a checkpoint with no committed batch while the group has committed offsets for
    /// `partitions`: the group's offsets are only ever committed with, or after, a checkpointed batch, so the
    /// checkpoint that wrote them was deleted or replaced. Checked on every start until it is resolved.
    pub(crate) fn check_not_lost<'a>(
        &self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> anyhow::Result<()> {
        let Some(group) = self
            .group
            .as_ref()
            .filter(|_| self.resume.positions.is_none())
        else {
            return Ok(());
        };
        let earlier = group.committed(partitions)?;
        if earlier.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = earlier
            .iter()
            .map(|((topic, partition), offset)| format!("{topic}-{partition} at {offset}"))
            .collect();
        anyhow::bail!(
            "the checkpoint at {} has no committed batch, but consumer group {} has offsets committed by an \
             earlier run ({}); the checkpoint was deleted or moved. Restore it, or to start over use a new \
             pipeline `name` (or delete the group's offsets)",
            self.checkpoint.path().display(),
            self.id,
            listed.join(", ")
        )
    }

    /// Step 1: the batch's offsets, before it runs.
    pub(crate) fn plan(
        &self,
        batch: u64,
        start: &BTreeMap<TopicPartition, i64>,
        end: &BTreeMap<TopicPartition, i64>,
    ) -> anyhow::Result<()> {
        self.checkpoint.write_planned(&PlannedBatch {
            batch,
            start: offsets_json(start),
            end: offsets_json(end),
        })?;
        crash_point("planned", batch);
        Ok(())
    }

    /// Before the batch's first record is produced.
    pub(crate) fn begin(&self, sink: &KafkaSink) -> anyhow::Result<()> {
        match self.delivery {
            Delivery::ExactlyOnce => sink.begin(),
            Delivery::AtLeastOnce => Ok(()),
        }
    }

    /// The operator state changes of the batch being written (taken once: an attempt at the batch that is
    /// aborted and made again commits the same changes).
    pub(crate) fn take_changes(&self) -> Vec<TableChanges> {
        self.checkpoint.state().take_changes()
    }

    /// Steps 3 to 6, once everything of the batch has been produced. Returns how long it waited for the
    /// broker to have the output (the flush, or the transaction's commit), which progress counts as
    /// producing rather than checkpointing.
    pub(crate) fn commit(
        &self,
        sink: &KafkaSink,
        batch: u64,
        end: &BTreeMap<TopicPartition, i64>,
        (watermark, changes): (WatermarkSnapshot, &[TableChanges]),
        output_rows: u64,
    ) -> anyhow::Result<Duration> {
        let record = committed_record(batch, end, watermark, output_rows);
        match self.delivery {
            Delivery::ExactlyOnce => {
                let group = self.group.as_ref().context(
                    "exactly-once to Kafka sends the source's offsets with the transaction: it needs a Kafka source",
                )?;
                sink.send_offsets(end, &group.metadata()?)?;
                if output_rows > 0 {
                    crash_point("produced", batch);
                }
                self.stage_then_commit(&record, changes, || sink.commit())
            }
            Delivery::AtLeastOnce => {
                let waiting = Instant::now();
                sink.flush()?;
                let waited = waiting.elapsed();
                if output_rows > 0 {
                    crash_point("produced", batch);
                }
                self.commit_after_output(&record, changes)?;
                Ok(waited)
            }
        }
    }

    /// A file sink's batch, once its files are written: the batch is staged in the checkpoint, its files
    /// are listed in the sink's committed-files log (**the commit point**), then the checkpoint commits it.
    /// A crash between the log and the checkpoint is settled at the next start by the log. Returns how long
    /// writing the log took.
    pub(crate) fn commit_files(
        &self,
        sink: &FileSink,
        batch: u64,
        end: &BTreeMap<TopicPartition, i64>,
        (watermark, changes): (WatermarkSnapshot, &[TableChanges]),
        files: Vec<CommittedFile>,
    ) -> anyhow::Result<Duration> {
        let output_rows = files.iter().map(|f| f.rows).sum();
        let record = committed_record(batch, end, watermark, output_rows);
        if output_rows > 0 {
            crash_point("produced", batch);
        }
        let waited = self.stage_then_commit(&record, changes, || sink.commit(batch, files))?;
        self.copy_offsets_to_group(batch, end);
        Ok(waited)
    }

    /// Steps 4 to 6 around the sink's own commit point, `commit_in_sink` (the transaction's commit, or the
    /// committed-files log entry): the batch is staged, committed in the sink, then recorded as committed
    /// in the checkpoint. Returns how long the sink's commit took.
    fn stage_then_commit(
        &self,
        record: &CommittedBatch,
        changes: &[TableChanges],
        commit_in_sink: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<Duration> {
        self.checkpoint.stage(record, changes)?;
        crash_point("staged", record.batch);
        let waiting = Instant::now();
        commit_in_sink()?;
        let waited = waiting.elapsed();
        crash_point("committed", record.batch);
        self.checkpoint.commit(record, changes)?;
        Ok(waited)
    }

    /// At least once, after the batch's output is out (to Kafka, or printed): the checkpoint records the
    /// batch, the commit point.
    pub(crate) fn commit_after_output(
        &self,
        record: &CommittedBatch,
        changes: &[TableChanges],
    ) -> anyhow::Result<()> {
        self.checkpoint.commit(record, changes)?;
        crash_point("committed", record.batch);
        self.copy_offsets_to_group(record.batch, &crate::checkpoint::to_positions(&record.end));
        Ok(())
    }

    /// The checkpoint is the commit point; the group's copy of the offsets only detects a lost checkpoint,
    /// so failing to write it is a warning.
    fn copy_offsets_to_group(&self, batch: u64, end: &BTreeMap<TopicPartition, i64>) {
        let Some(group) = &self.group else {
            return;
        };
        if let Err(e) = group.commit(end) {
            tracing::warn!("batch {batch} is committed, but copying its offsets to consumer group {} failed: {e:#}", self.id);
        }
    }

    /// After a failure inside the batch: abort its transaction so nothing of it becomes visible.
    pub(crate) fn abandon(&self, sink: &KafkaSink) {
        if self.delivery == Delivery::ExactlyOnce {
            if let Err(e) = sink.abort() {
                tracing::warn!("aborting the failed batch's transaction: {e:#}; the next start aborts it instead");
            }
        }
    }
}

/// The checkpoint's record of a batch that commits now.
pub(crate) fn committed_record(
    batch: u64,
    end: &BTreeMap<TopicPartition, i64>,
    watermark: WatermarkSnapshot,
    output_rows: u64,
) -> CommittedBatch {
    CommittedBatch {
        batch,
        end: offsets_json(end),
        watermark,
        output_rows,
        committed_at_ms: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    }
}

/// Opens the checkpoint of a pipeline, settles what a crash left, and says where to resume.
pub(crate) fn open(spec: &crate::PipelineSpec) -> anyhow::Result<Option<Checkpointing>> {
    let Some(path) = &spec.checkpoint else {
        return Ok(None);
    };
    let checkpoint = Checkpoint::open(path)?.retaining(spec.min_batches_to_retain);
    let id = format!("weir-{}", spec.name);
    let group = match &spec.source {
        SourceSpec::Kafka(kafka) => Some(GroupOffsets::open(kafka, &id)?),
        SourceSpec::Files(_) => None,
    };
    let resume = match (&spec.sink.target, spec.sink.delivery) {
        (SinkTarget::Files(files), _) => {
            let log = FilesLog::at(&files.path);
            crate::checkpoint::recover(&checkpoint, |staged| log.has(staged.batch))?
        }
        (_, Delivery::ExactlyOnce) => crate::checkpoint::recover(&checkpoint, |staged| {
            let positions = to_positions(&staged.end);
            let group = group
                .as_ref()
                .context("exactly-once to Kafka needs a Kafka source")?;
            let committed = group.committed(positions.keys())?;
            Ok(positions
                .iter()
                .all(|(tp, end)| committed.get(tp) == Some(end)))
        })?,
        (_, Delivery::AtLeastOnce) => crate::checkpoint::recover(&checkpoint, |_| Ok(false))?,
    };
    Ok(Some(Checkpointing {
        checkpoint,
        group,
        id,
        delivery: spec.sink.delivery,
        resume,
    }))
}
