//! Which groups a batch's rows fall in: each row's group key (and, windowed, each window or session its
//! event time opens) becomes a state key, and the batch becomes (row, slot) pairs over the distinct keys
//! it touches, which the aggregates then fold a column at a time.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use arrow_array::{ArrayRef, RecordBatch};

use super::{state_key, Aggregator, WindowBy, WindowKind};
use crate::window::event_times;

/// The groups one batch touches.
pub(super) struct BatchGroups {
    /// (row, slot): the row's values go into the group at `keys[slot]`; a row in several windows appears
    /// once per window.
    pub(super) pairs: Vec<(u32, u32)>,
    /// The state keys of the touched groups, by slot.
    pub(super) keys: Vec<Vec<u8>>,
    slot_of: HashMap<Vec<u8>, u32>,
}

impl BatchGroups {
    fn with_capacity(rows: usize) -> BatchGroups {
        BatchGroups {
            pairs: Vec::with_capacity(rows),
            keys: Vec::new(),
            slot_of: HashMap::new(),
        }
    }

    /// The slot of `key`, adding it if the batch has not touched it yet.
    pub(super) fn slot(&mut self, key: &[u8]) -> u32 {
        if let Some(slot) = self.slot_of.get(key) {
            return *slot;
        }
        let slot = self.keys.len() as u32;
        self.slot_of.insert(key.to_vec(), slot);
        self.keys.push(key.to_vec());
        slot
    }
}

impl Aggregator {
    /// The groups of `batch`'s rows. Rows whose event time is at or below `watermark` are late: counted,
    /// and their indexes added to `late`, as Spark drops them.
    pub(super) fn group_rows(
        &mut self,
        batch: &RecordBatch,
        watermark: Option<i64>,
        late: &mut Vec<u32>,
    ) -> anyhow::Result<BatchGroups> {
        let key_arrays: Vec<ArrayRef> = self
            .key_columns
            .iter()
            .map(|i| batch.column(*i).clone())
            .collect();
        let rows = self
            .keys
            .convert_columns(&key_arrays)
            .context("encoding group keys")?;
        let times = match self.time_column {
            Some(i) => Some(event_times(batch.column(i))?),
            None => None,
        };
        let mut groups = BatchGroups::with_capacity(batch.num_rows());
        let mut starts = Vec::new();
        let mut key = Vec::new();
        // Session windows: each group's (event time, row), resolved into sessions after the loop.
        let mut session_rows: BTreeMap<Vec<u8>, Vec<(i64, u32)>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            let group_key = rows.row(row);
            let windows: &[i64] = match (&times, &self.spec.window) {
                (Some(times), Some(window)) => {
                    let Some(ts) = times.get(row).copied().flatten() else {
                        continue;
                    };
                    if watermark.is_some_and(|w| ts <= w) {
                        self.progress.num_rows_dropped_by_watermark += 1;
                        late.push(row as u32);
                        continue;
                    }
                    match window.kind {
                        WindowKind::Fixed(spec) => {
                            starts.clear();
                            spec.starts(ts, &mut starts);
                            &starts
                        }
                        WindowKind::Session { .. } => {
                            session_rows
                                .entry(group_key.as_ref().to_vec())
                                .or_default()
                                .push((ts, row as u32));
                            continue;
                        }
                    }
                }
                _ => &[i64::MIN],
            };
            for start in windows {
                key.clear();
                match &self.spec.window {
                    Some(WindowBy {
                        kind: WindowKind::Fixed(spec),
                        ..
                    }) => {
                        state_key::push_window(&mut key, *start, start + spec.size_ms);
                        key.extend_from_slice(group_key.as_ref());
                    }
                    _ => state_key::push_unwindowed(&mut key, group_key.as_ref()),
                }
                let slot = groups.slot(&key);
                groups.pairs.push((row as u32, slot));
            }
        }
        if let Some(WindowBy {
            kind: WindowKind::Session { gap_ms },
            ..
        }) = self.spec.window
        {
            self.place_in_sessions(session_rows, gap_ms, &mut groups);
        }
        Ok(groups)
    }

    /// Session windows: each group's events of the batch, in time order, into its sessions.
    fn place_in_sessions(
        &mut self,
        session_rows: BTreeMap<Vec<u8>, Vec<(i64, u32)>>,
        gap_ms: i64,
        groups: &mut BatchGroups,
    ) {
        for (group_key, mut events) in session_rows {
            events.sort_unstable();
            self.assign_sessions(&group_key, &events, gap_ms, groups);
        }
    }
}
