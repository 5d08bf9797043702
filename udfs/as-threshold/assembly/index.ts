// Transform UDF in AssemblyScript: keeps the rows whose `amount_cents` is at least the config's `min_cents`,
// carrying every input column through unchanged.
//
// It uses the row interface (guest-sdk/assemblyscript/weir.ts); kept rows are copied column by column by the
// host (`outCopy`), so only `amount_cents` is read by the guest. A row with a null `amount_cents` is dropped.
import * as weir from "../../../guest-sdk/assemblyscript/weir";

let amountCol: i32 = -1;
let inputColumns: i32 = 0;
let minCents: i64 = 0;

export function weir_abi_v1(): i32 {
  return weir.ABI_MINOR;
}

export function weir_kind(): i32 {
  return weir.TRANSFORM;
}

export function weir_init_rows(): i32 {
  amountCol = weir.column("amount_cents");
  if (amountCol < 0) return weir.fail("the input has no `amount_cents` column");
  const min = weir.config("min_cents");
  if (min == null) return weir.fail("config `min_cents` is required, e.g. config = { min_cents = 10000 }");
  minCents = I64.parseInt(min);
  if (minCents.toString() != min) return weir.fail("config `min_cents` must be an integer, not \"" + min + "\"");
  const input = weir.inputSchema();
  inputColumns = input.split(",").length;
  return weir.declare(input);
}

export function weir_process_rows(rows: i32): i32 {
  for (let row = 0; row < rows; row++) {
    if (weir.isNull(amountCol, row) || weir.inI64(amountCol, row) < minCents) continue;
    for (let col = 0; col < inputColumns; col++) weir.outCopy(col, col, row);
    weir.outRow();
  }
  return weir.OK;
}
