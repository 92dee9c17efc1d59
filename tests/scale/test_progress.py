"""Progress on stderr: a rich bar on a terminal (pty), nothing in a pipe or with --quiet."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest
from conftest import CAPTURES

from portwatch import pipeline, progress
from portwatch.pipeline import Analyzer, Config, Setup, open_capture


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


@pytest.mark.parametrize(("chunk", "workers"), [(1, 1), (7, 1), (1000, 1), (7, 2), (1000, 2)])
def test_run_in_slices_gives_the_same_records_and_counters(monkeypatch, generated, chunk, workers):
    """The core reads `BATCH_PACKETS` packets a call and `run_capture` ticks after each (the
    progress bar's refresh): the slicing changes nothing but how often it ticks."""
    setup = Setup.load(Config())

    def run(batch: int | None) -> tuple[list[dict], object, list[int]]:
        records: list[dict] = []
        ticks: list[int] = []
        capture = open_capture(str(generated))
        a = Analyzer(Config(), on_record=lambda r: records.append(r.as_dict()), setup=setup,
                     pcap_name=capture.name, workers=workers)
        if batch is None:
            a.run_capture(capture)
        else:
            monkeypatch.setattr(pipeline, "BATCH_PACKETS", batch)
            a.run_capture(capture, lambda: ticks.append(a.stats.packets))
        stats = a.close()
        return records, stats, ticks

    ref, ref_stats, _ = run(None)
    got, stats, ticks = run(chunk)
    assert got == ref
    assert stats == ref_stats
    assert ticks[-1] == 20000
    assert len(ticks) == 20000 // chunk + 1  # one per full slice, one for the slice that found the end
    assert ticks == sorted(ticks)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_ends_once_its_records_reach_the_bound(monkeypatch, slow_link, workers):
    """A batch also ends once `BATCH_RECORDS` flows ended in it (a slow link's idle sweeps end
    thousands in a few packets): more batches, the same records and counters."""
    setup = Setup.load(Config())
    monkeypatch.setattr(pipeline, "BATCH_PACKETS", 1_000_000)

    def run(max_records: int) -> tuple[list[dict], object, list[int]]:
        monkeypatch.setattr(pipeline, "BATCH_RECORDS", max_records)
        records: list[dict] = []
        ticks: list[int] = []
        capture = open_capture(str(slow_link))
        a = Analyzer(Config(), on_record=lambda r: records.append(r.as_dict()), setup=setup,
                     pcap_name=capture.name, workers=workers)
        a.run_capture(capture, lambda: ticks.append(len(records)))
        return records, a.close(), ticks

    ref, ref_stats, ref_ticks = run(10**9)
    got, stats, ticks = run(2)
    assert len(ref_ticks) == 1  # the whole capture in one batch
    assert len(ticks) > 10
    assert got == ref
    assert stats == ref_stats


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
