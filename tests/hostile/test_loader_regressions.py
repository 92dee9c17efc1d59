"""Signature-loader inputs the `signature` fuzz target failed on: only a one-line SignatureError may
escape."""

from __future__ import annotations

import subprocess
import sys

import pytest

from portwatch.signatures import SignatureError, build_engine


@pytest.mark.parametrize(("regex", "problem"), [
    ("a{99999999999}", "the repetition number is too large"),
    ("x{4294967296}", "the repetition number is too large"),
    ("(" * 1200 + "a" + ")" * 1200, "pattern longer than 1024 characters"),  # refused before parsing
])
def test_regex_that_cannot_compile_is_a_signature_error(tmp_path, regex, problem):
    (tmp_path / "f.toml").write_text(f"protocol = \"x\"\n[[match]]\nregex = '{regex}'\n")
    with pytest.raises(SignatureError) as exc:
        build_engine([str(tmp_path)])
    assert str(exc.value).startswith(f"{tmp_path / 'f.toml'}:3: match[0].regex: ")
    assert problem in str(exc.value) and "\n" not in str(exc.value)


def test_signatures_check_reports_it_in_one_line(tmp_path):
    f = tmp_path / "huge.toml"
    f.write_text("protocol = \"x\"\n[[match]]\nregex = 'a{99999999999}'\n")
    out = subprocess.run([sys.executable, "-m", "portwatch", "signatures", "check", str(f)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip() == f"{f}:3: match[0].regex: invalid pattern: the repetition number is too large"
