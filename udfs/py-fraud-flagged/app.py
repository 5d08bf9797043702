"""Transform UDF for the seeds' fraud detection, stateless part, in Python: keeps the transactions with
`flag == 1` and puts `id = name || surname` in front of the other columns. The same as udfs/fraud-flagged
(Rust), so a pipeline's output can be compared between the two.

Its input is any batch with `name`, `surname` (utf8) and `flag` (int32); every other column is carried
through unchanged.
"""

import weir_udf
from weir_udf import Field, INT32, UTF8


class FraudFlagged:
    def init(self, config, schema):
        types = {field.name: field.data_type for field in schema}
        for name, wanted in (("name", UTF8), ("surname", UTF8), ("flag", INT32)):
            if name not in types:
                raise ValueError(f"the input has no `{name}` column")
            if types[name] != wanted:
                raise ValueError(f"`{name}` is {types[name]} but {wanted} was expected")
        return [Field("id", UTF8)] + schema

    def process(self, columns):
        keep = [row for row, flag in enumerate(columns["flag"]) if flag == 1]
        out = {name: [values[row] for row in keep] for name, values in columns.items()}
        out["id"] = [
            None if name is None or surname is None else name + surname
            for name, surname in zip(out["name"], out["surname"])
        ]
        return out


Transform = weir_udf.transform(FraudFlagged)
