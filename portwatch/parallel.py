"""Clusters: captures, and shards of a large capture, spread over a Dask cluster.

In one process `--workers N` is N threads in the core (portwatch._core), the file read once;
this module spreads work over machines. A *task* is (capture, shard i of n): an `Analyzer` with
`Config.shard_count = n` and `shard_index = i` keeps only the flows whose direction-independent
hash is i; every shard reads the whole file, so file-level counters (packets, bytes,
malformed...) are the same in each shard and are counted once when shards are merged. The union
of the shards' records is the single run's, flow for flow, as long as no flow table overflows
(each shard gets `max_flows / n`).

One Dask task per (capture, shard) on a `distributed` cluster; the workers must see the captures
at the same paths (a shared filesystem) and have portwatch installed. Each worker loads the
signatures, services and policy once (the core's engine is built there, not shipped). Records
come back per task, in completion order (not the single run's order; sort when comparing).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .model import CaptureStats, FlowRecord
from .pipeline import CaptureError, Config, Setup, analyze_path, open_capture
from .progress import ProgressView

SPLIT_MIN_BYTES = 4 << 20  # smaller captures are not worth reading N times (a few ms each)
# Counters every shard sees in full (they are counted before the shard test): taken from one shard.
FILE_COUNTERS = ("packets", "bytes", "malformed", "non_ip", "fragments", "fragments_dropped", "unsupported_link",
                 "filtered", "encrypted_frames")

RecordSink = Callable[[FlowRecord], None]


class ParallelError(Exception):
    """The parallel run cannot start (bad option, no Dask, standard input)."""


@dataclass(slots=True, frozen=True)
class Task:
    index: int  # position of the capture on the command line: its identity (a path may repeat)
    path: str
    name: str
    size: int | None
    shard_index: int = 0
    shard_count: int = 1

    @property
    def key(self) -> str:
        return str(self.index)


@dataclass(slots=True)
class TaskResult:
    task: Task
    stats: CaptureStats
    records: list[FlowRecord] = field(default_factory=list)  # Dask only: local runs stream them


@dataclass(slots=True)
class CaptureResult:
    """One capture of the run: its name, its merged counters, and why reading stopped early (if)."""

    index: int
    path: str
    name: str
    stats: CaptureStats
    errors: list[str] = field(default_factory=list)


# ---- planning ---------------------------------------------------------------------------------
def plan(
    paths: Sequence[str], slots: int, split_min_bytes: int = SPLIT_MIN_BYTES
) -> tuple[list[Task], list[CaptureResult]]:
    """Tasks for `paths` on `slots` parallel workers, and a result for each capture that cannot be opened.

    Captures are opened here (magic check only) so a bad file is one error, not one per shard.
    When there are fewer captures than slots, each capture of at least `split_min_bytes` is split
    into ceil(slots / captures) shards.
    """
    if "-" in paths:
        raise ParallelError("standard input ('-') cannot be shared between workers; give files, or no --workers/--dask")
    good: list[tuple[int, str, str, int | None]] = []
    failed: list[CaptureResult] = []
    for index, path in enumerate(paths):
        try:
            src = open_capture(path)
            good.append((index, path, src.name, src.size))
        except CaptureError as exc:
            failed.append(CaptureResult(index, path, os.path.basename(path), CaptureStats(), [str(exc)]))
    shards = max(1, math.ceil(slots / len(good))) if good else 1
    tasks: list[Task] = []
    for index, path, name, size in good:
        n = shards if (size or 0) >= split_min_bytes else 1
        tasks.extend(Task(index, path, name, size, i, n) for i in range(n))
    # Biggest first: a long task started last would leave the other workers idle at the end.
    tasks.sort(key=lambda t: -(t.size or 0))
    return tasks, failed


def shard_config(config: Config, task: Task) -> Config:
    if task.shard_count == 1:
        return config
    return replace(config, shard_index=task.shard_index, shard_count=task.shard_count,
                   max_flows=max(16, -(-config.max_flows // task.shard_count)))


# ---- the task itself (runs on a Dask worker) ------------------------------------------------
def run_task(setup: Setup, config: Config, task: Task, on_record: Callable[[FlowRecord], None]) -> CaptureStats:
    """Analyze one shard of one capture."""
    return analyze_path(task.path, setup, shard_config(config, task), on_record)


def merge_stats(shards: Sequence[CaptureStats]) -> CaptureStats:
    """One capture's counters from its shards': file counters once, flow-table counters summed."""
    out = CaptureStats()
    first = shards[0]
    for name in FILE_COUNTERS:
        setattr(out, name, getattr(first, name))
    out.flows_evicted = sum(s.flows_evicted for s in shards)
    out.error = next((s.error for s in shards if s.error), None)
    return out


def _results(tasks: Sequence[Task], done: dict[Task, CaptureStats], failures: dict[Task, str]) -> list[CaptureResult]:
    by_capture: dict[str, list[Task]] = {}
    for t in tasks:
        by_capture.setdefault(t.key, []).append(t)
    out = []
    for shard_tasks in by_capture.values():
        t0 = shard_tasks[0]
        stats = [done[t] for t in shard_tasks if t in done]
        errors = [failures[t] for t in shard_tasks if t in failures]
        merged = merge_stats(stats) if stats else CaptureStats()
        if merged.error:
            errors.insert(0, merged.error)
        elif merged.packets and merged.unsupported_link == merged.packets:
            errors.append(f"{t0.name}: unsupported link type, no packet could be decoded")
        out.append(CaptureResult(t0.index, t0.path, t0.name, merged, list(dict.fromkeys(errors))))
    return out


def _in_order(results: list[CaptureResult]) -> list[CaptureResult]:
    return sorted(results, key=lambda r: r.index)


class _NoView:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _view(show: bool, tasks: Sequence[Task]) -> Any:
    if not show:
        return _NoView()
    view = ProgressView()
    for t in tasks:
        if t.key not in view.rows:
            view.add(t.key, t.name, t.size, t.shard_count)
    return view


# ---- Dask ------------------------------------------------------------------------------------
_SETUPS: dict[str, Setup] = {}  # per worker process: the Setup of each Config seen


def _worker_setup(config: Config) -> Setup:
    key = repr(config)
    setup = _SETUPS.get(key)
    if setup is None:
        setup = _SETUPS[key] = Setup.load(config)
    return setup


def _dask_task(config: Config, task: Task) -> TaskResult:
    """Runs on a Dask worker: one shard of one capture, records returned with the counters."""
    records: list[FlowRecord] = []
    stats = run_task(_worker_setup(config), config, task, records.append)
    return TaskResult(task, stats, records)


def _client(dask: Any) -> tuple[Any, bool]:
    """A distributed.Client for `dask` (a scheduler address, or a Client), and whether we own it."""
    try:
        from distributed import Client
    except ImportError:
        raise ParallelError("--dask needs the 'distributed' package: pip install 'portwatch[scale]'") from None
    if isinstance(dask, Client):
        return dask, False
    try:
        # Connect timeout: Dask's own setting (distributed.comm.timeouts.connect, default 30 s).
        return Client(str(dask)), True
    except (OSError, TimeoutError) as exc:
        raise ParallelError(f"cannot reach the Dask scheduler at {dask}: {exc}") from None


def run_dask(
    paths: Sequence[str],
    setup: Setup,
    config: Config,
    on_record: RecordSink,
    dask: Any,
    workers: int | None = None,
    show_progress: bool = False,
    split_min_bytes: int = SPLIT_MIN_BYTES,
) -> list[CaptureResult]:
    """Analyze `paths` on a Dask cluster (`dask`: scheduler address like tcp://host:8786, or a Client).

    Captures are split into shards so that there are about `workers` tasks (default: the
    cluster's total worker threads). The captures must be readable at the same paths on the
    workers. Records go to `on_record` as each task finishes.
    """
    from distributed import as_completed

    client, owned = _client(dask)
    try:
        slots = workers if workers and workers > 1 else max(1, sum(client.nthreads().values()))
        # Absolute paths: the workers' current directory is not ours.
        tasks, results_list = plan([os.path.abspath(p) for p in paths], slots, split_min_bytes)
        done: dict[Task, CaptureStats] = {}
        failures: dict[Task, str] = {}
        if tasks:
            futures = {client.submit(_dask_task, config, t, key=f"portwatch-{i}-{t.name}-{t.shard_index}",
                                     pure=False): t for i, t in enumerate(tasks)}
            with _view(show_progress, tasks) as view:
                for fut in as_completed(futures):
                    task = futures[fut]
                    try:
                        res: TaskResult = fut.result()
                    except Exception as exc:
                        failures[task] = f"{task.name}: dask task failed: {exc!r}"
                        continue
                    finally:
                        fut.release()
                    for rec in res.records:
                        on_record(rec)
                    done[task] = res.stats
                    if view is not None:
                        view.record(task.key, len(res.records))
                        view.finish(task.key, task.shard_index)
        results_list.extend(_results(tasks, done, failures))
        return _in_order(results_list)
    finally:
        if owned:
            client.close()


def run(
    paths: Sequence[str],
    setup: Setup,
    config: Config,
    on_record: RecordSink,
    workers: int = 1,
    dask: Any = None,
    show_progress: bool = False,
    split_min_bytes: int = SPLIT_MIN_BYTES,
) -> list[CaptureResult]:
    """`run_dask` over the cluster `dask` (local runs use the core's threads: `Analyzer(workers=N)`)."""
    if not dask:
        raise ParallelError("no Dask scheduler given")
    return run_dask(paths, setup, config, on_record, dask, workers if workers > 1 else None, show_progress,
                    split_min_bytes)
