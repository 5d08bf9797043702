// A JavaScript transform that misbehaves on demand, for the limit tests of components, as
// udfs/py-hostile does for Python. Its config says how (`{"misbehave": "loop"}`); with none it passes its
// input through.
//
// - loop: an endless loop in `process`;
// - grow: grows an array until memory runs out;
// - raise: throws a TypeError in `process`;
// - raise-in-init: throws in `init`;
// - wrong-type: returns strings in every column;
// - overflow: returns 300 in an int8 column (as its second row);
// - huge: returns 100,000 rows of 100-byte strings (10 MB);
// - reject-odd: reports odd rows as row errors and passes the others through;
// - print: writes a line to stdout and one to stderr, then passes its input through;
// - return: returns one column `v` of the config's `type` (a type's tag, such as "int64") holding the
//   JavaScript expression in `values` (e.g. "[1, 2n, null]"), to test how the kit takes and checks values.

import { weirTransform, field, Output, INT8, UTF8 } from "../../guest-sdk/js/weir-udf.js";

class Hostile {
  init(config, schema) {
    this.how = config.misbehave ?? "";
    if (this.how === "raise-in-init") throw new RangeError("init refused on purpose");
    if (this.how === "huge") return [field("seen", UTF8)];
    if (this.how === "overflow") return [field("small", INT8)];
    if (this.how === "return") {
      this.values = (0, eval)(config.values);
      return [field("v", { tag: config.type })];
    }
    return schema;
  }

  process(columns) {
    const rows = Object.values(columns)[0]?.length ?? 0;
    switch (this.how) {
      case "loop":
        for (;;) {}
      case "grow": {
        const hoard = [];
        for (;;) hoard.push(new Uint8Array(1 << 20).fill(1));
      }
      case "raise":
        throw new TypeError("no such account");
      case "wrong-type":
        return Object.fromEntries(Object.keys(columns).map((name) => [name, Array(rows).fill("not a number")]));
      case "overflow":
        return { small: [1, 300, ...Array(Math.max(rows - 2, 0)).fill(null)] };
      case "huge":
        return { seen: Array(100_000).fill("x".repeat(100)) };
      case "reject-odd": {
        const keep = [...Array(rows).keys()].filter((row) => row % 2 === 0);
        const out = Object.fromEntries(
          Object.entries(columns).map(([name, values]) => [name, keep.map((row) => values[row])]),
        );
        const errors = [...Array(rows).keys()].filter((row) => row % 2 === 1).map((row) => [row, `row ${row} is odd`]);
        return new Output(out, errors);
      }
      case "return":
        return { v: this.values };
      case "print":
        console.log("hello from javascript");
        console.error("and from stderr");
        return columns;
      default:
        return columns;
    }
  }
}

export const transform = weirTransform(Hostile);
