//! The row interface's host functions, registered under the `weir` import module with the signatures the
//! guest SDK lists ([`weir_guest::abi::rows::IMPORTS`]), and the checks each makes of its arguments.

use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use wasmtime::{Caller, Engine, FuncType, Linker, ValType};
use weir_guest::abi::rows::{ValueType, IMPORTS, IMPORT_MODULE};
use weir_guest::abi::RowError;

use super::values::{read_value, Value};
use super::{HostResult, RowIo, ROW_ERROR_BYTES};
use crate::schema::{format_ddl_schema, parse_ddl_schema};
use crate::udf::instance::GuestState;

/// The signature of the row-interface import `name`, from the guest SDK's list
/// ([`weir_guest::abi::rows::IMPORTS`]), if there is one.
pub(crate) fn import_type(engine: &Engine, name: &str) -> Option<FuncType> {
    let value = |t: &ValueType| match t {
        ValueType::I32 => ValType::I32,
        ValueType::I64 => ValType::I64,
        ValueType::F64 => ValType::F64,
    };
    IMPORTS
        .iter()
        .find(|import| import.name == name)
        .map(|import| {
            FuncType::new(
                engine,
                import.params.iter().map(value),
                import.results.iter().map(value),
            )
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
    add_declarations(linker, IMPORT_MODULE)?;
    add_input(linker, IMPORT_MODULE)?;
    add_output_numbers(linker, IMPORT_MODULE)?;
    add_output_bytes(linker, IMPORT_MODULE)?;
    add_output_rows(linker, IMPORT_MODULE)?;
    Ok(())
}

/// The row interface's functions for the module's set-up: its configuration, the input schema, the
/// output schema it declares, errors and log lines.
fn add_declarations(linker: &mut Linker<GuestState>, m: &str) -> wasmtime::Result<()> {
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
    Ok(())
}

/// The row interface's functions for reading the input batch's values, by column and row.
fn add_input(linker: &mut Linker<GuestState>, m: &str) -> wasmtime::Result<()> {
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
    Ok(())
}

/// The row interface's functions for appending nulls and numbers to the output; all output counts
/// against `limits.max_output`.
fn add_output_numbers(linker: &mut Linker<GuestState>, m: &str) -> wasmtime::Result<()> {
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
    Ok(())
}

/// The row interface's functions for appending bytes to the output, from guest memory or copied from an
/// input value; all output counts against `limits.max_output`.
fn add_output_bytes(linker: &mut Linker<GuestState>, m: &str) -> wasmtime::Result<()> {
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
    Ok(())
}

/// The row interface's functions for ending an output row and reporting a failed input row; all output
/// counts against `limits.max_output`.
fn add_output_rows(linker: &mut Linker<GuestState>, m: &str) -> wasmtime::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::udf::log::GuestLog;

    #[test]
    fn every_import_is_listed_once() {
        let mut names: Vec<&str> = IMPORTS.iter().map(|import| import.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), IMPORTS.len());
    }

    /// The linker's functions are the guest SDK's list: the same names, each with the listed signature.
    #[test]
    fn every_host_function_matches_its_entry() {
        let runtime = crate::udf::UdfRuntime::new().unwrap();
        let engine = runtime.linkers.core.engine().clone();
        let limits = crate::udf::UdfLimits::default();
        let log = GuestLog::new(limits.max_log_bytes);
        let mut store = wasmtime::Store::new(&engine, GuestState::new(limits, &log));
        let items: Vec<(String, wasmtime::Extern)> = runtime
            .linkers
            .core
            .iter(&mut store)
            .filter(|(module, _, _)| *module == IMPORT_MODULE)
            .map(|(_, name, item)| (name.to_string(), item))
            .collect();
        let mut registered: Vec<String> = Vec::new();
        for (name, item) in items {
            let name = name.as_str();
            let wasmtime::Extern::Func(function) = item else {
                panic!("weir::{name} is not a function");
            };
            let expected = import_type(&engine, name)
                .unwrap_or_else(|| panic!("weir::{name} is registered but not in the list"));
            assert!(
                FuncType::eq(&function.ty(&store), &expected),
                "weir::{name}: registered as {}, listed as {expected}",
                function.ty(&store)
            );
            registered.push(name.to_string());
        }
        registered.sort();
        let mut listed: Vec<String> = IMPORTS.iter().map(|i| i.name.to_string()).collect();
        listed.sort();
        assert_eq!(registered, listed);
    }
}
