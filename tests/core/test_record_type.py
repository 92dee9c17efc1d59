"""`record_type`: the core builds each record as an instance of a class (portwatch passes
FlowRecord) instead of a dict. The instance holds what the dict holds, field by field, on every
shipped capture, with `assigned` and `findings` left empty for the policy; a class that does not
take FlowRecord's fields positionally is an error raised in Python, not a crash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from portwatch import _core
from portwatch.model import FlowRecord
from portwatch.pipeline import Config, Setup, analyze_path

REPO = Path(__file__).resolve().parent.parent.parent
CAPTURES = sorted((REPO / "captures").glob("*.pcap"))


def _records(path: Path, config: Config, setup: Setup, record_type: type | None) -> list:
    capture = _core.Capture(str(path))
    analyzer = _core.Analyzer(setup.engine, setup.known_ports, capture.name, config.core_settings(),
                              record_type=record_type)
    out = []
    while not capture.done:
        out.extend(analyzer.run(capture, 1000))
    out.extend(analyzer.drain())
    return out


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_instances_hold_what_the_dicts_hold(capture, core):
    config, setup = core
    dicts = _records(capture, config, setup, None)
    instances = _records(capture, config, setup, FlowRecord)
    assert dicts and len(instances) == len(dicts)
    names = {f.name for f in dataclasses.fields(FlowRecord)}
    for raw, rec in zip(dicts, instances, strict=True):
        assert isinstance(rec, FlowRecord)
        assert set(raw) <= names
        assert {name: getattr(rec, name) for name in raw} == raw
        assert rec.assigned == [] and rec.findings == []
        assert rec.pcap == capture.name


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
