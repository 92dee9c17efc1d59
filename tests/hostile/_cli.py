"""Run `portwatch analyze` as a user would (a child process) and read back what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    records: list[dict]


def analyze(tmp_path: Path, *captures: Path | str, fmt: str = "jsonl", extra: tuple[str, ...] = (),
            stdin: bytes | None = None) -> Run:
    out = tmp_path / f"out.{fmt}"
    args = [sys.executable, "-m", "portwatch", "analyze", "--format", fmt, *extra]
    if fmt != "console":
        args += ["-o", str(out)]
    env = {**os.environ, "COLUMNS": "1000"}  # the console report folds long cells at the terminal width
    proc = subprocess.run([*args, *map(str, captures)], capture_output=True, timeout=120, input=stdin, env=env)
    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")
    records = []
    if fmt == "jsonl" and out.exists():
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return Run(proc.returncode, stdout, stderr, records)


def one_line_error(run: Run, *fragments: str) -> str:
    """The run's error output is exactly one line per failed capture, with no traceback."""
    assert "Traceback" not in run.stderr, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("portwatch: error: ") for ln in lines), run.stderr
    for frag in fragments:
        assert frag in run.stderr, (frag, run.stderr)
    return lines[0]
