"""Weir UDFs in Python: a class with `init` and `process`, compiled to a WebAssembly component.

A UDF sees a batch as a dict of columns, each a plain list (None is null), and returns one the same way:

    import weir_udf
    from weir_udf import Field, UTF8

    class Shout:
        def init(self, config, schema):
            # config: the stage's `config` table as a dict; schema: the input columns, a list of Field.
            return [Field("loud", UTF8)] + schema

        def process(self, columns):
            loud = [None if n is None else n.upper() + "!" for n in columns["name"]]
            return {"loud": loud, **columns}

    Transform = weir_udf.transform(Shout)    # the name componentize-py exports

Build it (componentize-py 0.25, from PyPI) against Weir's WIT world, with this file on the path:

    componentize-py -d wit -w transform-udf componentize app -p guest-sdk/python -p . -o shout.wasm

A deserializer is the same with `Deserializer = weir_udf.deserializer(MyClass)` and `-w deserializer-udf`;
its input columns are the Kafka record's (`key`, `value` as bytes, `topic`, `partition`, `offset`,
`timestamp`, `timestampType`).

- To reject input rows without failing the batch, return `weir_udf.Output(columns, errors)`, where
  `errors` is a list of `(row, reason)`: the rows go to the stage's `on_error` (skip, fail or dead-letter).
- An exception in `init` or `process` fails the call with its type, message and line, and the stage's
  `on_failure` decides what happens to the batch.
- Output columns are returned by name, in any order; every column of the declared schema must be there,
  with one value per output row.

The contract underneath is wit/weir-udf.wit (docs/components.md); this file only makes it Pythonic.
"""

import json
import traceback

from componentize_py_types import Err
from wit_world.imports import types

# Column types, for the schemas `init` returns.
BOOLEAN = types.DataType_Boolean()
INT8 = types.DataType_Int8()
INT16 = types.DataType_Int16()
INT32 = types.DataType_Int32()
INT64 = types.DataType_Int64()
UINT8 = types.DataType_Uint8()
UINT16 = types.DataType_Uint16()
UINT32 = types.DataType_Uint32()
UINT64 = types.DataType_Uint64()
FLOAT32 = types.DataType_Float32()
FLOAT64 = types.DataType_Float64()
UTF8 = types.DataType_Utf8()
BINARY = types.DataType_Binary()
DATE32 = types.DataType_Date32()

_UNITS = {
    "s": types.TimeUnit.SECOND,
    "ms": types.TimeUnit.MILLISECOND,
    "us": types.TimeUnit.MICROSECOND,
    "ns": types.TimeUnit.NANOSECOND,
}


def timestamp(unit="ms", tz=None):
    """A timestamp type: counts of `unit` ("s", "ms", "us" or "ns") since the epoch, with a time zone name."""
    return types.DataType_Timestamp((_UNITS[unit], tz))


def Field(name, data_type, nullable=True):
    """A column of a schema: its name, its type (e.g. `UTF8`) and whether it may hold nulls."""
    return types.Field(name, data_type, nullable)


class Output:
    """What `process` returns when some input rows failed: the output columns and `(row, reason)` pairs."""

    def __init__(self, columns, errors=()):
        self.columns = columns
        self.errors = errors


# The list each type crosses as (wit/weir-udf.wit, `values`), and the Python types its values may have.
_NONE = type(None)
_LISTS = {
    types.DataType_Boolean: (types.Values_Bools, {bool, _NONE}, "bool"),
    types.DataType_Float32: (types.Values_Floats, {float, _NONE}, "float"),
    types.DataType_Float64: (types.Values_Floats, {float, _NONE}, "float"),
    types.DataType_Utf8: (types.Values_Strings, {str, _NONE}, "str"),
    types.DataType_Binary: (types.Values_Bytes, {bytes, _NONE}, "bytes"),
}
_INTS = (types.Values_Ints, {int, _NONE}, "int")


def _wrap(field, values):
    """The WIT list of one returned column, after checking its values' types (one pass in C, `map(type)`),
    so that a wrong value is an error naming the column rather than a trap while the result is copied out.
    Ints in a float column become floats."""
    make, allowed, name = _LISTS.get(type(field.data_type), _INTS)
    found = set(map(type, values))
    if not found <= allowed:
        if make is types.Values_Floats and found <= {float, int, _NONE}:
            values = [v if v is None else float(v) for v in values]
        else:
            wrong = ", ".join(sorted(t.__name__ for t in found - allowed))
            raise Err(f"process returned {wrong} values in column `{field.name}`, which takes {name} or None")
    return make(values)


def _failure(during):
    """The message of the exception being handled: its type, message and where in the UDF it was raised."""
    import sys

    kind, error, tb = sys.exc_info()
    frames = traceback.extract_tb(tb)
    # componentize-py places the app's files under a numbered folder (`/1/app.py`): the name is enough.
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{kind.__name__} in {during}: {error}{where}"


class _Adapter:
    """The WIT interface's `init` and `process` over the user's class: JSON config to a dict, column lists
    to a dict of lists and back, exceptions to the call's error."""

    udf_class = None
    udf = None
    input_names = []
    output = []

    def init(self, config, input):
        cls = type(self)
        try:
            cls.udf = cls.udf_class()
            cls.input_names = [field.name for field in input]
            declared = cls.udf.init(json.loads(config), list(input))
        except Exception:
            raise Err(_failure("init"))
        cls.output = list(declared)
        return cls.output

    def process(self, batch):
        cls = type(self)
        columns = {name: values.value for name, values in zip(cls.input_names, batch.columns)}
        try:
            result = cls.udf.process(columns)
        except Exception:
            raise Err(_failure("process"))
        errors = []
        if isinstance(result, Output):
            errors = [types.RowError(row, str(reason)) for row, reason in result.errors]
            result = result.columns
        try:
            lists = [result[field.name] for field in cls.output]
        except KeyError as missing:
            raise Err(f"process returned no column {missing} (declared: {[f.name for f in cls.output]})")
        except TypeError:
            raise Err(f"process returned a {type(result).__name__}, not a dict of columns")
        rows = len(lists[0]) if lists else 0
        for field, values in zip(cls.output, lists):
            if len(values) != rows:
                raise Err(
                    f"process returned {len(values)} values in column `{field.name}` "
                    f"but {rows} in `{cls.output[0].name}`"
                )
        wrapped = [_wrap(field, list(values)) for field, values in zip(cls.output, lists)]
        return types.Output(types.Batch(rows, wrapped), errors)


def transform(udf_class):
    """The exported `Transform` of a transform UDF: `Transform = weir_udf.transform(MyClass)`."""
    from wit_world import exports

    return type("Transform", (_Adapter, exports.Transform), {"udf_class": udf_class})


def deserializer(udf_class):
    """The exported `Deserializer` of a deserializer UDF: `Deserializer = weir_udf.deserializer(MyClass)`."""
    from wit_world import exports

    return type("Deserializer", (_Adapter, exports.Deserializer), {"udf_class": udf_class})
