//! Changelogs: how a group member's operator state moves with its input partitions.
//!
//! Each input partition is a task with state of its own. Every batch's changes to a task's tables go to a
//! compacted topic, `weir-<pipeline>-<operator>-changelog`, in the partition of the task's number, inside
//! the transaction that writes the batch's output and commits its offsets. A member that is given the
//! partition replays that changelog partition to rebuild the task.
//!
//! A broker that does not filter aborted transactions (tansu, librdkafka's mock cluster) returns the
//! changes of aborted attempts too (an instance killed or paused mid-batch), so which records count is
//! decided here, not by the broker. Every batch attempt's records carry the input offsets its state went
//! from and to. Replay starts at the group's committed offset and follows those links back: the attempt
//! that ends at the committed offset and comes last in the log, then the last one before it ending where
//! that one began, and so on. An attempt that never committed is either superseded by a later attempt
//! over the same input (its owner's successor starts where the last commit stopped, after fencing it, and
//! a fenced producer's writes are refused) or ends past the committed offset. Where a link is missing,
//! compaction removed it, so the broker is one that compacts, and such a broker (Kafka) filters aborted
//! records itself: everything it returns is replayed, in log order.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;

use super::TableChanges;
use crate::kafka::{KeyedRecord, StoredRecord, TopicPartition};

/// Header: the source topic of the task (tasks of several topics can share a changelog partition).
const TOPIC: &str = "weir.topic";
/// Header: the id of the batch attempt that wrote the record.
const ATTEMPT: &str = "weir.attempt";
/// Header: the input offset the attempt's state started from (absent for a task's first batch).
const FROM: &str = "weir.from";
/// Header: the input offset the attempt's batch ended at.
const TO: &str = "weir.to";
/// The key of the record holding the task's watermark after the attempt (tables' keys start with their
/// name, which is never empty).
const POSITION_KEY: &[u8] = b"\0position";

/// The changelog topic of `operator` in pipeline `pipeline`.
///
/// ```
/// # use weir::internal::changelog_topic;
/// assert_eq!(changelog_topic("fraud-window", "aggregate"), "weir-fraud-window-aggregate-changelog");
/// ```
pub fn changelog_topic(pipeline: &str, operator: &str) -> String {
    format!("weir-{pipeline}-{operator}-changelog")
}

/// One batch attempt's changes to one task, ready to be produced to the task's changelog partition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChangelogBatch {
    /// The task: the input partition.
    pub(crate) task: TopicPartition,
    /// This attempt's id, unique: it tells two attempts over the same input apart.
    pub(crate) attempt: String,
    /// The input offset the task's state was as of before the batch (`None`: its first batch).
    pub(crate) from: Option<i64>,
    /// The input offset the batch ends at (the offset it commits).
    pub(crate) to: i64,
    /// The task's watermark after the batch.
    pub(crate) watermark: Option<i64>,
    /// What the batch changed in the task's tables.
    pub(crate) changes: Vec<TableChanges>,
}

impl ChangelogBatch {
    /// The records to produce: every upsert and removal of every table, then the position.
    pub(crate) fn records(&self) -> anyhow::Result<Vec<KeyedRecord>> {
        let mut headers = vec![
            (TOPIC, self.task.0.clone()),
            (ATTEMPT, self.attempt.clone()),
            (TO, self.to.to_string()),
        ];
        if let Some(from) = self.from {
            headers.push((FROM, from.to_string()));
        }
        let mut records = Vec::new();
        for table in &self.changes {
            let key = |k: &[u8]| [table.table.as_bytes(), b"\0", k].concat();
            for (k, v) in &table.upserts {
                records.push((key(k), Some(v.clone()), headers.clone()));
            }
            for k in &table.removals {
                records.push((key(k), None, headers.clone()));
            }
        }
        let position = serde_json::to_vec(&self.watermark).context("encoding a position")?;
        records.push((POSITION_KEY.to_vec(), Some(position), headers));
        Ok(records)
    }
}

/// A task's state rebuilt from its changelog.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Restored {
    /// Each table's entries, in key order.
    pub(crate) tables: BTreeMap<String, BTreeMap<Vec<u8>, Vec<u8>>>,
    /// The watermark the last committed attempt left.
    pub(crate) watermark: Option<i64>,
    /// Records replayed.
    pub(crate) records: u64,
    /// Records of attempts that never committed, skipped.
    pub(crate) skipped: u64,
}

/// The records of one attempt.
struct Attempt<'a> {
    from: Option<i64>,
    to: i64,
    records: Vec<&'a StoredRecord>,
}

/// Rebuilds the state of the task of `topic` from its changelog partition's `records` (in offset order),
/// as of `committed`, the group's committed offset for the task (`None`: nothing committed).
pub(crate) fn replay(
    records: &[StoredRecord],
    topic: &str,
    committed: Option<i64>,
) -> anyhow::Result<Restored> {
    let attempts = attempts(records, topic)?;
    let mut restored = Restored::default();
    let total: u64 = attempts.iter().map(|a| a.records.len() as u64).sum();
    let Some(committed) = committed else {
        restored.skipped = total;
        return Ok(restored);
    };
    let (chain, stopped_at) = chain(&attempts, committed, None);
    let applied: Vec<usize> = if stopped_at.is_some() {
        // A missing link: the broker compacts, and returns committed records only (see the module's doc).
        if chain.is_empty() && !attempts.is_empty() {
            tracing::warn!(
                committed,
                "no changelog attempt ends at the committed offset; replaying the changelog whole"
            );
        }
        (0..attempts.len()).collect()
    } else {
        chain.into_iter().rev().collect()
    };
    for index in &applied {
        for record in &attempts[*index].records {
            apply(&mut restored, record)?;
        }
    }
    restored.skipped = total - restored.records;
    Ok(restored)
}

/// Brings `base`, the task's state as of input offset `position` (a local copy), to `committed` with the
/// attempts of `records` that lead from one to the other; `None` when none do (the copy is not on the
/// committed chain, or the records do not reach back to it): the caller replays the changelog whole.
pub(crate) fn replay_onto(
    records: &[StoredRecord],
    topic: &str,
    committed: i64,
    (base, position): (Restored, i64),
) -> anyhow::Result<Option<Restored>> {
    let attempts = attempts(records, topic)?;
    let (chain, stopped_at) = chain(&attempts, committed, Some(position));
    if stopped_at != Some(position) {
        return Ok(None);
    }
    let mut restored = Restored {
        records: 0,
        skipped: 0,
        ..base
    };
    let total: u64 = attempts.iter().map(|a| a.records.len() as u64).sum();
    for index in chain.into_iter().rev() {
        for record in &attempts[index].records {
            apply(&mut restored, record)?;
        }
    }
    restored.skipped = total - restored.records;
    Ok(Some(restored))
}

/// The attempts that led to `committed`, latest first: back from it, the last attempt in the log ending
/// there, then the last one before it ending where that one began, and so on, until `until` (a state
/// already held) or the task's first batch. Also returns where the walk stopped: `None` at the first batch,
/// else the offset no attempt was followed back from (`until`, or a missing link).
fn chain(attempts: &[Attempt], committed: i64, until: Option<i64>) -> (Vec<usize>, Option<i64>) {
    let mut chain: Vec<usize> = Vec::new();
    let mut target = Some(committed);
    while let Some(to) = target.filter(|to| Some(*to) != until) {
        let before = chain.last().copied().unwrap_or(attempts.len());
        match attempts[..before].iter().rposition(|a| a.to == to) {
            Some(found) => {
                chain.push(found);
                target = attempts[found].from;
            }
            None => break,
        }
    }
    (chain, target)
}

/// The input offsets a batch attempt's changelog `records` (as [`ChangelogBatch::records`] makes them)
/// went from and to.
pub(crate) fn attempt_span(records: &[KeyedRecord]) -> Option<(Option<i64>, i64)> {
    let (_, _, headers) = records.last()?;
    let header = |name: &str| {
        (headers.iter())
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| v.parse::<i64>().ok())
    };
    Some((header(FROM), header(TO)?))
}

/// The records of `topic`'s task, by attempt, in the order the attempts began in the log.
fn attempts<'a>(records: &'a [StoredRecord], topic: &str) -> anyhow::Result<Vec<Attempt<'a>>> {
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in records {
        let header = |name: &str| {
            (record.headers.iter())
                .find(|(k, _)| k == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        if header(TOPIC).as_deref() != Some(topic) {
            continue;
        }
        let offset = |name: &str| -> anyhow::Result<Option<i64>> {
            header(name)
                .map(|v| v.parse::<i64>())
                .transpose()
                .with_context(|| {
                    format!(
                        "changelog record at offset {}: header {name}",
                        record.offset
                    )
                })
        };
        let (Some(id), Some(to)) = (header(ATTEMPT), offset(TO)?) else {
            anyhow::bail!(
                "changelog record at offset {} has no {ATTEMPT} or {TO} header: it was not written by Weir",
                record.offset
            );
        };
        let at = *index.entry(id).or_insert_with(|| {
            attempts.push(Attempt {
                from: None,
                to,
                records: Vec::new(),
            });
            attempts.len() - 1
        });
        attempts[at].from = offset(FROM)?;
        attempts[at].records.push(record);
    }
    Ok(attempts)
}

/// Applies one record to the state being rebuilt.
fn apply(restored: &mut Restored, record: &StoredRecord) -> anyhow::Result<()> {
    restored.records += 1;
    restored
        .apply(&record.key, record.value.as_deref())
        .with_context(|| format!("changelog record at offset {}", record.offset))
}

impl Restored {
    /// Applies one change, as a changelog record holds it: `value` for `key` (`None`: removing it).
    pub(crate) fn apply(&mut self, key: &[u8], value: Option<&[u8]>) -> anyhow::Result<()> {
        if key == POSITION_KEY {
            self.watermark = serde_json::from_slice(value.unwrap_or(b"null"))
                .context("decoding the position")?;
            return Ok(());
        }
        let Some(split) = key.iter().position(|b| *b == 0) else {
            anyhow::bail!("a state change's key has no table name");
        };
        let table = String::from_utf8_lossy(&key[..split]).into_owned();
        let entries = self.tables.entry(table).or_default();
        match value {
            Some(value) => entries.insert(key[split + 1..].to_vec(), value.to_vec()),
            None => entries.remove(&key[split + 1..]),
        };
        Ok(())
    }

    /// The state as changes that rebuild it from nothing ([`Restored::apply`] takes them back).
    pub(crate) fn changes(&self) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut changes: Vec<(Vec<u8>, Vec<u8>)> = (self.tables.iter())
            .flat_map(|(table, entries)| {
                (entries.iter())
                    .map(move |(k, v)| ([table.as_bytes(), b"\0", k].concat(), v.clone()))
            })
            .collect();
        let position = serde_json::to_vec(&self.watermark).context("encoding a position")?;
        changes.push((POSITION_KEY.to_vec(), position));
        Ok(changes)
    }
}

#[cfg(test)]
mod tests;
