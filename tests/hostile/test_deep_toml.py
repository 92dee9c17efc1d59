"""TOML nested 2,000 levels deep (issue "Hostile input, second round", item 4).

tomllib parses arrays and inline tables by recursion, so such a file raised RecursionError: a
traceback from every command that loads user TOML. Each now refuses it in one line naming the
file and line (`portwatch.tomlguard`, MAX_TOML_NESTING levels), exit 2.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import portwatch
from portwatch.monitor import reload as reloading
from portwatch.pipeline import Config
from portwatch.signatures import SignatureError
from portwatch.tomlguard import MAX_TOML_NESTING, too_deep_line

DEPTH = 2000


def _deep(kind: str) -> str:
    if kind == "array":
        return "[" * DEPTH + "]" * DEPTH
    return "{a = " * DEPTH + "1" + "}" * DEPTH


@pytest.fixture(params=["array", "inline-table"])
def files(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Path]:
    value = _deep("array" if request.param == "array" else "table")
    sigs = tmp_path / "sigs"
    sigs.mkdir()
    (sigs / "deep.toml").write_text(f'protocol = "deep"\ntransports = ["tcp"]\nmatch = {value}\n')
    policy = tmp_path / "policy.toml"
    policy.write_text(f"# site policy\n\ndisabled = {value}\n")
    return {"sigs": sigs, "sig": sigs / "deep.toml", "policy": policy}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portwatch", *args], capture_output=True, text=True, timeout=60)


def _one_line(run: subprocess.CompletedProcess[str], where: str) -> None:
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr and "RecursionError" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr[-2000:]
    assert where in lines[0] and f"nested deeper than {MAX_TOML_NESTING} levels" in lines[0], lines


def test_cli_commands_refuse_deep_toml(files: dict[str, Path], tmp_path: Path) -> None:
    sig, policy = f"{files['sig']}:3", f"{files['policy']}:3"
    _one_line(_run("analyze", "-q", "--signatures", str(files["sigs"]), "/dev/null"), sig)
    _one_line(_run("analyze", "-q", "--policy", str(files["policy"]), "/dev/null"), policy)
    _one_line(_run("signatures", "check", str(files["sig"])), sig)
    _one_line(_run("signatures", "list", "--signatures", str(files["sigs"])), sig)
    (tmp_path / "root").mkdir()
    _one_line(_run("audit", "--root", str(tmp_path / "root"), "--policy", str(files["policy"])), policy)
    _one_line(_run("audit", "--root", str(tmp_path / "root"), "--signatures", str(files["sig"])), sig)
    _one_line(_run("baseline", "save", "-o", str(tmp_path / "b.json"), "--signatures", str(files["sigs"]),
                   "/dev/null"), sig)


def test_api_and_monitor_reload_refuse_deep_toml(files: dict[str, Path]) -> None:
    with pytest.raises(SignatureError, match="nested deeper"):
        portwatch.analyze([], signatures=files["sigs"], progress=False)
    setup, error = reloading.load(Config(policy_path=str(files["policy"])))
    assert setup is None and f"{files['policy']}:3" in error
    setup, error = reloading.load(Config(signature_dirs=(str(files["sigs"]),)))
    assert setup is None and f"{files['sig']}:3" in error


def test_nesting_scan_skips_strings_and_comments() -> None:
    text = 'a = "[[[[[[" # [[[[[[[[\nb = \'\'\'\n[[[[[[\n\'\'\'\nc = """x\\"""[[[[""" \nd = [[1], [2]]\n'
    assert too_deep_line(text, 2) is None
    assert too_deep_line(text + "e = [[[0]]]\n", 2) == 7
