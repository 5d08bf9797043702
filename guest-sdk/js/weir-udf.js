// Weir UDFs in JavaScript: a class with `init` and `process`, compiled to a WebAssembly component with
// ComponentizeJS (StarlingMonkey, a SpiderMonkey build for WebAssembly).
//
// A UDF sees a batch as an object of columns, each a plain Array (null is null), and returns one the same
// way:
//
//     import { weirTransform, field, UTF8 } from "./weir-udf.js";
//
//     class Shout {
//       init(config, schema) {
//         // config: the stage's `config` table as an object; schema: the input columns, [{name, dataType, nullable}].
//         return [field("loud", UTF8), ...schema];
//       }
//       process(columns) {
//         const loud = columns.name.map((n) => (n === null ? null : n.toUpperCase() + "!"));
//         return { loud, ...columns };
//       }
//     }
//
//     export const transform = weirTransform(Shout);   // the export the WIT world names
//
// Values by column type: booleans are `boolean`; integers of up to 32 bits, date32, float32 and float64 are
// `number`; int64, uint64 and timestamps are `bigint`, so that no value loses precision (a returned
// `number` that is a whole number is accepted there too); utf8 is `string`; binary is `Uint8Array`.
//
// - To reject input rows without failing the batch, return `new Output(columns, errors)`, where `errors`
//   is an array of `[row, reason]`: the rows go to the stage's `on_error` (skip, fail or dead-letter).
// - An exception in `init` or `process` fails the call with its name, message and line, and the stage's
//   `on_failure` decides what happens to the batch.
// - Output columns are returned by name, in any order; every column of the declared schema must be there,
//   with one value per output row.
//
// The contract underneath is wit/weir-udf.wit (docs/components.md): columns cross as Arrow's buffers,
// which this file turns into Arrays and back.

// Column types, for the schemas `init` returns.
export const BOOLEAN = { tag: "boolean" };
export const INT8 = { tag: "int8" };
export const INT16 = { tag: "int16" };
export const INT32 = { tag: "int32" };
export const INT64 = { tag: "int64" };
export const UINT8 = { tag: "uint8" };
export const UINT16 = { tag: "uint16" };
export const UINT32 = { tag: "uint32" };
export const UINT64 = { tag: "uint64" };
export const FLOAT32 = { tag: "float32" };
export const FLOAT64 = { tag: "float64" };
export const UTF8 = { tag: "utf8" };
export const BINARY = { tag: "binary" };
export const DATE32 = { tag: "date32" };

const UNITS = { s: "second", ms: "millisecond", us: "microsecond", ns: "nanosecond" };

/** A timestamp type: counts of `unit` ("s", "ms", "us" or "ns") since the epoch, with a time zone name. */
export function timestamp(unit = "ms", tz = undefined) {
  if (!(unit in UNITS)) throw new TypeError(`timestamp unit ${unit}: expected s, ms, us or ns`);
  return { tag: "timestamp", val: [UNITS[unit], tz ?? undefined] };
}

/** A column of a schema: its name, its type (e.g. `UTF8`) and whether it may hold nulls. */
export function field(name, dataType, nullable = true) {
  return { name, dataType, nullable };
}

/** What `process` returns when some input rows failed: the output columns and `[row, reason]` pairs. */
export class Output {
  constructor(columns, errors = []) {
    this.columns = columns;
    this.errors = errors;
  }
}

// How each type's values lie in a column's `data` (wit/weir-udf.wit, `column`): the typed array that
// reads them, and whether they are bigints.
const ARRAYS = {
  boolean: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
  date32: Int32Array,
  timestamp: BigInt64Array,
};
// The range of each integer type that crosses as a number.
const RANGES = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
  date32: [-2147483648, 2147483647],
};
const BIGINT_RANGES = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  timestamp: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A typed array of `Kind` over `bytes`, copying them first if they are not aligned for it. */
function view(Kind, bytes) {
  const aligned = bytes.byteOffset % Kind.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  return new Kind(aligned.buffer, aligned.byteOffset, aligned.byteLength / Kind.BYTES_PER_ELEMENT);
}

/** The values of a utf8 or binary column: `data` cut at `offsets`. ASCII text, the common case, is
 * decoded once and cut as a string. */
function split(data, offsets, text) {
  const ends = view(Int32Array, offsets);
  const values = new Array(ends.length - 1);
  if (!text) {
    for (let i = 0; i < values.length; i++) values[i] = data.slice(ends[i], ends[i + 1]);
    return values;
  }
  const whole = decoder.decode(data);
  if (whole.length === data.length) {
    for (let i = 0; i < values.length; i++) values[i] = whole.slice(ends[i], ends[i + 1]);
  } else {
    for (let i = 0; i < values.length; i++) values[i] = decoder.decode(data.subarray(ends[i], ends[i + 1]));
  }
  return values;
}

// In StarlingMonkey, SpiderMonkey's interpreter with no JIT, a call per value is what costs: `Array.from`
// over a typed array takes about 40 times as long as `Array.prototype.slice` (2.8 against 0.08 µs a value,
// measured inside a component), and a callback per value costs about as much. So the conversions below are
// one native call per column where they can be, and plain loops where they cannot.

/** One input column as an Array, null where the value is null. */
function decode(dataType, column) {
  const tag = dataType.tag;
  let values;
  if (tag === "utf8" || tag === "binary") {
    values = split(column.data, column.offsets, tag === "utf8");
  } else if (tag === "boolean") {
    const data = column.data;
    values = new Array(data.length);
    for (let i = 0; i < data.length; i++) values[i] = data[i] !== 0;
  } else {
    values = Array.prototype.slice.call(view(ARRAYS[tag], column.data));
  }
  if (column.valid) {
    const valid = column.valid;
    for (let i = 0; i < values.length; i++) if (valid[i] === 0) values[i] = null;
  }
  return values;
}

/** Why `value` cannot go in a column of `tag`, as [what was found, what the column takes], or undefined
 * when it can. It runs for every returned value, so the common case makes no strings. */
function refusal(tag, value) {
  switch (tag) {
    case "boolean":
      return typeof value === "boolean" ? undefined : wrongType(value, "boolean");
    case "utf8":
      return typeof value === "string" ? undefined : wrongType(value, "string");
    case "binary":
      // (`instanceof` is not enough: the arrays the bindings make come from another realm.)
      return Object.prototype.toString.call(value) === "[object Uint8Array]"
        ? undefined
        : wrongType(value, "Uint8Array");
    case "float32":
    case "float64":
      return typeof value === "number" ? undefined : wrongType(value, "number");
    case "int64":
    case "uint64":
    case "timestamp": {
      if (typeof value === "number" && Number.isInteger(value)) value = BigInt(value);
      if (typeof value !== "bigint") return wrongType(value, "bigint");
      const [low, high] = BIGINT_RANGES[tag];
      return value < low || value > high ? [String(value), `which does not fit ${tag}`] : undefined;
    }
    default: {
      if (typeof value !== "number" || !Number.isInteger(value)) return wrongType(value, "a whole number");
      const [low, high] = RANGES[tag];
      return value < low || value > high ? [String(value), `which does not fit ${tag}`] : undefined;
    }
  }
}

/** [what `value` is, what the column takes], for a value of the wrong type. */
function wrongType(value, takes) {
  const type =
    typeof value === "object" ? `a ${Object.prototype.toString.call(value).slice(8, -1)}` : `a ${typeof value}`;
  return [type, `which takes ${takes} or null`];
}

/** The WIT column of one returned Array, after checking every value against the column's type. */
function encode(field, values) {
  const tag = field.dataType.tag;
  const n = values.length;
  let valid;
  // A value the fast paths below did not take as it is: marks a null (and returns undefined), or checks
  // the value against the column's type and returns it.
  const checked = (i) => {
    const value = values[i];
    if (value === null || value === undefined) {
      valid ??= new Uint8Array(n).fill(1);
      valid[i] = 0;
      return undefined;
    }
    const why = refusal(tag, value);
    if (why !== undefined) {
      throw `process returned ${why[0]} at row ${i} of column \`${field.name}\`, ${why[1]}`;
    }
    return value;
  };
  if (tag === "utf8" || tag === "binary") {
    const text = tag === "utf8";
    let filled = values;
    for (let i = 0; i < n; i++) {
      const value = values[i];
      if (text ? typeof value !== "string" : Object.prototype.toString.call(value) !== "[object Uint8Array]") {
        if (filled === values) filled = values.slice();
        filled[i] = checked(i) ?? (text ? "" : new Uint8Array(0));
      }
    }
    return packBytes(filled, valid, text);
  }
  const Kind = ARRAYS[tag];
  let typed;
  if (tag === "boolean") {
    typed = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const value = values[i];
      if (value === true) typed[i] = 1;
      else if (value !== false) typed[i] = checked(i) ? 1 : 0;
    }
  } else {
    // The typed array converts the whole column in one call, silently (300 wraps in an int8, "5" becomes
    // 5); a value that did not come out the same is then checked on its own.
    const big = Kind === BigInt64Array || Kind === BigUint64Array;
    try {
      typed = Kind.from(values);
    } catch {
      // A value that cannot convert at all (a number among bigints, a bigint among numbers, a null
      // among bigints): the others are taken one by one.
      typed = new Kind(n);
      const expected = big ? "bigint" : "number";
      for (let i = 0; i < n; i++) if (typeof values[i] === expected) typed[i] = values[i];
    }
    for (let i = 0; i < n; i++) {
      if (typed[i] !== values[i]) {
        const value = checked(i);
        typed[i] = value === undefined ? (big ? 0n : 0) : big ? BigInt(value) : value;
      }
    }
  }
  return { data: new Uint8Array(typed.buffer), offsets: new Uint8Array(0), valid };
}

/** The `data` and `offsets` of utf8 (`text`) or binary values. */
function packBytes(values, valid, text) {
  const offsets = new Int32Array(values.length + 1);
  let data;
  if (text) {
    const joined = values.join("");
    data = encoder.encode(joined);
    const ascii = data.length === joined.length;
    for (let i = 0; i < values.length; i++) {
      const length = ascii ? values[i].length : encoder.encode(values[i]).length;
      offsets[i + 1] = offsets[i] + length;
    }
  } else {
    for (let i = 0; i < values.length; i++) offsets[i + 1] = offsets[i] + values[i].length;
    data = new Uint8Array(offsets[values.length]);
    for (let i = 0; i < values.length; i++) data.set(values[i], offsets[i]);
  }
  return { data, offsets: new Uint8Array(offsets.buffer), valid };
}

/** The message of an exception raised by the UDF: its name, message and where it was thrown. */
function failure(during, error) {
  if (typeof error === "string") return error;
  const name = error?.name ?? typeof error;
  const message = error?.message ?? String(error);
  // The first stack frame is `function@file:line:column`; the file's name and line are enough.
  const frame = String(error?.stack ?? "").split("\n")[0];
  const at = frame.match(/([^/@]+):(\d+):\d+$/);
  return `${name} in ${during}: ${message}${at ? ` (at ${at[1]}:${at[2]})` : ""}`;
}

/** The WIT interface's `init` and `process` over the user's class. */
function adapter(UdfClass) {
  let udf;
  let input = [];
  let output = [];
  return {
    init(config, schema) {
      try {
        udf = new UdfClass();
        input = schema;
        output = Array.from(udf.init(JSON.parse(config), schema));
      } catch (error) {
        throw failure("init", error);
      }
      return output;
    },
    process(batch) {
      const columns = {};
      input.forEach((f, i) => {
        columns[f.name] = decode(f.dataType, batch.columns[i]);
      });
      let result;
      try {
        result = udf.process(columns);
      } catch (error) {
        throw failure("process", error);
      }
      let errors = [];
      if (result instanceof Output) {
        errors = Array.from(result.errors, ([row, reason]) => ({ row, message: String(reason) }));
        result = result.columns;
      }
      if (result === null || typeof result !== "object") {
        throw `process returned ${result === null ? "null" : typeof result}, not an object of columns`;
      }
      const lists = output.map((f) => {
        const values = result[f.name];
        if (values === undefined) {
          throw `process returned no column \`${f.name}\` (declared: ${output.map((o) => o.name).join(", ")})`;
        }
        return Array.isArray(values) ? values : Array.from(values);
      });
      const rows = lists.length > 0 ? lists[0].length : 0;
      lists.forEach((values, i) => {
        if (values.length !== rows) {
          throw `process returned ${values.length} values in column \`${output[i].name}\` but ${rows} in \`${output[0].name}\``;
        }
      });
      return {
        batch: { rows, columns: lists.map((values, i) => encode(output[i], values)) },
        errors,
      };
    },
  };
}

/** The exported `transform` of a transform UDF: `export const transform = weirTransform(MyClass)`. */
export function weirTransform(UdfClass) {
  return adapter(UdfClass);
}

/** The exported `deserializer` of a deserializer UDF: `export const deserializer = weirDeserializer(MyClass)`. */
export function weirDeserializer(UdfClass) {
  return adapter(UdfClass);
}
