"""Many cores and clusters: captures in parallel, and one capture split across processes by flow hash.

A *task* is (capture, shard i of n). An `Analyzer` with `Config.shard_count = n` and
`shard_index = i` keeps only the flows whose direction-independent hash (`flows.shard_of`) is i;
every shard reads the whole file, so file-level counters (packets, bytes, malformed...) are the
same in each shard and are counted once when shards are merged. The union of the shards' records
is the single-process run's, flow for flow, as long as no flow table overflows (each shard gets
`max_flows / n`; which flow an overflow evicts then depends on the split).

Two executors with one task function (`run_task`):

* `run_local`: N forked worker processes pull tasks from a queue and stream records back in
  batches through a bounded queue, so the parent's memory stays bounded by a few batches however
  long the capture.
* `run_dask`: one Dask task per (capture, shard) on a `distributed` cluster; the workers must
  see the captures at the same paths (a shared filesystem) and have portwatch installed. Records
  come back per task (a shard holds 1/n of a capture's flows).

Records reach the caller's `on_record` as `FlowRecord`s in completion order (not the single
run's order; sort when comparing).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue as queue_mod
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .capture.sources import CaptureError, CaptureSource
from .model import CaptureStats, FlowRecord
from .pipeline import Analyzer, Config, Setup
from .progress import ProgressView, drive

SPLIT_MIN_BYTES = 4 << 20  # smaller captures are not worth reading N times (a few ms each)
BATCH = 512  # records per message from a worker
QUEUE_BATCHES = 8  # bound on batches in flight: the parent's memory for records in transit
PROGRESS_EVERY = 0.25  # seconds between progress messages from a worker
# Counters every shard sees in full (they are counted before the shard test): taken from one shard.
FILE_COUNTERS = ("packets", "bytes", "malformed", "non_ip", "fragments", "fragments_dropped", "unsupported_link")

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
            with CaptureSource(path) as src:
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


# ---- the task itself (runs in a worker process, local or Dask) ---------------------------------
def run_task(
    setup: Setup,
    config: Config,
    task: Task,
    on_batch: Callable[[list[FlowRecord]], None],
    on_progress: Callable[[int, int, int], None] | None = None,
) -> CaptureStats:
    """Analyze one shard of one capture; records go to `on_batch` in lists of up to `BATCH`."""
    batch: list[FlowRecord] = []

    def sink(rec: FlowRecord) -> None:
        batch.append(rec)
        if len(batch) >= BATCH:
            on_batch(batch[:])
            batch.clear()

    with CaptureSource(task.path) as source:
        analyzer = Analyzer(shard_config(config, task), on_record=sink, setup=setup, pcap_name=source.name)
        # In a big capture file, the other shards' packets (and settled flows') are counted a chunk at
        # a time; they never reach the per-packet loop (portwatch.batch).
        records = analyzer.records_of(source)
        tick = None
        if on_progress is not None:
            last = [0.0]

            def tick() -> None:
                now = time.monotonic()
                if now - last[0] >= PROGRESS_EVERY:
                    last[0] = now
                    on_progress(source.bytes_read, analyzer.stats.packets, len(analyzer.table.order))

        drive(analyzer, records, tick)
        stats = analyzer.close()
    if batch:
        on_batch(batch[:])
    stats.error = source.stats.error
    stats.malformed += source.stats.malformed
    return stats


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


# ---- local processes --------------------------------------------------------------------------
def _worker(setup: Setup, config: Config, tasks: Any, results: Any, progress: bool) -> None:
    try:
        while True:
            item = tasks.get()
            if item is None:
                return
            tid, task = item

            def on_batch(recs: list[FlowRecord], tid: int = tid) -> None:
                results.put(("records", tid, recs))

            def on_progress(b: int, p: int, f: int, tid: int = tid) -> None:
                results.put(("progress", tid, (b, p, f)))

            try:
                stats = run_task(setup, config, task, on_batch, on_progress if progress else None)
            except Exception as exc:  # one bad task must not take the run down without a word
                results.put(("failed", tid, f"{task.name}: worker failed: {exc!r}\n{traceback.format_exc()}"))
                continue
            results.put(("done", tid, stats))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the parent reports it
        return


def _context() -> Any:
    # fork: workers inherit the loaded Setup and start in milliseconds. The parent forks before it
    # starts any thread of its own (progress display, queue feeders).
    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else "spawn")


def run_local(
    paths: Sequence[str],
    setup: Setup,
    config: Config,
    on_record: RecordSink,
    workers: int,
    show_progress: bool = False,
    split_min_bytes: int = SPLIT_MIN_BYTES,
) -> list[CaptureResult]:
    """Analyze `paths` with up to `workers` processes; per-capture results in the order of `paths`.

    Raises KeyboardInterrupt after stopping the workers when interrupted.
    """
    if workers < 1:
        raise ParallelError("--workers must be at least 1")
    tasks, results_list = plan(paths, workers, split_min_bytes)
    if not tasks:
        return results_list
    ctx = _context()
    task_q = ctx.SimpleQueue()
    result_q = ctx.Queue(maxsize=QUEUE_BATCHES)
    n = min(workers, len(tasks))
    procs = [ctx.Process(target=_worker, args=(setup, config, task_q, result_q, show_progress), daemon=True)
             for _ in range(n)]
    for p in procs:
        p.start()
    for item in [*enumerate(tasks), *([None] * n)]:
        task_q.put(item)
    done: dict[Task, CaptureStats] = {}
    failures: dict[Task, str] = {}
    try:
        with _view(show_progress, tasks) as view:
            for kind, tid, payload in _messages(result_q, procs, len(tasks)):
                task = tasks[tid]
                if kind == "records":
                    for rec in payload:
                        on_record(rec)
                    if view is not None:
                        view.record(task.key, len(payload))
                elif kind == "progress":
                    if view is not None:
                        view.update(task.key, task.shard_index, *payload)
                elif kind == "done":
                    done[task] = payload
                    if view is not None:
                        view.finish(task.key, task.shard_index)
                else:
                    failures[task] = payload
    except BaseException:
        for p in procs:
            p.terminate()
        raise
    finally:
        for p in procs:
            p.join(timeout=5)
    results_list.extend(_results(tasks, done, failures))
    return _in_order(results_list)


def _messages(result_q: Any, procs: list[Any], n_tasks: int) -> Iterator[tuple[str, int, Any]]:
    """Worker messages until every task is done or failed; a worker that died is a failure."""
    finished = 0
    while finished < n_tasks:
        try:
            msg = result_q.get(timeout=1.0)
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs):
                # Drain what the last worker sent before it went, then give up on the rest.
                try:
                    while True:
                        msg = result_q.get(timeout=0.2)
                        if msg[0] in ("done", "failed"):
                            finished += 1
                        yield msg
                except queue_mod.Empty:
                    pass
                dead = [p.exitcode for p in procs]
                raise ParallelError(f"worker processes exited early (exit codes {dead})") from None
            continue
        if msg[0] in ("done", "failed"):
            finished += 1
        yield msg


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
def _dask_task(setup: Setup, config: Config, task: Task) -> TaskResult:
    """Runs on a Dask worker: one shard of one capture, records returned with the counters."""
    records: list[FlowRecord] = []
    stats = run_task(setup, config, task, records.extend)
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
            # One copy of the signatures, services and policy per worker, not one per task.
            setup_f = client.scatter(setup, broadcast=True)
            futures = {client.submit(_dask_task, setup_f, config, t, key=f"portwatch-{i}-{t.name}-{t.shard_index}",
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
    """`run_dask` when `dask` is given, else `run_local` with `workers` processes."""
    if dask:
        return run_dask(paths, setup, config, on_record, dask, workers if workers > 1 else None, show_progress,
                        split_min_bytes)
    return run_local(paths, setup, config, on_record, workers, show_progress, split_min_bytes)
