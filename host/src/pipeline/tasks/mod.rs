//! A stateful consumer group member's tasks: one per input partition it owns, each with an aggregation
//! and a watermark of its own, so that a partition's state can move to another instance with it.
//!
//! A task's batch changes go to the aggregation's changelog (`state/changelog.rs`) in the partition's
//! transaction, or before its offset is committed at least once (`partition_write.rs`). When the group
//! gives this instance a partition, its task is rebuilt from that changelog, as of the group's committed
//! offset, starting from the task's local copy if it has one (`restore.rs`); when the partition leaves, the
//! task is dropped. A task's watermark is its own partition's event time less the delay: the
//! partitions of one instance share nothing, so none can make another's records late.

mod restore;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;
use rdkafka::config::ClientConfig;

use crate::aggregate::{AggregateSpec, Aggregator};
use crate::kafka::{client_config, TopicPartition, TopicWrite};
use crate::progress::{RestoreProgress, StateOperatorProgress};
use crate::repartition::chain::{Chains, Write};
use crate::repartition::repartition_topic;
use crate::source::TopicSelection;
use crate::state::changelog::{changelog_topic, ChangelogBatch};
use crate::state::local_copy::LocalCopies;
use crate::state::StateStore;
use crate::PipelineSpec;

/// The operator whose state the tasks hold (the name in the changelog topic and in the state table).
pub(crate) const OPERATOR: &str = "aggregate";

/// The state table of a repartition partition's task holding its chains (`repartition/chain.rs`), under
/// [`CHAINS_KEY`].
const CHAINS: &str = "repartition";
const CHAINS_KEY: &[u8] = b"chains";

/// The member's tasks; see the module's doc.
pub(crate) struct PartitionTasks {
    spec: AggregateSpec,
    input: SchemaRef,
    /// The watermark's delay, when there is a watermark.
    delay_ms: Option<i64>,
    /// The changelog topic, and how to reach it (the sink's cluster, where the transactions are).
    changelog: String,
    kafka: ClientConfig,
    tasks: Mutex<BTreeMap<TopicPartition, Arc<Mutex<Task>>>>,
    restores: Mutex<RestoreProgress>,
    /// The rows the aggregation emits, the same for every task.
    output: SchemaRef,
    /// With a repartition: its topic, whose partitions are the tasks, and every partition of the input
    /// topics (each one's watermark holds the tasks' back), read at the first restore.
    repartition: Option<String>,
    input_topics: Vec<String>,
    upstreams: Mutex<Vec<TopicPartition>>,
    /// With `stateStoreLocation`: the tasks' local copies, which restores start from.
    local: Option<LocalCopies>,
}

/// One partition's state.
struct Task {
    aggregator: Aggregator,
    store: StateStore,
    watermark: Option<i64>,
    /// The partition offset the state is as of: where the last batch ended, or the committed offset it
    /// was rebuilt at (`None`: no batch yet).
    position: Option<i64>,
    /// A repartition partition's task: the upstream writes it has read, decided or not.
    chains: Chains<RecordBatch>,
}

impl Task {
    /// Folds `rows` of task `tp`'s batch ending at offset `end` into the aggregation, at the watermark as
    /// it was, then emits at the watermark `after`; the batch's changes go to the changelog.
    fn fold(
        &mut self,
        tp: &TopicPartition,
        rows: RecordBatch,
        after: Option<i64>,
        end: i64,
    ) -> anyhow::Result<TaskBatch> {
        let late_rows = self.aggregator.update(&rows, self.watermark)?;
        let (emitted, progress) = self.aggregator.finish_batch(after)?;
        self.watermark = after;
        let changelog = ChangelogBatch {
            task: tp.clone(),
            attempt: uuid::Uuid::new_v4().simple().to_string(),
            from: self.position.replace(end),
            to: end,
            watermark: after,
            changes: self.store.take_changes(),
        };
        Ok(TaskBatch {
            emitted,
            progress,
            late_rows,
            changelog,
            input: rows,
        })
    }
}

/// What a task made of its partition's rows in a batch.
pub(crate) struct TaskBatch {
    /// The rows the output mode emits.
    pub(crate) emitted: RecordBatch,
    pub(crate) progress: StateOperatorProgress,
    /// Rows behind the task's watermark (by index into the input).
    pub(crate) late_rows: Vec<u32>,
    /// The changes, for the partition's transaction.
    pub(crate) changelog: ChangelogBatch,
    /// The rows folded in (a repartition partition's: those of the upstream writes decided in the batch).
    pub(crate) input: RecordBatch,
}

impl PartitionTasks {
    /// The tasks of a group member with an aggregation over rows of `input`, else `None`.
    pub(crate) fn plan(
        spec: &PipelineSpec,
        input: &SchemaRef,
    ) -> anyhow::Result<Option<PartitionTasks>> {
        let (Some(kafka), Some(aggregate)) = (spec.source.kafka(), &spec.aggregate) else {
            return Ok(None);
        };
        if !kafka.consumer_group {
            return Ok(None);
        }
        let mut tasks = PartitionTasks {
            spec: aggregate.clone(),
            input: input.clone(),
            delay_ms: spec.watermark.as_ref().map(|w| w.delay_ms),
            changelog: changelog_topic(&spec.name, OPERATOR),
            kafka: client_config(&spec.sink.options.kafka),
            tasks: Mutex::default(),
            restores: Mutex::default(),
            output: input.clone(),
            repartition: spec.repartitions().then(|| repartition_topic(&spec.name)),
            input_topics: match &kafka.topics {
                TopicSelection::Subscribe(topics) => topics.clone(),
                _ => Vec::new(),
            },
            upstreams: Mutex::default(),
            local: (spec.state_store.as_deref())
                .map(LocalCopies::open)
                .transpose()?,
        };
        // Checks the aggregation against the input now, as a single instance's plan does.
        tasks.output = tasks.new_task()?.aggregator.output_schema().clone();
        Ok(Some(tasks))
    }

    /// The schema of the rows every task emits.
    pub(crate) fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    fn new_task(&self) -> anyhow::Result<Task> {
        let store = StateStore::changes_only();
        let aggregator = Aggregator::new(
            self.spec.clone(),
            &self.input,
            self.delay_ms.is_some(),
            store.table(OPERATOR)?,
        )
        .context("planning the aggregation")?;
        Ok(Task {
            aggregator,
            store,
            watermark: None,
            position: None,
            chains: Chains::new(BTreeMap::new()),
        })
    }

    /// Drops the tasks of `partitions`, given up.
    pub(crate) fn release(&self, partitions: &[TopicPartition]) {
        let mut tasks = self.lock();
        for tp in partitions {
            tasks.remove(tp);
        }
    }

    /// Restores so far, for the progress report.
    pub(crate) fn restores(&self) -> RestoreProgress {
        self.restores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TopicPartition, Arc<Mutex<Task>>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn task(&self, tp: &TopicPartition) -> anyhow::Result<Arc<Mutex<Task>>> {
        self.lock()
            .get(tp)
            .cloned()
            .with_context(|| format!("{}-{} has no task: its state was not restored", tp.0, tp.1))
    }

    /// Folds `rows`, partition `tp`'s rows of a batch ending at offset `end`, into its task;
    /// `max_event_time` moves the task's watermark after them.
    pub(crate) fn run(
        &self,
        tp: &TopicPartition,
        rows: &RecordBatch,
        max_event_time: Option<i64>,
        end: i64,
    ) -> anyhow::Result<TaskBatch> {
        let task = self.task(tp)?;
        let mut task = task.lock().unwrap_or_else(|e| e.into_inner());
        let after = match (max_event_time, self.delay_ms) {
            (Some(time), Some(delay)) => task.watermark.max(Some(time - delay)),
            _ => task.watermark,
        };
        task.fold(tp, rows.clone(), after, end)
    }

    /// Repartition partition `tp`'s batch, ending at offset `end`: its upstream `writes`, of which those
    /// that the chains show committed are folded into its task; the watermark after them is the smallest
    /// over every upstream partition's.
    pub(crate) fn run_repartitioned(
        &self,
        tp: &TopicPartition,
        writes: Vec<(TopicPartition, Write<RecordBatch>)>,
        end: i64,
    ) -> anyhow::Result<TaskBatch> {
        let task = self.task(tp)?;
        let mut task = task.lock().unwrap_or_else(|e| e.into_inner());
        let mut decided = Vec::new();
        for (upstream, write) in writes {
            let applied = task.chains.offer(&upstream, write);
            decided.extend(applied.into_iter().filter_map(|w| w.rows));
        }
        let rows = concat_batches(&self.input, &decided).context("joining upstream rows")?;
        let upstreams = (self.upstreams.lock())
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let after = task.watermark.max(task.chains.watermark(&upstreams));
        let chains = serde_json::to_vec(&task.chains.state()).context("encoding the chains")?;
        (task.store.table(CHAINS)?).apply([(CHAINS_KEY.to_vec(), chains)], [])?;
        task.fold(tp, rows, after, end)
    }

    /// A batch's changes as records of the task's changelog partition.
    pub(crate) fn changelog_write(&self, changes: &ChangelogBatch) -> anyhow::Result<TopicWrite> {
        Ok(TopicWrite {
            topic: self.changelog.clone(),
            partition: changes.task.1,
            records: changes.records()?,
        })
    }
}
