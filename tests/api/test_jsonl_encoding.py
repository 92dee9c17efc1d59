"""The JSON-lines encoder: orjson where it can, the standard library where orjson refuses."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch.report.jsonl import encode_line

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_VALUES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _VALUES, max_size=6))
def test_a_line_reads_back_as_the_standard_library_writes_it(obj: dict) -> None:
    line = encode_line(obj)
    assert "\n" not in line  # one record, one line, whatever the text held
    assert json.loads(line) == json.loads(json.dumps(obj))


def test_typical_record_is_byte_identical_to_the_standard_library() -> None:
    obj = {"ts_start": 1700000000.123456, "confidence": 0.95, "meta": {"sni": "ex\u00e4mple.org", "alpn": ["h2"]},
           "findings": [], "pcap": None, "bytes_c2s": 517}
    assert encode_line(obj) == json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def test_what_orjson_refuses_still_gets_written() -> None:
    big = {"n": 2**70}  # past 64 bits
    assert json.loads(encode_line(big)) == big
    lone = {"t": "a\udcffb"}  # a lone surrogate (surrogateescape'd bytes)
    assert encode_line(lone) == json.dumps(lone, ensure_ascii=False, separators=(",", ":"))
