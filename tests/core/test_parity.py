"""The Rust core gives the records the Python engine gave, on every shipped real capture.

tests/core/data/python-engine-records.jsonl holds the retired Python engine's records for
captures/*.pcap and tests/monitor/data/ssh-443.pcap (findings included: the policy is still
Python's). A difference here is either a regression or a deliberate change of detection, which
then updates that file in the same commit, with a test of its own for the change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portwatch.pipeline import JOIN_FIELDS, CaptureError, Config, Setup, analyze_path

REPO = Path(__file__).resolve().parent.parent.parent
GOLDEN = Path(__file__).resolve().parent / "data" / "python-engine-records.jsonl"
CAPTURES = sorted((REPO / "captures").glob("*.pcap")) + [REPO / "tests" / "monitor" / "data" / "ssh-443.pcap"]


def _golden() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for line in GOLDEN.read_text().splitlines():
        entry = json.loads(line)
        out.setdefault(entry["capture"], []).append(entry["record"])
    return out


@pytest.fixture(scope="module")
def setup_config():
    config = Config()
    return Setup.load(config), config


def core_records(path: Path, setup_config) -> list[dict]:
    setup, config = setup_config
    out: list[dict] = []
    analyze_path(str(path), setup, config, lambda r: out.append(r.as_dict()))
    # The join fields are the core's alone (the Python engine had none).
    return [json.loads(json.dumps({k: v for k, v in r.items() if k not in JOIN_FIELDS}, sort_keys=True))
            for r in out]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_core_records_equal_the_python_engines(capture, setup_config):
    want = _golden()[str(capture.relative_to(REPO))]
    got = core_records(capture, setup_config)
    assert got == want


def test_join_fields_are_on_every_record(setup_config):
    setup, config = setup_config
    out = []
    analyze_path(str(REPO / "captures" / "ssh-443.pcap"), setup, config, out.append)
    assert [r.flow_id for r in out] == list(range(1, len(out) + 1))
    for r in out:
        assert r.community_id.startswith("1:") and len(r.community_id) == 30
        assert r.duration == pytest.approx(r.ts_end - r.ts_start)
        assert r.state in ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")


@pytest.mark.parametrize("data,message", [(b"", "empty file, not a capture"),
                                          (b"hello world\n", "not a pcap or pcapng capture")])
def test_an_unreadable_file_is_one_clear_error(tmp_path, setup_config, data, message):
    setup, config = setup_config
    path = tmp_path / "bad.pcap"
    path.write_bytes(data)
    with pytest.raises(CaptureError, match=message):
        analyze_path(str(path), setup, config, lambda r: None)


def test_a_cut_capture_keeps_the_flows_before_the_cut(tmp_path, setup_config):
    setup, config = setup_config
    data = (REPO / "captures" / "http-80.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: len(data) * 2 // 3])
    out: list = []
    stats = analyze_path(str(path), setup, config, out.append)
    assert stats.error and "cut.pcap" in stats.error
    assert out, "the flows read before the cut are reported"
