"""Deserializer UDF for the seeds' transaction records, in Python: the twin of udfs/json-transactions.

Each Kafka record's value is a JSON object such as
`{"name":"name7","surname":"sur7","amount":"12.50","delta_t":"30","flag":1,"ts":1700000000000}`. It
becomes one row of `name`, `surname`, `amount`, `delta_t` (strings, as the seeds send them), `flag` (int32)
and `ts` (event time in ms, null when absent). A record that is not such an object is rejected with the
reason, so the stage's `on_error` can drop it or send it to the dead-letter topic.
"""

import json

import weir_udf
from weir_udf import Field, INT32, INT64, UTF8

STRINGS = ("name", "surname", "amount", "delta_t")


def _transaction(value):
    """The row of one record's value, or a ValueError saying why it is not a transaction."""
    if value is None:
        raise ValueError("the record has no value")
    try:
        tx = json.loads(value)
    except ValueError as e:
        raise ValueError(f"not a transaction: {e}")
    if not isinstance(tx, dict):
        raise ValueError("not a transaction: not a JSON object")
    for key in STRINGS:
        if not isinstance(tx.get(key), str):
            raise ValueError(f"not a transaction: `{key}` is missing or not a string")
    flag, ts = tx.get("flag"), tx.get("ts")
    if not isinstance(flag, int) or isinstance(flag, bool) or not -(2**31) <= flag < 2**31:
        raise ValueError("not a transaction: `flag` is missing or not a 32-bit integer")
    if ts is not None and (not isinstance(ts, int) or isinstance(ts, bool)):
        raise ValueError("not a transaction: `ts` is not an integer")
    return tuple(tx[key] for key in STRINGS) + (flag, ts)


class Transactions:
    def init(self, config, schema):
        return [Field(name, UTF8, False) for name in STRINGS] + [
            Field("flag", INT32, False),
            Field("ts", INT64),
        ]

    def process(self, columns):
        rows, rejected = [], []
        for row, value in enumerate(columns["value"]):
            try:
                rows.append(_transaction(value))
            except ValueError as e:
                rejected.append((row, str(e)))
        names = STRINGS + ("flag", "ts")
        out = {name: [r[i] for r in rows] for i, name in enumerate(names)}
        return weir_udf.Output(out, rejected)


Deserializer = weir_udf.deserializer(Transactions)
