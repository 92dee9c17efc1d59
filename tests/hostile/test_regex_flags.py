"""Signature-loader input the `signature` fuzz target failed on: a regex with an inline flag that
only bytes patterns accept (or none). The loader gives a signature or one `file:line: field:` line."""

from __future__ import annotations

import pytest

from portwatch.signatures import check_files


@pytest.mark.parametrize(("regex", "problem"), [
    ("(?L)a", "locale mode (?L) is not supported (the Rust engine matches in linear time)"),
    ("^(?L:SSH-)[0-9]", "locale mode (?L) is not supported (the Rust engine matches in linear time)"),
    ("(?u)x", "invalid pattern: bad inline flags: cannot use 'u' flag with a bytes pattern"),
    ("(?i)ssh-", None),
    ("(?s)a.b", None),
])
def test_inline_flags_give_a_signature_or_a_signature_error(tmp_path, regex, problem):
    f = tmp_path / "f.toml"
    f.write_text(f"protocol = \"x\"\n[[match]]\nregex = '{regex}'\n")
    problems = check_files([str(f)])
    if problem is None:
        assert problems == []
    else:
        assert problems == [f"{f}:3: match[0].regex: {problem}"]
