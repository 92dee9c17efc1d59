"""Hostile input, second round, items 1, 6 and 7 through the command a user runs: a frame with
thousands of stacked VLAN tags under every link layer that carries Ethernet, a flood of
overlapping IP fragments that never complete, and a user regex of the `.*.*X` kind. Each gives a
defined result, no traceback, bounded memory and time, and every flow read before it written.
(The bounds themselves are tested in the core: core/src/decode/decoder.rs, core/src/detect/pyregex.rs.)"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _cli import analyze
from pcapkit import ether, tcp_session, timed, write_pcap
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import GRE

ROOT = Path(__file__).resolve().parent.parent.parent
MAX_MB = 200
MAX_SECONDS = 10.0


def sessions(n: int) -> list[bytes]:
    frames: list[bytes] = []
    for i in range(n):
        frames += [ether(p) for p in tcp_session([b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"],
                                                 [b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"],
                                                 sport=41000 + i, dport=80)]
    return frames


def vlan_bomb_in_gre(tags: int) -> bytes:
    """IPv4 + GRE (transparent Ethernet bridging) carrying an Ethernet frame with `tags` 802.1Q tags."""
    inner = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01" + b"\x81\x00\x00\x01" * tags + b"\x08\x00"
    inner += bytes(IP(src="10.1.0.1", dst="10.1.0.2") / UDP(sport=1, dport=2) / b"x")
    return ether(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / GRE(proto=0x6558)) + inner)


def sll_vlan_bomb(tags: int) -> bytes:
    """Linux cooked capture (SLL) whose protocol is 802.1Q, then `tags` tags."""
    head = struct.pack("!HHH8sH", 0, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", 0x8100)
    return head + b"\x00\x01\x81\x00" * tags + b"\x00\x01\x08\x00" + bytes(IP(src="10.1.0.1", dst="10.1.0.2") /
                                                                          UDP(sport=1, dport=2) / b"x")


def run_bounded(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, float, float]:
    """`portwatch analyze` in a child; (result, seconds, peak MB of that child alone)."""
    out = tmp_path / "out.jsonl"
    code = ("import resource, subprocess, sys, json; p = subprocess.run(sys.argv[1:]); "
            "print(json.dumps([p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    t = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "portwatch", "analyze", "--format",
                           "jsonl", "-o", str(out), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.monotonic() - t
    rc, peak_kb = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    proc.returncode = rc
    return proc, seconds, peak_kb / 1024


def records(tmp_path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_two_thousand_vlan_tags_in_gre_after_twenty_sessions(tmp_path: Path, workers: str) -> None:
    frames = [*sessions(20), vlan_bomb_in_gre(2000), *sessions(1)]
    cap = write_pcap(tmp_path / "bomb.pcap", timed(frames))
    proc, seconds, peak = run_bounded(tmp_path, "--workers", workers, str(cap))
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 1), proc.stderr  # no error: the frame is counted malformed
    assert len([r for r in records(tmp_path) if r["protocol"] == "http"]) == 21
    assert seconds < MAX_SECONDS and peak < MAX_MB


def test_vlan_bomb_under_linux_cooked_capture(tmp_path: Path) -> None:
    frames = [sll_vlan_bomb(2000)]
    cap = write_pcap(tmp_path / "sll.pcap", timed(frames), linktype=113)
    run = analyze(tmp_path, cap)
    assert "Traceback" not in run.stderr
    assert run.code in (0, 1), run.stderr


def overlapping_fragments(datagrams: int, pieces: int) -> list[bytes]:
    """`datagrams` IPv4 datagrams, each sent as `pieces` overlapping fragments, none ever complete
    (more-fragments set on every piece): the attack that held 270 MB per datagram in the old engine."""
    out = []
    payload = b"A" * 1480
    for d in range(datagrams):
        for k in range(pieces):
            frag = IP(src="10.9.0.1", dst="10.9.0.2", id=d, proto=17, flags="MF", frag=(k * 8) % 8000) / payload
            out.append(ether(bytes(frag)))
    return out


def test_overlapping_fragments_that_never_complete_stay_bounded(tmp_path: Path) -> None:
    frames = sessions(5) + overlapping_fragments(datagrams=40, pieces=250) + sessions(1)
    cap = write_pcap(tmp_path / "frags.pcap", timed(frames))
    assert cap.stat().st_size > 10_000_000  # far past what one datagram may hold
    proc, seconds, peak = run_bounded(tmp_path, str(cap))
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 1), proc.stderr
    assert len([r for r in records(tmp_path) if r["protocol"] == "http"]) == 6
    assert seconds < MAX_SECONDS and peak < MAX_MB


def test_an_expensive_user_regex_is_warned_and_bounded(tmp_path: Path) -> None:
    sigdir = tmp_path / "sigs"
    sigdir.mkdir()
    (sigdir / "slow.toml").write_text(
        'protocol = "slowproto"\ndescription = "x"\ntransports = ["tcp"]\n\n'
        "[[match]]\ndirection = \"client\"\nregex = '" + ".*" * 40 + "X'\ndepth = 4096\n")
    check = subprocess.run([sys.executable, "-m", "portwatch", "signatures", "check", str(sigdir / "slow.toml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "warning: expensive" in check.stderr
    # One flow whose first 4 KiB are the pattern's worst case: bounded time, whatever the pattern.
    filler = b"a" * 4000
    frames = [ether(p) for p in tcp_session([filler], [b"ok"], sport=40001, dport=7777)]
    cap = write_pcap(tmp_path / "slow.pcap", timed(frames))
    proc, seconds, peak = run_bounded(tmp_path, "--signatures", str(sigdir), str(cap))
    assert "Traceback" not in proc.stderr and proc.returncode in (0, 1), proc.stderr
    assert len(records(tmp_path)) == 1
    assert seconds < MAX_SECONDS and peak < MAX_MB
