"""`_core.record_line`: a record's JSON line written by the core from the record's fields, the
JSON-lines writer's fast path. Its bytes are orjson's for `rec.as_dict(copy=False)` whatever the
fields hold, or it declines (None) and the writer takes that path."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch import _core
from portwatch.model import Finding, FlowRecord
from portwatch.report.jsonl import JsonlWriter, encode_bytes, record_bytes
from portwatch.report.recordfile import RecordFile

scalars = (st.none() | st.booleans() | st.integers(-(2**64), 2**65)
           | st.floats() | st.text())
findings = st.lists(st.builds(Finding, st.text(max_size=12), st.text(max_size=6), st.text()), max_size=3)


def _record(**fields) -> FlowRecord:
    base = dict(ts_start=1.5, ts_end=2.25, transport="tcp", src_ip="10.0.0.1", src_port=40000,
                dst_ip="10.0.0.2", dst_port=443, orientation="handshake", protocol="tls", confidence=0.95,
                assigned=["https"], meta=_core.Meta({"sni": "example.com"}), pcap="a.pcap", flow_id=1,
                community_id="1:abc", duration=0.75, state="SF", history="ShADadFf")
    base.update(fields)
    return FlowRecord(**base)


def _orjson_line(rec: FlowRecord) -> bytes | None:
    return encode_bytes(rec.as_dict(copy=False))


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({name: scalars for name in (
    "ts_start", "ts_end", "transport", "src_ip", "src_port", "dst_ip", "dst_port", "orientation", "protocol",
    "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "pcap", "flow_id", "community_id",
    "duration", "state", "history")}),
    st.floats() | st.integers(-(2**63), 2**64 - 1),  # confidence: a number (as_dict rounds it)
    st.lists(scalars, max_size=3), findings,
    st.dictionaries(st.text(max_size=8), scalars.filter(lambda v: not isinstance(v, float) or v == v), max_size=4))
def test_its_bytes_are_orjsons_or_it_declines(fields, confidence, assigned, found, meta_items):
    rec = FlowRecord(**fields, confidence=confidence, assigned=assigned, findings=found)
    try:
        rec.meta = _core.Meta(meta_items)
    except ValueError:  # an integer past 64 bits: not a meta the core makes
        return
    line = _core.record_line(rec, Finding)
    want = _orjson_line(rec)
    if line is not None:
        assert line == want
    if want is not None and all(type(v) in (str, int, float, bool, type(None)) for v in fields.values()):
        # whatever orjson writes from plain scalars the core writes too, but for the texts it
        # must give up on (lone surrogates, which orjson refuses as well) and integers past 64 bits
        assert line == want


@pytest.mark.parametrize("confidence", [0.0625, 0.9145, 0.0005, 2 / 3, 1e16, -0.0001, 1, float("nan"), float("inf")])
def test_confidence_is_rounded_as_pythons_round(confidence):
    rec = _record(confidence=confidence)
    assert _core.record_line(rec, Finding) == _orjson_line(rec)
    assert orjson.loads(_core.record_line(rec, Finding))["confidence"] == (
        None if confidence != confidence or confidence == float("inf") else round(confidence, 3))


def test_pcap_is_left_out_when_unknown_and_findings_are_their_dicts():
    rec = _record(pcap=None, findings=[Finding("port-mismatch", "high", "ssh on 443 \x1b[31m")])
    out = orjson.loads(_core.record_line(rec, Finding))
    assert "pcap" not in out and list(out)[:3] == ["flow_id", "community_id", "ts_start"]
    assert out["findings"] == [{"kind": "port-mismatch", "severity": "high", "message": "ssh on 443 \x1b[31m"}]
    assert list(out) == list(rec.as_dict())


def test_a_record_changed_after_the_core_made_it_is_written_as_changed():
    rec = _record()
    rec.protocol = "ssh"
    rec.assigned.append("ssh")
    rec.findings.append(Finding("tunnel", "high", "x"))
    out = orjson.loads(_core.record_line(rec, Finding))
    assert out["protocol"] == "ssh" and out["assigned"] == ["https", "ssh"] and out["findings"][0]["kind"] == "tunnel"
    rec.meta["sni"] = "other.example"  # the meta is a dict now: the dict's path writes it
    assert _core.record_line(rec, Finding) is None
    assert orjson.loads(record_bytes(rec))["meta"] == {"sni": "other.example"}


class _Flagged(str):
    pass


@pytest.mark.parametrize("change", [
    {"src_port": 2**64},  # past 64 bits: orjson refuses it too
    {"protocol": "tls\ud800"},  # a lone surrogate
    {"protocol": _Flagged("tls")},  # a subclass: orjson's rules for it are orjson's
    {"meta": {"sni": "example.com"}},  # a dict
    {"assigned": ("https",)},  # not a list
    {"findings": [dataclasses.replace(Finding("a", "b", "c"))], "_finding_type": object},
], ids=["big-int", "surrogate", "str-subclass", "dict-meta", "tuple", "foreign-finding"])
def test_it_declines_what_the_dicts_path_must_write(change):
    change = dict(change)
    finding_type = change.pop("_finding_type", Finding)
    rec = _record(**change)
    assert _core.record_line(rec, finding_type) is None


def test_a_subclass_of_flow_record_is_written_through_its_own_as_dict(tmp_path: Path):
    class Renamed(FlowRecord):
        __slots__ = ()

        def as_dict(self, copy: bool = True):
            out = FlowRecord.as_dict(self, copy)
            out["protocol"] = "renamed"
            return out

    rec = Renamed(**{f.name: getattr(_record(), f.name) for f in dataclasses.fields(FlowRecord)})
    path = tmp_path / "out.jsonl"
    with RecordFile(str(path)) as stream:
        writer = JsonlWriter(stream)  # type: ignore[arg-type]
        writer.write(rec)
        writer.write(_record())
        writer.close()
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["protocol"] for line in lines] == ["renamed", "tls"]
