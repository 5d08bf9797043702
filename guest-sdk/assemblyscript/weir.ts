// Weir UDF ABI v1.1 row interface for AssemblyScript: the `weir::*` host imports and string-friendly wrappers.
//
// An AssemblyScript UDF needs no Arrow library: it reads input values and appends output values through these
// functions, and the host builds the Arrow arrays. The entry file exports `weir_abi_v1`, `weir_kind`,
// `weir_init_rows` and `weir_process_rows` (see udfs/as-threshold and docs/writing-udfs.md):
//
//   import * as weir from "../../../guest-sdk/assemblyscript/weir";
//   export function weir_abi_v1(): i32 { return weir.ABI_MINOR; }
//   export function weir_kind(): i32 { return weir.TRANSFORM; }
//   export function weir_init_rows(): i32 { return weir.declare("doubled BIGINT"); }
//   export function weir_process_rows(rows: i32): i32 {
//     for (let row = 0; row < rows; row++) { weir.outI64(0, weir.inI64(0, row) * 2); weir.outRow(); }
//     return weir.OK;
//   }
//
// Build with `asc ... --use abort=<path to this file>/abort` so that AssemblyScript's runtime errors reach the
// host's log (through `weir::log`) instead of needing an `env.abort` import the host does not provide.

export const ABI_MINOR: i32 = 1;
export const DESERIALIZER: i32 = 1;
export const TRANSFORM: i32 = 2;
export const OK: i32 = 0;
export const FAILED: i32 = 1;

@external("weir", "config_get") declare function config_get(key: usize, key_len: i32, dst: usize, cap: i32): i32;
@external("weir", "in_schema") declare function in_schema(dst: usize, cap: i32): i32;
@external("weir", "output_schema") declare function output_schema(ddl: usize, len: i32): void;
@external("weir", "error") declare function error_(message: usize, len: i32): void;
@external("weir", "log") declare function log_(line: usize, len: i32): void;
@external("weir", "in_column") declare function in_column(name: usize, len: i32): i32;
@external("weir", "in_is_null") declare function in_is_null(col: i32, row: i32): i32;
@external("weir", "in_i64") declare function in_i64(col: i32, row: i32): i64;
@external("weir", "in_f64") declare function in_f64(col: i32, row: i32): f64;
@external("weir", "in_bytes") declare function in_bytes(col: i32, row: i32, dst: usize, cap: i32): i32;
@external("weir", "out_null") declare function out_null(col: i32): void;
@external("weir", "out_i64") declare function out_i64(col: i32, value: i64): void;
@external("weir", "out_f64") declare function out_f64(col: i32, value: f64): void;
@external("weir", "out_bytes") declare function out_bytes(col: i32, data: usize, len: i32): void;
@external("weir", "out_copy") declare function out_copy(col: i32, in_col: i32, row: i32): void;
@external("weir", "out_row") declare function out_row(): void;
@external("weir", "row_error") declare function row_error(row: i32, reason: usize, len: i32): void;

function utf8(text: string): ArrayBuffer {
  return String.UTF8.encode(text);
}

/** Reports a failure of the whole call: `return weir.fail("...")`. */
export function fail(message: string): i32 {
  const bytes = utf8(message);
  error_(changetype<usize>(bytes), bytes.byteLength);
  return FAILED;
}

/** Declares the output schema (Spark DDL) from init: `return weir.declare("...")`. */
export function declare(ddl: string): i32 {
  const bytes = utf8(ddl);
  output_schema(changetype<usize>(bytes), bytes.byteLength);
  return OK;
}

/** Writes one line to the host's log. */
export function print(line: string): void {
  const bytes = utf8(line);
  log_(changetype<usize>(bytes), bytes.byteLength);
}

/** Copies text of unknown length from a host function that returns the full length and copies only when it fits. */
function fetchText(read: (dst: usize, cap: i32) => i32): string | null {
  let buffer = new ArrayBuffer(256);
  let n = read(changetype<usize>(buffer), buffer.byteLength);
  if (n < 0) return null;
  if (n > buffer.byteLength) {
    buffer = new ArrayBuffer(n);
    read(changetype<usize>(buffer), n);
  }
  return String.UTF8.decodeUnsafe(changetype<usize>(buffer), n);
}

let configKey: ArrayBuffer = new ArrayBuffer(0);

/** The config value of `key` as text, or null when absent. */
export function config(key: string): string | null {
  configKey = utf8(key);
  return fetchText((dst: usize, cap: i32): i32 =>
    config_get(changetype<usize>(configKey), configKey.byteLength, dst, cap));
}

/** The input schema as DDL. */
export function inputSchema(): string {
  return fetchText((dst: usize, cap: i32): i32 => in_schema(dst, cap))!;
}

/** The index of input column `name`, or -1. */
export function column(name: string): i32 {
  const bytes = utf8(name);
  return in_column(changetype<usize>(bytes), bytes.byteLength);
}

export function isNull(col: i32, row: i32): bool {
  return in_is_null(col, row) != 0;
}

export function inI64(col: i32, row: i32): i64 {
  return in_i64(col, row);
}

export function inF64(col: i32, row: i32): f64 {
  return in_f64(col, row);
}

let readCol: i32 = 0;
let readRow: i32 = 0;

/** The string value at (col, row), or null. */
export function inString(col: i32, row: i32): string | null {
  readCol = col;
  readRow = row;
  return fetchText((dst: usize, cap: i32): i32 => in_bytes(readCol, readRow, dst, cap));
}

export function outNull(col: i32): void {
  out_null(col);
}

export function outI64(col: i32, value: i64): void {
  out_i64(col, value);
}

export function outF64(col: i32, value: f64): void {
  out_f64(col, value);
}

export function outString(col: i32, value: string): void {
  const bytes = utf8(value);
  out_bytes(col, changetype<usize>(bytes), bytes.byteLength);
}

/** Copies the input value at (inCol, row) to output column `col` without bringing it into guest memory. */
export function outCopy(col: i32, inCol: i32, row: i32): void {
  out_copy(col, inCol, row);
}

/** Ends the current output row; columns not set in it are null. */
export function outRow(): void {
  out_row();
}

/** Reports that input row `row` failed on its own; the host applies the stage's on_error to its record. */
export function reject(row: i32, reason: string): void {
  const bytes = utf8(reason);
  row_error(row, changetype<usize>(bytes), bytes.byteLength);
}

/** AssemblyScript's runtime errors: logged through the host, then a trap the host reports with the log. */
export function abort(message: string | null, file: string | null, line: u32, column: u32): void {
  print("abort: " + (message ? message : "") + " at " + (file ? file : "?") + ":" + line.toString() + ":" + column.toString());
  unreachable();
}
