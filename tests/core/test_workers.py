"""`--workers N` in the core: N threads over shards of the flows give the records one thread gives,
in the same order, on every shipped capture; and every record carries the join fields."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwatch import _core
from portwatch.model import FlowRecord
from portwatch.pipeline import JOIN_FIELDS, Config, Setup

REPO = Path(__file__).resolve().parent.parent.parent
CAPTURES = sorted((REPO / "captures").glob("*.pcap"))


def raw_records(path: Path, config: Config, setup: Setup, workers: int, batch: int = 4096):
    capture = _core.Capture(str(path))
    analyzer = _core.Analyzer(setup.engine, setup.known_ports, capture.name, config.core_settings(), workers=workers,
                              record_type=FlowRecord)
    out = []
    while not capture.done:
        out.extend(analyzer.run(capture, batch))
    out.extend(analyzer.drain())
    return out, analyzer.stats(), capture.error


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_two_workers_give_one_workers_records_in_order(capture, core):
    config, setup = core
    one, stats1, err1 = raw_records(capture, config, setup, 1)
    two, stats2, err2 = raw_records(capture, config, setup, 2, batch=1000)
    assert one, "flows found"
    assert two == one
    assert err2 == err1
    for key in ("packets", "bytes", "malformed", "non_ip", "fragments", "unsupported_link"):
        assert stats2[key] == stats1[key], key


def test_join_fields_are_on_every_record(core):
    config, setup = core
    records, _, _ = raw_records(REPO / "captures" / "http-80.pcap", config, setup, 2)
    ids = sorted(r.flow_id for r in records)  # the number of each flow's first packet
    assert len(set(ids)) == len(ids) and ids[0] == 1
    for r in records:
        assert all(getattr(r, name) is not None for name in JOIN_FIELDS)
        assert r.community_id.startswith("1:")
        assert r.duration == round(r.ts_end - r.ts_start, 6)  # the core gives it to the microsecond
        assert r.state in {"S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH"}
        assert isinstance(r.history, str)


def test_workers_setting_is_checked(core):
    config, setup = core
    with pytest.raises(ValueError):
        _core.Analyzer(setup.engine, setup.known_ports, None, config.core_settings(), workers=0, record_type=FlowRecord)
    with pytest.raises(ValueError):
        _core.Analyzer(setup.engine, setup.known_ports, None, config.core_settings(), report_classified=True, workers=2,
                       record_type=FlowRecord)
    # A thread per worker: a mistyped count is refused rather than started (5,000 threads before).
    assert _core.MAX_WORKERS == 64
    _core.Analyzer(setup.engine, setup.known_ports, None, config.core_settings(), workers=_core.MAX_WORKERS,
                   record_type=FlowRecord)
    with pytest.raises(ValueError, match="1 to 64"):
        _core.Analyzer(setup.engine, setup.known_ports, None, config.core_settings(), workers=_core.MAX_WORKERS + 1,
                       record_type=FlowRecord)


def test_too_many_workers_is_a_clear_error_from_the_cli_and_the_api(tmp_path):
    import subprocess
    import sys

    import portwatch

    capture = REPO / "captures" / "http-80.pcap"
    done = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--workers", "65", str(capture)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "portwatch: error: --workers: at most 64 threads, not 65"
    for workers in (65, 10**20):  # past 64 bits the core's own conversion would be an OverflowError
        with pytest.raises(ValueError, match="at most 64 threads"):
            portwatch.analyze(capture, workers=workers, progress=False)


def test_draining_a_slice_at_a_time_gives_the_same_records(core):
    """close() takes the open flows' records a slice at a time (memory); same records, same order."""
    config, setup = core
    path = REPO / "captures" / "dns-53.pcap"

    def records(slice_size):
        capture = _core.Capture(str(path))
        analyzer = _core.Analyzer(setup.engine, setup.known_ports, capture.name, config.core_settings(),
                                  record_type=FlowRecord)
        out = []
        while not capture.done:
            out.extend(analyzer.run(capture, 4096))
        while True:
            part = analyzer.drain(slice_size)
            assert len(part) <= (slice_size or len(part))
            if not part:
                break
            out.extend(part)
        return out

    whole = records(None)
    assert len(whole) > 5
    assert records(2) == whole
