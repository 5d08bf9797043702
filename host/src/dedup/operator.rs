//! The deduplication operator: the keys seen, each with the watermark at which it is forgotten, in memory
//! (a hash map to look up, an ordered set to forget in order) and in the checkpoint's state table.
//!
//! The table holds one entry per batch that added keys, not one per key: sled costs several microseconds
//! per key written or removed, which at one entry per key made the checkpoint most of a batch's time. An
//! entry's key is the latest expiry among its keys (big-endian with the sign bit flipped, so entries sort
//! by time) and a sequence number; its value lists its keys with their expiries. The entry is removed once
//! the watermark passes that latest expiry, when every key in it is forgotten. Restoring reads every entry
//! back; a key whose expiry the watermark has already passed is not a duplicate, whatever the table holds.

use std::collections::{BTreeSet, HashMap};

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
    /// Each key remembered, with its expiry.
    seen: HashMap<Box<[u8]>, i64>,
    /// The same, in expiry order (a key re-added after a restore may be here twice).
    expiries: BTreeSet<(i64, Box<[u8]>)>,
    table: StateTable,
    /// The keys this batch added, for its state entry.
    added: Vec<(i64, Box<[u8]>)>,
    /// The state entries in the table: (latest expiry, sequence number).
    entries: BTreeSet<(i64, u64)>,
    next_entry: u64,
    /// Bytes of the keys remembered, for the memory estimate.
    key_bytes: u64,
}

/// What one batch did to the rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DedupCounts {
    /// Rows let through, each a key now remembered.
    pub(crate) kept: u64,
    /// Rows dropped as repeats of a key still remembered.
    pub(crate) duplicates: u64,
    /// The rows at or behind the watermark (or without an event time), dropped: their key may be
    /// forgotten.
    pub(crate) late_rows: Vec<u32>,
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
            seen: HashMap::new(),
            expiries: BTreeSet::new(),
            table,
            added: Vec::new(),
            entries: BTreeSet::new(),
            next_entry: 0,
            key_bytes: 0,
        })
    }

    /// The deduplication as planned.
    pub(crate) fn spec(&self) -> &DedupSpec {
        &self.spec
    }

    /// Loads the keys the state table holds; returns how many.
    pub(crate) fn restore(&mut self) -> anyhow::Result<usize> {
        for (entry, value) in self.table.entries()? {
            let (latest, sequence) = decode_entry_key(&entry)
                .context("a deduplication state entry with a damaged key")?;
            for (expiry, key) in
                decode_keys(&value).context("a deduplication state entry with damaged keys")?
            {
                self.remember(expiry, key);
            }
            self.entries.insert((latest, sequence));
            self.next_entry = self.next_entry.max(sequence + 1);
        }
        Ok(self.seen.len())
    }

    fn remember(&mut self, expiry: i64, key: &[u8]) {
        let known = self.seen.entry(key.into()).or_insert(expiry);
        if *known < expiry {
            *known = expiry;
        }
        if self.expiries.insert((expiry, key.into())) {
            self.key_bytes += key.len() as u64;
        }
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
                    counts.late_rows.push(row as u32);
                    keep.push(false);
                    continue;
                }
            };
            let key = keys.row(row);
            let remembered = self.seen.get(key.as_ref());
            if remembered
                .is_some_and(|&expiry| watermark.is_none_or(|watermark| expiry > watermark))
            {
                counts.duplicates += 1;
                keep.push(false);
                continue;
            }
            let expiry = time.saturating_add(self.keep_ms);
            self.remember(expiry, key.as_ref());
            counts.kept += 1;
            if self.table.is_stored() {
                self.added.push((expiry, key.as_ref().into()));
            }
            keep.push(true);
        }
        let kept = filter_record_batch(rows, &BooleanArray::from(keep))?;
        Ok((kept, counts))
    }

    /// Forgets the keys whose expiry the watermark after the batch has reached, and writes the batch's
    /// changes to the state table: an entry of the keys it added, and the removal of the entries whose keys
    /// are all forgotten. Returns the batch's counts for the progress report.
    pub(crate) fn finish_batch(
        &mut self,
        watermark: Option<i64>,
        counts: &DedupCounts,
    ) -> anyhow::Result<StateOperatorProgress> {
        let mut removed = 0;
        let mut removals = Vec::new();
        if let Some(watermark) = watermark {
            while self
                .expiries
                .first()
                .is_some_and(|(expiry, _)| *expiry <= watermark)
            {
                let (expiry, key) = self.expiries.pop_first().expect("looked at first");
                self.key_bytes -= key.len() as u64;
                if self.seen.get(&key) == Some(&expiry) {
                    self.seen.remove(&key);
                    removed += 1;
                }
            }
            while self
                .entries
                .first()
                .is_some_and(|(latest, _)| *latest <= watermark)
            {
                let (latest, sequence) = self.entries.pop_first().expect("looked at first");
                removals.push(entry_key(latest, sequence));
            }
        }
        let mut upserts = Vec::new();
        if !self.added.is_empty() {
            let added = std::mem::take(&mut self.added);
            let latest = added
                .iter()
                .map(|(expiry, _)| *expiry)
                .max()
                .unwrap_or(i64::MIN);
            let sequence = self.next_entry;
            self.next_entry += 1;
            self.entries.insert((latest, sequence));
            upserts.push((entry_key(latest, sequence), encode_keys(&added)));
        }
        if !upserts.is_empty() || !removals.is_empty() {
            self.table.apply(upserts, removals)?;
        }
        Ok(StateOperatorProgress {
            operator_name: "dedupe".into(),
            num_rows_total: self.seen.len() as u64,
            num_rows_updated: counts.kept,
            num_rows_removed: removed,
            num_rows_dropped_by_watermark: counts.late_rows.len() as u64,
            // Each key is held twice (to look up, and in expiry order), with ~24 bytes of entry each.
            memory_used_bytes: 2 * self.key_bytes + 48 * self.seen.len() as u64,
            state_on_disk_bytes: self.table.size_on_disk(),
            num_dropped_duplicate_rows: Some(counts.duplicates),
        })
    }
}

/// A state entry's key: its latest expiry, ordered as bytes, then its sequence number.
fn entry_key(latest: i64, sequence: u64) -> Vec<u8> {
    let mut bytes = ((latest as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    bytes.extend_from_slice(&sequence.to_be_bytes());
    bytes
}

fn decode_entry_key(bytes: &[u8]) -> Option<(i64, u64)> {
    let (latest, sequence) = bytes.split_first_chunk::<8>()?;
    let sequence: [u8; 8] = sequence.try_into().ok()?;
    let latest = (u64::from_be_bytes(*latest) ^ (1 << 63)) as i64;
    Some((latest, u64::from_be_bytes(sequence)))
}

/// An entry's value: each key as its expiry, its length and its bytes.
fn encode_keys(keys: &[(i64, Box<[u8]>)]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(keys.iter().map(|(_, key)| 12 + key.len()).sum());
    for (expiry, key) in keys {
        bytes.extend_from_slice(&expiry.to_be_bytes());
        bytes.extend_from_slice(&(key.len() as u32).to_be_bytes());
        bytes.extend_from_slice(key);
    }
    bytes
}

fn decode_keys(mut bytes: &[u8]) -> Option<Vec<(i64, &[u8])>> {
    let mut keys = Vec::new();
    while !bytes.is_empty() {
        let (expiry, rest) = bytes.split_first_chunk::<8>()?;
        let (length, rest) = rest.split_first_chunk::<4>()?;
        let length = u32::from_be_bytes(*length) as usize;
        if rest.len() < length {
            return None;
        }
        keys.push((i64::from_be_bytes(*expiry), &rest[..length]));
        bytes = &rest[length..];
    }
    Some(keys)
}
