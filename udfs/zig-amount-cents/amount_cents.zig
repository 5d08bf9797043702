//! Transform UDF in Zig: adds `amount_cents BIGINT` parsed from the decimal string column `amount`
//! ("12.50" becomes 1250), carrying every input column through unchanged.
//!
//! It uses the row interface (guest-sdk/zig/weir.zig): input columns are copied to the output by the host
//! (`outCopy`), so only `amount` is read into guest memory. An amount that is not a decimal with at most two
//! fraction digits is a row error naming the value.

const std = @import("std");
const weir = @import("weir");

var amount_col: i32 = 0;
var input_columns: i32 = 0;

export fn weir_abi_v1() i32 {
    return weir.abi_minor;
}

export fn weir_kind() i32 {
    return @intFromEnum(weir.Kind.transform);
}

var schema_buf: [16 * 1024]u8 = undefined;
var output_buf: [16 * 1024 + 64]u8 = undefined;

export fn weir_init_rows() i32 {
    amount_col = weir.column("amount") orelse return weir.fail("the input has no `amount` column");
    if (weir.column("amount_cents") != null) return weir.fail("the input already has an `amount_cents` column");
    const input = weir.inputSchema(&schema_buf) orelse return weir.fail("the input schema is over 16 KiB");
    input_columns = @intCast(std.mem.count(u8, input, ",") + 1);
    const ddl = std.fmt.bufPrint(&output_buf, "{s}, amount_cents BIGINT", .{input}) catch unreachable;
    return weir.declare(ddl);
}

/// "12.5" and "12.50" are 1250, "-3" is -300; null for anything else.
fn parseCents(text: []const u8) ?i64 {
    var rest = text;
    var negative = false;
    if (rest.len > 0 and rest[0] == '-') {
        negative = true;
        rest = rest[1..];
    }
    const dot = std.mem.indexOfScalar(u8, rest, '.') orelse rest.len;
    if (dot == 0) return null;
    const whole = std.fmt.parseInt(i64, rest[0..dot], 10) catch return null;
    var cents: i64 = 0;
    if (dot < rest.len) {
        const fraction = rest[dot + 1 ..];
        if (fraction.len == 0 or fraction.len > 2) return null;
        for (fraction) |c| if (c < '0' or c > '9') return null;
        cents = std.fmt.parseInt(i64, fraction, 10) catch return null;
        if (fraction.len == 1) cents *= 10;
    }
    const total = std.math.add(i64, std.math.mul(i64, whole, 100) catch return null, cents) catch return null;
    return if (negative) -total else total;
}

var value_buf: [256]u8 = undefined;
var reason_buf: [320]u8 = undefined;

export fn weir_process_rows(rows: i32) i32 {
    var row: i32 = 0;
    while (row < rows) : (row += 1) {
        var needed: usize = 0;
        const text = weir.inBytes(amount_col, row, &value_buf, &needed) catch {
            weir.reject(row, "`amount` is longer than 256 bytes");
            continue;
        };
        var cents: ?i64 = null;
        if (text) |t| {
            cents = parseCents(t) orelse {
                const reason = std.fmt.bufPrint(&reason_buf, "`amount` is not a decimal with at most two fraction digits: \"{s}\"", .{t}) catch "`amount` is not a decimal";
                weir.reject(row, reason);
                continue;
            };
        }
        var col: i32 = 0;
        while (col < input_columns) : (col += 1) weir.outCopy(col, col, row);
        if (cents) |c| weir.outI64(input_columns, c) else weir.outNull(input_columns);
        weir.outRow();
    }
    return weir.ok;
}
