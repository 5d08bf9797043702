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

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use wasmtime::{Caller, Engine, FuncType, Linker, Memory, ValType};
use weir_guest::abi::{rows::IMPORT_MODULE, RowError};

use super::instance::GuestState;
use super::log::GuestLog;
use crate::schema::{format_ddl_schema, parse_ddl_schema};

mod values;
use values::{read_value, OutColumn, Value};

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

/// Input column `col`, checking that it and `row` exist in the current batch.
fn input_column<'a>(
    input: &'a Option<RecordBatch>,
    function: &str,
    col: i32,
    row: i32,
) -> HostResult<&'a ArrayRef> {
    let batch = input.as_ref().ok_or_else(|| {
        wasmtime::format_err!("weir::{function}: there is no input batch during init")
    })?;
    let array = usize::try_from(col)
        .ok()
        .and_then(|c| batch.columns().get(c))
        .ok_or_else(|| {
            wasmtime::format_err!(
                "weir::{function}: column {col} does not exist (the input has {} columns)",
                batch.num_columns()
            )
        })?;
    if row < 0 || row as usize >= batch.num_rows() {
        wasmtime::bail!(
            "weir::{function}: row {row} does not exist (the batch has {} rows)",
            batch.num_rows()
        );
    }
    Ok(array)
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

/// Every function of the row interface with its signature, for the load-time check and for the docs.
pub(crate) const IMPORTS: &[(&str, &[ValType], &[ValType])] = {
    use ValType::{F64, I32, I64};
    &[
        ("config_get", &[I32, I32, I32, I32], &[I32]),
        ("in_schema", &[I32, I32], &[I32]),
        ("output_schema", &[I32, I32], &[]),
        ("error", &[I32, I32], &[]),
        ("log", &[I32, I32], &[]),
        ("in_column", &[I32, I32], &[I32]),
        ("in_is_null", &[I32, I32], &[I32]),
        ("in_i64", &[I32, I32], &[I64]),
        ("in_f64", &[I32, I32], &[F64]),
        ("in_bytes", &[I32, I32, I32, I32], &[I32]),
        ("out_null", &[I32], &[]),
        ("out_i64", &[I32, I64], &[]),
        ("out_f64", &[I32, F64], &[]),
        ("out_bytes", &[I32, I32, I32], &[]),
        ("out_copy", &[I32, I32, I32], &[]),
        ("out_row", &[], &[]),
        ("row_error", &[I32, I32, I32], &[]),
    ]
};

/// The signature of the row-interface import `name`, if there is one.
pub(crate) fn import_type(engine: &Engine, name: &str) -> Option<FuncType> {
    IMPORTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, params, results)| {
            FuncType::new(engine, params.iter().cloned(), results.iter().cloned())
        })
}

/// The guest's memory and the row state, borrowed together.
fn memory_and_rows<'a>(
    caller: &'a mut Caller<'_, GuestState>,
) -> HostResult<(&'a mut [u8], &'a mut RowIo)> {
    let memory = caller.data().rows.memory.ok_or_else(|| {
        wasmtime::format_err!("the row interface was called before the instance had a memory")
    })?;
    let (data, state) = memory.data_and_store_mut(caller);
    Ok((data, &mut state.rows))
}

fn guest_slice(
    function: &str,
    data: &[u8],
    ptr: i32,
    len: i32,
) -> HostResult<std::ops::Range<usize>> {
    let (start, len) = (ptr as u32 as usize, len as u32 as usize);
    if start.checked_add(len).is_none_or(|end| end > data.len()) {
        wasmtime::bail!(
            "weir::{function}: {len} bytes at {start} lie outside the guest's {} bytes of memory",
            data.len()
        );
    }
    Ok(start..start + len)
}

fn guest_str<'a>(function: &str, data: &'a [u8], ptr: i32, len: i32) -> HostResult<&'a str> {
    let range = guest_slice(function, data, ptr, len)?;
    std::str::from_utf8(&data[range])
        .map_err(|e| wasmtime::format_err!("weir::{function}: the text is not UTF-8: {e}"))
}

/// Copies `value` to `dst` in guest memory when it fits in `cap` bytes; returns its length either way.
fn copy_out(function: &str, data: &mut [u8], value: &[u8], dst: i32, cap: i32) -> HostResult<i32> {
    let len = i32::try_from(value.len())
        .map_err(|_| wasmtime::format_err!("weir::{function}: the value is over 2 GiB"))?;
    if len <= cap {
        let range = guest_slice(function, data, dst, len)?;
        data[range].copy_from_slice(value);
    }
    Ok(len)
}

/// Adds the row interface's functions to the linker, under the `weir` import module.
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    let m = IMPORT_MODULE;
    linker.func_wrap(
        m,
        "config_get",
        |mut caller: Caller<'_, GuestState>,
         key: i32,
         key_len: i32,
         dst: i32,
         cap: i32|
         -> HostResult<i32> {
            let (data, rows) = memory_and_rows(&mut caller)?;
            let key = guest_str("config_get", data, key, key_len)?.to_string();
            let text = match rows.config.get(&key) {
                None | Some(serde_json::Value::Null) => return Ok(-1),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            copy_out("config_get", data, text.as_bytes(), dst, cap)
        },
    )?;
    linker.func_wrap(
        m,
        "in_schema",
        |mut caller: Caller<'_, GuestState>, dst: i32, cap: i32| -> HostResult<i32> {
            let (data, rows) = memory_and_rows(&mut caller)?;
            let ddl = format_ddl_schema(&rows.input_schema);
            copy_out("in_schema", data, ddl.as_bytes(), dst, cap)
        },
    )?;
    linker.func_wrap(
        m,
        "output_schema",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> HostResult<()> {
            let (data, rows) = memory_and_rows(&mut caller)?;
            if rows.input.is_some() {
                wasmtime::bail!(
                    "weir::output_schema: the output schema can only be declared in weir_init_rows"
                );
            }
            let ddl = guest_str("output_schema", data, ptr, len)?;
            let schema = parse_ddl_schema(ddl)
                .map_err(|e| wasmtime::format_err!("weir::output_schema: {e}"))?;
            rows.declared = Some(schema);
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "error",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> HostResult<()> {
            let (data, rows) = memory_and_rows(&mut caller)?;
            let range = guest_slice("error", data, ptr, len)?;
            rows.error = Some(String::from_utf8_lossy(&data[range]).into_owned());
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "log",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> HostResult<()> {
            let (data, rows) = memory_and_rows(&mut caller)?;
            let range = guest_slice("log", data, ptr, len)?;
            rows.log.append(&data[range]);
            rows.log.append(b"\n");
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "in_column",
        |mut caller: Caller<'_, GuestState>, ptr: i32, len: i32| -> HostResult<i32> {
            let (data, rows) = memory_and_rows(&mut caller)?;
            let name = guest_str("in_column", data, ptr, len)?;
            Ok(rows.input_schema.index_of(name).map_or(-1, |i| i as i32))
        },
    )?;
    linker.func_wrap(
        m,
        "in_is_null",
        |caller: Caller<'_, GuestState>, col: i32, row: i32| -> HostResult<i32> {
            let array = input_column(&caller.data().rows.input, "in_is_null", col, row)?;
            Ok(i32::from(array.is_null(row as usize)))
        },
    )?;
    linker.func_wrap(m, "in_i64", |caller: Caller<'_, GuestState>, col: i32, row: i32| -> HostResult<i64> {
        let array = input_column(&caller.data().rows.input, "in_i64", col, row)?;
        match read_value(array, row as usize) {
            Ok(Value::Null) => Ok(0),
            Ok(Value::Int(v)) => Ok(v),
            Ok(_) => wasmtime::bail!("weir::in_i64: input column {col} is {}, not an integer type (use in_f64 or in_bytes)", array.data_type()),
            Err(e) => wasmtime::bail!("weir::in_i64: input column {col}: {e}"),
        }
    })?;
    linker.func_wrap(
        m,
        "in_f64",
        |caller: Caller<'_, GuestState>, col: i32, row: i32| -> HostResult<f64> {
            let array = input_column(&caller.data().rows.input, "in_f64", col, row)?;
            match read_value(array, row as usize) {
                Ok(Value::Null) => Ok(0.0),
                Ok(Value::Float(v)) => Ok(v),
                Ok(Value::Int(v)) => Ok(v as f64),
                Ok(Value::Bytes(_)) => wasmtime::bail!(
                    "weir::in_f64: input column {col} is {}, not a number (use in_bytes)",
                    array.data_type()
                ),
                Err(e) => wasmtime::bail!("weir::in_f64: input column {col}: {e}"),
            }
        },
    )?;
    linker.func_wrap(m, "in_bytes", |mut caller: Caller<'_, GuestState>, col: i32, row: i32, dst: i32, cap: i32| -> HostResult<i32> {
        let (data, rows) = memory_and_rows(&mut caller)?;
        let array = input_column(&rows.input, "in_bytes", col, row)?;
        match read_value(array, row as usize) {
            Ok(Value::Null) => Ok(-1),
            Ok(Value::Bytes(v)) => copy_out("in_bytes", data, v, dst, cap),
            Ok(_) => wasmtime::bail!("weir::in_bytes: input column {col} is {}, not a string or binary type (use in_i64 or in_f64)", array.data_type()),
            Err(e) => wasmtime::bail!("weir::in_bytes: input column {col}: {e}"),
        }
    })?;
    linker.func_wrap(
        m,
        "out_null",
        |mut caller: Caller<'_, GuestState>, col: i32| -> HostResult<()> {
            caller
                .data_mut()
                .rows
                .out
                .column("out_null", col, 0)?
                .append_null();
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        "out_i64",
        |mut caller: Caller<'_, GuestState>, col: i32, v: i64| -> HostResult<()> {
            caller
                .data_mut()
                .rows
                .out
                .column("out_i64", col, 0)?
                .append_int(v)
                .map_err(|e| wasmtime::format_err!("weir::out_i64: output column {col}: {e}"))
        },
    )?;
    linker.func_wrap(
        m,
        "out_f64",
        |mut caller: Caller<'_, GuestState>, col: i32, v: f64| -> HostResult<()> {
            caller
                .data_mut()
                .rows
                .out
                .column("out_f64", col, 0)?
                .append_float(v)
                .map_err(|e| wasmtime::format_err!("weir::out_f64: output column {col}: {e}"))
        },
    )?;
    linker.func_wrap(
        m,
        "out_bytes",
        |mut caller: Caller<'_, GuestState>, col: i32, ptr: i32, len: i32| -> HostResult<()> {
            let (data, rows) = memory_and_rows(&mut caller)?;
            let range = guest_slice("out_bytes", data, ptr, len)?;
            rows.out
                .column("out_bytes", col, range.len() as u64)?
                .append_bytes(&data[range])
                .map_err(|e| wasmtime::format_err!("weir::out_bytes: output column {col}: {e}"))
        },
    )?;
    linker.func_wrap(
        m,
        "out_copy",
        |mut caller: Caller<'_, GuestState>, col: i32, in_col: i32, row: i32| -> HostResult<()> {
            // Input and output are borrowed apart, so the value is appended where it lies, uncopied.
            let RowIo { input, out, .. } = &mut caller.data_mut().rows;
            let array = input_column(input, "out_copy", in_col, row)?;
            let mut value = read_value(array, row as usize)
                .map_err(|e| wasmtime::format_err!("weir::out_copy: input column {in_col}: {e}"))?;
            // Declared timestamps are microseconds (DDL's TIMESTAMP); the source's `timestamp` is milliseconds.
            if let (DataType::Timestamp(unit, _), Value::Int(v)) = (array.data_type(), &mut value) {
                *v = match unit {
                    TimeUnit::Second => v.saturating_mul(1_000_000),
                    TimeUnit::Millisecond => v.saturating_mul(1_000),
                    TimeUnit::Microsecond => *v,
                    TimeUnit::Nanosecond => *v / 1_000,
                };
            }
            let payload = match value {
                Value::Bytes(b) => b.len() as u64,
                _ => 0,
            };
            let out = out.column("out_copy", col, payload)?;
            match value {
                Value::Null => {
                    out.append_null();
                    Ok(())
                }
                Value::Int(v) => out.append_int(v),
                Value::Float(v) => out.append_float(v),
                Value::Bytes(v) => out.append_bytes(v),
            }
            .map_err(|e| {
                wasmtime::format_err!(
                    "weir::out_copy: from input column {in_col} ({}) to output column {col}: {e}",
                    array.data_type()
                )
            })
        },
    )?;
    linker.func_wrap(
        m,
        "out_row",
        |mut caller: Caller<'_, GuestState>| -> HostResult<()> {
            let rows = &mut caller.data_mut().rows;
            if rows.input.is_none() {
                wasmtime::bail!("weir::out_row: rows can only be written in weir_process_rows");
            }
            rows.out.end_row()
        },
    )?;
    linker.func_wrap(
        m,
        "row_error",
        |mut caller: Caller<'_, GuestState>, row: i32, ptr: i32, len: i32| -> HostResult<()> {
            let (data, rows) = memory_and_rows(&mut caller)?;
            let input_rows = rows.input.as_ref().map_or(0, |b| b.num_rows());
            if row < 0 || row as usize >= input_rows {
                wasmtime::bail!(
                    "weir::row_error: row {row} does not exist (the batch has {input_rows} rows)"
                );
            }
            let range = guest_slice("row_error", data, ptr, len)?;
            if range.is_empty() {
                wasmtime::bail!("weir::row_error: the reason for row {row} is empty");
            }
            // Row errors are output too: a guest reporting the same row forever must hit the cap.
            rows.out.count(ROW_ERROR_BYTES + range.len() as u64)?;
            let message = String::from_utf8_lossy(&data[range]).into_owned();
            rows.row_errors.push(RowError {
                row: row as u32,
                message,
            });
            Ok(())
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_import_is_listed_once() {
        let mut names: Vec<&str> = IMPORTS.iter().map(|(n, _, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), IMPORTS.len());
    }
}
