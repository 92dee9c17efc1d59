"""Every file a command writes (`analyze -o` in each format and its tables, `audit -o`, `baseline
save -o`) is opened without following a symbolic link: one planted at the path (in /tmp, say, for
root to write through onto /etc/shadow) is refused with one line and exit 2, and its target keeps
its bytes. A regular file is replaced, and a character device such as /dev/null is written."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _kit import CAPTURES, SERVICES, run

from portwatch.report.recordfile import StdoutRecords
from portwatch.report.safeopen import OutputPathError, create_output

CAPTURE = str(CAPTURES / "ssh-443.pcap")
COMMANDS = {
    "jsonl": ["analyze", *SERVICES, "--format", "jsonl", CAPTURE],
    "csv": ["analyze", *SERVICES, "--format", "csv", CAPTURE],
    "eve": ["analyze", *SERVICES, "--format", "eve", CAPTURE],
    "console": ["analyze", *SERVICES, CAPTURE],
    "parquet": ["analyze", *SERVICES, "--format", "parquet", CAPTURE],
    "sqlite": ["analyze", *SERVICES, "--format", "sqlite", CAPTURE],
    "findings-only": ["analyze", *SERVICES, "--findings-only", "--format", "csv", CAPTURE],
    "servers": ["analyze", *SERVICES, "--servers", CAPTURE],
    "baseline": ["baseline", "save", *SERVICES, CAPTURE],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_symbolic_link_at_the_output_path_is_refused(name, tmp_path: Path):
    target = tmp_path / "shadow"
    target.write_bytes(b"root:x:0:0\n")
    link = tmp_path / "out"
    link.symlink_to(target)
    res = run(*COMMANDS[name], "-o", str(link))
    assert res.exit_code == 2
    assert target.read_bytes() == b"root:x:0:0\n"
    assert link.is_symlink()
    assert res.stderr.strip() == f"portwatch: error: {link}: is a symbolic link; refusing to follow it"


def test_audit_refuses_a_symbolic_link_too(tmp_path: Path):
    target = tmp_path / "shadow"
    target.write_bytes(b"secret\n")
    link = tmp_path / "audit.txt"
    link.symlink_to(target)
    res = run("audit", "-o", str(link))
    assert res.exit_code == 2 and target.read_bytes() == b"secret\n"
    assert "is a symbolic link; refusing to follow it" in res.stderr


@pytest.mark.parametrize("name", ["jsonl", "console", "parquet", "baseline"])
def test_an_existing_regular_file_is_replaced(name, tmp_path: Path):
    out = tmp_path / "out"
    out.write_bytes(b"x" * 1_000_000)
    res = run(*COMMANDS[name], "-o", str(out))
    assert res.exit_code in (0, 1)
    data = out.read_bytes()
    assert b"x" * 64 not in data and data


def test_a_character_device_is_written():
    res = run(*COMMANDS["jsonl"], "-o", os.devnull)
    assert res.exit_code == 1  # the capture's findings; nothing refused


def test_create_output_refuses_a_hard_link_and_a_directory(tmp_path: Path):
    original = tmp_path / "original"
    original.write_bytes(b"keep")
    os.link(original, tmp_path / "second-name")
    with pytest.raises(OutputPathError, match="hard links"):
        create_output(str(tmp_path / "second-name"))
    assert original.read_bytes() == b"keep"
    with pytest.raises(OutputPathError):
        create_output(str(tmp_path))
    fd = create_output(str(tmp_path / "new"))
    os.close(fd)
    assert (tmp_path / "new").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "eve", "csv"])
def test_records_on_standard_output_are_the_bytes_of_the_file(fmt, tmp_path: Path):
    # a pipe, not a terminal: the records go to stdout's bytes (StdoutRecords), as into a -o file
    out = tmp_path / "out"
    base = [sys.executable, "-m", "portwatch", "analyze", *SERVICES, "--quiet", "--format", fmt, CAPTURE]
    piped = subprocess.run(base, capture_output=True, check=False)
    filed = subprocess.run([*base, "-o", str(out)], capture_output=True, check=False)
    assert piped.returncode == filed.returncode == 1  # the capture's findings
    assert piped.stdout and piped.stdout == out.read_bytes()


def test_stdout_records_keep_earlier_text_first_and_write_utf8():
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="ascii", newline="")
    text.write("header\n")
    out = StdoutRecords(text)
    out.write_bytes(b'{"a":"\xc3\xa4"}\n')
    out.write("caf\u00e9 \udcff\n")  # UTF-8 whatever the text layer's encoding; surrogateescape'd byte back
    out.flush()
    assert raw.getvalue() == b'header\n{"a":"\xc3\xa4"}\ncaf\xc3\xa9 \xff\n'
