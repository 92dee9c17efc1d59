"""A hostile services(5) file (issue "Hostile input, second round", items 8 and 9).

A 158 MB `--services` file took 162 s and 3.4 GB (one port with a million entries made every
lookup quadratic); `portwatch services` printed names and aliases raw, escape sequences and all.
Now the file is capped (16 MiB: a clear error, exit 2), entries per port and aliases per line are
bounded, lookups are linear, and every name is escaped before it reaches the terminal.
"""

from __future__ import annotations

import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from portwatch.services import (
    MAX_ALIASES,
    MAX_PER_PORT,
    MAX_SERVICES_BYTES,
    load_services,
    parse_services,
    read_services_file,
)

PW = [sys.executable, "-m", "portwatch"]


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PW, *args], capture_output=True, text=True, timeout=timeout)


# Runs the command it is given as its only child and writes that child's peak memory (KiB) to a file. The
# test cannot measure it itself: Linux keeps a child's high-water mark from before its exec, i.e. the forking
# process's memory (pytest's: a few hundred MB once pandas and a Jupyter client are loaded), and
# RUSAGE_CHILDREN is the peak of every child the test process ever waited for.
PEAK = """
import resource, subprocess, sys
peak_file, timeout, *argv = sys.argv[1:]
done = subprocess.run(argv, timeout=float(timeout))
with open(peak_file, "w") as fh:
    fh.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(done.returncode)
"""


def _run_peak(argv: list[str], peak_file: Path, timeout: float) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `argv`: its result and its own peak memory in MB, whatever else the test process ran."""
    done = subprocess.run([sys.executable, "-c", PEAK, str(peak_file), str(timeout), *argv], capture_output=True,
                          text=True, timeout=timeout + 30)
    return done, int(peak_file.read_text()) / 1024


def test_a_small_services_file_costs_its_size_not_the_cap(tmp_path: Path) -> None:
    """read(cap + 1) allocated the whole 16 MB cap for a 12 KB file; chunks cost what is read."""
    small = tmp_path / "services"
    small.write_text("ssh 22/tcp\n" * 1000)
    tracemalloc.start()
    try:
        db = load_services(small)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert db.names(22, "tcp") == ["ssh"]
    assert peak < 2 << 20, peak
    # Exactly the cap is still read whole; one byte more is refused (the test below).
    exact = tmp_path / "exact"
    with exact.open("wb") as fh:
        fh.write(b"x 1/tcp\n")
        fh.truncate(MAX_SERVICES_BYTES)
    assert len(read_services_file(exact).encode()) == MAX_SERVICES_BYTES


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


# Two sizes timed in the same child, best of several each: the ratio says linear or quadratic whatever
# the machine's load (an absolute deadline failed on a busy 2-core runner while the code was linear).
TIMINGS = """
import gc, sys, time
from portwatch.services import load_services

def best(fn, runs):
    times = []
    for _ in range(runs):
        gc.collect()
        gc.disable()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        gc.enable()
    return min(times)

def lookups(db):
    for _ in range(20_000):  # one lookup per flow
        db.names(443, "tcp")

out = []
for path in sys.argv[1:]:
    out.append(best(lambda: load_services(path), 3))
    db = load_services(path)
    out.append(best(lambda: lookups(db), 5))
    out += [len(db.names(443, "tcp")), len(db.by_name("x")[0].aliases)]
    del db
print(*out)
"""


def _hostile_services(path: Path, entries: int, aliases: int) -> Path:
    """`entries` entries for 443/tcp, and one line of `aliases` aliases."""
    with path.open("w") as fh:
        fh.write("".join(f"s{i} 443/tcp\n" for i in range(entries)))
        fh.write("x 22/tcp " + " ".join(f"a{i}" for i in range(aliases)) + "\n")
    return path


def test_one_port_with_many_entries_is_linear(tmp_path: Path) -> None:
    """300,000 entries for 443/tcp and one line of 100,000 aliases, against a tenth of that."""
    small = _hostile_services(tmp_path / "small", 30_000, 10_000)
    path = _hostile_services(tmp_path / "services", 300_000, 100_000)
    assert path.stat().st_size < MAX_SERVICES_BYTES
    # A child with a deadline: the quadratic lookup took hours here.
    out, timing_mb = _run_peak([sys.executable, "-c", TIMINGS, str(small), str(path)], tmp_path / "peak", 120)
    assert out.returncode == 0, out.stderr
    load_small, look_small, *bounded_small, load_big, look_big, names, aliases = out.stdout.split()
    assert [int(v) for v in bounded_small] == [MAX_PER_PORT, MAX_ALIASES]
    assert (int(names), int(aliases)) == (MAX_PER_PORT, MAX_ALIASES)
    # Ten times the file: about ten times the parse (quadratic would be a hundred), and the same lookups
    # (each is a dictionary hit on a bounded list; a scan of the port's entries would be ten times slower).
    load_ratio, look_ratio = float(load_big) / float(load_small), float(look_big) / float(look_small)
    assert load_ratio < 30, out.stdout
    assert look_ratio < 3, out.stdout
    run, services_mb = _run_peak([*PW, "services", "--services", str(path), "443"], tmp_path / "peak", 60)
    assert run.returncode == 0 and len(run.stdout.splitlines()) == MAX_PER_PORT
    assert timing_mb < 200 and services_mb < 200, (timing_mb, services_mb)


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
