//! Weir UDF ABI v1.1 row interface for Zig: the `weir::*` host imports and small wrappers over slices.
//!
//! A Zig UDF needs no Arrow library: it reads input values and appends output values through these
//! functions, and the host builds the Arrow arrays. The module itself exports `weir_abi_v1`, `weir_kind`,
//! `weir_init_rows` and `weir_process_rows` (see `udfs/zig-amount-cents` and docs/writing-udfs.md):
//!
//! ```zig
//! const weir = @import("weir");
//! export fn weir_abi_v1() i32 { return weir.abi_minor; }
//! export fn weir_kind() i32 { return @intFromEnum(weir.Kind.transform); }
//! export fn weir_init_rows() i32 { return weir.declare("doubled BIGINT"); }
//! export fn weir_process_rows(rows: i32) i32 {
//!     var row: i32 = 0;
//!     while (row < rows) : (row += 1) {
//!         weir.outI64(0, weir.inI64(0, row) * 2);
//!         weir.outRow();
//!     }
//!     return weir.ok;
//! }
//! ```

/// The ABI minor version this file implements; return it from `weir_abi_v1`.
pub const abi_minor: i32 = 1;
/// Status codes returned by `weir_init_rows` and `weir_process_rows`.
pub const ok: i32 = 0;
pub const failed: i32 = 1;

/// What the module is; return it from `weir_kind`.
pub const Kind = enum(i32) { deserializer = 1, transform = 2 };

extern "weir" fn config_get(key: [*]const u8, key_len: i32, dst: [*]u8, cap: i32) i32;
extern "weir" fn in_schema(dst: [*]u8, cap: i32) i32;
extern "weir" fn output_schema(ddl: [*]const u8, len: i32) void;
extern "weir" fn @"error"(message: [*]const u8, len: i32) void;
extern "weir" fn log(line: [*]const u8, len: i32) void;
extern "weir" fn in_column(name: [*]const u8, len: i32) i32;
extern "weir" fn in_is_null(col: i32, row: i32) i32;
extern "weir" fn in_i64(col: i32, row: i32) i64;
extern "weir" fn in_f64(col: i32, row: i32) f64;
extern "weir" fn in_bytes(col: i32, row: i32, dst: [*]u8, cap: i32) i32;
extern "weir" fn out_null(col: i32) void;
extern "weir" fn out_i64(col: i32, value: i64) void;
extern "weir" fn out_f64(col: i32, value: f64) void;
extern "weir" fn out_bytes(col: i32, data: [*]const u8, len: i32) void;
extern "weir" fn out_copy(col: i32, in_col: i32, row: i32) void;
extern "weir" fn out_row() void;
extern "weir" fn row_error(row: i32, reason: [*]const u8, len: i32) void;

fn len32(s: []const u8) i32 {
    return @intCast(s.len);
}

/// Reports a failure of the whole call: `return weir.fail("...")`.
pub fn fail(message: []const u8) i32 {
    @"error"(message.ptr, len32(message));
    return failed;
}

/// Declares the output schema (Spark DDL) from init: `return weir.declare("...")`.
pub fn declare(ddl: []const u8) i32 {
    output_schema(ddl.ptr, len32(ddl));
    return ok;
}

/// Writes one line to the host's log.
pub fn print(line: []const u8) void {
    log(line.ptr, len32(line));
}

/// The config value of `key` as text, copied into `buf`; null when absent or longer than `buf`.
pub fn config(key: []const u8, buf: []u8) ?[]u8 {
    const n = config_get(key.ptr, len32(key), buf.ptr, len32(buf));
    if (n < 0 or n > buf.len) return null;
    return buf[0..@intCast(n)];
}

/// The input schema as DDL, copied into `buf`; null when longer than `buf`.
pub fn inputSchema(buf: []u8) ?[]u8 {
    const n = in_schema(buf.ptr, len32(buf));
    if (n > buf.len) return null;
    return buf[0..@intCast(n)];
}

/// The index of the input column `name`, or null.
pub fn column(name: []const u8) ?i32 {
    const c = in_column(name.ptr, len32(name));
    return if (c < 0) null else c;
}

pub fn isNull(col: i32, row: i32) bool {
    return in_is_null(col, row) != 0;
}

pub fn inI64(col: i32, row: i32) i64 {
    return in_i64(col, row);
}

pub fn inF64(col: i32, row: i32) f64 {
    return in_f64(col, row);
}

/// The string or binary value at (col, row) copied into `buf`: null when the value is null; `error.TooLong`
/// with the needed length in `needed` when it does not fit.
pub fn inBytes(col: i32, row: i32, buf: []u8, needed: *usize) error{TooLong}!?[]u8 {
    const n = in_bytes(col, row, buf.ptr, len32(buf));
    if (n < 0) return null;
    needed.* = @intCast(n);
    if (n > buf.len) return error.TooLong;
    return buf[0..@intCast(n)];
}

pub fn outNull(col: i32) void {
    out_null(col);
}

pub fn outI64(col: i32, value: i64) void {
    out_i64(col, value);
}

pub fn outF64(col: i32, value: f64) void {
    out_f64(col, value);
}

pub fn outBytes(col: i32, value: []const u8) void {
    out_bytes(col, value.ptr, len32(value));
}

/// Copies the input value at (in_col, row) to output column `col` without bringing it into guest memory.
pub fn outCopy(col: i32, in_col: i32, row: i32) void {
    out_copy(col, in_col, row);
}

/// Ends the current output row; columns not set in it are null.
pub fn outRow() void {
    out_row();
}

/// Reports that input row `row` failed on its own; the host applies the stage's on_error to its record.
pub fn reject(row: i32, reason: []const u8) void {
    row_error(row, reason.ptr, len32(reason));
}
