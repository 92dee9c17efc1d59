"""Hostile files given to what reads portwatch's own outputs back (`read()`, `--baseline`): each is
refused in one line naming the file, never a traceback.

JSON nested past Python's recursion limit (its parser recurses per level) raised RecursionError: a
traceback from `read()`, an "internal error" from the CLI. A CSV cell past the csv module's field
limit raised csv.Error, and a damaged SQLite or Parquet file sqlite3's or pyarrow's own errors,
none of them the ValueError `read()` turned into its ReadError.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import portwatch
from portwatch.api import ReadError

REPO = Path(__file__).resolve().parent.parent.parent
DEEP = "[" * 100_000 + "]" * 100_000
RECORD = {"flow_id": 1, "ts_start": 1.0, "ts_end": 2.0, "transport": "tcp", "src_ip": "10.0.0.1", "src_port": 1,
          "dst_ip": "10.0.0.2", "dst_port": 2, "orientation": "handshake", "protocol": "ssh", "confidence": 1.0,
          "assigned": [], "packets_c2s": 1, "packets_s2c": 1, "bytes_c2s": 1, "bytes_s2c": 1, "meta": {},
          "findings": []}


@pytest.mark.parametrize("where", ["first line", "a later line", "a csv meta cell"])
def test_read_refuses_deep_json_naming_the_file(tmp_path: Path, where: str) -> None:
    path = tmp_path / "flows.jsonl"
    deep_line = json.dumps(RECORD).replace('"meta": {}', f'"meta": {{"a": {DEEP}}}')
    if where == "first line":
        path.write_text(deep_line + "\n", encoding="utf-8")
    elif where == "a later line":
        path.write_text(json.dumps(RECORD) + "\n" + deep_line + "\n", encoding="utf-8")
    else:
        path = tmp_path / "flows.csv"
        head = ",".join(RECORD)
        cells = [json.dumps(v) if isinstance(v, (dict, list)) else str(v) for v in RECORD.values()]
        deep = "[" * 20_000 + "]" * 20_000  # within the csv module's field limit, past the recursion limit
        cells[list(RECORD).index("meta")] = '"{""a"": ' + deep + '}"'
        cells[list(RECORD).index("findings")] = ""
        path.write_text(head + "\n" + ",".join(cells) + "\n", encoding="utf-8")
    with pytest.raises(ReadError, match="nested too deeply") as err:
        portwatch.read(path)
    assert str(path) in str(err.value)


def test_a_deep_baseline_is_refused_in_one_line(tmp_path: Path) -> None:
    base = tmp_path / "baseline.json"
    base.write_text('{"portwatch_baseline": 1, "servers": ' + DEEP + "}", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--baseline", str(base),
                           str(REPO / "captures" / "ssh-22.pcap")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"portwatch: error: {base}: not a portwatch baseline "
                                                "(JSON nested too deeply)"]


@pytest.mark.parametrize("where", ["header", "row"])
def test_read_refuses_a_csv_field_past_the_csv_modules_limit(tmp_path: Path, where: str) -> None:
    path = tmp_path / "flows.csv"
    head = ",".join(RECORD)
    row = ",".join(["1", "x" * 200_000, *["1"] * (len(RECORD) - 2)])
    path.write_text(("x" * 200_000 if where == "header" else head) + "\n" + row + "\n", encoding="utf-8")
    # A header is read from the file's first 64 KiB: one past that names no table.
    why = "not an output of portwatch" if where == "header" else "field larger than field limit"
    with pytest.raises(ReadError, match=why) as err:
        portwatch.read(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("fmt", ["sqlite", "parquet"])
def test_read_of_a_damaged_database_or_parquet_file_names_the_file(tmp_path: Path, fmt: str) -> None:
    """Bytes changed inside a SQLite database or a Parquet file (its magic kept): sqlite3's and
    pyarrow's own errors (not ValueErrors) used to escape `read()`; now a ReadError naming the file,
    its reason escaped (sqlite3 quotes the cell it could not decode)."""
    import random

    good = tmp_path / f"good.{fmt}"
    done = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", fmt, "-o", str(good),
                           str(REPO / "captures")], capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    data = good.read_bytes()
    failures = 0
    for seed in range(8):
        rng = random.Random(seed)
        damaged = bytearray(data)
        for _ in range(40):
            at = rng.randrange(4096 if fmt == "sqlite" else 8, len(data) - 8)
            damaged[at] = rng.randrange(256)
        path = tmp_path / f"damaged-{seed}.{fmt}"
        path.write_bytes(bytes(damaged))
        try:
            portwatch.read(path)
        except ReadError as exc:
            failures += 1
            assert str(path) in str(exc) and str(exc).isprintable()
    assert failures  # some damage is found, and every time as a ReadError


@pytest.mark.parametrize("column, values", [("ts_start", [[1]]), ("ts_start", ["x"]), ("meta", [5]),
                                            ("assigned", [7]), ("findings", ["zz"])])
def test_a_parquet_column_of_another_type_is_a_damaged_file(tmp_path: Path, column: str, values: list) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    done = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "parquet", "-o", str(good),
                           str(REPO / "captures" / "ssh-443.pcap")], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    table = pq.read_table(good)
    table = table.set_column(table.column_names.index(column), column, pa.array(values * table.num_rows))
    path = tmp_path / "other.parquet"
    pq.write_table(table, path)
    with pytest.raises(ReadError, match="a damaged flows file"):
        portwatch.read(path)


_ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.sampled_from(["", "x", "2024-01-01"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["kind", "severity", "message", "k"]),
                                                                 inner, max_size=4),
    max_leaves=8,
)
_TABLES = {
    "flows": list(RECORD),
    "servers": ["dst_ip", "dst_port", "transport", "protocols", "assigned", "clients", "flows", "first_seen"],
    "findings": ["severity", "kind", "dst_ip", "dst_port", "transport", "protocol", "flows", "message"],
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(_TABLES)), st.data())
def test_any_json_lines_read_back_or_are_refused_with_a_read_error(tmp_path: Path, table: str,
                                                                   data: st.DataObject) -> None:
    """Each field of a table's lines any JSON value (or absent), and lines that are not objects: `read()`
    gives its frame or a ReadError, never another exception."""
    lines = []
    for _ in range(data.draw(st.integers(1, 3))):
        if data.draw(st.integers(0, 9)) == 0:
            lines.append(json.dumps(data.draw(_ANY)))
            continue
        fields = _TABLES[table]
        record = {f: data.draw(_ANY) for f in fields if data.draw(st.booleans()) or f in fields[:4]}
        lines.append(json.dumps(record))
    path = tmp_path / "any.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with contextlib.suppress(ReadError):
        portwatch.read(path)
