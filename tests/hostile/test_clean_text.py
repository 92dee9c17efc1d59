"""clean_text skips its escaping regex for printable text: the result must be what the regex gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch.sanitize import _UNSAFE, MAX_TEXT, _escape, clean_text

# Characters near every range the sanitiser escapes, and plain ones.
_CHARS = st.sampled_from(
    [chr(c) for c in (*range(0x00, 0x21), *range(0x7E, 0xA2), 0xAD, *range(0x200A, 0x2030), *range(0x2060, 0x206A))]
    + ["\ufeff", "\ufffd", "a", "é", "€", "😀", " "]
)


def _reference(text: str, limit: int = MAX_TEXT) -> str:
    cut = text[: limit * 4 + 4]
    out = _UNSAFE.sub(_escape, cut)
    if len(out) > limit or len(text) > len(cut):
        out = out[: limit - 1] + "…"
    return out


@settings(max_examples=500, deadline=None)
@given(st.text(_CHARS, max_size=300) | st.text(max_size=300))
def test_text_is_escaped_as_the_regex_escapes_it(text: str) -> None:
    got = clean_text(text)
    assert got == _reference(text)
    assert _UNSAFE.search(got) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_bytes_decode_then_escape(raw: bytes) -> None:
    got = clean_text(raw)
    assert got == _reference(raw.decode("utf-8", errors="replace"))
    assert _UNSAFE.search(got) is None
