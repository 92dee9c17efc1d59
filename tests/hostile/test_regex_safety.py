"""Regex safety: a user signature cannot stall the engine.

The core matches signature regexes with Rust's `regex` crate (linear time in the input, no
backtracking) over at most `depth` (4 KiB) bytes, so the shapes that made Python's `re` backtrack
for hours (a repeat inside an unbounded repeat, alternation inside one) are accepted and stay fast.
Patterns that are costly even so (many long variable repeats) load with a one-line warning; what
the core cannot compile is refused in one line naming the file, the line and the field, through
`portwatch signatures check` and `analyze --signatures`.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from _engine import classify
from pcapkit import ether, tcp_session, timed, write_pcap

from portwatch.signatures import SignatureError, build_engine, check_files

MAX_DEPTH = 4096
CATASTROPHIC = [  # for a backtracking engine
    r"(a+)+$",
    r"^(a+)+$",
    r"(a*)*b",
    r"(x+x+)+y",
    r"(a|aa)*c",
    r"(a|a)*c",
    r"(?:[a-z]+\s?)+!",
    r"((ab)*)+$",
]
POLYNOMIAL = [r"(a{1,64}){1,64}$", r".*.*.*.*x", r"a*a*a*a*a*b", r"(?:.*,){10}x"]
# Adversarial fillers: long runs that almost match, the shape that makes backtracking explode.
FILLERS = [b"a" * MAX_DEPTH, b"a" * (MAX_DEPTH - 1) + b"!", b"x" * MAX_DEPTH, b"ab" * (MAX_DEPTH // 2),
           b"a," * (MAX_DEPTH // 2), bytes(range(256)) * (MAX_DEPTH // 256)]


def signature_text(pattern: str, depth: int = MAX_DEPTH) -> str:
    return (
        'protocol = "evil"\ntransports = ["tcp"]\n\n[[match]]\ndirection = "either"\n'
        f"regex = '{pattern}'\ndepth = {depth}\n"
    )


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "portwatch", *args], capture_output=True, text=True, timeout=60)


def _user_dir(tmp_path, pattern: str, depth: int = MAX_DEPTH):
    sigs = tmp_path / "sigs"
    sigs.mkdir(exist_ok=True)
    (sigs / "evil.toml").write_text(signature_text(pattern, depth))
    return sigs


@pytest.mark.parametrize("pattern", CATASTROPHIC + POLYNOMIAL)
def test_backtracking_shapes_load_and_classify_4k_of_adversarial_bytes_fast(tmp_path, pattern):
    sigs = _user_dir(tmp_path, pattern)
    problems = check_files([str(sigs / "evil.toml")])
    assert all(": warning: " in p for p in problems), problems  # loads (at most a warning)
    classify("tcp", [b"x"], [], 4444, dirs=[sigs])  # build the engine outside the clock
    t0 = time.perf_counter()
    for filler in FILLERS:
        d = classify("tcp", [filler], [filler], 4444, dirs=[sigs])
        assert d is not None
    assert time.perf_counter() - t0 < 3.0


@pytest.mark.parametrize("pattern", [r".*.*.*.*x", r"a*a*a*a*a*b"])
def test_expensive_pattern_is_a_one_line_warning(tmp_path, pattern):
    f = _user_dir(tmp_path, pattern) / "evil.toml"
    out = cli("signatures", "check", str(f))
    assert out.returncode == 0 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"{f}:6: match[0].regex: warning: expensive: ")
    assert f"{f}: ok (evil, 1 match(es))" in out.stdout


def test_analyze_with_a_catastrophic_pattern_finishes(tmp_path):
    sigs = _user_dir(tmp_path, r"(a|aa)*c")
    pcap = write_pcap(tmp_path / "x.pcap", timed([ether(p) for p in tcp_session([b"a" * 3000], [b"a" * 3000])]))
    t0 = time.monotonic()
    out = cli("analyze", "--signatures", str(sigs), "--format", "jsonl", str(pcap))
    assert time.monotonic() - t0 < 30
    assert out.returncode in (0, 1), out.stderr  # 1: findings at the default --fail-on
    assert "Traceback" not in out.stderr and out.stderr == ""
    assert out.stdout.count('"protocol":') == 1


def test_signatures_check_rejects_what_cannot_compile_with_one_line(tmp_path):
    f = tmp_path / "evil.toml"
    f.write_text(signature_text("x" * 1100))
    good = tmp_path / "good.toml"
    good.write_text(signature_text(r"^EVIL[0-9]{1,8}\r\n"))
    out = cli("signatures", "check", str(f), str(good))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [f"{f}:6: match[0].regex: pattern longer than 1024 characters"]
    assert f"{good}: ok (evil, 1 match(es))" in out.stdout


def test_analyze_refuses_a_signature_dir_with_a_bad_pattern(tmp_path):
    sigs = _user_dir(tmp_path, "x" * 1100)
    pcap = write_pcap(tmp_path / "x.pcap", timed([ether(p) for p in tcp_session([b"a" * 30], [b"a" * 30])]))
    out = cli("analyze", "--signatures", str(sigs), str(pcap))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip() == (
        f"portwatch: error: {sigs / 'evil.toml'}:6: match[0].regex: pattern longer than 1024 characters"
    )


@pytest.mark.parametrize("pattern", [
    r"^EVIL-[\x21-\x7e]{1,200}\r\n",
    r"(?:GET|POST) /[a-z]{1,64}",
    r"(?:ab|cd){1,8}x",
    r"[a-z]+@[a-z]+\.",
    r"\x16\x03[\x00-\x04]..\x01",
])
def test_bounded_patterns_are_accepted_and_fast(tmp_path, pattern):
    sigs = _user_dir(tmp_path, pattern)
    assert check_files([str(sigs / "evil.toml")]) == []
    classify("tcp", [b"x"], [], 4444, dirs=[sigs])
    t0 = time.perf_counter()
    for filler in FILLERS:
        classify("tcp", [filler], [], 4444, dirs=[sigs])
    assert time.perf_counter() - t0 < 2.0


def test_shipped_signatures_cannot_stall_on_4k_of_adversarial_bytes():
    """The shipped set over every filler, both directions, both transports: well under a second each."""
    classify("tcp", [b"x"], [], 4444)
    slow = []
    for filler in FILLERS:
        for transport in ("tcp", "udp"):
            t0 = time.perf_counter()
            classify(transport, [filler], [filler], 4444)
            dt = time.perf_counter() - t0
            if dt > 0.25:
                slow.append((transport, filler[:8], round(dt, 3)))
    assert not slow, slow


def test_depth_is_capped(tmp_path):
    sigs = _user_dir(tmp_path, r"^x", depth=MAX_DEPTH + 1)
    with pytest.raises(SignatureError, match=f"evil.toml:7: match\\[0\\].depth: must be 1..{MAX_DEPTH}"):
        build_engine([str(sigs)])


def test_overlong_pattern_is_refused(tmp_path):
    sigs = _user_dir(tmp_path, "x" * 1100)
    with pytest.raises(SignatureError, match="pattern longer than 1024 characters"):
        build_engine([str(sigs)])
