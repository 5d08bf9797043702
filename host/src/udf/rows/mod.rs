//! The row interface (ABI v1.1): host functions through which a guest reads input values and appends output
//! values one at a time, while the host builds the Arrow arrays.
//!
//! It exists for languages with no Arrow library (C, Zig, AssemblyScript and most others): a guest that can
//! call an imported function can be a first-class UDF without an IPC reader or writer of its own. Values never
//! leave their Arrow arrays until asked for, and `out_copy` moves a value from input to output without
//! crossing into guest memory at all, so filters and pass-through columns cost one call per value.
//!
//! Every function checks its arguments (column, row, pointers, types) and fails the call with a message that
//! names the function and the problem; a failed call traps the guest, which is then discarded.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use wasmtime::Memory;
use weir_guest::abi::RowError;

use super::log::GuestLog;

mod imports;
mod values;
pub(crate) use imports::{add_to_linker, import_type};
use values::OutColumn;

type HostResult<T> = wasmtime::Result<T>;

/// The row interface's view of one instance: the current input, the output being built, and what the guest
/// declared or reported.
pub(crate) struct RowIo {
    /// The guest's memory, set once the instance exists.
    pub(crate) memory: Option<Memory>,
    config: serde_json::Map<String, serde_json::Value>,
    input_schema: SchemaRef,
    /// The batch being processed; `None` during init.
    input: Option<RecordBatch>,
    /// The schema the guest declared in init.
    pub(crate) declared: Option<SchemaRef>,
    /// The rows being appended.
    pub(crate) out: OutputRows,
    row_errors: Vec<RowError>,
    /// The message of the last `weir::error` call, for a status-1 return.
    pub(crate) error: Option<String>,
    log: GuestLog,
}

/// The output of a process call while the guest appends to it. Kept apart from the input so that a call
/// can read an input value and append it without copying either (`out_copy`).
pub(crate) struct OutputRows {
    columns: Vec<OutColumn>,
    /// Rows ended with `out_row`.
    rows_done: usize,
    /// Bytes appended, against `max_bytes` (`limits.max_output`).
    bytes: u64,
    max_bytes: u64,
    /// Set when the output passed `max_bytes`, so the trap can be reported as that limit.
    pub(crate) too_large: Option<u64>,
}

/// What each output row costs against `limits.max_output` besides its values. Rows are bounded through it:
/// an empty row still costs this much, so a call ends at most `max_output / ROW_BYTES` rows.
pub(crate) const ROW_BYTES: u64 = 8;

/// What a row error costs against `limits.max_output` besides its message: about what the host holds for
/// it (the index, the `String` and its allocation), so a guest reporting the same row forever stops at
/// the cap rather than at the host's memory.
const ROW_ERROR_BYTES: u64 = 64;

impl OutputRows {
    /// Output column `col` of the current row, which must not have a value yet, with the value's cost
    /// counted first: the column's slot (its fixed width, or an offset) and `payload` bytes of data.
    fn column(&mut self, function: &str, col: i32, payload: u64) -> HostResult<&mut OutColumn> {
        let (count, done) = (self.columns.len(), self.rows_done);
        let index = usize::try_from(col)
            .ok()
            .filter(|c| *c < count)
            .ok_or_else(|| {
                wasmtime::format_err!(
                    "weir::{function}: output column {col} does not exist (the declared schema has {count} columns)"
                )
            })?;
        if self.columns[index].len() > done {
            wasmtime::bail!(
                "weir::{function}: output column {col} already has a value in row {done}; end the row with weir::out_row first"
            );
        }
        self.count(self.columns[index].slot_bytes() + payload)?;
        Ok(&mut self.columns[index])
    }

    /// Ends the current row: the columns without a value get a null (each counted), and the row its cost.
    fn end_row(&mut self) -> HostResult<()> {
        let done = self.rows_done;
        let nulls: u64 = self
            .columns
            .iter()
            .filter(|c| c.len() == done)
            .map(OutColumn::slot_bytes)
            .sum();
        self.count(ROW_BYTES + nulls)?;
        for column in &mut self.columns {
            if column.len() == done {
                column.append_null();
            }
        }
        self.rows_done += 1;
        Ok(())
    }

    /// Counts `bytes` more of output; past `max_bytes` the call fails as over `limits.max_output`.
    fn count(&mut self, bytes: u64) -> HostResult<()> {
        self.bytes += bytes;
        if self.bytes > self.max_bytes {
            self.too_large = Some(self.bytes);
            wasmtime::bail!("output past limits.max_output");
        }
        Ok(())
    }
}

impl RowIo {
    pub(crate) fn new(log: GuestLog, max_output: u64) -> RowIo {
        RowIo {
            memory: None,
            config: serde_json::Map::new(),
            input_schema: Arc::new(arrow_schema::Schema::empty()),
            input: None,
            declared: None,
            out: OutputRows {
                columns: Vec::new(),
                rows_done: 0,
                bytes: 0,
                max_bytes: max_output,
                too_large: None,
            },
            row_errors: Vec::new(),
            error: None,
            log,
        }
    }

    /// Prepares an init call: the configuration (a JSON object) and the input schema.
    pub(crate) fn begin_init(&mut self, config: &str, input: &SchemaRef) -> Result<(), String> {
        self.config = match serde_json::from_str(config) {
            Ok(serde_json::Value::Object(map)) => map,
            Ok(other) => return Err(format!("the config must be a table, not {other}")),
            Err(e) => return Err(format!("the config is not JSON: {e}")),
        };
        self.input_schema = input.clone();
        self.declared = None;
        self.error = None;
        Ok(())
    }

    /// Prepares a process call on `batch`, with empty builders for the declared output schema.
    pub(crate) fn begin_process(&mut self, batch: &RecordBatch, output: &SchemaRef) {
        self.input = Some(batch.clone());
        self.out.columns = output
            .fields()
            .iter()
            .map(|f| OutColumn::new(f.data_type(), batch.num_rows()))
            .collect();
        self.out.rows_done = 0;
        self.out.bytes = 0;
        self.out.too_large = None;
        self.row_errors.clear();
        self.error = None;
    }

    /// Ends a successful process call: the rows appended, as a batch of `output`, and the row errors.
    pub(crate) fn finish_process(
        &mut self,
        output: &SchemaRef,
    ) -> Result<(RecordBatch, Vec<RowError>), String> {
        self.input = None;
        let columns = std::mem::take(&mut self.out.columns);
        if let Some(open) = columns.iter().position(|c| c.len() > self.out.rows_done) {
            return Err(format!(
                "column `{}` has a value for row {} but that row was never ended with weir::out_row",
                output.field(open).name(),
                self.out.rows_done
            ));
        }
        let arrays: Vec<ArrayRef> = columns.into_iter().map(OutColumn::finish).collect();
        let batch = RecordBatch::try_new(output.clone(), arrays)
            .map_err(|e| format!("building the output batch: {e}"))?;
        Ok((batch, std::mem::take(&mut self.row_errors)))
    }

    /// Drops the current input and partial output after a failed call.
    pub(crate) fn abandon(&mut self) {
        self.input = None;
        self.out.columns.clear();
    }
}
