"""Files the user points portwatch at that are not what they seem: a FIFO or a link to /dev/zero among
a directory's signature files, a policy or baseline that never ends. Each is refused in one line
naming the file, at once (the FIFO waited for a writer forever; /dev/zero was read until memory ran
out, an "internal error: MemoryError"), and a pipe named on purpose (`--policy <(...)`) still reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
CAPTURE = str(REPO / "captures" / "http-80.pcap")


def _analyze(*args: str, pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portwatch", "analyze", *args, "--format", "jsonl", "-o",
                           os.devnull, CAPTURE], capture_output=True, text=True, timeout=60, pass_fds=pass_fds)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_signature_directory_holding_no_regular_file_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    sigs = tmp_path / "sigs"
    sigs.mkdir()
    bad = sigs / "bad.toml"
    if kind == "fifo":
        os.mkfifo(bad)
    else:
        bad.symlink_to("/dev/zero")
    for run in (_analyze("--signatures", str(sigs)),
                subprocess.run([sys.executable, "-m", "portwatch", "signatures", "check", str(bad)],
                               capture_output=True, text=True, timeout=60)):
        assert run.returncode == 2, run.stderr
        assert f"{bad}: cannot read: not a regular file" in run.stderr
        assert "internal error" not in run.stderr


@pytest.mark.parametrize(("option", "limit"), [("--policy", "16 MiB"), ("--baseline", "256 MiB")])
def test_a_policy_or_baseline_that_never_ends_is_refused(tmp_path: Path, option: str, limit: str) -> None:
    endless = tmp_path / "endless"
    endless.symlink_to("/dev/zero")
    run = _analyze(option, str(endless))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"portwatch: error: {endless}: cannot read: larger than {limit}"]


def test_a_policy_from_a_pipe_is_read() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as w:
        w.write('[severity]\ntunnel = "low"\n')
    try:
        run = _analyze("--policy", f"/dev/fd/{read_end}", pass_fds=(read_end,))
    finally:
        os.close(read_end)
    assert run.returncode in (0, 1), run.stderr
