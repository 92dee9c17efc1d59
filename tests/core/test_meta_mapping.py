"""`_core.Meta`, a record's metadata: a mapping over the core's map that answers a lookup of a text
or a number without making the dict, becomes a real dict for anything else, and writes the same
JSON bytes as orjson writes for that dict (the JSON-lines and EVE writers take those bytes)."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import Mapping, MutableMapping
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch import _core
from portwatch.frames import _safe_value, _walk_safe
from portwatch.model import Finding, FlowRecord, listed_reason, peek
from portwatch.pipeline import Analyzer, open_capture
from portwatch.report.csvout import flat_row
from portwatch.report.jsonl import encode_bytes, encode_line
from portwatch.sanitize import _UNSAFE

REPO = Path(__file__).resolve().parent.parent.parent
CAPTURES = sorted((REPO / "captures").glob("*.pcap"))

json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text())
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_the_cores_json_is_orjsons_json_of_the_dict(items):
    meta = _core.Meta(items)
    raw = meta.json()
    assert raw == orjson.dumps(items)
    assert meta == items and meta.json() is None  # comparing made the dict: the dict is written now


@pytest.mark.parametrize("meta_json", [False, True], ids=["serialized-when-written", "serialized-by-the-core"])
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_record_of_a_capture_writes_as_its_dict_would(capture, meta_json, core):
    config, setup = core
    records: list[FlowRecord] = []
    analyzer = Analyzer(config, records.append, setup=setup, pcap_name=capture.name, meta_json=meta_json)
    analyzer.run_capture(open_capture(str(capture)))
    analyzer.close()
    assert records
    for rec in records:
        assert isinstance(rec.meta, _core.Meta)
        line = encode_bytes(rec.as_dict(copy=False))
        text = encode_line(rec.as_dict(copy=False))
        assert _core.record_line(rec, Finding) == line  # the JSON-lines writer's own bytes
        plain = rec.as_dict()  # a copy: meta a dict
        assert type(plain["meta"]) is dict
        assert line == orjson.dumps(plain, option=orjson.OPT_APPEND_NEWLINE)
        assert text == orjson.dumps(plain).decode()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=8))
def test_the_cores_sorted_json_is_json_dumps_with_sorted_keys(items):
    """The CSV writer's `meta` column: Python's spelling (", ", float repr, escapes), keys sorted
    at every level."""
    meta = _core.Meta(items)
    assert meta.json_sorted() == json.dumps(items, ensure_ascii=False, sort_keys=True)
    meta.to_dict()
    assert meta.json_sorted() is None  # a dict now, which Python may change: encoded by Python


# Characters near every range `sanitize._UNSAFE` escapes, and plain ones.
hostile_chars = st.sampled_from(
    [chr(c) for c in (*range(0x00, 0x21), *range(0x7E, 0xA2), 0xAD, *range(0x200A, 0x2030), *range(0x2060, 0x206A))]
    + ["\ufeff", "\ufffd", "a", "é", "€", "😀", " "]
)
hostile_texts = st.text(hostile_chars, max_size=12) | st.text(hostile_chars, min_size=250, max_size=400)
hostile_values = st.recursive(
    json_scalars | hostile_texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_texts, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(hostile_texts, hostile_values, max_size=6))
def test_a_frames_meta_from_the_core_is_sanitised_as_pythons_walk(items):
    """`Meta.safe_dict`, a notebook frame's `meta`: every key and text as `frames.safe_text` makes it
    (escapes, and the cut escaping can force on a long text)."""
    meta = _core.Meta(items)
    got = meta.safe_dict()
    assert got == _walk_safe(items)
    assert meta.json() is not None  # the core's map still, not made a dict
    assert _safe_value(items) == got  # a dict read from a file: walked by the core


def _nested(value, levels):
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("items", [
    {"nan": float("nan"), "t": "\x1b"},
    {"big": 2**70, "t": "\x1b"},
    {1: "one", (2, 3): "\x07"},
    {"lone": "\ud800\x1b"},
    {"deep": _nested(["\x1b"], 66)},
    {"tuple": ("a\x1b", {"b\x00": 1.5})},
], ids=["nan", "big-int", "non-text-keys", "lone-surrogate", "65-levels", "tuple"])
def test_what_the_core_cannot_take_is_walked_in_python(items):
    """Values JSON has no room for leave `_safe_value` to the Python walk, with the same answer."""
    got = _safe_value(items)
    want = _walk_safe(items)
    assert repr(got) == repr(want)  # repr: NaN is not equal to itself
    assert not any(_UNSAFE.search(text) for text in _texts(got))


def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _texts(k)
            yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


@pytest.mark.parametrize("value", [1e-05, 1e16, 1e15, 0.1, -0.0, 5e-324, 1.7976931348623157e308, 2.5e-5, 123.0])
def test_sorted_json_spells_floats_as_repr(value):
    assert _core.Meta({"x": value}).json_sorted() == json.dumps({"x": value})


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_every_records_csv_row_is_its_dicts_row(capture, core):
    config, setup = core
    records: list[FlowRecord] = []
    analyzer = Analyzer(config, records.append, setup=setup, pcap_name=capture.name)
    analyzer.run_capture(open_capture(str(capture)))
    analyzer.close()
    assert records
    for rec in records:
        assert type(rec.meta) is _core.Meta
        safe = rec.meta.safe_dict()
        from_the_core = flat_row(rec)
        assert type(rec.meta) is _core.Meta and rec.meta.json() is not None  # not made a dict
        assert from_the_core == flat_row(rec.as_dict())
        assert safe == _safe_value(rec.as_dict()["meta"])  # a notebook frame's meta


def _meta() -> _core.Meta:
    return _core.Meta({"evidence": "client bytes", "port": 443, "ratio": 0.5, "ok": True, "none": None,
                       "shape": {"sizes": [1, -2]}, "alpn": ["h2"]})


def test_a_text_or_number_is_looked_up_without_making_the_dict():
    m = _meta()
    assert m["evidence"] == "client bytes" and m.get("port") == 443 and m.get("ratio") == 0.5
    assert m.get("ok") is True and m.get("none", "x") is None
    assert m.get("absent") is None and m.get("absent", 7) == 7
    assert "shape" in m and "absent" not in m and 1 not in m and len(m) == 7
    assert m.json() is not None
    with pytest.raises(KeyError):
        m["absent"]
    with pytest.raises(KeyError):
        m[1]


def test_a_nested_value_is_the_dicts_own_so_changing_it_shows():
    m = _meta()
    m["shape"]["sizes"].append(3)
    assert m.json() is None
    assert m["shape"] == {"sizes": [1, -2, 3]}
    assert orjson.loads(encode_line({"meta": m}))["meta"]["shape"]["sizes"] == [1, -2, 3]


@pytest.mark.parametrize("change", [
    lambda m: m.__setitem__("port", 80),
    lambda m: m.__delitem__("port"),
    lambda m: m.pop("port"),
    lambda m: m.update(port=80),
    lambda m: m.setdefault("new", 1),
    lambda m: m.popitem(),
    lambda m: m.clear(),
])
def test_every_change_is_a_dicts_change_and_is_what_gets_written(change):
    m, expected = _meta(), _meta().copy()
    change(m)
    change(expected)
    assert m == expected
    assert (m != expected) is False
    assert orjson.loads(encode_line({"meta": m}))["meta"] == expected


def test_it_behaves_as_a_dict_elsewhere():
    m = _meta()
    d = _meta().copy()
    assert isinstance(m, Mapping) and isinstance(m, MutableMapping)
    assert list(m) == list(d) and list(m.keys()) == list(d) and list(m.items()) == list(d.items())
    assert list(m.values()) == list(d.values()) and dict(m) == d and {**m} == d
    assert repr(m) == repr(d) and m == _meta() and m != {"other": 1}
    assert m.to_dict() is m.to_dict() and m.copy() is not m.copy()
    back = pickle.loads(pickle.dumps(m))
    assert type(back) is dict and back == d
    assert copy.deepcopy(m) == d
    with pytest.raises(TypeError):
        hash(m)
    assert bool(_core.Meta({})) is False and bool(m) is True


def test_the_standard_library_writers_take_it_as_its_dict():
    import json

    from portwatch.report.jsonl import plain
    m = _meta()
    assert json.loads(json.dumps({"meta": m}, default=plain))["meta"] == _meta().copy()


class _KeyThatLooks:
    """A key whose hash reads the mapping it is looked up in (Python code run mid-lookup)."""

    def __init__(self, meta: _core.Meta) -> None:
        self.meta = meta

    def __hash__(self) -> int:
        list(self.meta.items())  # reads it all
        return 7

    def __eq__(self, other: object) -> bool:
        return other is self


def test_python_code_run_mid_operation_may_use_the_mapping_again():
    m = _meta()
    assert m == m and (m != m) is False
    m.update(m)
    assert m == _meta().copy()
    m["self"] = m
    assert "self" in repr(m)  # dict's own guard against the cycle, not an error
    key = _KeyThatLooks(m)
    assert m.get(key) is None and key not in m
    m[key] = 1
    assert m[key] == 1


def test_peek_reads_a_copy_and_leaves_the_cores_map():
    m = _meta()
    shape = m.peek("shape")
    assert shape == {"sizes": [1, -2]} and m.peek("alpn") == ["h2"]
    shape["sizes"].append(3)  # a copy: the mapping does not change, and stays the core's map
    assert m.json() is not None and m.peek("shape") == {"sizes": [1, -2]}
    assert m.peek("port") == 443 and m.peek("absent") is None and m.peek("absent", ()) == ()
    assert m.peek(1, "d") == "d"
    m["shape"]["sizes"].append(4)  # a dict now: peek reads the dict's own value
    assert m.peek("shape") is m["shape"]


FACTS = ("v", "w", "x")
listings = st.dictionaries(
    st.sampled_from(FACTS),
    st.dictionaries(st.sampled_from(("1", "1.0", "True", "None", "ssl3", "[1, 2]", "{'a': 1}")),
                    st.sampled_from(("why", "", "other")), max_size=4),
    max_size=3,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FACTS), json_scalars | st.sampled_from(([1, 2], {"a": 1})), max_size=3),
       listings)
def test_listed_reason_of_the_cores_map_is_the_dicts_loop(items, listing):
    want = listed_reason(items, listing)  # a dict: the loop the policy ran before, in Python
    meta = _core.Meta(items)
    assert listed_reason(meta, listing) == want
    assert meta.json() is not None  # read without making the dict, nested values included
    meta.to_dict()
    assert listed_reason(meta, listing) == want  # once a dict, the dict's values


def test_listed_reason_reads_a_value_as_its_text():
    listing = {"tls_version_server": {"1.0": "TLS 1.0"}, "smb_dialect_server": {"1": "SMB1"}}
    assert listed_reason(_core.Meta({"smb_dialect_server": 1}), listing) == "SMB1"
    assert listed_reason(_core.Meta({"tls_version_server": "1.3", "smb_dialect_server": 1}), listing) == "SMB1"
    assert listed_reason(_core.Meta({"tls_version_server": "1.0", "smb_dialect_server": 1}), listing) == "TLS 1.0"
    assert listed_reason(_core.Meta({"tls_version_server": None}), listing) is None
    assert listed_reason(_core.Meta({}), {}) is None


def test_model_peek_is_get_for_a_dict():
    d = {"a": [1]}
    assert peek(d, "a") is d["a"] and peek(d, "b", 5) == 5
    assert peek(_meta(), "alpn") == ["h2"]


@pytest.mark.parametrize("name", ["dns-53.pcap", "dns-tunnel.pcap", "ssh-443.pcap", "tls-22.pcap", "rdp-3389.pcap"])
def test_the_policy_reads_records_without_making_their_dicts(name, core):
    # DNS answers, entropy facts and tunnel verdicts are read through `peek`: after the policy a
    # record's meta is still the core's map, written as the core's JSON.
    config, setup = core
    records: list[FlowRecord] = []
    analyzer = Analyzer(config, records.append, setup=setup, pcap_name=name)
    analyzer.run_capture(open_capture(str(REPO / "captures" / name)))
    analyzer.close()
    assert records
    assert all(r.meta.json() is not None for r in records), [r.protocol for r in records if r.meta.json() is None]
