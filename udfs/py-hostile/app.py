"""A Python transform that misbehaves on demand, for the sandbox and limit tests of components. Its config
says how (`{"misbehave": "loop"}`); with none it passes its input through.

- loop: an endless loop in `process`;
- grow: grows a list until memory runs out;
- raise: raises an exception in `process`;
- raise-in-init: raises in `init`;
- wrong-type: returns strings in an int column;
- overflow: returns 300 in an int8 column (as its second row);
- huge: returns 100,000 rows of 100-byte strings (10 MB);
- sleep: sleeps an hour;
- files, env, network: tries to read /etc/passwd, the environment or to open a socket, and reports what it
  saw as the output value;
- print: prints a line to stdout and one to stderr, then passes its input through;
- reject-odd: reports odd rows as row errors and passes the others through.
"""

import os
import sys
import time

import weir_udf
from weir_udf import Field, INT8, INT64, UTF8


class Hostile:
    def init(self, config, schema):
        self.how = config.get("misbehave", "")
        if self.how == "raise-in-init":
            raise RuntimeError("init refused on purpose")
        self.schema = schema
        if self.how in ("files", "env", "network", "huge"):
            return [Field("seen", UTF8)]
        if self.how == "overflow":
            return [Field("small", INT8)]
        return schema

    def process(self, columns):
        how = self.how
        rows = len(next(iter(columns.values()))) if columns else 0
        if how == "loop":
            while True:
                pass
        if how == "grow":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if how == "raise":
            raise KeyError("no such account")
        if how == "wrong-type":
            return {name: ["not a number"] * rows for name in columns}
        if how == "overflow":
            return {"small": [1, 300] + [None] * (rows - 2)}
        if how == "huge":
            return {"seen": ["x" * 100] * 100_000}
        if how == "sleep":
            time.sleep(3600)
        if how == "files":
            try:
                with open("/etc/passwd") as f:
                    seen = "read " + f.read(20)
            except OSError as e:
                seen = f"refused: {type(e).__name__}"
            return {"seen": [seen] * rows}
        if how == "env":
            return {"seen": [f"{len(os.environ)} variables, {len(sys.argv)} arguments"] * rows}
        if how == "network":
            try:
                import socket

                socket.create_connection(("127.0.0.1", 9), timeout=1)
                seen = "connected"
            except Exception as e:
                seen = f"refused: {type(e).__name__}: {e}"
            return {"seen": [seen] * rows}
        if how == "print":
            print("hello from python")
            print("and from stderr", file=sys.stderr)
        if how == "reject-odd":
            keep = [row for row in range(rows) if row % 2 == 0]
            out = {name: [values[row] for row in keep] for name, values in columns.items()}
            return weir_udf.Output(out, [(row, f"row {row} is odd") for row in range(rows) if row % 2])
        return columns


Transform = weir_udf.transform(Hostile)
