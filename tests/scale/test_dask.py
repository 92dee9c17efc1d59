"""--dask / analyze(dask=) against a real distributed.LocalCluster with worker processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import CAPTURES, canonical

distributed = pytest.importorskip("distributed")

from portwatch import parallel  # noqa: E402
from portwatch.pipeline import Config, Setup, analyze_path  # noqa: E402

# Each shard (a Dask task) numbers its own flows from 1: flow_id is left out of the comparisons.
NO_ID: tuple[str, ...] = ()  # flow_id is the first packet's number: every shard agrees on it


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c


def single(paths) -> tuple[list[str], list[int]]:
    setup = Setup.load(Config())
    records, packets = [], []
    for p in paths:
        packets.append(analyze_path(str(p), setup, Config(), records.append).packets)
    return canonical(records, NO_ID), packets


def test_dask_splits_one_capture_across_workers(cluster, generated):
    ref, (packets,) = single([generated])
    got = []
    (res,) = parallel.run_dask([str(generated)], Setup.load(Config()), Config(), got.append,
                               cluster.scheduler_address)
    assert canonical(got, NO_ID) == ref
    assert res.stats.packets == packets == 20000
    assert res.errors == []
    # Two worker processes: the capture went out as two shards, and both workers worked.
    with distributed.Client(cluster.scheduler_address) as client:
        assert len(client.nthreads()) == 2


def test_cli_dask_output_equals_single_process(cluster, generated, tmp_path):
    paths = [str(generated), *(str(p) for p in CAPTURES)]
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    r1 = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "-o", str(one), *paths],
                        capture_output=True, text=True, timeout=120)
    r2 = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "-o", str(many),
                         "--dask", cluster.scheduler_address, *paths], capture_output=True, text=True, timeout=120)
    assert r2.returncode == r1.returncode, r2.stderr
    assert canonical(many.read_text().splitlines(), NO_ID) == canonical(one.read_text().splitlines(), NO_ID)


def test_api_dask_equals_single_and_writes_parquet(cluster, generated, tmp_path):
    import portwatch

    paths = [generated, *CAPTURES[:5]]
    a = portwatch.analyze(paths, progress=False)
    b = portwatch.analyze(paths, progress=False, dask=cluster.scheduler_address)
    order = ["ts_start", "pcap", "src_ip", "src_port", "dst_ip", "dst_port", "transport"]
    fa, fb = (f.drop(columns=[c for c in NO_ID if c in f]).sort_values(order).reset_index(drop=True)
              for f in (a.flows, b.flows))
    assert fa.equals(fb)
    assert a.stats == b.stats
    assert len(b.findings) == len(a.findings) > 0
    b.to_parquet(tmp_path / "ds")
    back = portwatch.read(tmp_path / "ds")
    assert len(back.flows) == len(a.flows)


def test_dask_flow_ids_are_the_single_runs(cluster, generated):
    """A flow's id is the number of its first packet: every shard counts every packet alike."""
    got = []
    parallel.run_dask([str(generated)], Setup.load(Config()), Config(), got.append, cluster.scheduler_address)
    ids = [r.flow_id for r in got]
    assert len(set(ids)) == len(ids)
    single = []
    analyze_path(str(generated), Setup.load(Config()), Config(), single.append)
    assert sorted(ids) == sorted(r.flow_id for r in single)


def test_dask_unreachable_scheduler_is_a_clean_error(generated):
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    r = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--dask", "tcp://127.0.0.1:9", str(generated)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2
    assert "Dask scheduler" in r.stderr and "Traceback" not in r.stderr
