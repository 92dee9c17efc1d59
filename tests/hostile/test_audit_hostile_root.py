"""`audit --root` of a hostile image (issue "Hostile input, second round", item 5).

A symlink loop at inetd.conf or xinetd.conf raised RuntimeError, an `includedir` chain 601 deep
RecursionError, and an `include` naming a FIFO hung the audit forever. Each is now a parse
problem naming the file (and the line that led there), and the audit goes on: includes nest at
most MAX_INCLUDE_DEPTH deep and only regular files are read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from portwatch.audit.host import MAX_INCLUDE_DEPTH

TELNET = "service telnet\n{\n  socket_type = stream\n  wait = no\n  user = root\n  server = /usr/sbin/in.telnetd\n}\n"


def _audit(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portwatch", "audit", "--root", str(root), "--format", "jsonl"],
                          capture_output=True, text=True, timeout=30)


def _warnings(run: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.returncode in (0, 1), (run.returncode, run.stderr[-3000:])
    return [ln for ln in run.stderr.splitlines() if ln.startswith("portwatch: warning: ")]


def _etc(tmp_path: Path) -> Path:
    etc = tmp_path / "root" / "etc"
    etc.mkdir(parents=True)
    return etc


def test_symlink_loops_at_inetd_and_xinetd_conf(tmp_path: Path) -> None:
    etc = _etc(tmp_path)
    for name in ("inetd.conf", "xinetd.conf"):
        (etc / f"{name}.a").symlink_to(f"{name}.b")
        (etc / f"{name}.b").symlink_to(f"{name}.a")
        (etc / name).symlink_to(f"{name}.a")
    (etc / "services").symlink_to("services")  # a loop where audit looks for the image's services too
    run = _audit(tmp_path / "root")
    warnings = _warnings(run)
    assert any(f"{etc / 'inetd.conf'}" in w and "symlink loop" in w for w in warnings), warnings
    assert any(f"{etc / 'xinetd.conf'}" in w and "symlink loop" in w for w in warnings), warnings


def test_includedir_chain_601_deep(tmp_path: Path) -> None:
    etc = _etc(tmp_path)
    (etc / "xinetd.conf").write_text("includedir /etc/d0\n")
    for i in range(601):
        d = etc / f"d{i}"
        d.mkdir()
        (d / "next").write_text(f"includedir /etc/d{i + 1}\n" if i < 600 else TELNET)
    (etc / "d0" / "telnet").write_text(TELNET)
    run = _audit(tmp_path / "root")
    warnings = _warnings(run)
    deep = [w for w in warnings if "nested deeper than" in w]
    assert len(deep) == 1, warnings
    # Named where the chain is cut: the file and line holding the include not followed.
    assert f"{etc / f'd{MAX_INCLUDE_DEPTH - 1}' / 'next'}:1:" in deep[0], deep
    assert '"telnet"' in run.stdout or "telnet" in run.stdout  # the audit went on with what it read


def test_include_naming_a_fifo_and_a_device(tmp_path: Path) -> None:
    etc = _etc(tmp_path)
    os.mkfifo(etc / "pipe")
    (etc / "xinetd.conf").write_text("include /etc/pipe\ninclude /dev/zero\ninclude /etc/telnet\n")
    (etc / "telnet").write_text(TELNET)
    (tmp_path / "root" / "dev").mkdir()
    (tmp_path / "root" / "dev" / "zero").symlink_to("/dev/zero")  # leads outside the root: refused anyway
    os.mkfifo(etc / "inetd.conf")
    run = _audit(tmp_path / "root")
    warnings = _warnings(run)
    assert any(f"{etc / 'xinetd.conf'}:1:" in w and "/etc/pipe" in w and "not a regular file" in w
               for w in warnings), warnings
    assert any(f"{etc / 'xinetd.conf'}:2:" in w and "/dev/zero" in w for w in warnings), warnings
    assert any(f"{etc / 'inetd.conf'}" in w and "not a regular file" in w for w in warnings), warnings
    assert "telnet" in run.stdout
