"""Parquet's columns built from buffers (`report.arrow_columns`) are pyarrow's own conversion of
the same values, and a value the buffers do not hold is left to that conversion."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _kit import CAPTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch.report import arrow_columns
from portwatch.report.parquet import SCHEMA, _converted, rows_table

TYPES = {str(f.type): f.type for f in SCHEMA}
texts = st.none() | st.text(max_size=20)
findings = st.fixed_dictionaries({"kind": texts, "severity": texts, "message": texts})
COLUMN_VALUES = {
    "string": texts,
    "int32": st.none() | st.integers(-(2**31), 2**31 - 1),
    "int64": st.none() | st.integers(-(2**63), 2**63 - 1),
    "timestamp[us, tz=UTC]": st.none() | st.integers(-(2**63), 2**63 - 1),
    "double": st.none() | st.floats(allow_nan=True, allow_infinity=True),
    "list<item: string>": st.lists(texts, max_size=4),
    "list<item: struct<kind: string, severity: string, message: string>>": st.lists(findings, max_size=3),
}


def test_every_schema_type_has_values_here():
    assert set(TYPES) == set(COLUMN_VALUES)


@pytest.mark.parametrize("name", sorted(COLUMN_VALUES))
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_column_is_pyarrows_conversion_of_its_values(name, data):
    type_ = TYPES[name]
    values = data.draw(st.lists(COLUMN_VALUES[name], max_size=40))
    built = arrow_columns.build(values, type_)
    built.validate(full=True)
    converted = _converted(values, type_)
    assert (built.type, built.null_count, plain(built)) == (converted.type, converted.null_count, plain(converted))


def plain(column: pa.Array) -> str:
    """The values as text: NaN equal to NaN, -0.0 apart from 0.0, a timestamp as its integer (a
    datetime cannot hold them all)."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    return repr(column.to_pylist())


@pytest.mark.parametrize(("name", "values"), [
    ("int32", [1, 2**31]),  # past 32 bits
    ("int64", [2**63]),
    ("int32", [True]),  # a bool is no integer to pyarrow
    ("int32", ["80"]),
    ("double", [1, 2.0]),  # an integer in a float column: pyarrow's rules, not array("d")'s
    ("string", [1]),
    ("string", ["lone \ud800"]),
    ("list<item: string>", [("a",)]),
    ("list<item: struct<kind: string, severity: string, message: string>>", [[{"kind": "k"}]]),
])
def test_what_the_buffers_do_not_hold_is_left_to_pyarrow(name, values):
    with pytest.raises(arrow_columns.Unbuildable):
        arrow_columns.build(values, TYPES[name])


def test_a_row_group_of_foreign_values_is_pyarrows_table():
    """One column pyarrow must convert does not change the others' building."""
    row = ("1", "1:x", None, 1_000_000, 2_000_000, 1.0, "tcp", "10.0.0.1", 1, "10.0.0.2", 80, "handshake",
           "http", 0.9, ["http"], 1, 1, 10, 10, "SF", "ShAD", "{}", [])
    odd = (*row[:8], True, *row[9:])  # a bool for a port: pyarrow's conversion, which refuses it
    assert rows_table([row, row]).equals(pa.Table.from_arrays(
        [_converted(list(v), f.type) for f, v in zip(SCHEMA, zip(row, row, strict=True), strict=True)],
        schema=SCHEMA))
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, TypeError)):
        rows_table([row, odd])


def test_the_cli_writes_parquet_without_pandas(tmp_path):
    out = tmp_path / "flows.parquet"
    code = ("import sys; from portwatch.launch import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('pandas' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code, "analyze", "--format", "parquet", "-o", str(out),
                          "--quiet", str(CAPTURES / "ssh-443.pcap")], capture_output=True, text=True, timeout=120)
    assert run.stdout.strip() == "False", run.stderr
    assert pq.read_table(out).num_rows >= 1
