"""Signature-loader input the `signature` fuzz target failed on: a regex with an inline flag that
only bytes patterns accept. The pattern compiles (signatures are bytes regexes) but the backtracking
check parsed the text as a str pattern, and re.error escaped as a traceback."""

from __future__ import annotations

import pytest

from portwatch.detect.signature import SignatureError, parse_signature


@pytest.mark.parametrize("regex", ["(?L)a", "^(?L:SSH-)[0-9]", "(?u)x"])
def test_inline_flags_give_a_signature_or_a_signature_error(regex):
    text = f"protocol = \"x\"\n[[match]]\nregex = '{regex}'\n"
    try:
        sig = parse_signature(text, "f.toml", "user")
    except SignatureError as exc:
        assert str(exc).startswith("f.toml:3: match[0].regex: ") and "\n" not in str(exc)
    else:
        assert sig.matches[0].regex is not None
