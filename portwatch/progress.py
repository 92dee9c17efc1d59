"""Progress of long analyses: a rich progress bar on stderr, only when stderr is a terminal.

The per-packet loop is never touched. `drive` feeds `Analyzer.run` the capture in slices of
`CHUNK_PACKETS` records (run() keeps its state between calls), and between two slices the
caller's `tick` reads the counters: the source's bytes read, the analyzer's packets and open
flows. One slice is a fraction of a second of work, so the bar moves several times a second while
the loop itself runs exactly as without progress. The display is refreshed by rich's own timer
(`REFRESH_PER_SECOND`), not per update.

`ProgressView` shows one row per capture; a capture split across processes (`--workers`,
`--dask`) is one row fed by all its shards, each of which reads the whole file.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # rich is imported when a bar is shown: a quiet or piped run never needs it
    from rich.progress import TaskID

# Frames per slice when Python feeds frames (replays, tests): a slice costs one run() call, a few
# microseconds, and takes a fraction of a second, so the bar moves several times a second.
CHUNK_PACKETS = 1 << 13
REFRESH_PER_SECOND = 4
MAX_ROWS = 8  # beyond this many captures, finished rows are hidden


def wanted(quiet: bool, stream: TextIO | None = None) -> bool:
    """Show progress? Not with --quiet, and only on a terminal (never into a log file or a pipe)."""
    if quiet:
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):  # a replaced stream (pytest, StringIO) has no fd
        return False


def drive(analyzer: Any, records: Iterable[Any], tick: Callable[[], None] | None = None) -> None:
    """`analyzer.run(records)`, calling `tick()` every `CHUNK_PACKETS` records (and at the end)."""
    if tick is None:
        analyzer.run(records)
        return
    it: Iterator[Any] = iter(records)
    while True:
        first = next(it, None)  # peek: the end is known without relying on any counter of run()
        if first is None:
            break
        analyzer.run(chain((first,), islice(it, CHUNK_PACKETS - 1)))
        tick()
    tick()


@dataclass(slots=True)
class _Row:
    task: TaskID
    shards: int
    started: float
    size: int
    bytes_read: dict[int, int] = field(default_factory=dict)
    packets: dict[int, int] = field(default_factory=dict)
    open_flows: dict[int, int] = field(default_factory=dict)
    done_shards: set[int] = field(default_factory=set)
    records: int = 0


def _rate(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"


class ProgressView:
    """Rows of (capture: bytes read, packets/s, flows) on a rich Progress; a context manager.

    `add` a capture with its size and shard count, `update` it from any shard's counters,
    `record` each flow reported, `finish` a shard. Shards read the whole file each: the row's
    bytes are the mean over shards, its packets those of the file (not multiplied by shards).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream if stream is not None else sys.stderr, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            DownloadColumn(),
            TextColumn("{task.fields[pps]} pkt/s"),
            TextColumn("{task.fields[flows]} flows"),
            TimeElapsedColumn(),
            console=self.console,
            refresh_per_second=REFRESH_PER_SECOND,
            transient=False,
        )
        self.rows: dict[str, _Row] = {}

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the live display (drawing the final state); calling it again does nothing."""
        self.progress.stop()

    def add(self, key: str, name: str, size: int | None, shards: int = 1) -> None:
        task = self.progress.add_task(name, total=size or None, pps="0", flows="0")
        self.rows[key] = _Row(task, shards, time.monotonic(), size or 0)

    def update(self, key: str, shard: int, bytes_read: int, packets: int, open_flows: int) -> None:
        row = self.rows[key]
        row.bytes_read[shard] = bytes_read
        row.packets[shard] = packets
        row.open_flows[shard] = open_flows
        self._show(row)

    def record(self, key: str, n: int = 1) -> None:
        self.rows[key].records += n

    def finish(self, key: str, shard: int) -> None:
        row = self.rows[key]
        row.done_shards.add(shard)
        row.open_flows[shard] = 0
        if len(row.done_shards) == row.shards and row.size:
            row.bytes_read = dict.fromkeys(range(row.shards), row.size)
        self._show(row)
        if len(row.done_shards) == row.shards and len(self.rows) > MAX_ROWS:
            self.progress.update(row.task, visible=False)

    def track(self, key: str, source: Any, analyzer: Any) -> Callable[[], None]:
        """A row for one capture analyzed in this process; returns the `tick` for `drive`.

        Flows reported are counted by wrapping the analyzer's record callback (once per flow, not
        per packet).
        """
        self.add(key, source.name, source.size)
        report = analyzer.on_record

        def counted(rec: Any) -> None:
            self.rows[key].records += 1
            report(rec)

        analyzer.on_record = counted

        def tick() -> None:
            self.update(key, 0, source.bytes_read, analyzer.stats.packets, analyzer.live_flows)

        return tick

    def _show(self, row: _Row) -> None:
        # Every shard reads every packet of the file: the file's packets are the furthest shard's.
        packets = max(row.packets.values(), default=0)
        elapsed = max(time.monotonic() - row.started, 1e-6)
        self.progress.update(
            row.task,
            completed=sum(row.bytes_read.values()) // row.shards,
            pps=_rate(packets / elapsed),
            flows=f"{row.records + sum(row.open_flows.values()):,}",
        )
