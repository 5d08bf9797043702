//! Stateful aggregation: `groupBy(keys[, window]).agg(...)` with Spark's output modes.
//!
//! Each batch is folded into per-group accumulators (see [`accumulator`]) kept in memory for the open
//! groups and written to sled once per batch. Which rows come out depends on the output mode:
//! - **append**: a window's row, once, when the watermark passes the window's end; then it is evicted;
//! - **update**: the rows a batch changed; windows are evicted once the watermark passes them;
//! - **complete**: every row, every batch; nothing is evicted.

mod accumulator;
mod grouping;
mod scalar;
mod sessions;
mod spec;
mod state_key;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Context;
use arrow_array::{ArrayRef, Int64Array, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

pub use accumulator::Function;
pub(crate) use accumulator::{Accumulator, Aggregate, ValueKind};
pub use spec::{AggregateExpr, AggregateSpec, OutputMode, WindowBy, WindowKind};

use grouping::BatchGroups;

use crate::progress::StateOperatorProgress;
use crate::state::StateTable;

struct Group {
    accumulators: Vec<Accumulator>,
    /// (start, end) of the window, when windowed.
    window: Option<(i64, i64)>,
}

/// The aggregation operator.
pub struct Aggregator {
    spec: AggregateSpec,
    keys: RowConverter,
    key_columns: Vec<usize>,
    time_column: Option<usize>,
    time_is_timestamp: Option<DataType>,
    aggregates: Vec<Aggregate>,
    output: SchemaRef,
    /// Open groups by state key: window end and start (big-endian, sign flipped) then the group key, so
    /// windows sort by end and eviction is a range; without a window, a bucket byte then the group key.
    groups: BTreeMap<Vec<u8>, Group>,
    /// Keys changed by the current batch.
    dirty: BTreeSet<Vec<u8>>,
    /// Session windows: each group's open sessions, as (start, end).
    sessions: BTreeMap<Vec<u8>, BTreeSet<(i64, i64)>>,
    /// Keys of sessions merged into others during the current batch (their sled entries change too).
    removed_keys: Vec<Vec<u8>>,
    table: StateTable,
    progress: StateOperatorProgress,
}

impl Aggregator {
    /// Plans the aggregation over batches of `input`, with its state in `table`. Checks Spark's rules on
    /// output modes: append needs a window and a watermark.
    pub fn new(
        spec: AggregateSpec,
        input: &SchemaRef,
        watermark: bool,
        table: StateTable,
    ) -> anyhow::Result<Aggregator> {
        spec.check_output_mode(watermark)
            .map_err(anyhow::Error::msg)?;
        let key_columns = spec
            .group_by
            .iter()
            .map(|c| column_index(input, c, "group_by column"))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let fields: Vec<SortField> = key_columns
            .iter()
            .map(|i| SortField::new(input.field(*i).data_type().clone()))
            .collect();
        let keys = RowConverter::new(fields).context("grouping by these column types")?;
        let (time_column, time_is_timestamp) = match &spec.window {
            None => (None, None),
            Some(window) => time_column(window, input)?,
        };
        let aggregates = spec
            .aggregates
            .iter()
            .map(|expr| plan_aggregate(expr, input))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut fields: Vec<Field> = key_columns
            .iter()
            .map(|i| input.field(*i).clone())
            .collect();
        if let Some(window) = &spec.window {
            let data_type = input
                .field(input.index_of(&window.column)?)
                .data_type()
                .clone();
            fields.push(Field::new("window_start", data_type.clone(), false));
            fields.push(Field::new("window_end", data_type, false));
        }
        fields.extend(aggregates.iter().map(Aggregate::field));
        let output = Arc::new(Schema::new(fields));
        Ok(Aggregator {
            spec,
            keys,
            key_columns,
            time_column,
            time_is_timestamp,
            aggregates,
            output,
            groups: BTreeMap::new(),
            dirty: BTreeSet::new(),
            sessions: BTreeMap::new(),
            removed_keys: Vec::new(),
            table,
            progress: StateOperatorProgress::default(),
        })
    }

    /// The schema of emitted rows: group columns, `window_start`/`window_end`, then the aggregates.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// The output mode.
    pub fn output_mode(&self) -> OutputMode {
        self.spec.output_mode
    }

    /// Folds a batch into the state. Rows whose event time is at or below `watermark` are late: dropped
    /// and counted, as in Spark; their indexes are returned so they can be sent elsewhere.
    pub fn update(
        &mut self,
        batch: &RecordBatch,
        watermark: Option<i64>,
    ) -> anyhow::Result<Vec<u32>> {
        let mut late = Vec::new();
        if batch.num_rows() == 0 {
            return Ok(late);
        }
        let groups = self.group_rows(batch, watermark, &mut late)?;
        self.fold(batch, groups)?;
        Ok(late)
    }

    /// Folds each aggregate over the batch's rows into the groups they touch: the touched groups are taken
    /// out as one column of accumulators per aggregate, updated a column at a time, and put back.
    fn fold(&mut self, batch: &RecordBatch, groups: BatchGroups) -> anyhow::Result<()> {
        let BatchGroups {
            pairs,
            keys: batch_keys,
            ..
        } = groups;
        let windowed = self.spec.window.is_some();
        let mut columns: Vec<Vec<Accumulator>> = self
            .aggregates
            .iter()
            .map(|_| Vec::with_capacity(batch_keys.len()))
            .collect();
        let mut windows = Vec::with_capacity(batch_keys.len());
        for key in &batch_keys {
            let group = self.groups.remove(key).unwrap_or_else(|| Group {
                accumulators: self.aggregates.iter().map(Aggregate::start).collect(),
                window: windowed.then(|| state_key::window(key)),
            });
            windows.push(group.window);
            for (column, accumulator) in columns.iter_mut().zip(group.accumulators) {
                column.push(accumulator);
            }
        }
        for (aggregate, accumulators) in self.aggregates.iter().zip(columns.iter_mut()) {
            let input = aggregate
                .column
                .map(|c| widen(batch.column(c), aggregate.kind))
                .transpose()?;
            aggregate.update(input.as_ref(), &pairs, accumulators);
        }
        let mut columns: Vec<_> = columns.into_iter().map(Vec::into_iter).collect();
        for (key, window) in batch_keys.iter().zip(windows) {
            let accumulators = columns
                .iter_mut()
                .map(|c| c.next().expect("one per group"))
                .collect();
            self.groups.insert(
                key.clone(),
                Group {
                    accumulators,
                    window,
                },
            );
        }
        self.progress.num_rows_updated += batch_keys.len() as u64;
        self.dirty.extend(batch_keys);
        Ok(())
    }

    /// Ends a batch: emits the rows the output mode calls for at `watermark`, evicts what the watermark
    /// closed, writes the batch's state changes to sled, and returns the rows and the state counts.
    pub fn finish_batch(
        &mut self,
        watermark: Option<i64>,
    ) -> anyhow::Result<(RecordBatch, StateOperatorProgress)> {
        let closed: Vec<Vec<u8>> = match (watermark, &self.spec.window, self.spec.output_mode) {
            (Some(w), Some(_), OutputMode::Append | OutputMode::Update) => {
                // Window end ≤ watermark: keys start with the window's end, so this is a range.
                self.groups
                    .range(..state_key::ending_after(w))
                    .map(|(k, _)| k.clone())
                    .collect()
            }
            _ => Vec::new(),
        };
        let emit: Vec<Vec<u8>> = match self.spec.output_mode {
            OutputMode::Append => closed.clone(),
            OutputMode::Update => self.dirty.iter().cloned().collect(),
            OutputMode::Complete => self.groups.keys().cloned().collect(),
        };
        let rows = self.rows(&emit)?;
        for key in &closed {
            self.groups.remove(key);
            self.forget_session(key);
        }
        if self.table.is_stored() {
            self.store_changes(&closed)?;
        }
        self.removed_keys.clear();
        self.dirty.clear();
        let mut progress = std::mem::take(&mut self.progress);
        progress.operator_name = "aggregate".into();
        progress.num_rows_removed = closed.len() as u64;
        progress.num_rows_total = self.groups.len() as u64;
        progress.memory_used_bytes = self
            .groups
            .keys()
            .map(|k| k.len() as u64 + 64 * self.aggregates.len() as u64)
            .sum();
        progress.state_on_disk_bytes = self.table.size_on_disk();
        Ok((rows, progress))
    }

    /// Writes what the batch changed to the state table. sled holds one entry per window (per bucket of
    /// groups without a window): few keys. Every entry the batch touched is rewritten from the groups still
    /// open in it, or removed when none are left.
    fn store_changes(&self, closed: &[Vec<u8>]) -> anyhow::Result<()> {
        let prefix = self.blob_prefix_len();
        let touched: BTreeSet<Vec<u8>> = self
            .dirty
            .iter()
            .chain(closed)
            .chain(&self.removed_keys)
            .map(|k| k[..prefix].to_vec())
            .collect();
        let (mut upserts, mut removals) = (Vec::new(), Vec::new());
        for blob in touched {
            let groups: Vec<(&[u8], &Vec<Accumulator>)> = self
                .groups
                .range(blob.clone()..)
                .take_while(|(k, _)| k.starts_with(&blob))
                .map(|(k, g)| (&k[prefix..], &g.accumulators))
                .collect();
            if groups.is_empty() {
                removals.push(blob);
            } else {
                upserts.push((blob, serde_json::to_vec(&groups).context("encoding state")?));
            }
        }
        self.table.apply(upserts, removals)
    }

    /// Loads the open groups from the state table, as a checkpoint left them; returns how many there are.
    pub fn restore(&mut self) -> anyhow::Result<usize> {
        let entries = self.table.entries()?;
        self.restore_entries(entries)
    }

    /// Loads the open groups from `entries` of the state table (a changelog's, say); returns how many
    /// there are.
    pub fn restore_entries(
        &mut self,
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> anyhow::Result<usize> {
        let prefix = self.blob_prefix_len();
        let windowed = self.spec.window.is_some();
        let sessions = matches!(
            self.spec.window,
            Some(WindowBy {
                kind: WindowKind::Session { .. },
                ..
            })
        );
        for (blob, value) in entries {
            let groups: Vec<(Vec<u8>, Vec<Accumulator>)> =
                serde_json::from_slice(&value).context("decoding the aggregation's saved state")?;
            for (suffix, accumulators) in groups {
                let mut key = blob[..prefix.min(blob.len())].to_vec();
                key.extend_from_slice(&suffix);
                let window = windowed.then(|| state_key::window(&key));
                if let (true, Some(window)) = (sessions, window) {
                    self.sessions
                        .entry(state_key::windowed_group(&key).to_vec())
                        .or_default()
                        .insert(window);
                }
                self.groups.insert(
                    key,
                    Group {
                        accumulators,
                        window,
                    },
                );
            }
        }
        Ok(self.groups.len())
    }

    /// Bytes of a state key that name its sled entry: the window (end, start), or the bucket.
    fn blob_prefix_len(&self) -> usize {
        if self.spec.window.is_some() {
            state_key::WINDOW_LEN
        } else {
            state_key::BUCKET_LEN
        }
    }

    /// Output rows for the given state keys.
    fn rows(&self, keys: &[Vec<u8>]) -> anyhow::Result<RecordBatch> {
        let parser = self.keys.parser();
        let skip = self.blob_prefix_len();
        let parsed: Vec<_> = keys.iter().map(|k| parser.parse(&k[skip..])).collect();
        let mut columns = self
            .keys
            .convert_rows(parsed)
            .context("decoding group keys")?;
        if self.spec.window.is_some() {
            let (starts, ends): (Vec<i64>, Vec<i64>) = keys
                .iter()
                .map(|k| self.groups[k].window.unwrap_or_default())
                .unzip();
            for values in [starts, ends] {
                let array: ArrayRef = Arc::new(Int64Array::from(values));
                columns.push(match &self.time_is_timestamp {
                    None => array,
                    Some(data_type) => from_millis(&array, data_type)?,
                });
            }
        }
        for (i, aggregate) in self.aggregates.iter().enumerate() {
            columns.push(aggregate.finish(keys.iter().map(|k| &self.groups[k].accumulators[i])));
        }
        RecordBatch::try_new(self.output.clone(), columns)
            .context("building the aggregation's output")
    }
}

/// The index of `window`'s event-time column in `input`, and its type when it is a timestamp (the output
/// gives window bounds in the same type); checks the window's sizes.
fn time_column(
    window: &WindowBy,
    input: &SchemaRef,
) -> anyhow::Result<(Option<usize>, Option<DataType>)> {
    match window.kind {
        WindowKind::Fixed(spec) => spec.validate().map_err(anyhow::Error::msg)?,
        WindowKind::Session { gap_ms } if gap_ms <= 0 => {
            anyhow::bail!("the session gap must be more than zero")
        }
        WindowKind::Session { .. } => {}
    }
    let i = column_index(input, &window.column, "window column")?;
    let data_type = input.field(i).data_type().clone();
    match &data_type {
        DataType::Int64 => Ok((Some(i), None)),
        DataType::Timestamp(_, _) => Ok((Some(i), Some(data_type))),
        other => anyhow::bail!(
            "window column `{}` is {other}; expected Int64 milliseconds or a timestamp",
            window.column
        ),
    }
}

/// `expr` over `input`: its column found and its value kind checked against the function.
fn plan_aggregate(expr: &AggregateExpr, input: &SchemaRef) -> anyhow::Result<Aggregate> {
    let column = expr
        .column
        .as_deref()
        .map(|c| column_index(input, c, "aggregate column"))
        .transpose()?;
    let kind = match column {
        None => None,
        Some(i) => Some(ValueKind::of(input.field(i).data_type()).ok_or_else(|| {
            anyhow::anyhow!(
                "aggregate `{}` reads column `{}` of type {}, which it cannot aggregate",
                expr.alias,
                input.field(i).name(),
                input.field(i).data_type()
            )
        })?),
    };
    let aggregate = Aggregate {
        function: expr.function,
        column,
        kind,
        name: expr.alias.clone(),
        max_items: expr.max_items,
    };
    aggregate.check().map_err(anyhow::Error::msg)?;
    Ok(aggregate)
}

/// The index of column `name` (a `what`) in `input`, or an error listing the columns there are.
fn column_index(input: &SchemaRef, name: &str, what: &str) -> anyhow::Result<usize> {
    input.index_of(name).map_err(|_| {
        anyhow::anyhow!(
            "{what} `{name}` is not a column of the rows reaching the aggregation ({})",
            names(input)
        )
    })
}

fn names(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn from_millis(array: &ArrayRef, data_type: &DataType) -> anyhow::Result<ArrayRef> {
    let DataType::Timestamp(unit, tz) = data_type else {
        return Ok(array.clone());
    };
    let millis = arrow_cast::cast(
        array,
        &DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, tz.clone()),
    )?;
    let _ = unit;
    Ok(arrow_cast::cast(&millis, data_type)?)
}

/// The input column as the aggregate's widened kind.
fn widen(column: &ArrayRef, kind: Option<ValueKind>) -> anyhow::Result<ArrayRef> {
    let target = match kind {
        Some(ValueKind::Int) => DataType::Int64,
        Some(ValueKind::Float) => DataType::Float64,
        Some(ValueKind::Str) => DataType::Utf8,
        None => return Ok(column.clone()),
    };
    if column.data_type() == &target {
        return Ok(column.clone());
    }
    arrow_cast::cast(column, &target).context("widening an aggregate's input")
}

#[cfg(test)]
mod tests;
