"""--workers N: N threads in the core over shards of the flows give one thread's records, in the same
order, with the same counters; and the shard planning the Dask runs use (portwatch.parallel)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CAPTURES, canonical

from portwatch import parallel
from portwatch.model import CaptureStats
from portwatch.pipeline import Config, Setup, analyze_path

CONFIG = Config()


@pytest.fixture(scope="module")
def setup() -> Setup:
    return Setup.load(CONFIG)


def run(setup: Setup, paths: list[Path], config: Config = CONFIG, workers: int = 1
        ) -> tuple[list[dict], list[CaptureStats]]:
    """Each capture through the core in turn: (records as dicts in report order, counters per capture)."""
    records: list[dict] = []
    stats = [analyze_path(str(p), setup, config, lambda r: records.append(r.as_dict()), workers=workers)
             for p in paths]
    return records, stats


def test_every_real_capture_with_2_and_3_workers_matches_one(setup):
    for path in CAPTURES:
        ref, (ref_stats,) = run(setup, [path])
        for workers in (2, 3):
            got, (stats,) = run(setup, [path], workers=workers)
            assert got == ref, f"{path.name} with {workers} workers"
            assert stats == ref_stats  # the file is read once: every counter as one thread counts it


def test_generated_capture_with_workers_matches_one(setup, generated):
    ref, (ref_stats,) = run(setup, [generated])
    assert len(ref) > 500
    got, (stats,) = run(setup, [generated], workers=2)
    assert got == ref
    assert stats == ref_stats
    assert stats.packets == 20000 and stats.other_shard == 0


def test_many_captures_with_workers_match_one(setup, generated):
    paths = [*CAPTURES, generated]
    ref, ref_stats = run(setup, paths)
    got, stats = run(setup, paths, workers=2)
    assert got == ref
    assert [s.packets for s in stats] == [s.packets for s in ref_stats]


def test_shards_partition_the_flows(setup, generated):
    """A Dask task's shard analyzes its own flows and counts the others' packets in other_shard."""
    owned = 0
    shard_records = []
    for i in range(3):
        recs, (stats,) = run(setup, [generated], Config(shard_index=i, shard_count=3))
        assert len(recs) > 0
        assert stats.packets == 20000
        assert 0 < stats.other_shard < 20000
        owned += stats.packets - stats.other_shard
        shard_records.append(set(canonical(recs)))  # flow_id: the first packet's number, alike in every shard
    assert owned == 20000  # every packet belongs to exactly one shard
    assert not (shard_records[0] & shard_records[1]) and not (shard_records[1] & shard_records[2])
    assert sorted(set().union(*shard_records)) == canonical(run(setup, [generated])[0])


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


def test_plan_makes_an_unreadable_capture_one_result(tmp_path, generated):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    tasks, failed = parallel.plan([str(bad), str(generated)], 2)
    assert [t.path for t in tasks] == [str(generated), str(generated)]
    (res,) = failed
    assert res.name == "bad.pcap" and len(res.errors) == 1 and "not a pcap" in res.errors[0]


def test_merge_counts_file_counters_once_and_sums_evictions():
    a = CaptureStats(packets=10, bytes=100, malformed=1, flows_evicted=2, other_shard=4)
    b = CaptureStats(packets=10, bytes=100, malformed=1, flows_evicted=3, other_shard=6)
    m = parallel.merge_stats([a, b])
    assert (m.packets, m.bytes, m.malformed, m.flows_evicted, m.other_shard) == (10, 100, 1, 5, 0)


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "portwatch", "analyze", *args], capture_output=True, text=True,
                          timeout=120, **kw)


def test_cli_workers_output_equals_one_worker(tmp_path, generated):
    paths = [str(generated), *(str(p) for p in CAPTURES[:6])]
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    r1 = run_cli("--format", "jsonl", "-o", str(one), *paths)
    r2 = run_cli("--format", "jsonl", "-o", str(two), "--workers", "2", *paths)
    assert r1.returncode == r2.returncode
    assert r2.returncode in (0, 1), r2.stderr
    assert two.read_text() == one.read_text()  # the same records in the same order
    c1 = run_cli("--quiet", *paths)
    c2 = run_cli("--quiet", "--workers", "3", *paths)
    assert c1.stdout == c2.stdout  # the console summary (counts, findings) is the same


def test_cli_unreadable_capture_is_one_error_and_the_rest_runs(tmp_path, generated):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"not a capture at all")
    out = tmp_path / "two.jsonl"
    r = run_cli("--format", "jsonl", "-o", str(out), "--workers", "2", str(bad), str(generated))
    assert r.returncode == 2
    errors = [line for line in r.stderr.splitlines() if line.startswith("portwatch: error:")]
    assert len(errors) == 1 and "bad.pcap" in errors[0] and "not a pcap" in errors[0]
    assert len(out.read_text().splitlines()) > 500


def test_cli_workers_read_stdin(tmp_path, generated):
    # Threads share the one reader: standard input works with --workers as with one.
    one = run_cli("--format", "jsonl", str(generated))
    with open(generated, "rb") as stdin:
        two = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "--workers", "2",
                              "-"], stdin=stdin, capture_output=True, text=True, timeout=120)
    assert two.returncode == one.returncode and two.returncode in (0, 1), two.stderr
    a = [json.loads(line) for line in one.stdout.splitlines()]
    b = [json.loads(line) for line in two.stdout.splitlines()]
    assert len(a) == len(b) > 500
    assert {r.pop("pcap") for r in a} == {"gen20k.pcap"} and {r.pop("pcap", None) for r in b} == {None}
    assert a == b


def test_api_workers_equals_one(generated):
    import portwatch

    paths = [generated, *CAPTURES[:4]]
    a = portwatch.analyze(paths, progress=False)
    b = portwatch.analyze(paths, progress=False, workers=2)
    assert len(a.flows) == len(b.flows) > 500
    assert a.flows.equals(b.flows)
    assert a.stats == b.stats
