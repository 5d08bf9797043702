//! Where a task's state comes from when its partition is given to this instance, and where it goes
//! besides the changelog: the restore (from the task's changelog partition, as of the group's committed
//! offset, starting from the task's local copy when there is one) and the local copy kept after each
//! committed batch (`state/local_copy.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Context;
use rdkafka::Offset;

use super::{PartitionTasks, Task, CHAINS, CHAINS_KEY, OPERATOR};
use crate::kafka::{
    ensure_topic, partitions_of, read_partitions, StoredRecord, TopicPartition, TopicWrite,
};
use crate::repartition::chain::{Chains, ChainsState};
use crate::sink::KafkaSink;
use crate::state::changelog::{attempt_span, replay, replay_onto, Restored};
use crate::state::local_copy::{LocalCopy, Mark};

/// The changelog partitions a restore read, each from an offset on, and how much it read.
#[derive(Default)]
struct Logs {
    records: BTreeMap<i32, Vec<StoredRecord>>,
    from: BTreeMap<i32, i64>,
    read: usize,
    bytes: usize,
}

impl Logs {
    fn of(&self, partition: i32) -> &[StoredRecord] {
        self.records.get(&partition).map_or(&[], Vec::as_slice)
    }

    /// Keeps `read`, the partitions read from the offsets in `from`, in place of what was read before.
    fn add(&mut self, read: BTreeMap<i32, Vec<StoredRecord>>, from: &[(i32, i64)]) {
        self.read += read.values().map(Vec::len).sum::<usize>();
        self.bytes += (read.values().flatten())
            .map(|r| r.key.len() + r.value.as_ref().map_or(0, Vec::len))
            .sum::<usize>();
        self.records.extend(read);
        self.from.extend(from.iter().copied());
    }
}

impl PartitionTasks {
    /// Rebuilds the tasks of `partitions`, given to this instance, from the changelog, as of each one's
    /// committed offset (`None`: nothing committed yet). Returns where a repartition partition is read
    /// from instead: its first upstream write not yet decided, else its start when nothing is committed.
    pub(crate) fn restore(
        &self,
        partitions: &[(TopicPartition, Option<i64>)],
    ) -> anyhow::Result<Vec<(TopicPartition, Offset)>> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        if self.repartition.is_some() {
            let topics: Vec<&str> = self.input_topics.iter().map(String::as_str).collect();
            *self.upstreams.lock().unwrap_or_else(|e| e.into_inner()) =
                partitions_of(&self.kafka, &topics)?;
        }
        let restoring = Instant::now();
        // One changelog partition per input partition: as many as the input topics have, not only the
        // partitions this instance is given first.
        let topics: Vec<&str> = partitions.iter().map(|((t, _), _)| t.as_str()).collect();
        ensure_topic(&self.kafka, &self.changelog, &topics, true)?;
        let copies = self.load_copies(partitions)?;
        let mut logs = self.read_changelog(partitions, &copies)?;
        let (mut starts, mut records, mut all_groups) = (Vec::new(), 0, 0);
        for ((tp, committed), copy) in partitions.iter().zip(copies) {
            let copied_at = copy.as_ref().map(|c| c.mark.position);
            let restored = (self.replay(tp, *committed, copy, &mut logs)).with_context(|| {
                format!(
                    "restoring {}-{}'s state from {}",
                    tp.0, tp.1, self.changelog
                )
            })?;
            let (task, start, groups) = self.rebuild(tp, *committed, &restored)?;
            starts.extend(start.map(|offset| (tp.clone(), offset)));
            tracing::info!(
                task = %format!("{}-{}", tp.0, tp.1),
                groups,
                records = restored.records,
                skipped = restored.skipped,
                watermark = ?task.watermark,
                local_copy = ?copied_at,
                "task restored from {}", self.changelog
            );
            records += restored.records;
            all_groups += groups;
            self.lock().insert(tp.clone(), Arc::new(Mutex::new(task)));
        }
        let seconds = restoring.elapsed().as_secs_f64();
        tracing::info!(
            partitions = partitions.len(),
            read = logs.read,
            bytes = logs.bytes,
            records,
            groups = all_groups,
            seconds,
            "state restored from {}",
            self.changelog
        );
        let mut restores = self.restores.lock().unwrap_or_else(|e| e.into_inner());
        restores.partitions += partitions.len() as u64;
        restores.records += records;
        restores.seconds += seconds;
        Ok(starts)
    }

    /// Each task's local copy, when there is one and it is not past the committed offset (an
    /// at-least-once batch whose offsets never committed); whether it is on the committed chain, the
    /// replay finds out.
    fn load_copies(
        &self,
        partitions: &[(TopicPartition, Option<i64>)],
    ) -> anyhow::Result<Vec<Option<LocalCopy>>> {
        (partitions.iter())
            .map(|(tp, committed)| match (&self.local, committed) {
                (Some(local), Some(committed)) => Ok(local
                    .load(tp)?
                    .filter(|copy| copy.mark.position <= *committed)),
                _ => Ok(None),
            })
            .collect()
    }

    /// The changelog partitions of `partitions`' tasks. Changelog partition p holds the tasks of partition
    /// p of every input topic (told apart by a header); it is read from where the first of its tasks'
    /// `copies` ends, or from its start.
    fn read_changelog(
        &self,
        partitions: &[(TopicPartition, Option<i64>)],
        copies: &[Option<LocalCopy>],
    ) -> anyhow::Result<Logs> {
        let mut read_from: BTreeMap<i32, i64> = BTreeMap::new();
        for (((_, partition), _), copy) in partitions.iter().zip(copies) {
            let from = copy.as_ref().map_or(0, |c| c.mark.changelog_next);
            let start = read_from.entry(*partition).or_insert(from);
            *start = (*start).min(from);
        }
        let from: Vec<(i32, i64)> = read_from.into_iter().collect();
        let mut logs = Logs::default();
        logs.add(read_partitions(&self.kafka, &self.changelog, &from)?, &from);
        Ok(logs)
    }

    /// Task `tp`, with its `restored` state as of `committed`; also where its partition is read from
    /// instead of the committed offset (a repartition partition's), and how many groups it holds.
    fn rebuild(
        &self,
        (topic, _): &TopicPartition,
        committed: Option<i64>,
        restored: &Restored,
    ) -> anyhow::Result<(Task, Option<Offset>, usize)> {
        let mut task = self.new_task()?;
        let entries = restored.tables.get(OPERATOR).cloned().unwrap_or_default();
        let groups = task.aggregator.restore_entries(entries)?;
        task.watermark = restored.watermark;
        task.position = committed;
        let mut start = None;
        if let Some(chains) = restored.tables.get(CHAINS).and_then(|t| t.get(CHAINS_KEY)) {
            let state: ChainsState =
                serde_json::from_slice(chains).context("reading a task's chains")?;
            start = state.resume_at.map(Offset::Offset);
            task.chains = Chains::from_state(state);
        } else if committed.is_none() && self.repartition.as_deref() == Some(topic.as_str()) {
            start = Some(Offset::Beginning);
        }
        Ok((task, start, groups))
    }

    /// Task `tp`'s state as of `committed`: its local copy brought forward by the changelog records read
    /// after it, when they lead from it to `committed`; else its changelog partition replayed whole (read
    /// again from its start if only its end was read). The copy is then replaced by the state restored.
    fn replay(
        &self,
        tp: &TopicPartition,
        committed: Option<i64>,
        copy: Option<LocalCopy>,
        logs: &mut Logs,
    ) -> anyhow::Result<Restored> {
        let (topic, partition) = tp;
        let onto = match (copy, committed) {
            (Some(copy), Some(committed)) => {
                let (position, next) = (copy.mark.position, copy.mark.changelog_next);
                let restored = replay_onto(
                    logs.of(*partition),
                    topic,
                    committed,
                    (copy.state, position),
                )?;
                if restored.is_none() {
                    tracing::warn!(
                        task = %format!("{topic}-{partition}"),
                        "the local state copy (input offset {position}, changelog offset {next}) does not lead to the committed offset {committed}; replaying the changelog whole"
                    );
                }
                restored
            }
            _ => None,
        };
        let restored = match onto {
            Some(restored) => restored,
            None => {
                if logs.from.get(partition).is_some_and(|from| *from > 0) {
                    let whole = [(*partition, 0)];
                    logs.add(
                        read_partitions(&self.kafka, &self.changelog, &whole)?,
                        &whole,
                    );
                }
                replay(logs.of(*partition), topic, committed)?
            }
        };
        if let Some(local) = &self.local {
            let from = logs.from.get(partition).copied().unwrap_or(0);
            let mark = committed.map(|position| Mark {
                position,
                changelog_next: logs.of(*partition).last().map_or(from, |r| r.offset + 1),
            });
            local.replace(tp, &restored, mark)?;
        }
        Ok(restored)
    }

    /// After task `tp`'s batch committed with `internal` records: its changes go to its local copy too,
    /// marked with the changelog offset after them (`sink` acknowledged it). A copy that cannot be written
    /// is dropped, and the task's next restore replays its changelog.
    pub(crate) fn keep_locally(
        &self,
        tp: &TopicPartition,
        internal: &[TopicWrite],
        sink: &KafkaSink,
    ) {
        let Some(local) = &self.local else {
            return;
        };
        let Some(write) = internal.iter().find(|w| w.topic == self.changelog) else {
            return;
        };
        let (Some((from, to)), Some(last)) = (
            attempt_span(&write.records),
            sink.acknowledged(&self.changelog, write.partition),
        ) else {
            return;
        };
        let mark = Mark {
            position: to,
            changelog_next: last + 1,
        };
        if let Err(e) = local.advance(tp, &write.records, from, mark) {
            tracing::warn!(
                "{}-{}'s local state copy is dropped: {e:#}; its next restore replays the changelog",
                tp.0,
                tp.1
            );
        }
    }
}
