"""The package type-checks, and the compiled core's stub (`portwatch/_core.pyi`) says what the module has:
mypy over `portwatch/` (the configuration in pyproject.toml), and mypy's stubtest of the stub against the
built `portwatch._core` (a name, an argument or a default the Rust bindings gained or lost fails it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytest.importorskip("mypy", reason="mypy is in the test extras: pip install -e '.[test]'")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_the_package_type_checks() -> None:
    done = _run("mypy", "--no-incremental")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_cores_stub_matches_the_built_module() -> None:
    done = _run("mypy.stubtest", "portwatch._core")
    assert done.returncode == 0, done.stdout + done.stderr
