"""`record_type`: the core builds each record as an instance of the class it is given (portwatch
passes FlowRecord), called with the record's fields positionally. On every shipped capture each
field holds a value of its declared type (`meta` the core's mapping), `assigned` and `findings` are empty lists of the
record's own for the policy to fill; a class that does not take FlowRecord's fields positionally
is an error raised in Python, not a crash."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from pcapkit import ether, udp_exchange, write_pcap

from portwatch import _core
from portwatch.model import FlowRecord
from portwatch.pipeline import Config, Setup, analyze_path

REPO = Path(__file__).resolve().parent.parent.parent
CAPTURES = sorted((REPO / "captures").glob("*.pcap"))

# What each field the core fills holds (FlowRecord's annotations, as types).
FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "ts_start": float, "ts_end": float, "transport": str, "src_ip": str, "src_port": int, "dst_ip": str,
    "dst_port": int, "orientation": str, "protocol": str, "confidence": float, "packets_c2s": int,
    "packets_s2c": int, "bytes_c2s": int, "bytes_s2c": int, "meta": _core.Meta, "pcap": str, "flow_id": int,
    "community_id": str, "duration": float, "state": str, "history": str,
}


def _records(path: Path, config: Config, setup: Setup, record_type: type) -> list:
    capture = _core.Capture(str(path))
    analyzer = _core.Analyzer(setup.engine, setup.known_ports, capture.name, config.core_settings(),
                              record_type=record_type)
    out = []
    while not capture.done:
        out.extend(analyzer.run(capture, 1000))
    out.extend(analyzer.drain())
    return out


def test_every_field_is_named_with_its_type():
    filled = {f.name for f in dataclasses.fields(FlowRecord)} - {"assigned", "findings"}
    assert set(FIELD_TYPES) == filled


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_instances_hold_each_field_with_its_type_and_lists_of_their_own(capture, core):
    config, setup = core
    records = _records(capture, config, setup, FlowRecord)
    assert records
    for rec in records:
        assert isinstance(rec, FlowRecord)
        for name, kind in FIELD_TYPES.items():
            value = getattr(rec, name)
            assert isinstance(value, kind) and not isinstance(value, bool), (name, value)
        assert rec.transport in ("tcp", "udp")
        assert rec.pcap == capture.name
        assert rec.ts_start <= rec.ts_end
        assert rec.assigned == [] and rec.findings == []
    # Filling one record's lists or meta leaves the others' alone (nothing shared between records).
    before = [r.meta.copy() for r in records[1:]]
    records[0].assigned.append("x")
    records[0].findings.append("y")
    records[0].meta["x"] = 1
    assert all(r.assigned == [] and r.findings == [] for r in records[1:])
    assert [r.meta.copy() for r in records[1:]] == before


def test_the_core_gives_the_duration_to_the_microsecond_as_pythons_round(tmp_path: Path, core):
    # nanosecond timestamps at random: durations whose seventh decimal is anything, ties included
    config, setup = core
    rng = random.Random(15)
    frames = []
    for i in range(300):
        start = 1_700_000_000 + i + rng.randrange(10**9) / 10**9
        gap = rng.choice([rng.randrange(10**9) / 10**9, rng.randrange(10**4) * 5e-7, 0.0])
        a, b = udp_exchange([(True, b"ping"), (False, b"pong")], sport=20000 + i, dport=9999)
        frames += [(start, ether(a)), (start + gap, ether(b))]
    path = write_pcap(tmp_path / "durations.pcap", sorted(frames), nano=True)
    records = _records(path, config, setup, FlowRecord)
    assert len(records) == 300
    for rec in records:
        assert rec.duration == round(rec.ts_end - rec.ts_start, 6), (rec.ts_start, rec.ts_end)


def test_the_pipeline_rounds_the_duration_and_fills_assigned(core):
    config, setup = core
    records: list[FlowRecord] = []
    analyze_path(str(REPO / "captures" / "ssh-443.pcap"), setup, config, records.append)
    assert records
    for rec in records:
        assert rec.duration == round(rec.ts_end - rec.ts_start, 6)
        assert rec.assigned == setup.services.names(rec.dst_port, rec.transport)
    assert any(f.kind == "tunnel" for rec in records for f in rec.findings)


class _TakesNothing:
    def __init__(self) -> None:
        pass


def test_a_class_that_refuses_the_fields_raises_type_error(core):
    config, setup = core
    with pytest.raises(TypeError):
        _records(REPO / "captures" / "http-80.pcap", config, setup, _TakesNothing)
