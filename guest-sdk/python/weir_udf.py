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
from array import array
from itertools import accumulate

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


# How each type's values lie in a column's `data` (wit/weir-udf.wit, `column`): a `memoryview`/`array`
# format code for the fixed-width types, TEXT and BYTES for the two with offsets.
_TEXT, _BYTES = "text", "bytes"
_CODES = {
    types.DataType_Boolean: "?",
    types.DataType_Int8: "b",
    types.DataType_Int16: "h",
    types.DataType_Int32: "i",
    types.DataType_Int64: "q",
    types.DataType_Uint8: "B",
    types.DataType_Uint16: "H",
    types.DataType_Uint32: "I",
    types.DataType_Uint64: "Q",
    types.DataType_Float32: "f",
    types.DataType_Float64: "d",
    types.DataType_Date32: "i",
    types.DataType_Timestamp: "q",
    types.DataType_Utf8: _TEXT,
    types.DataType_Binary: _BYTES,
}
# The Python types each code's values may have (None aside), the name used in errors, and what fills a
# null's slot.
_ACCEPTS = {
    "?": ((bool,), "bool", False),
    "f": ((float, int), "float", 0.0),
    "d": ((float, int), "float", 0.0),
    _TEXT: ((str,), "str", ""),
    _BYTES: ((bytes, bytearray, memoryview), "bytes", b""),
}
_INTS = ((int,), "int", 0)


def _code(field):
    return _CODES[type(field.data_type)]


def _split(data, offsets, text):
    """The values of a utf8 or binary column: `data` cut at `offsets`. ASCII text, the common case, is
    decoded once and cut as a string. (Of the ways measured, a comprehension over the offsets as a list was
    the fastest: slicing a memoryview of them costs more than the list.)"""
    ends = memoryview(offsets).cast("i").tolist()
    if text:
        whole = data.decode()
        if len(whole) == len(data):
            return [whole[start:end] for start, end in zip(ends, ends[1:])]
        return [data[start:end].decode() for start, end in zip(ends, ends[1:])]
    return [data[start:end] for start, end in zip(ends, ends[1:])]


def _values(field, column):
    """One input column as a list, None where the value is null."""
    code = _code(field)
    if code in (_TEXT, _BYTES):
        values = _split(column.data, column.offsets, code == _TEXT)
    else:
        values = memoryview(column.data).cast(code).tolist()
    if column.valid is not None:
        values = [value if valid else None for value, valid in zip(values, column.valid)]
    return values


def _pack(code, values, valid):
    """A returned column from its values (no None among them). Raises TypeError, ValueError or
    OverflowError when a value does not fit the column."""
    if code == _TEXT:
        joined = "".join(values)
        data = joined.encode()
        # ASCII text has as many bytes as characters; otherwise each value's bytes are counted.
        lengths = map(len, values) if len(data) == len(joined) else (len(v.encode()) for v in values)
    elif code == _BYTES:
        data = b"".join(values)
        lengths = map(len, values)
    else:
        if code == "?" and not set(map(type, values)) <= {bool}:
            raise TypeError("a boolean column takes bool values")
        data = bytes(values) if code == "?" else array(code, values).tobytes()
        return types.Column(data, b"", valid)
    return types.Column(data, array("i", list(accumulate(lengths, initial=0))).tobytes(), valid)


def _column(field, values):
    """The WIT column of one returned list. Nulls cost a second pass only in columns that have them; a value
    of the wrong type or out of range is an error naming the column and row, not a trap while the result is
    copied out."""
    code = _code(field)
    accepts, name, fill = _ACCEPTS.get(code, _INTS)
    try:
        return _pack(code, values, None)
    except (TypeError, ValueError, OverflowError):
        pass
    valid = bytes([value is not None for value in values])
    filled = [fill if value is None else value for value in values]
    try:
        return _pack(code, filled, valid if 0 in valid else None)
    except (TypeError, ValueError, OverflowError):
        pass
    for row, value in enumerate(filled):
        if not isinstance(value, accepts):
            raise Err(
                f"process returned a {type(value).__name__} at row {row} of column `{field.name}`, "
                f"which takes {name} or None"
            )
        try:
            _pack(code, [value], None)
        except (TypeError, ValueError, OverflowError) as error:
            raise Err(f"process returned {value!r} at row {row} of column `{field.name}`: {error}")
    raise Err(f"process returned a column `{field.name}` that does not pack")


def _failure(during):
    """The message of the exception being handled: its type, message and where in the UDF it was raised."""
    import sys

    kind, error, tb = sys.exc_info()
    frames = traceback.extract_tb(tb)
    # componentize-py places the app's files under a numbered folder (`/1/app.py`): the name is enough.
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{kind.__name__} in {during}: {error}{where}"


class _Adapter:
    """The WIT interface's `init` and `process` over the user's class: JSON config to a dict, columns to a
    dict of lists and back, exceptions to the call's error."""

    udf_class = None
    udf = None
    input = []
    output = []

    def init(self, config, input):
        cls = type(self)
        try:
            cls.udf = cls.udf_class()
            cls.input = list(input)
            declared = cls.udf.init(json.loads(config), list(input))
        except Exception:
            raise Err(_failure("init"))
        cls.output = list(declared)
        return cls.output

    def process(self, batch):
        cls = type(self)
        columns = {field.name: _values(field, column) for field, column in zip(cls.input, batch.columns)}
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
        packed = [_column(field, list(values)) for field, values in zip(cls.output, lists)]
        return types.Output(types.Batch(rows, packed), errors)


def transform(udf_class):
    """The exported `Transform` of a transform UDF: `Transform = weir_udf.transform(MyClass)`."""
    from wit_world import exports

    return type("Transform", (_Adapter, exports.Transform), {"udf_class": udf_class})


def deserializer(udf_class):
    """The exported `Deserializer` of a deserializer UDF: `Deserializer = weir_udf.deserializer(MyClass)`."""
    from wit_world import exports

    return type("Deserializer", (_Adapter, exports.Deserializer), {"udf_class": udf_class})
