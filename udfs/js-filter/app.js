// The `filter` transform in JavaScript: keeps the rows whose column compares as configured, as the Rust
// `udfs/filter` does, with the same config: `{ column = "count", greater_than = 1 }`,
// `{ column = "temp", less_than = 0.5 }` or `{ column = "has_person", equals = true }` (`equals` takes a
// number, a boolean or a string). The output has the input's schema; rows whose column is null are dropped.

import { weirTransform } from "../../guest-sdk/js/weir-udf.js";

const EXPECTED = 'expected { column = "count", greater_than = 1 } (or less_than, or equals)';
const NUMBERS = ["int32", "int64", "float64"];

class Filter {
  init(config, schema) {
    const known = ["column", "greater_than", "less_than", "equals"];
    const unknown = Object.keys(config).filter((key) => !known.includes(key));
    if (unknown.length > 0) throw new Error(`config: unknown key ${unknown[0]}; ${EXPECTED}`);
    const given = known.slice(1).filter((key) => config[key] !== undefined);
    if (typeof config.column !== "string" || given.length !== 1) {
      throw new Error(`config: give a column and exactly one comparison; ${EXPECTED}`);
    }
    const field = schema.find((f) => f.name === config.column);
    if (!field) throw new Error(`the input has no \`${config.column}\` column`);
    const type = field.dataType.tag;
    const test = given[0];
    const readable = test === "equals" ? [...NUMBERS, "boolean", "utf8"] : NUMBERS;
    if (!readable.includes(type)) {
      throw new Error(`\`${config.column}\` is ${type}, which this comparison cannot read`);
    }
    const bound = config[test];
    this.column = config.column;
    this.keeps =
      test === "greater_than"
        ? (v) => Number(v) > bound
        : test === "less_than"
          ? (v) => Number(v) < bound
          : NUMBERS.includes(type)
            ? (v) => Number(v) === bound
            : (v) => v === bound;
    return schema;
  }

  process(columns) {
    const values = columns[this.column];
    const kept = [];
    for (let row = 0; row < values.length; row++) {
      if (values[row] !== null && this.keeps(values[row])) kept.push(row);
    }
    const out = {};
    for (const [name, column] of Object.entries(columns)) out[name] = kept.map((row) => column[row]);
    return out;
  }
}

export const transform = weirTransform(Filter);
