// Transform UDF for the seeds' fraud detection, stateless part, in JavaScript: keeps the transactions with
// `flag == 1` and puts `id = name || surname` in front of the other columns. The same as
// udfs/fraud-flagged (Rust) and udfs/py-fraud-flagged (Python), so their output and cost can be compared.
//
// Its input is any batch with `name`, `surname` (utf8) and `flag` (int32); every other column is carried
// through unchanged.

import { weirTransform, field, INT32, UTF8 } from "../../guest-sdk/js/weir-udf.js";

class FraudFlagged {
  init(config, schema) {
    for (const [name, wanted] of [["name", UTF8], ["surname", UTF8], ["flag", INT32]]) {
      const found = schema.find((f) => f.name === name);
      if (!found) throw new Error(`the input has no \`${name}\` column`);
      if (found.dataType.tag !== wanted.tag) {
        throw new Error(`\`${name}\` is ${found.dataType.tag} but ${wanted.tag} was expected`);
      }
    }
    return [field("id", UTF8), ...schema];
  }

  process(columns) {
    const keep = [];
    columns.flag.forEach((flag, row) => {
      if (flag === 1) keep.push(row);
    });
    const out = {};
    for (const [name, values] of Object.entries(columns)) out[name] = keep.map((row) => values[row]);
    out.id = out.name.map((name, i) => {
      const surname = out.surname[i];
      return name === null || surname === null ? null : name + surname;
    });
    return out;
  }
}

export const transform = weirTransform(FraudFlagged);
