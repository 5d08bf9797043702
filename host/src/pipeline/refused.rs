//! Output rows refused for good (`[sink] on_error`): traced back to the source records that made them, then
//! named in the error that stops the pipeline, or sent to the dead-letter topic while the batch goes on.
//!
//! A row's source records are not carried through the stages (a UDF may filter, split or merge rows), so
//! they are found again by replay: the partition's records run through the stateless stages in halves,
//! following the half whose output still holds the refused record, down to the record that makes it. That
//! needs the stages to be functions of their input, as UDFs are meant to be; a row the replay does not make
//! again is reported as such. Only batches with a refused row pay for this. After an aggregation no single
//! record made a row, so the row is named (or dead-lettered) by its key instead.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::Range;

use super::plan::Plan;
use crate::sink::{DeadLetter, KafkaSink, Refusal, SinkOnError, SinkRows};
use crate::source::PartitionChunk;

/// Where a refused row came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// These records (rows of the batch's chunk `chunk`) make it.
    Records { chunk: usize, rows: Range<usize> },
    /// A row of the aggregation's output.
    Aggregate,
    /// Processing chunk `chunk` again did not make the row again.
    Unreproduced { chunk: usize },
}

/// The rows of one batch refused so far, and what became of them.
pub(crate) struct RefusedRows {
    policy: SinkOnError,
    /// Output rows refused, left out of every later attempt at the batch.
    pub(crate) rows: BTreeSet<usize>,
    refusals: Vec<(Refusal, Origin)>,
    /// How many of `refusals` have had their dead letters produced in the current attempt.
    lettered: usize,
}

impl RefusedRows {
    pub(crate) fn new(policy: SinkOnError) -> RefusedRows {
        RefusedRows {
            policy,
            rows: BTreeSet::new(),
            refusals: Vec::new(),
            lettered: 0,
        }
    }

    /// Starts another attempt at the batch (after an aborted transaction): every dead letter is due again.
    pub(crate) fn restart(&mut self) {
        self.lettered = 0;
    }

    /// Takes rows refused in this attempt: traces each to its origin, then fails with the first under
    /// `on_error = "fail"`. `by_chunk` gives the output rows of each chunk (none after an aggregation).
    pub(crate) fn take(
        &mut self,
        plan: &Plan,
        sink: &KafkaSink,
        chunks: &[PartitionChunk],
        by_chunk: Option<&[Range<usize>]>,
        rows: &SinkRows,
        refusals: Vec<Refusal>,
    ) -> anyhow::Result<()> {
        if refusals.is_empty() {
            return Ok(());
        }
        let origins = match by_chunk {
            None => vec![Origin::Aggregate; refusals.len()],
            Some(by_chunk) => trace(plan, sink, chunks, by_chunk, rows, &refusals),
        };
        for (refusal, origin) in refusals.into_iter().zip(origins) {
            let unreproduced = matches!(origin, Origin::Unreproduced { .. });
            if self.policy == SinkOnError::Fail || unreproduced {
                anyhow::bail!("{}", describe(&refusal, &origin, chunks, rows));
            }
            self.rows.insert(refusal.row);
            self.refusals.push((refusal, origin));
        }
        Ok(())
    }

    /// Produces the dead letters of the refusals not yet lettered in this attempt; returns how many source
    /// records went out (a record that made two refused rows goes once).
    pub(crate) fn send_letters(
        &mut self,
        sink: &KafkaSink,
        chunks: &[PartitionChunk],
        rows: &SinkRows,
    ) -> anyhow::Result<u64> {
        let SinkOnError::DeadLetter { topic } = &self.policy else {
            return Ok(0);
        };
        let mut sent = BTreeSet::new();
        let earlier: BTreeSet<(usize, usize)> = self.refusals[..self.lettered]
            .iter()
            .flat_map(|(_, origin)| records(origin))
            .collect();
        for (refusal, origin) in &self.refusals[self.lettered..] {
            let error = letter_error(refusal);
            match origin {
                Origin::Aggregate => sink.refused_row_letter(topic, rows, refusal)?,
                _ => {
                    for (chunk, row) in records(origin) {
                        if earlier.contains(&(chunk, row)) || !sent.insert((chunk, row)) {
                            continue;
                        }
                        let letter = DeadLetter {
                            chunk: &chunks[chunk],
                            row,
                            stage: "sink",
                            error: &error,
                        };
                        sink.dead_letter(topic, letter)?;
                    }
                }
            }
        }
        self.lettered = self.refusals.len();
        Ok(sent.len() as u64)
    }

    /// Rows refused in this batch.
    pub(crate) fn count(&self) -> u64 {
        self.refusals.len() as u64
    }
}

/// The (chunk, row) pairs of the source records an origin names.
fn records(origin: &Origin) -> Vec<(usize, usize)> {
    match origin {
        Origin::Records { chunk, rows } => rows.clone().map(|row| (*chunk, row)).collect(),
        _ => Vec::new(),
    }
}

/// The `weir.error` header of a refused row's dead letters.
fn letter_error(refusal: &Refusal) -> String {
    format!(
        "{}: the output row made from this record ({} bytes, for topic {}) was refused for good; {}",
        refusal.message,
        refusal.bytes,
        refusal.topic,
        refusal.remedy()
    )
}

/// The error that stops the pipeline for a refused row: what was refused, how large it was, where it came
/// from, what bounds it, and how to go on without it.
fn describe(
    refusal: &Refusal,
    origin: &Origin,
    chunks: &[PartitionChunk],
    rows: &SinkRows,
) -> String {
    let source = match origin {
        Origin::Records { chunk, rows } => {
            let chunk = &chunks[*chunk];
            if rows.len() == 1 {
                format!("it came from {}", chunk.locate(rows.start))
            } else {
                format!("it came from the records{}", chunk.slice(rows.clone()).describe())
            }
        }
        Origin::Aggregate => {
            let key = rows
                .key(refusal.row)
                .map(|k| String::from_utf8_lossy(&k[..k.len().min(100)]).into_owned());
            format!(
                "it is a row of the aggregation's output (key {}), which no single record made",
                key.map_or("null".to_string(), |k| format!("{k:?}"))
            )
        }
        Origin::Unreproduced { chunk } => format!(
            "its source records are unknown: processing{} again did not make the same row (a UDF that is not \
             a function of its input?), so it cannot be dead-lettered either",
            chunks[*chunk].describe()
        ),
    };
    format!(
        "the sink's output row of {} bytes for topic {} was refused for good: {}; {source}. {}; or set \
         [sink] on_error = \"dead-letter\" with a dead_letter_topic to send such rows' source records aside \
         and go on",
        refusal.bytes,
        refusal.topic,
        refusal.message,
        capitalized(refusal.remedy())
    )
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// A refused row being traced: its index among the refusals, and the identity of its record.
type Target = (usize, u64);

/// The origin of each refused row, found by replaying its chunk (see the module doc).
fn trace(
    plan: &Plan,
    sink: &KafkaSink,
    chunks: &[PartitionChunk],
    by_chunk: &[Range<usize>],
    rows: &SinkRows,
    refusals: &[Refusal],
) -> Vec<Origin> {
    let mut origins = vec![Origin::Aggregate; refusals.len()];
    for (chunk_index, chunk) in chunks.iter().enumerate() {
        let targets: Vec<Target> = refusals
            .iter()
            .enumerate()
            .filter(|(_, r)| by_chunk[chunk_index].contains(&r.row))
            .map(|(i, r)| (i, identity(sink, rows, r.row)))
            .collect();
        if targets.is_empty() {
            continue;
        }
        let whole = 0..chunk.batch.num_rows();
        let (found, missing) = split_found(&made_by(plan, sink, chunk, whole.clone()), targets);
        for (i, _) in missing {
            origins[i] = Origin::Unreproduced { chunk: chunk_index };
        }
        for (i, rows) in locate(plan, sink, chunk, whole, found) {
            origins[i] = Origin::Records {
                chunk: chunk_index,
                rows,
            };
        }
    }
    origins
}

/// Narrows `targets` (refusal index, record identity), all made by the records in `range`, to the records
/// that make each: halves while one half alone makes it; a row only both halves together make stays with
/// the whole range.
fn locate(
    plan: &Plan,
    sink: &KafkaSink,
    chunk: &PartitionChunk,
    range: Range<usize>,
    targets: Vec<Target>,
) -> Vec<(usize, Range<usize>)> {
    if targets.is_empty() {
        return Vec::new();
    }
    if range.len() == 1 {
        return targets
            .into_iter()
            .map(|(i, _)| (i, range.clone()))
            .collect();
    }
    let mid = range.start + range.len() / 2;
    let (left, rest) = split_found(&made_by(plan, sink, chunk, range.start..mid), targets);
    let (right, both) = split_found(&made_by(plan, sink, chunk, mid..range.end), rest);
    let mut located: Vec<(usize, Range<usize>)> =
        both.into_iter().map(|(i, _)| (i, range.clone())).collect();
    located.extend(locate(plan, sink, chunk, range.start..mid, left));
    located.extend(locate(plan, sink, chunk, mid..range.end, right));
    located
}

/// Splits `targets` into those `made` holds (each occurrence used once) and the rest.
fn split_found(made: &HashMap<u64, usize>, targets: Vec<Target>) -> (Vec<Target>, Vec<Target>) {
    let mut left = made.clone();
    targets
        .into_iter()
        .partition(|(_, id)| match left.get_mut(id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
}

/// The identities (with counts) of the records the stateless stages make from `rows` of `chunk`; empty
/// when they fail on them.
fn made_by(
    plan: &Plan,
    sink: &KafkaSink,
    chunk: &PartitionChunk,
    rows: Range<usize>,
) -> HashMap<u64, usize> {
    let mut made = HashMap::new();
    let output = plan
        .process_chunk(&chunk.slice(rows))
        .and_then(|out| sink.rows(&out.rows));
    match output {
        Ok(out) => {
            for row in 0..out.len() {
                *made.entry(identity(sink, &out, row)).or_insert(0) += 1;
            }
        }
        Err(e) => tracing::debug!("replaying records to trace a refused row: {e:#}"),
    }
    made
}

/// A record as the sink would produce it (topic, partition, key, value, headers), hashed.
fn identity(sink: &KafkaSink, rows: &SinkRows, row: usize) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    sink.topic_of(rows, row).ok().hash(&mut hasher);
    rows.partition(row).hash(&mut hasher);
    rows.key(row).hash(&mut hasher);
    rows.value(row).hash(&mut hasher);
    rows.headers(row).hash(&mut hasher);
    hasher.finish()
}
