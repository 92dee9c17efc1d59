"""Arrow arrays of the Parquet schema's column types, built from Python values by their buffers.

pyarrow's own conversion (`pa.array`) imports pandas the first time it is handed Python values, to
ask whether they are pandas objects: 0.3-0.4 s and 40-70 MB in a `portwatch analyze --format
parquet` run, which has no other use for pandas. The arrays here are the same (`Array.equals`,
tested against `pa.array`); a value of another type than the column's (a foreign record's text in
a port, an integer past the column's width, a lone surrogate) raises `Unbuildable`, and the caller
converts that column with `pa.array` as before.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from itertools import accumulate
from typing import Any

import pyarrow as pa


class Unbuildable(Exception):
    """A value the buffers here do not hold as `pa.array` would."""


def build(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """`pa.array(values, type=type_)` for the types the Parquet schema uses (text, 32/64-bit
    integers, floats, timestamps, a list of texts, a list of structs of texts)."""
    try:
        if pa.types.is_string(type_):
            return _strings(values)
        if pa.types.is_int32(type_):
            return _numbers(values, type_, "i", int)
        if pa.types.is_int64(type_) or pa.types.is_timestamp(type_):
            return _numbers(values, type_, "q", int)
        if pa.types.is_float64(type_):
            # Only floats: pa.array refuses an integer past 2^53, which "d" would round.
            return _numbers(values, type_, "d", float)
        if pa.types.is_list(type_):
            return _lists(values, type_)
    except (OverflowError, UnicodeEncodeError) as exc:
        raise Unbuildable(str(exc)) from None
    raise Unbuildable(f"no buffers for {type_}")


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap (None when nothing is missing) and how many values are None."""
    missing = [i for i, v in enumerate(values) if v is None]
    if not missing:
        return None, 0
    bits = bytearray(b"\xff" * ((len(values) + 7) // 8))
    for i in missing:
        bits[i >> 3] &= 0xFF ^ (1 << (i & 7))
    return pa.py_buffer(bits), len(missing)


def _strings(values: Sequence[Any]) -> pa.Array:
    if any(v is not None and type(v) is not str for v in values):
        raise Unbuildable("not text")
    encoded = [b"" if v is None else v.encode() for v in values]
    offsets = array("i", accumulate(map(len, encoded), initial=0))  # OverflowError past 2 GiB
    validity, nulls = _validity(values)
    return pa.Array.from_buffers(pa.string(), len(values),
                                 [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))], nulls)


def _numbers(values: Sequence[Any], type_: pa.DataType, code: str, kind: type) -> pa.Array:
    # bool is an int to Python, not to pa.array: a strict type check.
    if any(v is not None and type(v) is not kind for v in values):
        raise Unbuildable("not a number of the column's kind")
    data = array(code, [0 if v is None else v for v in values])  # OverflowError past the width
    validity, nulls = _validity(values)
    return pa.Array.from_buffers(type_, len(values), [validity, pa.py_buffer(data)], nulls)


def _lists(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    if any(type(v) is not list for v in values):
        raise Unbuildable("not a list")
    offsets = array("i", accumulate(map(len, values), initial=0))
    items = [item for v in values for item in v]
    child_type = type_.value_type
    if pa.types.is_string(child_type):
        child = _strings(items)
    elif pa.types.is_struct(child_type):
        child = _structs(items, child_type)
    else:
        raise Unbuildable(f"no buffers for {type_}")
    return pa.Array.from_buffers(type_, len(values), [None, pa.py_buffer(offsets)], 0, children=[child])


def _structs(items: Sequence[Any], type_: pa.StructType) -> pa.Array:
    names = [type_.field(i).name for i in range(type_.num_fields)]
    if any(type(item) is not dict or item.keys() != set(names) for item in items):
        raise Unbuildable("not a struct of the column's fields")
    children = [build([item[name] for item in items], type_.field(name).type) for name in names]
    return pa.Array.from_buffers(type_, len(items), [None], 0, children=children)
