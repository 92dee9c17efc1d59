"""Progress on stderr: a rich bar on a terminal (pty), nothing in a pipe or with --quiet."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest
from conftest import CAPTURES, canonical

from portwatch import progress
from portwatch.capture.sources import CaptureSource
from portwatch.pipeline import Analyzer, Config, Setup


def stderr_on_pty(args: list[str], timeout: float = 60) -> tuple[int, str]:
    """Run portwatch with stderr on a pseudo-terminal; (exit status, what the terminal received)."""
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "160", "TERM": "xterm"}
    proc = subprocess.Popen([sys.executable, "-m", "portwatch", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(timeout=10), out.decode("utf-8", "replace")


def test_progress_bar_on_a_terminal(generated):
    rc, text = stderr_on_pty(["analyze", "--format", "jsonl", "-o", os.devnull, str(generated)])
    assert rc in (0, 1)
    assert "gen20k.pcap" in text
    assert "pkt/s" in text and "flows" in text
    assert "100%" in text
    mb = generated.stat().st_size / 1e6
    assert f"{mb:.1f}/{mb:.1f} MB" in text  # bytes read, of the file's size


def test_progress_bar_with_workers_on_a_terminal(generated):
    rc, text = stderr_on_pty(["analyze", "--format", "jsonl", "-o", os.devnull, "--workers", "2",
                              str(generated), str(CAPTURES[0])])
    assert rc in (0, 1)
    assert "gen20k.pcap" in text and CAPTURES[0].name in text
    assert "pkt/s" in text and "100%" in text


def test_quiet_silences_progress_on_a_terminal(generated):
    rc, text = stderr_on_pty(["analyze", "--format", "jsonl", "-o", os.devnull, "--quiet", str(generated)])
    assert rc in (0, 1)
    assert text == ""


def test_no_progress_when_stderr_is_not_a_terminal(generated):
    r = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "-o", os.devnull,
                        str(generated)], capture_output=True, timeout=60)
    assert r.returncode in (0, 1)
    assert r.stderr == b""


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_drive_in_slices_gives_the_same_records_and_counters(monkeypatch, generated, chunk):
    setup = Setup.load(Config())

    def run(tick_chunk: int | None) -> tuple[list[str], object, int]:
        records = []
        ticks = []
        with CaptureSource(generated) as src:
            a = Analyzer(Config(), on_record=records.append, setup=setup, pcap_name=src.name)
            if tick_chunk is None:
                progress.drive(a, src)
            else:
                monkeypatch.setattr(progress, "CHUNK_PACKETS", tick_chunk)
                progress.drive(a, src, lambda: ticks.append(a.stats.packets))
            stats = a.close()
        return canonical(records), stats, ticks

    ref, ref_stats, _ = run(None)
    got, stats, ticks = run(chunk if chunk > 1 else 1)
    assert got == ref
    assert stats == ref_stats
    assert ticks[-1] == 20000
    assert len(ticks) == -(-20000 // chunk) + 1  # one per slice, one at the end
    assert ticks == sorted(ticks)


def test_wanted_follows_quiet_and_terminal(tmp_path):
    with open(tmp_path / "log", "w") as fh:
        assert not progress.wanted(False, fh)
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as term:
            assert progress.wanted(False, term)
            assert not progress.wanted(True, term)
    finally:
        os.close(master)
        os.close(slave)
