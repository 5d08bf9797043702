//! Stream-stream joins: the pipeline's rows (the left stream) joined with a second Kafka topic's (the
//! right stream) as both arrive, Spark's symmetric hash join.
//!
//! Each stream's rows are held until the watermark rules out any further match for them. The condition
//! must equate a column of each stream and bound the right event time from the left one (`clickTime
//! BETWEEN impressionTime AND impressionTime + interval 1 hour`; `sql/join_condition.rs` reads the bounds):
//! an impression can then only meet clicks of the hour after it, and leaves the state once the watermark is
//! past that hour. Rows behind the watermark are dropped as late, as the aggregation drops them.
//!
//! A batch joins its new left rows with every held right row and its new right rows with the held left
//! rows (including this batch's), so each pair is found once, whichever stream brought it first. The whole
//! condition is evaluated on every pair whose keys are equal. An outer join emits a row that never matched,
//! with NULLs for the other stream, when it leaves the state. The held rows are checkpoint state (the
//! `stream-join` table), so a restart resumes with them.

mod buffer;
mod spec;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use anyhow::Context;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use arrow_select::take::take_record_batch;

pub use spec::{StreamJoinSpec, StreamJoinType};

use crate::progress::StateOperatorProgress;
use crate::sql::{read_join_condition, JoinCondition, Sides, SqlSpec, SqlStage};
use crate::state::StateTable;
use crate::window::event_times;
use buffer::{Arriving, Buffer};

/// The columns of each pair's rows in the held buffers, added for the condition's evaluation.
const PAIR_COLUMNS: [&str; 2] = ["__weir_left_row", "__weir_right_row"];

/// A planned stream-stream join, with the rows it holds.
pub struct StreamJoin {
    spec: StreamJoinSpec,
    condition: JoinCondition,
    /// The whole condition, over a candidate pair's columns and [`PAIR_COLUMNS`].
    filter: SqlStage,
    /// The candidate pairs' schema: both streams' columns and [`PAIR_COLUMNS`].
    pairs: SchemaRef,
    left: Stream,
    right: Stream,
    /// Join keys to bytes, in the left stream's key types (the right's are cast to them).
    key_codec: RowConverter,
    output: SchemaRef,
    table: StateTable,
}

/// What the join knows of one stream.
struct Stream {
    buffer: Buffer,
    time: usize,
    keys: Vec<usize>,
}

/// The rows a batch's watermark let go of.
struct Evicted {
    left_unmatched: RecordBatch,
    right_unmatched: RecordBatch,
    /// Their checkpoint keys.
    removals: Vec<Vec<u8>>,
}

/// What a batch of both streams produced.
pub struct Joined {
    /// The matched pairs, and the rows an outer join emits as they leave the state.
    pub rows: RecordBatch,
    /// The state counts.
    pub progress: StateOperatorProgress,
}

impl StreamJoin {
    /// Plans the join of `left` rows (event time in `left_time`) with the rows of `right`, and restores
    /// the rows held in `table`.
    pub fn plan(
        spec: &StreamJoinSpec,
        (left, left_time): (&SchemaRef, &str),
        right: &SchemaRef,
        table: StateTable,
    ) -> anyhow::Result<StreamJoin> {
        if let Some(both) = left
            .fields()
            .iter()
            .find(|f| right.field_with_name(f.name()).is_ok())
        {
            anyhow::bail!(
                "stream_join: column `{}` is in both streams; rename it in one (e.g. in the other stream's \
                 deserializer schema)",
                both.name()
            );
        }
        let sides = Sides {
            left,
            right,
            left_time,
            right_time: &spec.event_time,
        };
        let condition = read_join_condition(&spec.on, &sides)
            .map_err(|message| anyhow::anyhow!("`stream_join.on` = {:?}: {message}", spec.on))?;
        let index = |schema: &SchemaRef, name: &str| {
            schema.index_of(name).map_err(|_| {
                anyhow::anyhow!("stream_join: `{name}` is not a column of its stream's rows")
            })
        };
        let left_keys = condition
            .keys
            .iter()
            .map(|(l, _)| index(left, l))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let right_keys = condition
            .keys
            .iter()
            .map(|(_, r)| index(right, r))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let key_types = left_keys
            .iter()
            .map(|&i| SortField::new(left.field(i).data_type().clone()))
            .collect();
        let mut pair_fields: Vec<Field> = left
            .fields()
            .iter()
            .chain(right.fields())
            .map(|f| f.as_ref().clone())
            .collect();
        pair_fields.extend(PAIR_COLUMNS.map(|name| Field::new(name, DataType::UInt32, false)));
        let pairs = Arc::new(Schema::new(pair_fields));
        let filter = SqlStage::plan(&SqlSpec::filter(&spec.on), "stream_join", &pairs)?;
        let mut join = StreamJoin {
            output: output_schema(left, right, spec.how),
            left: Stream {
                buffer: Buffer::new(0, left)?,
                time: index(left, left_time)?,
                keys: left_keys,
            },
            right: Stream {
                buffer: Buffer::new(1, right)?,
                time: index(right, &spec.event_time)?,
                keys: right_keys,
            },
            key_codec: RowConverter::new(key_types)
                .context("stream_join: the key columns' types")?,
            spec: spec.clone(),
            condition,
            filter,
            pairs,
            table,
        };
        join.restore()?;
        Ok(join)
    }

    /// The joined rows' schema: the left stream's columns, then the right's.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// The spec it was planned from.
    pub fn spec(&self) -> &StreamJoinSpec {
        &self.spec
    }

    /// Joins a batch of each stream: rows behind `watermark_before` are dropped as late, the others
    /// matched and held, and what `watermark_after` rules out leaves the state.
    pub fn process(
        &mut self,
        left: &RecordBatch,
        right: &RecordBatch,
        (watermark_before, watermark_after): (Option<i64>, Option<i64>),
    ) -> anyhow::Result<Joined> {
        let (left, left_late) = self.arriving(false, left, watermark_before)?;
        let (right, right_late) = self.arriving(true, right, watermark_before)?;
        let new_rows = (left.times.len() + right.times.len()) as u64;
        let left_start = self.left.buffer.append(left)?;
        let right_start = self.right.buffer.append(right)?;
        let (l, r) = (&self.left.buffer.keys, &self.right.buffer.keys);
        let mut pairs = equal_keys((l, 0), r, right_start..r.len());
        pairs.extend(equal_keys((l, left_start), r, 0..right_start));
        let (matched, rows) = self.matching(&pairs)?;
        let changes = self.record_matches(&matched, (left_start, right_start))?;
        let evicted = self.evict(watermark_after)?;
        let removed = evicted.removals.len() as u64;
        self.table.apply(changes, evicted.removals)?;
        let rows = self.with_unmatched(rows, evicted.left_unmatched, evicted.right_unmatched)?;
        Ok(Joined {
            rows,
            progress: StateOperatorProgress {
                operator_name: "symmetricHashJoin".into(),
                num_rows_total: (self.left.buffer.len() + self.right.buffer.len()) as u64,
                num_rows_updated: new_rows,
                num_rows_removed: removed,
                num_rows_dropped_by_watermark: left_late + right_late,
                memory_used_bytes: self.left.buffer.memory_bytes()
                    + self.right.buffer.memory_bytes(),
                state_on_disk_bytes: self.table.size_on_disk(),
                num_dropped_duplicate_rows: None,
            },
        })
    }

    /// Lets go of the rows `watermark` rules out: a left row at `t` once no right row at or after the
    /// watermark can be within the range of it (`t + upper < watermark`), a right row at `c` once no left
    /// row can (`c - lower < watermark`). Returns those of each stream that never matched, and the
    /// checkpoint keys to remove.
    fn evict(&mut self, watermark: Option<i64>) -> anyhow::Result<Evicted> {
        let (lower, upper) = (self.condition.lower_ms, self.condition.upper_ms);
        let past = |t: i64| watermark.is_some_and(|w| t < w);
        let (left, mut removals) = self.left.buffer.evict(|t| past(t.saturating_add(upper)))?;
        let (right, right_removals) = self.right.buffer.evict(|c| past(c.saturating_sub(lower)))?;
        removals.extend(right_removals);
        Ok(Evicted {
            left_unmatched: left,
            right_unmatched: right,
            removals,
        })
    }

    /// A stream's new rows not behind the watermark, with their event times and keys; and how many were
    /// late (or had no event time).
    fn arriving(
        &self,
        right: bool,
        rows: &RecordBatch,
        watermark: Option<i64>,
    ) -> anyhow::Result<(Arriving, u64)> {
        let stream = if right { &self.right } else { &self.left };
        let on_time: Vec<Option<i64>> = event_times(rows.column(stream.time))?
            .into_iter()
            .map(|t| t.filter(|&t| watermark.is_none_or(|w| t >= w)))
            .collect();
        let keep: BooleanArray = on_time.iter().map(|t| Some(t.is_some())).collect();
        let late = (keep.len() - keep.true_count()) as u64;
        let rows = arrow_select::filter::filter_record_batch(rows, &keep)?;
        let keys = self.encode_keys(&rows, right)?;
        let times = on_time.into_iter().flatten().collect();
        Ok((Arriving { rows, times, keys }, late))
    }

    /// Each row's key as bytes in the left stream's key types; `None` where part of it is NULL.
    fn encode_keys(
        &self,
        rows: &RecordBatch,
        right: bool,
    ) -> anyhow::Result<Vec<Option<Box<[u8]>>>> {
        let stream = if right { &self.right } else { &self.left };
        let columns = stream
            .keys
            .iter()
            .zip(&self.left.keys)
            .map(|(&i, &l)| {
                let target = self.left.buffer.rows.schema().field(l).data_type().clone();
                arrow_cast::cast(rows.column(i), &target)
                    .context("stream_join: casting a key column")
            })
            .collect::<anyhow::Result<Vec<ArrayRef>>>()?;
        let encoded = self.key_codec.convert_columns(&columns)?;
        Ok((0..rows.num_rows())
            .map(|row| {
                let complete = columns.iter().all(|c| c.is_valid(row));
                complete.then(|| encoded.row(row).as_ref().into())
            })
            .collect())
    }

    /// The pairs that meet the whole condition, and their joined rows.
    fn matching(&self, pairs: &[(u32, u32)]) -> anyhow::Result<(Vec<(u32, u32)>, RecordBatch)> {
        if pairs.is_empty() {
            return Ok((Vec::new(), RecordBatch::new_empty(self.output.clone())));
        }
        let lefts = UInt32Array::from_iter_values(pairs.iter().map(|p| p.0));
        let rights = UInt32Array::from_iter_values(pairs.iter().map(|p| p.1));
        let left = take_record_batch(&self.left.buffer.rows, &lefts)?;
        let right = take_record_batch(&self.right.buffer.rows, &rights)?;
        let mut columns: Vec<ArrayRef> = left
            .columns()
            .iter()
            .chain(right.columns())
            .cloned()
            .collect();
        columns.extend([Arc::new(lefts) as ArrayRef, Arc::new(rights)]);
        let candidates = RecordBatch::try_new(self.pairs.clone(), columns)?;
        let kept = self.filter.process(&candidates)?;
        let width = kept.num_columns() - 2;
        let index = |i: usize| {
            kept.column(i)
                .as_any()
                .downcast_ref::<UInt32Array>()
                .expect("pair column")
                .clone()
        };
        let (l, r) = (index(width), index(width + 1));
        let matched = l
            .values()
            .iter()
            .copied()
            .zip(r.values().iter().copied())
            .collect();
        let rows = RecordBatch::try_new(self.output.clone(), kept.columns()[..width].to_vec())?;
        Ok((matched, rows))
    }

    /// Marks the matched rows; returns the checkpoint entries to write: every new row, and the held rows
    /// that matched for the first time.
    fn record_matches(
        &mut self,
        matched: &[(u32, u32)],
        (left_start, right_start): (usize, usize),
    ) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut first_matches = (BTreeSet::new(), BTreeSet::new());
        for &(l, r) in matched {
            let (l, r) = (l as usize, r as usize);
            if !std::mem::replace(&mut self.left.buffer.matched[l], true) && l < left_start {
                first_matches.0.insert(l);
            }
            if !std::mem::replace(&mut self.right.buffer.matched[r], true) && r < right_start {
                first_matches.1.insert(r);
            }
        }
        if !self.table.is_stored() {
            return Ok(Vec::new());
        }
        let left: Vec<usize> = first_matches
            .0
            .into_iter()
            .chain(left_start..self.left.buffer.len())
            .collect();
        let right: Vec<usize> = first_matches
            .1
            .into_iter()
            .chain(right_start..self.right.buffer.len())
            .collect();
        let mut entries = self.left.buffer.entries(&left)?;
        entries.extend(self.right.buffer.entries(&right)?);
        Ok(entries)
    }

    /// `rows`, then, in an outer join, the rows of its outer stream that leave the state unmatched, with
    /// NULLs for the other stream's columns.
    fn with_unmatched(
        &self,
        rows: RecordBatch,
        left: RecordBatch,
        right: RecordBatch,
    ) -> anyhow::Result<RecordBatch> {
        let (kept, left_nulls) = match self.spec.how {
            StreamJoinType::Inner => return Ok(rows),
            StreamJoinType::LeftOuter => (left, false),
            StreamJoinType::RightOuter => (right, true),
        };
        if kept.num_rows() == 0 {
            return Ok(rows);
        }
        let n = kept.num_rows();
        let left_width = self.left.buffer.rows.num_columns();
        let columns: Vec<ArrayRef> = self
            .output
            .fields()
            .iter()
            .enumerate()
            .map(|(i, field)| match (i < left_width, left_nulls) {
                (true, false) => kept.column(i).clone(),
                (false, true) => kept.column(i - left_width).clone(),
                _ => arrow_array::new_null_array(field.data_type(), n),
            })
            .collect();
        let unmatched = RecordBatch::try_new(self.output.clone(), columns)?;
        Ok(arrow_select::concat::concat_batches(
            &self.output,
            [&rows, &unmatched],
        )?)
    }

    /// The rows held when the checkpoint was last committed.
    fn restore(&mut self) -> anyhow::Result<()> {
        let entries = self.table.entries()?;
        let (left, right): (Vec<_>, Vec<_>) = entries
            .into_iter()
            .partition(|(key, _)| key.first() == Some(&0));
        self.left.buffer.restore(&left)?;
        self.right.buffer.restore(&right)?;
        self.left.buffer.keys = self.encode_keys(&self.left.buffer.rows, false)?;
        self.right.buffer.keys = self.encode_keys(&self.right.buffer.rows, true)?;
        if !left.is_empty() || !right.is_empty() {
            tracing::info!(
                left = left.len(),
                right = right.len(),
                "stream join state restored from the checkpoint"
            );
        }
        Ok(())
    }
}

/// The pairs of rows with equal keys: left rows from `from` on, right rows in `range`.
fn equal_keys(
    (left, from): (&[Option<Box<[u8]>>], usize),
    right: &[Option<Box<[u8]>>],
    range: std::ops::Range<usize>,
) -> Vec<(u32, u32)> {
    let mut index: HashMap<&[u8], Vec<u32>> = HashMap::new();
    for i in range {
        if let Some(key) = &right[i] {
            index.entry(key).or_default().push(i as u32);
        }
    }
    let mut pairs = Vec::new();
    for (l, key) in left.iter().enumerate().skip(from) {
        if let Some(rights) = key.as_deref().and_then(|k| index.get(k)) {
            pairs.extend(rights.iter().map(|&r| (l as u32, r)));
        }
    }
    pairs
}

/// The left stream's columns then the right's; an outer join's other stream may be NULL.
fn output_schema(left: &SchemaRef, right: &SchemaRef, how: StreamJoinType) -> SchemaRef {
    let nullable = |field: &Arc<Field>, outer_other: bool| {
        let field = field.as_ref().clone();
        if outer_other {
            field.with_nullable(true)
        } else {
            field
        }
    };
    let fields: Vec<Field> = left
        .fields()
        .iter()
        .map(|f| nullable(f, how == StreamJoinType::RightOuter))
        .chain(
            right
                .fields()
                .iter()
                .map(|f| nullable(f, how == StreamJoinType::LeftOuter)),
        )
        .collect();
    Arc::new(Schema::new(fields))
}

#[cfg(test)]
mod tests;
