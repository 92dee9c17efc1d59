"""The core reads ahead on a thread of its own (`Analyzer.run_capture`): the same records, in the
same order, with the same counters as reading and draining a call at a time; an interruption
keeps every flow read; Ctrl-C is noticed while the caller waits for a batch."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portwatch import pipeline
from portwatch.pipeline import Analyzer, Config, Setup, open_capture

SETUP = None


def setup() -> Setup:
    global SETUP
    if SETUP is None:
        SETUP = Setup.load(Config())
    return SETUP


def in_turn(path: Path, workers: int, packets: int | None = None, classified: list | None = None
            ) -> tuple[list[dict], dict]:
    """Records and counters of the core driven a call at a time (`run`, then `drain`), with no
    thread of its own: the reference. `packets`: stop reading after so many."""
    records: list[dict] = []
    capture = open_capture(str(path))
    a = Analyzer(Config(), on_record=lambda r: records.append(r.as_dict()), setup=setup(),
                 on_classified=None if classified is None else (lambda r: classified.append(r.as_dict())),
                 pcap_name=capture.name, workers=workers)
    read = 0
    while not capture.done and (packets is None or read < packets):
        step = 1000 if packets is None else min(1000, packets - read)
        a._emit(a.core.run(capture, step))
        read += step
    while raws := a.core.drain(pipeline.DRAIN_RECORDS):
        a._emit(raws)
    return records, a.core.stats()


@pytest.mark.parametrize("workers", [1, 2])
def test_read_ahead_gives_the_records_and_counters_of_taking_turns(monkeypatch, generated, workers):
    monkeypatch.setattr(pipeline, "BATCH_PACKETS", 1000)
    records: list[dict] = []
    classified: list[dict] | None = [] if workers == 1 else None
    capture = open_capture(str(generated))
    a = Analyzer(Config(), on_record=lambda r: records.append(r.as_dict()), setup=setup(),
                 on_classified=None if classified is None else (lambda r: classified.append(r.as_dict())),
                 pcap_name=capture.name, workers=workers)
    a.run_capture(capture)
    assert capture.done
    stats = a.close()
    ref_classified: list[dict] | None = [] if workers == 1 else None
    ref, ref_stats = in_turn(generated, workers, classified=ref_classified)
    assert records == ref
    assert len(records) > 500
    assert a.core.stats() == ref_stats and stats.packets == 20000
    assert classified == ref_classified
    assert classified is None or len(classified) > 100
    assert a.live_flows == 0


def test_flows_one_sweep_ends_come_in_batches_of_max_records(monkeypatch, slow_link):
    """An idle sweep ends many flows at one packet: they come on in batches of at most
    `BATCH_RECORDS` (so that only a few batches of them are on their way at once), the same
    records in the same order."""
    monkeypatch.setattr(pipeline, "BATCH_RECORDS", 4)
    records: list[dict] = []
    sizes: list[int] = []
    capture = open_capture(str(slow_link))
    a = Analyzer(Config(), on_record=lambda r: records.append(r.as_dict()), setup=setup(), pcap_name=capture.name)
    emit = a._emit
    a._emit = lambda batch: (sizes.append(len(batch)), emit(batch))  # type: ignore[method-assign]
    a.run_capture(capture)
    read = list(sizes)
    a.close()
    ref, _ = in_turn(slow_link, 1)
    assert records == ref
    assert max(read) == 4 and sum(read) > 100


def test_while_reading_ahead_the_analyzer_takes_no_other_input(generated):
    capture = open_capture(str(generated))
    a = Analyzer(Config(), setup=setup(), pcap_name=capture.name)
    a.core.start(capture, 1000, 256)
    assert a.core.next_batch() is not None
    with pytest.raises(RuntimeError, match="running ahead"):
        a.core.run(capture, 10)
    with pytest.raises(RuntimeError, match="running ahead"):
        a.core.feed([])
    # Counters as of the batch taken: the thread may be further on.
    assert a.core.stats()["packets"] == 1000
    a.close()
    assert a.live_flows == 0 and a.core.stats()["packets"] >= 1000
    # Back in the caller's hands: it takes input again.
    assert a.core.feed([]) == []


def test_an_interruption_keeps_every_flow_read(generated):
    """Closing before the end (the CLI on Ctrl-C): reading stops a few chunks past the step under
    way (frames are decoded ahead: `core/src/predecode.rs`), every frame read is analysed, and
    the records are those of the packets read, every flow drained."""
    records: list[dict] = []
    capture = open_capture(str(generated))
    a = Analyzer(Config(), on_record=lambda r: records.append(r.as_dict()), setup=setup(),
                 pcap_name=capture.name)
    a.core.start(capture, 1000, 256, 1)
    a._emit(a.core.next_batch())
    stats = a.close()
    assert 1000 <= stats.packets < 20000
    ref, _ = in_turn(generated, 1, packets=stats.packets)
    assert records == ref
    assert a.live_flows == 0


SYNS = 40_000  # 2.2 MB


def _pcap_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)


def _syn(i: int) -> bytes:
    ts = 1_700_000_000 + i // 1000
    tcp = struct.pack("!HHIIBBHHH", 1024 + i, 443, 1, 0, 5 << 4, 0x02, 65535, 0, 0)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 1, 0, 64, 6, 0, b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02")
    frame = ip + tcp
    return struct.pack("<IIII", ts, 0, len(frame), len(frame)) + frame


WRITER = """
import select, shutil, sys
with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as fh:
    shutil.copyfileobj(src, fh)
    fh.flush()
    select.select([sys.stdin], [], [], 20)  # until the test lets go (or gives up)
"""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_ctrl_c_is_noticed_while_waiting_for_a_batch(tmp_path):
    """The core is blocked on a pipe that brings nothing more; SIGINT reaches the caller, which
    waits for a batch with the GIL released, as KeyboardInterrupt; closing then reports the flows
    read once the writer gives up."""
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    # More than the reader's window (it fills one before it hands anything over).
    frames = tmp_path / "frames.pcap"
    frames.write_bytes(_pcap_header() + b"".join(_syn(i) for i in range(SYNS)))
    # Another process: opening the pipe blocks the opener with the GIL held.
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(frames), str(fifo)], stdin=subprocess.PIPE)
    assert writer.stdin is not None
    records: list = []
    capture = open_capture(str(fifo))
    a = Analyzer(Config(), on_record=records.append, setup=setup(), pcap_name=capture.name)
    old = signal.signal(signal.SIGALRM, lambda *_: signal.raise_signal(signal.SIGINT))
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            a.run_capture(capture)
        assert time.monotonic() - started < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        writer.stdin.close()
        writer.wait(10)
    a.close()
    assert len(records) == SYNS
    assert a.live_flows == 0
