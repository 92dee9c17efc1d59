"""shard_reader: a shard's records straight from the pcap equal the pipeline's own shard filter."""

from __future__ import annotations

import pytest
from conftest import CAPTURES, canonical

from portwatch import parallel
from portwatch.capture.sources import CaptureSource
from portwatch.model import CaptureStats
from portwatch.pipeline import Analyzer, Config, Setup
from portwatch.shard_reader import open_shard


@pytest.fixture(scope="module")
def setup() -> Setup:
    return Setup.load(Config())


def shard_run(setup: Setup, path, index: int, count: int, reader: bool):
    cfg = Config(shard_index=index, shard_count=count)
    records: list = []
    a = Analyzer(cfg, on_record=records.append, setup=setup, pcap_name=path.name)
    if reader:
        src = open_shard(str(path), index, count, CaptureStats())
        assert src is not None
        a.run(src)
        stats = a.close()
        return canonical(records), stats, src
    with CaptureSource(path) as src:
        a.run(src)
        stats = a.close()
    return canonical(records), stats, src


@pytest.mark.parametrize("count", [2, 3])
def test_reader_shards_equal_pipeline_shards(setup, generated, count):
    for i in range(count):
        ref, ref_stats, _ = shard_run(setup, generated, i, count, reader=False)
        got, stats, reader = shard_run(setup, generated, i, count, reader=True)
        assert got == ref
        assert reader.packets == ref_stats.packets == 20000
        assert reader.bytes == ref_stats.bytes
        assert stats.packets < ref_stats.packets  # other shards' packets never reached the pipeline
        assert (stats.malformed, stats.non_ip, stats.fragments) == (
            ref_stats.malformed, ref_stats.non_ip, ref_stats.fragments)


def test_reader_on_every_real_capture(setup):
    for path in CAPTURES:
        for i in range(2):
            ref, ref_stats, _ = shard_run(setup, path, i, 2, reader=False)
            got, _, reader = shard_run(setup, path, i, 2, reader=True)
            assert got == ref, path.name
            assert reader.packets == ref_stats.packets


def test_truncated_capture_same_records_and_error(setup, generated, tmp_path):
    cut = tmp_path / "cut.pcap"
    data = generated.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    with CaptureSource(cut) as src:
        records: list = []
        a = Analyzer(Config(), on_record=records.append, setup=setup, pcap_name=src.name)
        a.run(src)
        single_stats = a.close()
        error = src.stats.error
    assert error and "truncated" in error
    got: list = []
    (res,) = parallel.run_local([str(cut)], setup, Config(), got.append, 2, split_min_bytes=0)
    assert canonical(got) == canonical(records)
    assert res.stats.packets == single_stats.packets
    assert res.errors == [error]


def test_nanosecond_pcap_keeps_timestamps(setup, generated, tmp_path):
    ns = tmp_path / "ns.pcap"
    data = bytearray(generated.read_bytes())
    data[:4] = b"\x4d\x3c\xb2\xa1"  # same records read as nanosecond timestamps
    ns.write_bytes(bytes(data))
    ref, _, _ = shard_run(setup, ns, 0, 2, reader=False)
    got, _, _ = shard_run(setup, ns, 0, 2, reader=True)
    assert got == ref


def test_not_a_plain_pcap_is_left_to_the_generic_reader(tmp_path, generated):
    import gzip

    gz = tmp_path / "g.pcap.gz"
    gz.write_bytes(gzip.compress(generated.read_bytes()[:100000]))
    assert open_shard(str(gz), 0, 2, CaptureStats()) is None
    assert open_shard(str(generated), 0, 1, CaptureStats()) is None  # one shard: nothing to skip
    assert open_shard("-", 0, 2, CaptureStats()) is None


def test_records_across_chunk_boundaries(setup, generated, tmp_path, monkeypatch):
    from portwatch import shard_reader

    monkeypatch.setattr(shard_reader, "CHUNK", 100_003)  # records cut at every chunk edge
    cut = tmp_path / "cut.pcap"
    data = generated.read_bytes()
    cut.write_bytes(data[: len(data) - 700])
    for path in (generated, cut):
        for i in range(2):
            ref, ref_stats, generic = shard_run(setup, path, i, 2, reader=False)
            got, stats, reader = shard_run(setup, path, i, 2, reader=True)
            assert got == ref
            assert reader.packets == ref_stats.packets
            assert reader.stats.error == generic.stats.error
