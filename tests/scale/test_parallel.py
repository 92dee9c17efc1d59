"""--workers: captures in parallel and one capture split by flow hash give the single run's records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CAPTURES, canonical

from portwatch import parallel
from portwatch.capture.sources import CaptureSource
from portwatch.model import CaptureStats
from portwatch.pipeline import Analyzer, Config, Setup

CONFIG = Config()


@pytest.fixture(scope="module")
def setup() -> Setup:
    return Setup.load(CONFIG)


def single(setup: Setup, paths: list[Path], config: Config = CONFIG) -> tuple[list[str], list[CaptureStats]]:
    records, stats = [], []
    for p in paths:
        with CaptureSource(p) as src:
            a = Analyzer(config, on_record=records.append, setup=setup, pcap_name=src.name)
            a.run(src)
            s = a.close()
            s.malformed += src.stats.malformed
            stats.append(s)
    return canonical(records), stats


def test_every_real_capture_split_in_2_and_3_matches_single(setup):
    for path in CAPTURES:
        ref, (ref_stats,) = single(setup, [path])
        for workers in (2, 3):
            got = []
            (res,) = parallel.run_local([str(path)], setup, CONFIG, got.append, workers, split_min_bytes=0)
            assert canonical(got) == ref, f"{path.name} with {workers} shards"
            assert res.stats.packets == ref_stats.packets  # counted once, not once per shard
            assert res.stats.bytes == ref_stats.bytes
            assert res.errors == []


def test_generated_capture_split_matches_single(setup, generated):
    ref, (ref_stats,) = single(setup, [generated])
    assert len(ref) > 500
    got = []
    (res,) = parallel.run_local([str(generated)], setup, CONFIG, got.append, 2)  # 15 MB: split by default
    assert canonical(got) == ref
    assert res.stats.packets == ref_stats.packets == 20000
    assert res.stats.bytes == ref_stats.bytes
    assert res.stats.other_shard == 0


def test_shards_partition_the_flows(setup, generated):
    """Each shard analyzes its own flows and counts the others' packets in other_shard."""
    owned = 0
    shard_records = []
    for i in range(3):
        cfg = Config(shard_index=i, shard_count=3)
        recs, (stats,) = single(setup, [generated], cfg)
        assert len(recs) > 0
        assert stats.packets == 20000
        assert 0 < stats.other_shard < 20000
        owned += stats.packets - stats.other_shard
        shard_records.append(set(recs))
    assert owned == 20000  # every packet belongs to exactly one shard
    assert not (shard_records[0] & shard_records[1]) and not (shard_records[1] & shard_records[2])


def test_remembered_foreign_keys_stay_bounded(setup, generated, monkeypatch):
    # A shard remembers other shards' flow keys to skip their packets cheaply; the set is cleared
    # when full, which must change nothing but the cost.
    import portwatch.pipeline as pipeline

    unbounded = single(setup, [generated], Config(shard_index=1, shard_count=2))
    monkeypatch.setattr(pipeline, "FOREIGN_KEYS", 8)
    seen = []
    original = pipeline.Analyzer._foreign

    def watch(self, key):
        seen.append(len(self.foreign))
        return original(self, key)

    monkeypatch.setattr(pipeline.Analyzer, "_foreign", watch)
    bounded = single(setup, [generated], Config(shard_index=1, shard_count=2))
    assert max(seen) <= 8 and len(seen) > 100
    assert bounded[0] == unbounded[0]
    assert bounded[1][0].other_shard == unbounded[1][0].other_shard


def test_many_captures_in_parallel_match_single(setup, generated):
    paths = [*CAPTURES, generated]
    ref, ref_stats = single(setup, paths)
    got = []
    results = parallel.run_local([str(p) for p in paths], setup, CONFIG, got.append, 2)
    assert canonical(got) == ref
    assert [r.name for r in results] == [p.name for p in paths]
    assert [r.stats.packets for r in results] == [s.packets for s in ref_stats]


def test_plan_splits_only_when_workers_outnumber_captures(generated):
    tasks, failed = parallel.plan([str(generated)], 4)
    assert failed == []
    assert sorted(t.shard_index for t in tasks) == [0, 1, 2, 3]
    assert {t.shard_count for t in tasks} == {4}
    small = [str(p) for p in CAPTURES[:3]]
    tasks, _ = parallel.plan(small, 4)  # small files are not worth reading four times
    assert len(tasks) == 3 and {t.shard_count for t in tasks} == {1}
    tasks, _ = parallel.plan([str(generated), str(generated)], 4)
    assert len(tasks) == 4 and {t.shard_count for t in tasks} == {2}


def test_merge_counts_file_counters_once_and_sums_evictions():
    a = CaptureStats(packets=10, bytes=100, malformed=1, flows_evicted=2, other_shard=4)
    b = CaptureStats(packets=10, bytes=100, malformed=1, flows_evicted=3, other_shard=6)
    m = parallel.merge_stats([a, b])
    assert (m.packets, m.bytes, m.malformed, m.flows_evicted, m.other_shard) == (10, 100, 1, 5, 0)


def test_unreadable_capture_is_one_error_and_the_rest_runs(setup, tmp_path, generated):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    got = []
    results = parallel.run_local([str(bad), str(generated)], setup, CONFIG, got.append, 2)
    assert len(results[0].errors) == 1 and "not a pcap" in results[0].errors[0]
    assert results[1].errors == [] and results[1].stats.packets == 20000
    assert got


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "portwatch", "analyze", *args], capture_output=True, text=True,
                          timeout=120)


def test_cli_workers_output_equals_single_process(tmp_path, generated):
    paths = [str(generated), *(str(p) for p in CAPTURES[:6])]
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    r1 = run_cli("--format", "jsonl", "-o", str(one), *paths)
    r2 = run_cli("--format", "jsonl", "-o", str(two), "--workers", "2", *paths)
    assert r1.returncode == r2.returncode
    assert r2.returncode in (0, 1), r2.stderr
    assert canonical(two.read_text().splitlines()) == canonical(one.read_text().splitlines())
    c1 = run_cli("--quiet", *paths)
    c2 = run_cli("--quiet", "--workers", "3", *paths)
    assert c1.stdout == c2.stdout  # the console summary (counts, findings) is the same


def test_cli_workers_refuses_stdin(generated):
    with open(generated, "rb") as stdin:
        r = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--workers", "2", "-"],
                           stdin=stdin, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "standard input" in r.stderr


def test_api_workers_equals_single(generated):
    import portwatch

    paths = [generated, *CAPTURES[:4]]
    a = portwatch.analyze(paths, progress=False)
    b = portwatch.analyze(paths, progress=False, workers=2)
    assert len(a.flows) == len(b.flows) > 500
    order = ["ts_start", "pcap", "src_ip", "src_port", "dst_ip", "dst_port", "transport"]
    fa = a.flows.sort_values(order).reset_index(drop=True)
    fb = b.flows.sort_values(order).reset_index(drop=True)
    assert fa.equals(fb)
    assert a.stats == b.stats


def test_a_failing_task_is_an_error_of_its_capture(monkeypatch, setup, generated):
    def boom(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(parallel, "run_task", boom)  # the forked workers inherit the patch
    (res,) = parallel.run_local([str(generated)], setup, CONFIG, lambda r: None, 2)
    assert res.errors and "worker failed" in res.errors[0] and "boom" in res.errors[0]


def test_a_worker_that_dies_is_a_clean_error(monkeypatch, setup, generated):
    import os

    monkeypatch.setattr(parallel, "run_task", lambda *args, **kwargs: os._exit(3))
    with pytest.raises(parallel.ParallelError, match="exited early"):
        parallel.run_local([str(generated)], setup, CONFIG, lambda r: None, 2)
