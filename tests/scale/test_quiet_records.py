"""Quiet records: the records no finding can come of, written as JSON lines, EVE flow events, CSV
rows, SQLite or Parquet rows by the core (`Analyzer(on_line=..., line_format=...)`, what `analyze
--format jsonl`, `eve`, `csv`, `sqlite` and `parquet` do), are the same bytes (the same table rows)
as those records written from Python records after the policy, in the same order; counted by the core (`on_tally`,
what the closing report alone needs), they make the same summary."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import CAPTURES
from pcapkit import ether, tcp_session, timed, udp_exchange, write_pcap, write_pcapng
from scapy.layers.dns import DNS, DNSQR, DNSRR

from portwatch.pipeline import Analyzer, Config, Setup, open_capture
from portwatch.policy.config import load_policy
from portwatch.policy.rules import PolicyContext, quiet_setup
from portwatch.report.csvout import COLUMNS, CsvWriter
from portwatch.report.eve import EveWriter
from portwatch.report.jsonl import JsonlWriter
from portwatch.report.parquet import ParquetWriter
from portwatch.report.sqlite import SqliteWriter
from portwatch.report.summary import Summary

CONFIG = Config()


@pytest.fixture(scope="module")
def setup() -> Setup:
    return Setup.load(CONFIG)


WRITERS = {"jsonl": JsonlWriter, "eve": EveWriter, "csv": CsvWriter}
TABLES = ("sqlite", "parquet")
FORMATS = [*WRITERS, *TABLES]
ROW_PROTOCOL = 12  # in a table row (FLOW_COLUMNS' order): flow_id .. orientation, protocol


def protocols(data, fmt: str) -> list[str]:
    """The protocol of each record in a run of the core's lines (or SQLite rows)."""
    if fmt in TABLES:
        return [row[ROW_PROTOCOL] for row in data]
    text = data.decode()
    if fmt == "csv":  # a quoted cell may hold a line break
        return [row[COLUMNS.index("protocol")] for row in csv.reader(io.StringIO(text, newline=""))]
    objs = [json.loads(line) for line in text.splitlines()]
    return [o["portwatch"]["protocol"] if "portwatch" in o else o["protocol"] for o in objs]


def lines(setup: Setup, path: Path, quiet: bool, workers: int = 1, fmt: str = "jsonl") -> tuple[str, Counter]:
    """The capture's lines in `fmt` (for SQLite its tables' rows), and how many came as the core's
    lines and as Python records."""
    if fmt in TABLES:
        db = Path(tempfile.mkdtemp()) / f"flows.{fmt}"
        writer = SqliteWriter(db) if fmt == "sqlite" else ParquetWriter(db)
    else:
        out = io.StringIO()
        writer = WRITERS[fmt](out)
    seen: Counter = Counter()

    def record(rec) -> None:
        seen["records"] += 1
        seen[f"record:{rec.protocol}"] += 1
        writer.write(rec)

    def line(data, records: int) -> None:
        found = protocols(data, fmt)
        assert len(found) == records
        for protocol in found:
            seen["lines"] += 1
            seen[f"line:{protocol}"] += 1
        writer.write_lines(data, records)

    # a tracker of its own: the DNS-tunnel counts of an earlier run would change this one's
    setup = dataclasses.replace(setup, ctx=PolicyContext.build(setup.services, setup.signatures, setup.policy))
    capture = open_capture(str(path))
    analyzer = Analyzer(CONFIG, on_record=record, setup=setup, pcap_name=capture.name, meta_json=True,
                        workers=workers, on_line=line if quiet else None, line_format=fmt)
    analyzer.run_capture(capture)
    analyzer.close()
    if fmt in TABLES:
        writer.close()
        return table_rows(db, fmt), seen
    return out.getvalue(), seen


def table_rows(path: Path, fmt: str) -> str:
    """Every row of a SQLite file's tables, or of a Parquet file, as text."""
    if fmt == "parquet":
        return repr(pq.read_table(path).to_pylist())
    tables = sqlite3.connect(path)
    rows = [tables.execute(f"SELECT * FROM {t} ORDER BY id").fetchall() for t in ("flows", "findings")]
    tables.close()
    return repr(rows)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", ["generated", "slow_link"])
def test_a_generated_capture_is_the_same_bytes(setup, shape, fmt, request):
    path = request.getfixturevalue(shape)
    ref, plain = lines(setup, path, quiet=False, fmt=fmt)
    got, seen = lines(setup, path, quiet=True, fmt=fmt)
    assert got == ref
    assert plain["lines"] == 0
    # most of the flows are a protocol on its own port: written by the core
    assert seen["lines"] > seen["records"] > 0
    assert seen["lines"] + seen["records"] == plain["records"]
    # the DNS tracker counted every DNS record in the core, and most had nothing to say
    assert seen["line:dns"] > seen["record:dns"] > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_with_two_workers_too(setup, generated, fmt):
    ref, _ = lines(setup, generated, quiet=False, fmt=fmt)
    got, seen = lines(setup, generated, quiet=True, workers=2, fmt=fmt)
    assert got == ref and seen["lines"] > 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_real_capture_is_the_same_bytes(setup, fmt):
    taught = 0
    for path in CAPTURES:
        ref, _ = lines(setup, path, quiet=False, fmt=fmt)
        got, seen = lines(setup, path, quiet=True, fmt=fmt)
        assert got == ref, path.name
        taught += seen["lines"]
    assert taught > 0  # the captures' later flows of a protocol on its port


@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_header_values_are_the_same_bytes(setup, tmp_path, fmt):
    """HTTP headers an attacker wrote: a spreadsheet formula, commas, quotes, a lone CR, non-ASCII
    and control bytes reach the flat CSV columns and the JSON texts; the core writes the same
    cells and escapes as Python, flow after flow of one (protocol, port)."""
    hosts = ["=cmd|' /C calc'!A0", "-2+3", "@sum", "\ta.example", "x,y", 'q"uote', "caf\xc3\xa9.example",
             "nul\x00byte", "esc\x1b[31m"]
    agents = ['Mozilla/5.0 (X11; "evil", =1+1)', "+cmd", "\rreturn", "a\x7fb", "plain"]
    packets = []
    for i in range(150):  # the records of several slices: a key is taught after its first slice
        host = hosts[i % len(hosts)].encode("latin-1") if "\xc3" not in hosts[i % len(hosts)] else \
            "caf\u00e9.example".encode()
        request = (b"GET /p" + str(i).encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\nUser-Agent: "
                   + agents[i % len(agents)].encode("latin-1") + b"\r\n\r\n")
        response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        packets += tcp_session([request], [response], sport=41000 + i, dport=80)
    path = write_pcap(tmp_path / "hostile.pcap", [(ts, ether(f)) for ts, f in timed(packets)])
    ref, plain = lines(setup, path, quiet=False, fmt=fmt)
    got, seen = lines(setup, path, quiet=True, fmt=fmt)
    assert got == ref
    assert plain["records"] == 150 and seen["lines"] > 80


@pytest.mark.parametrize("fmt", TABLES)
def test_times_past_64_bit_microseconds_are_left_to_python(setup, tmp_path, fmt):
    """Parquet's time columns hold 64-bit microseconds: a record past them keeps its seconds in
    `meta`, which Python writes, so the core hands such records over as records (SQLite's REAL
    columns take any time: its rows stay the core's)."""
    packets = []
    for i in range(120):
        packets += tcp_session([b"GET / HTTP/1.1\r\nHost: far.example\r\n\r\n"],
                               [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"], sport=42000 + i, dport=80)
    start = 9.3e12  # 9.3e18 microseconds: past 2^63
    path = write_pcapng(tmp_path / "far.pcapng", [1],
                        [(0, ts + start, ether(f)) for ts, f in timed(packets)])
    ref, plain = lines(setup, path, quiet=False, fmt=fmt)
    got, seen = lines(setup, path, quiet=True, fmt=fmt)
    assert got == ref and plain["records"] == 120
    if fmt == "parquet":
        assert seen["lines"] == 0 and "time_out_of_range" in got
    else:
        assert seen["lines"] > 40


def test_eve_times_round_their_microseconds_as_python_does(setup, tmp_path):
    """EVE writes times to the microsecond: the core rounds a nanosecond capture's times half to
    even as `datetime.fromtimestamp` does, ties included. Near 1.7e9 s a float holds a time to
    2^-22 s, so the exact half microseconds there are the odd multiples of 1/128 s (7,812.5 us)."""
    rng = random.Random(7)
    frames = []
    for i in range(400):
        query = DNS(id=i, rd=1, qd=DNSQR(qname=f"host{i}.example.com", qtype="A"))
        answer = DNS(id=i, qr=1, rd=1, ra=1, qd=DNSQR(qname=f"host{i}.example.com", qtype="A"),
                     an=DNSRR(rrname=f"host{i}.example.com", type="A", rdata="192.0.2.7"))
        # every other flow starts on a half microsecond, the rest anywhere in its second
        nanos = (i % 128 | 1) * 7_812_500 if i % 2 else rng.randrange(1_000_000_000)
        start = 1_700_000_000 + i + nanos / 1e9
        pair = udp_exchange([(True, bytes(query)), (False, bytes(answer))], sport=20000 + i)
        frames += [(start, ether(pair[0])), (start + 0.0000125, ether(pair[1]))]
    path = write_pcap(tmp_path / "ns.pcap", frames, nano=True)
    ref, _ = lines(setup, path, quiet=False, fmt="eve")
    got, seen = lines(setup, path, quiet=True, fmt="eve")
    assert got == ref
    assert seen["lines"] > 300
    stamps = [json.loads(t)["timestamp"] for t in got.splitlines()]
    assert "2023-11-14T22:13:21.007812+0000" in stamps  # 7,812.5 us: the tie goes to the even 7,812
    assert "2023-11-14T22:13:23.023438+0000" in stamps  # 23,437.5 us: to the even 23,438


def test_a_dns_tunnel_among_ordinary_lookups_is_still_found(setup, tmp_path):
    """The core counts every DNS record in the tracker, in order: the tunnel's names reach the
    thresholds among ordinary lookups written as lines, and their findings are the same."""
    rng = random.Random(5)
    packets = []
    for i in range(300):  # the records of several slices: a key is taught after its first slice
        sport = 20000 + i
        if i % 3:
            query = DNS(id=i, rd=1, qd=DNSQR(qname=f"host{i}.example.com", qtype="A"))
            answer = DNS(id=i, qr=1, rd=1, ra=1, qd=DNSQR(qname=f"host{i}.example.com", qtype="A"),
                         an=DNSRR(rrname=f"host{i}.example.com", type="A", rdata="192.0.2.7"))
            packets += udp_exchange([(True, bytes(query)), (False, bytes(answer))], sport=sport)
        else:
            label = base64.b32encode(rng.randbytes(30)).decode().rstrip("=").lower()
            query = DNS(id=i, rd=1, qd=DNSQR(qname=f"{label}.t.tunnel-example.net", qtype="TXT"))
            packets += udp_exchange([(True, bytes(query))], sport=sport)
    path = write_pcap(tmp_path / "dns.pcap", [(ts, ether(f)) for ts, f in timed(packets, step=0.01)])
    ref, _ = lines(setup, path, quiet=False)
    got, seen = lines(setup, path, quiet=True)
    assert got == ref
    assert seen["line:dns"] > 100 and seen["record:dns"] >= 100
    tunnel = [json.loads(t) for t in got.splitlines() if '"dns-tunnel"' in t]
    assert len(tunnel) == 100 and all("tunnel-example.net" in r["meta"]["dns_query"] for r in tunnel)


def test_a_listed_version_stays_a_finding(setup, generated):
    """The core reads the facts insecure_versions lists: a TLS 1.3 server listed as insecure
    makes every such record Python's, with its finding."""
    policy = load_policy()
    listed = dataclasses.replace(policy, insecure_versions={"tls_version_server": {"1.3": "listed here"}})
    strict = dataclasses.replace(setup, policy=listed)
    ref, _ = lines(strict, generated, quiet=False)
    got, seen = lines(strict, generated, quiet=True)
    assert got == ref
    found = [json.loads(t) for t in got.splitlines() if "listed here" in t]
    assert found and all(r["meta"].get("tls_version_server") == "1.3" for r in found)


def test_a_baseline_asks_about_every_record(setup):
    ctx = dataclasses.replace(setup.ctx, baseline=object())  # type: ignore[arg-type]
    assert quiet_setup(ctx, setup.known_ports) is None
    names, listed, unknown_quiet, limit, dns = quiet_setup(setup.ctx, setup.known_ports)
    assert (443, "tcp", ["https"]) in names and limit == 1024 and unknown_quiet and dns is setup.ctx.dns.core
    assert ("tls_version_server", ["ssl2", "ssl3", "1.0", "1.1"]) in listed


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cli_writes_the_same_file(tmp_path, setup, generated, fmt):
    out = tmp_path / f"out.{fmt}"
    run = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", fmt, "-o", str(out),
                          str(generated)], capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1), run.stderr
    ref, _ = lines(setup, generated, quiet=False, fmt=fmt)
    if fmt in TABLES:
        assert table_rows(out, fmt) == ref
    else:
        assert out.read_bytes() == ref.encode()  # CSV's rows end in CRLF


def summary(setup: Setup, path: Path, tally: bool) -> tuple[Summary, int]:
    """The closing report's summary of a capture, and how many quiet records the core counted."""
    setup = dataclasses.replace(setup, ctx=PolicyContext.build(setup.services, setup.signatures, setup.policy))
    out = Summary()
    tallied = 0

    def count(t) -> None:
        nonlocal tallied
        tallied += t.flows
        out.add_tally(t)

    capture = open_capture(str(path))
    analyzer = Analyzer(CONFIG, on_record=out.add, setup=setup, pcap_name=capture.name,
                        on_tally=count if tally else None)
    analyzer.run_capture(capture)
    analyzer.close()
    return out, tallied


def same_summary(a: Summary, b: Summary) -> bool:
    return ((a.flows, a.first_seen, a.last_seen, list(a.by_protocol.items()), a.max_severity, a.unlisted)
            == (b.flows, b.first_seen, b.last_seen, list(b.by_protocol.items()), b.max_severity, b.unlisted)
            and [g.as_row() for g in a.sorted_groups()] == [g.as_row() for g in b.sorted_groups()])


@pytest.mark.parametrize("shape", ["generated", "slow_link"])
def test_a_tally_makes_the_same_summary(setup, shape, request):
    path = request.getfixturevalue(shape)
    ref, none = summary(setup, path, tally=False)
    got, tallied = summary(setup, path, tally=True)
    assert none == 0 and tallied > got.flows // 2
    assert same_summary(got, ref)
    assert list(got.by_protocol) == list(ref.by_protocol)  # first-seen order: ties print the same


def test_every_real_capture_makes_the_same_summary(setup):
    for path in CAPTURES:
        ref, _ = summary(setup, path, tally=False)
        got, _ = summary(setup, path, tally=True)
        assert same_summary(got, ref), path.name


def test_quiet_records_go_one_way():
    with pytest.raises(ValueError, match="not both"):
        Analyzer(CONFIG, on_line=lambda b, n: None, on_tally=lambda t: None)


def test_the_cli_report_counts_every_flow(tmp_path, generated):
    """The console report (its quiet records tallied by the core) counts the flows and protocols
    the JSON lines hold."""
    jsonl = tmp_path / "out.jsonl"
    subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "-o", str(jsonl),
                    str(generated)], capture_output=True, timeout=120)
    by_protocol = Counter(json.loads(line)["protocol"] for line in jsonl.read_text().splitlines())
    report = subprocess.run([sys.executable, "-m", "portwatch", "analyze", str(generated)],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "120"})
    assert report.returncode in (0, 1), report.stderr
    assert f"{sum(by_protocol.values()):,} flows from {generated.name}" in report.stdout
    table = report.stdout[report.stdout.index("Flows per protocol"):]
    rows = dict(re.findall(r"│ (\S+) +│ +([\d,]+) │", table))
    assert {p: int(n.replace(",", "")) for p, n in rows.items()} == dict(by_protocol)


def test_the_cores_csv_columns_are_the_schemas():
    """The core writes csv rows with its own list of the flat metadata columns; the csv sink asks
    it to only while that list is `schema.META_COLUMNS` (a change to one alone would silently
    hand every row back to Python)."""
    from portwatch import _core
    from portwatch.report.schema import META_COLUMNS
    from portwatch.report.sinks import SINKS

    assert tuple(_core.CSV_META_COLUMNS) == META_COLUMNS
    assert SINKS["csv"].quiet_lines == "csv"


def test_a_notebook_frame_is_the_same_with_the_cores_rows(generated, monkeypatch):
    """`portwatch.analyze` takes the records no finding can come of as the core's rows ("frame"
    form, `FlowRows.add_rows`): the same frame as from Python records after the policy."""
    import pandas as pd

    import portwatch
    from portwatch import api, frames

    handed = Counter()
    add_rows = frames.FlowRows.add_rows

    def counting(self, rows, records):
        assert len(rows) == records
        handed["rows"] += records
        add_rows(self, rows, records)

    monkeypatch.setattr(frames.FlowRows, "add_rows", counting)
    with_rows = portwatch.analyze(generated, progress=False)

    class RecordsOnly(api.Analyzer):
        def __init__(self, *args, **kwargs):
            kwargs.pop("on_line")
            kwargs.pop("line_format")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(api, "Analyzer", RecordsOnly)
    handed_before = handed["rows"]
    from_records = portwatch.analyze(generated, progress=False)
    assert handed["rows"] == handed_before  # no rows without on_line
    assert handed_before > len(with_rows.flows) // 2
    pd.testing.assert_frame_equal(with_rows.flows, from_records.flows)
    pd.testing.assert_frame_equal(with_rows.findings, from_records.findings)
