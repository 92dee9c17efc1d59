"""A hostile services(5) file (issue "Hostile input, second round", items 8 and 9).

A 158 MB `--services` file took 162 s and 3.4 GB (one port with a million entries made every
lookup quadratic); `portwatch services` printed names and aliases raw, escape sequences and all.
Now the file is capped (16 MiB: a clear error, exit 2), entries per port and aliases per line are
bounded, lookups are linear, and every name is escaped before it reaches the terminal.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

from portwatch.services import MAX_ALIASES, MAX_PER_PORT, MAX_SERVICES_BYTES, parse_services

PW = [sys.executable, "-m", "portwatch"]


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PW, *args], capture_output=True, text=True, timeout=timeout)


def _child_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def test_oversized_services_file_is_one_line_error(tmp_path: Path) -> None:
    big = tmp_path / "services"
    with big.open("wb") as fh:  # sparse: costs no disk
        fh.truncate(MAX_SERVICES_BYTES + 1)
    start = time.monotonic()
    run = _run("services", "--services", str(big), "443")
    assert time.monotonic() - start < 10
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and str(big) in lines[0] and "larger than 16 MiB" in lines[0], run.stderr
    run = _run("analyze", "--services", str(big), "-q", "/dev/null")
    assert run.returncode == 2 and "larger than 16 MiB" in run.stderr and "Traceback" not in run.stderr


LOOKUPS = """
import sys, time
from portwatch.services import load_services
start = time.monotonic()
db = load_services(sys.argv[1])
for _ in range(10_000):  # one lookup per flow
    names = db.names(443, "tcp")
print(len(names), len(db.by_name("x")[0].aliases), round(time.monotonic() - start, 2))
"""


def test_one_port_with_many_entries_is_linear(tmp_path: Path) -> None:
    """300,000 entries for 443/tcp, and one line of 100,000 aliases."""
    path = tmp_path / "services"
    with path.open("w") as fh:
        fh.write("".join(f"s{i} 443/tcp\n" for i in range(300_000)))
        fh.write("x 22/tcp " + " ".join(f"a{i}" for i in range(100_000)) + "\n")
    assert path.stat().st_size < MAX_SERVICES_BYTES
    # A child with a deadline: the quadratic lookup took hours here.
    out = subprocess.run([sys.executable, "-c", LOOKUPS, str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    names, aliases, seconds = out.stdout.split()
    assert (int(names), int(aliases)) == (MAX_PER_PORT, MAX_ALIASES)
    assert float(seconds) < 10
    run = _run("services", "--services", str(path), "443")
    assert run.returncode == 0 and len(run.stdout.splitlines()) == MAX_PER_PORT
    assert _child_peak_mb() < 200


def test_services_output_is_escaped(tmp_path: Path) -> None:
    path = tmp_path / "serv\x1b[2Jices"
    path.write_bytes(b"evil\x1b]0;pwned\x07\x1b[31m 443/tcp al\x1b[2Jias \xe2\x80\xaeiv\n")
    run = _run("services", "--services", str(path), "443")
    assert run.returncode == 0, run
    assert "\x1b" not in run.stdout and "\x07" not in run.stdout and "\u202e" not in run.stdout
    assert "evil\\x1b]0;pwned\\x07\\x1b[31m" in run.stdout and "al\\x1b[2Jias" in run.stdout
    assert "\\u202eiv" in run.stdout and "serv\\x1b[2Jices" in run.stdout
    run = _run("services", "--services", str(path), "8")
    assert run.returncode == 1 and "\x1b" not in run.stdout


def test_parse_errors_are_bounded() -> None:
    db = parse_services("bad\n" * 100_000)
    assert len(db.errors) == 1000 and db.errors_dropped == 99_000
