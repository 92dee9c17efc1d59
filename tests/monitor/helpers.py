"""Run `portwatch monitor` as a child process and read what it writes while it runs."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def portwatch_cmd() -> list[str]:
    return [sys.executable, "-m", "portwatch"]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def read_db(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """A second, read-only connection, as a notebook would open while the monitor writes."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class MonitorProc:
    """`portwatch monitor` in a namespace (or not); stderr goes to a file the test can read."""

    def __init__(self, args: list[str], workdir: Path, netns: str | None = None) -> None:
        self.workdir = workdir
        self.stderr_path = workdir / f"monitor-{time.monotonic_ns()}.log"
        prefix = ["ip", "netns", "exec", netns] if netns else []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(prefix + portwatch_cmd() + ["monitor", *args], stdout=subprocess.DEVNULL,
                                         stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=ROOT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout: float = 20) -> None:
        ok = wait_for(lambda: "monitoring " in self.log() or self.proc.poll() is not None, timeout)
        if not ok or self.proc.poll() is not None:
            self.stop()
            raise AssertionError(f"monitor did not start:\n{self.log()}")

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
