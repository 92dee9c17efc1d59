"""JSON text parsed by the core as `json.loads` parses it (`_core.Meta.from_json`, `_core.json_records`,
what `portwatch.read()` takes its records from), or left to `json.loads` (None): never a different value."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch import _core

# Everything Python's json module writes and reads, with what JSON has no room for or the core
# cannot hold: NaN and the infinities, integers past 64 bits, negative zero, lone surrogates.
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.sampled_from([0.0, -0.0, 1e19, -(2.0**63), 2.0**63 - 1024, 5e-324])
           | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\ud800", "\udfff", "\x00", "\u2028"])))
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=6), inner, max_size=5),
    max_leaves=25,
)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 is not 1.0, -0.0 is not 0.0), key order included."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return bool(a == b)


def plain(value: Any, depth: int = 0) -> bool:
    """Within what the core takes: no NaN or infinity, no float past 2^63 or negative zero, no
    integer past 64 bits, no lone surrogate, at most 64 levels."""
    if depth > 64:
        return False
    if isinstance(value, dict):
        return all(plain(k, depth) and plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v, depth + 1) for v in value)
    if isinstance(value, float):
        return abs(value) < 2.0**63 and not (value == 0 and math.copysign(1, value) < 0)
    if isinstance(value, int) and not isinstance(value, bool):
        return -(2**63) <= value < 2**64
    if isinstance(value, str):
        return not any("\ud800" <= c <= "\udfff" for c in value)
    return True


def check(text: str) -> None:
    want = json.loads(text)
    meta = _core.Meta.from_json(text)
    assert (meta is not None) == plain(want), text
    if meta is not None:
        assert same(dict(meta), want), text
    [record] = _core.json_records([text], ["meta"])
    assert (record is not None) == plain(want), text
    if record is not None:
        if isinstance(record.get("meta"), _core.Meta):
            record["meta"] = dict(record["meta"])
        assert same(record, want), text


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=8), values, max_size=6), st.booleans())
def test_what_the_core_reads_is_what_json_loads_reads(obj: dict[str, Any], ascii_only: bool) -> None:
    check(json.dumps(obj, ensure_ascii=ascii_only))
    check(json.dumps({"flow_id": 1, "meta": obj, "after": [obj]}, ensure_ascii=ascii_only))


def test_texts_python_reads_otherwise_are_left_to_it() -> None:
    for text in ('{"n": 18446744073709551616}', '{"n": -0}', '{"n": 1E400}', '{"n": NaN}', '{"n": -Infinity}',
                 '{"s": "\\ud800"}', '{"meta": {"n": 99999999999999999999999}}', '[1]', '"x"'):
        assert _core.Meta.from_json(text) is None, text
        assert _core.json_records([text], ["meta"]) == [None], text
        json.loads(text)  # each is valid to Python


def test_texts_no_json_parser_takes_are_left_to_python_to_refuse() -> None:
    for text in ("", "\n", "{", '{"a": 1,}', '{"a": 01}', '{"a": "\x01"}', '{"a": 1} {"b": 2}'):
        assert _core.Meta.from_json(text) is None
        assert _core.json_records([text], ["meta"]) == [None]


def test_a_repeated_key_keeps_its_first_place_and_its_last_value() -> None:
    text = '{"b": 1, "a": 2, "b": {"c": 3}, "meta": {"x": 1, "x": 2}}'
    check(text)
    [record] = _core.json_records([text], ["meta"])
    assert list(record) == ["b", "a", "meta"] and dict(record["meta"]) == {"x": 2}


def test_the_facts_come_as_the_cores_map_where_the_path_says() -> None:
    flow, event, other = _core.json_records([
        '{"flow_id": 7, "meta": {"sni": "a.example"}, "findings": []}',
        '{"event_type": "flow", "portwatch": {"protocol": "tls", "meta": {"sni": "b.example"}, "x": 1}}',
        '{"meta": "not an object"}',
    ], ["meta"])
    assert type(flow["meta"]) is _core.Meta and flow["meta"]["sni"] == "a.example"
    assert list(flow) == ["flow_id", "meta", "findings"]
    assert type(event["portwatch"]["meta"]) is dict  # not on the path asked for
    assert other == {"meta": "not an object"}
    [event] = _core.json_records(['{"portwatch": {"protocol": "tls", "meta": {"sni": "b.example"}, "x": 1}}'],
                                 ["portwatch", "meta"])
    assert type(event["portwatch"]["meta"]) is _core.Meta and list(event["portwatch"]) == ["protocol", "meta", "x"]
    assert event["portwatch"]["meta"].safe_dict() == {"sni": "b.example"}


def test_nesting_past_the_cores_depth_is_left_to_python() -> None:
    deep = '{"a": ' + "[" * 64 + "1" + "]" * 64 + "}"
    assert _core.Meta.from_json(deep) is None
    shallow = '{"a": ' + "[" * 63 + "1" + "]" * 63 + "}"
    assert dict(_core.Meta.from_json(shallow)) == json.loads(shallow)
