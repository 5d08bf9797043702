//! The deduplication operator: the keys seen, each with the watermark at which it is forgotten, in memory
//! (a hash set to look up, an ordered set to forget in order) and in a state table written once per batch.
//!
//! A state entry's key is the expiry (big-endian, sign bit flipped, so entries sort by time) followed by the
//! row key as arrow-row encodes it; its value is empty. Restoring reads the table back into memory.

use std::collections::{BTreeSet, HashSet};

use anyhow::Context;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::SchemaRef;
use arrow_select::filter::filter_record_batch;

use super::DedupSpec;
use crate::progress::StateOperatorProgress;
use crate::schema::column_list;
use crate::state::StateTable;
use crate::window::event_times;

/// A planned deduplication with its state.
pub(crate) struct Deduplicator {
    spec: DedupSpec,
    key_columns: Vec<usize>,
    event_time: usize,
    /// Added to a row's event time to make its key's expiry (the delay, within the watermark; else 0).
    keep_ms: i64,
    converter: RowConverter,
    seen: HashSet<Box<[u8]>>,
    expiries: BTreeSet<(i64, Box<[u8]>)>,
    table: StateTable,
    upserts: Vec<Vec<u8>>,
    /// Bytes of the keys remembered, for the memory estimate.
    key_bytes: u64,
}

/// What one batch did to the rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DedupCounts {
    /// Rows let through, each a key now remembered.
    pub(crate) kept: u64,
    /// Rows dropped as repeats of a key still remembered.
    pub(crate) duplicates: u64,
    /// Rows at or behind the watermark (or without an event time), dropped: their key may be forgotten.
    pub(crate) late: u64,
}

impl Deduplicator {
    /// Plans `spec` for rows of `input`, whose event time is `event_column`, with the watermark's
    /// `delay_ms`; state in `table`.
    pub(crate) fn new(
        spec: &DedupSpec,
        input: &SchemaRef,
        (event_column, delay_ms): (&str, i64),
        table: StateTable,
    ) -> anyhow::Result<Deduplicator> {
        let find = |name: &str, key: &str| {
            input.index_of(name).map_err(|_| {
                anyhow::anyhow!(
                    "`{key}`: no column `{name}` in the rows reaching deduplication (they have: {})",
                    column_list(input)
                )
            })
        };
        if spec.columns.is_empty() {
            anyhow::bail!("`deduplicate.columns`: name at least one column");
        }
        let key_columns = spec
            .columns
            .iter()
            .map(|name| find(name, "deduplicate.columns"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let event_time = find(event_column, "watermark.column")?;
        let fields = key_columns
            .iter()
            .map(|&i| SortField::new(input.field(i).data_type().clone()))
            .collect();
        Ok(Deduplicator {
            spec: spec.clone(),
            key_columns,
            event_time,
            keep_ms: if spec.within_watermark { delay_ms } else { 0 },
            converter: RowConverter::new(fields).context("planning deduplication keys")?,
            seen: HashSet::new(),
            expiries: BTreeSet::new(),
            table,
            upserts: Vec::new(),
            key_bytes: 0,
        })
    }

    /// The deduplication as planned.
    pub(crate) fn spec(&self) -> &DedupSpec {
        &self.spec
    }

    /// Loads the keys the state table holds; returns how many.
    pub(crate) fn restore(&mut self) -> anyhow::Result<usize> {
        for (entry, _) in self.table.entries()? {
            let (expiry, key) = split_state_key(&entry)
                .with_context(|| "a deduplication state entry shorter than its expiry")?;
            self.remember(expiry, key);
        }
        Ok(self.seen.len())
    }

    fn remember(&mut self, expiry: i64, key: &[u8]) {
        self.seen.insert(key.into());
        self.expiries.insert((expiry, key.into()));
        self.key_bytes += key.len() as u64;
    }

    /// Drops from `rows` the repeats of remembered keys, and rows at or behind `watermark` (the watermark
    /// before the batch); remembers the keys let through.
    pub(crate) fn process(
        &mut self,
        rows: &RecordBatch,
        watermark: Option<i64>,
    ) -> anyhow::Result<(RecordBatch, DedupCounts)> {
        let times = event_times(rows.column(self.event_time))?;
        let columns: Vec<ArrayRef> = self
            .key_columns
            .iter()
            .map(|&i| rows.column(i).clone())
            .collect();
        let keys = self.converter.convert_columns(&columns)?;
        let mut counts = DedupCounts::default();
        let mut keep = Vec::with_capacity(rows.num_rows());
        for (row, time) in times.into_iter().enumerate() {
            let time = match time {
                Some(time) if watermark.is_none_or(|watermark| time > watermark) => time,
                _ => {
                    counts.late += 1;
                    keep.push(false);
                    continue;
                }
            };
            let key = keys.row(row);
            if self.seen.contains(key.as_ref()) {
                counts.duplicates += 1;
                keep.push(false);
                continue;
            }
            let expiry = time.saturating_add(self.keep_ms);
            self.remember(expiry, key.as_ref());
            counts.kept += 1;
            if self.table.is_stored() {
                self.upserts.push(state_key(expiry, key.as_ref()));
            }
            keep.push(true);
        }
        let kept = filter_record_batch(rows, &BooleanArray::from(keep))?;
        Ok((kept, counts))
    }

    /// Forgets the keys whose expiry the watermark after the batch has reached, and writes the batch's
    /// changes to the state table; returns the batch's counts for the progress report.
    pub(crate) fn finish_batch(
        &mut self,
        watermark: Option<i64>,
        counts: DedupCounts,
    ) -> anyhow::Result<StateOperatorProgress> {
        let mut removals = Vec::new();
        if let Some(watermark) = watermark {
            while let Some(first) = self.expiries.first() {
                if first.0 > watermark {
                    break;
                }
                let (expiry, key) = self.expiries.pop_first().expect("looked at first");
                self.seen.remove(&key);
                self.key_bytes -= key.len() as u64;
                if self.table.is_stored() {
                    removals.push(state_key(expiry, &key));
                }
            }
        }
        let removed = removals.len() as u64;
        let upserts = std::mem::take(&mut self.upserts);
        if !upserts.is_empty() || !removals.is_empty() {
            self.table
                .apply(upserts.into_iter().map(|key| (key, Vec::new())), removals)?;
        }
        Ok(StateOperatorProgress {
            operator_name: "dedupe".into(),
            num_rows_total: self.seen.len() as u64,
            num_rows_updated: counts.kept,
            num_rows_removed: removed,
            num_rows_dropped_by_watermark: counts.late,
            // Each key is held twice (to look up, and in expiry order), with ~24 bytes of set entry each.
            memory_used_bytes: 2 * self.key_bytes + 48 * self.seen.len() as u64,
            state_on_disk_bytes: self.table.size_on_disk(),
            num_dropped_duplicate_rows: Some(counts.duplicates),
        })
    }
}

/// A state entry's key: the expiry, ordered as bytes, then the row key.
fn state_key(expiry: i64, key: &[u8]) -> Vec<u8> {
    let mut bytes = ((expiry as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    bytes.extend_from_slice(key);
    bytes
}

fn split_state_key(entry: &[u8]) -> Option<(i64, &[u8])> {
    let (expiry, key) = entry.split_first_chunk::<8>()?;
    Some(((u64::from_be_bytes(*expiry) ^ (1 << 63)) as i64, key))
}
