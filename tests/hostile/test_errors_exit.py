"""Every error ends the same way (issue "Hostile input, second round", items 2 and 3).

Any error in any command (bad input, I/O, an internal one) exits 2 with one line on stderr, after
writing every flow read so far; an internal error's line says how to get the traceback
(`--debug`, global or per command). Exit 1 stays "a finding reached --fail-on". A full disk
during `analyze --format jsonl|csv -o FILE` leaves the file at a record boundary.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pcapkit import timed, udp_exchange, write_pcap

from portwatch.report.csvout import COLUMNS

FLOWS = 3000
SSH_443 = Path(__file__).resolve().parents[2] / "captures" / "ssh-443.pcap"


def _capture(path: Path, flows: int = FLOWS) -> Path:
    frames = []
    for i in range(flows):
        frames += udp_exchange([(True, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01")],
                               sport=10000 + i)
    from pcapkit import ether
    return write_pcap(path, timed([ether(f) for f in frames]))


def _pw(args: list[str], patch: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """portwatch in a child; `patch` runs first (to plant a bug where the test wants one)."""
    code = f"import sys\n{patch}\nfrom portwatch.cli import main\nsys.argv = ['portwatch', *sys.argv[1:]]\nmain()\n"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout)


def _one_line(run: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert run.returncode == 2, (run.returncode, run.stderr[-3000:])
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    # The monitor logs as it goes (timestamped lines); the error itself is one line.
    lines = [ln for ln in run.stderr.splitlines() if ln.strip() and not re.match(r"\d{4}-\d\d-\d\d ", ln)]
    assert len(lines) == 1 and lines[0].startswith("portwatch: error: "), run.stderr[-3000:]
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


# A bug planted in the sink of analyze: the 2nd flow record raises (in the summary's step a
# record-format run takes, `add_worst`).
SECOND_RECORD_RAISES = """
from portwatch.report import summary as _s
_add, _n = _s.Summary.add_worst, [0]
def add(self, rec):
    _n[0] += 1
    if _n[0] == 2:
        raise ValueError("planted bug")
    _add(self, rec)
_s.Summary.add_worst = add
"""


@pytest.mark.parametrize("debug", [[], ["--debug"]], ids=["plain", "debug"])
def test_internal_error_in_analyze_keeps_every_flow(tmp_path: Path, debug: list[str]) -> None:
    cap = _capture(tmp_path / "c.pcap", 20)
    out = tmp_path / "out.jsonl"
    run = _pw(["analyze", "-q", "--format", "jsonl", "-o", str(out), *debug, str(cap)], SECOND_RECORD_RAISES)
    records = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert len(records) == 20  # every flow, the one the bug hit included
    if debug:
        assert run.returncode == 2 and "Traceback" in run.stderr and "planted bug" in run.stderr
    else:
        _one_line(run, "internal error", "c.pcap", "ValueError: planted bug", "--debug")


@pytest.mark.parametrize(("args", "patch"), [
    (["audit", "--root", "{tmp}"], "import portwatch.audit.command as m; m.audit_records = lambda *a: 1 / 0"),
    (["baseline", "save", "-o", "{tmp}/b.json", "{cap}"],
     "import portwatch.baseline_command as m; m.save_baseline = lambda *a: {}['x']"),
    (["monitor", "-r", "{cap}", "--user", "root"],
     "import portwatch.monitor.loop as m; m.Monitor.run = lambda self: [][1]"),
    (["services", "443"], "import portwatch.cli as m; m.load_services = lambda p: None"),
    (["signatures", "list"], "import portwatch.cli as m; m.load_signatures = lambda d: [None]"),
    (["signatures", "check", "{cap}"], "import portwatch.cli as m; m.check_files = lambda p: 1 / 0"),
], ids=["audit", "baseline", "monitor", "services", "signatures-list", "signatures-check"])
def test_internal_error_in_every_command(tmp_path: Path, args: list[str], patch: str) -> None:
    cap = _capture(tmp_path / "c.pcap", 3)
    args = [a.format(tmp=tmp_path, cap=cap) for a in args]
    _one_line(_pw(args, patch), "internal error", "--debug")
    run = _pw([*args, "--debug"], patch)  # per command
    assert run.returncode == 2 and "Traceback" in run.stderr
    run = _pw(["--debug", *args], patch)  # global
    assert run.returncode == 2 and "Traceback" in run.stderr


def test_io_errors_exit_2_in_one_line(tmp_path: Path) -> None:
    cap = _capture(tmp_path / "c.pcap", 3)
    for args in (["services", "443"], ["signatures", "list"], ["audit", "--root", str(tmp_path)],
                 ["analyze", "-q", "--format", "jsonl", str(cap)]):
        with open("/dev/full", "w") as full:
            code = "import sys\nfrom portwatch.cli import main\nsys.argv = ['portwatch', *sys.argv[1:]]\nmain()\n"
            run = subprocess.run([sys.executable, "-c", code, *args], stdout=full, stderr=subprocess.PIPE,
                                 text=True, timeout=60)
        assert run.returncode == 2, (args, run.stderr)
        assert run.stderr.strip() == "portwatch: error: <stdout>: write error: No space left on device", run.stderr
    # Exit 1 is still a finding at --fail-on, and nothing else.
    run = _pw(["analyze", "-q", str(SSH_443)])
    assert run.returncode == 1 and run.stderr == ""


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_dev_full_output(tmp_path: Path, fmt: str) -> None:
    cap = SSH_443  # a finding too: exit 2 (the error) wins over 1
    for extra in ([], ["--findings-only"], ["--servers"]):
        run = _pw(["analyze", "-q", "--format", fmt, "-o", "/dev/full", *extra, str(cap)])
        _one_line(run, "/dev/full", "No space left on device")


def _check_boundary(path: Path, fmt: str) -> int:
    data = path.read_bytes()
    assert data, "nothing written"
    if fmt == "jsonl":
        assert data.endswith(b"\n")
        lines = data.decode().splitlines()
        for ln in lines:
            json.loads(ln)
        return len(lines)
    assert data.endswith(b"\r\n")
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    assert rows[0] == list(COLUMNS) and all(len(r) == len(COLUMNS) for r in rows)
    return len(rows) - 1


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_full_tmpfs_ends_at_a_record_boundary(tmp_path: Path, small_tmpfs: Path, fmt: str) -> None:
    cap = _capture(tmp_path / "c.pcap")  # 3,000 flows: about 1 MB of records for a 64 KiB disk
    out = small_tmpfs / f"flows.{fmt}"
    run = _pw(["analyze", "-q", "--format", fmt, "-o", str(out), str(cap)])
    _one_line(run, str(out), "No space left on device")
    written = _check_boundary(out, fmt)
    assert 0 < written < FLOWS
    assert f"after {written + (1 if fmt == 'csv' else 0)} complete record(s)" in run.stderr


@pytest.mark.parametrize("args", [
    ["analyze", "--max-flows", "100000000000000000000", str(SSH_443)],  # past 64 bits: an internal error before
    ["monitor", "-r", str(SSH_443), "--max-flows", str(10**10)],
    ["monitor", "-r", str(SSH_443), "--idle-tcp", "nan"],  # NaN passed FloatRange: no flow ever ended
    ["monitor", "-r", str(SSH_443), "--duration", "nan"],
    ["audit", "--probe", "--probe-timeout", "nan"],
], ids=["analyze-max-flows", "monitor-max-flows", "monitor-idle-nan", "monitor-duration-nan", "audit-timeout-nan"])
def test_out_of_range_numbers_are_usage_errors(args: list[str]) -> None:
    run = _pw(args)
    assert run.returncode == 2, run.stderr
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr
    assert "Invalid value for '--" in run.stderr
