"""Capture in the core, end to end: a generated mixed capture replayed onto a veth at 20,000
packets/s into `portwatch monitor -i ... --workers 2 --jsonl`, and the counts must add up.

Needs root (network namespaces, packet sockets) and the sender example
(core/examples/udp_burst.rs, built here with cargo if missing). The rate figures are
benchmarks/monitor_rate.py's, not this test's: here only the bookkeeping is checked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import ROOT, MonitorProc, read_jsonl

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, packet sockets)"),
]

SENDER = ROOT / "core" / "target" / "release" / "examples" / "udp_burst"
PACKETS = 20_000
RATE = 20_000
RING = re.compile(r"ring \d+ \((\S+)\): kernel packets (\d+), kernel drops (\d+), received (\d+), analysed (\d+)")


def sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=True, timeout=600)


@pytest.fixture(scope="module")
def sender() -> Path:
    if not SENDER.exists():
        if shutil.which("cargo") is None:
            pytest.skip("needs cargo to build core/examples/udp_burst.rs")
        sh("cargo", "build", "--release", "--example", "udp_burst",
           "--manifest-path", str(ROOT / "core" / "Cargo.toml"))
    return SENDER


@pytest.fixture
def work() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="pw-ring-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def veth() -> Iterator[tuple[str, str, str, str]]:
    tag = f"pwl{os.getpid() % 100000}"
    tx_ns, rx_ns, tx, rx = f"{tag}t", f"{tag}r", f"{tag}a", f"{tag}b"
    try:
        sh("ip", "netns", "add", tx_ns)
        sh("ip", "netns", "add", rx_ns)
        sh("ip", "link", "add", tx, "netns", tx_ns, "type", "veth", "peer", "name", rx, "netns", rx_ns)
        for ns, dev in ((tx_ns, tx), (rx_ns, rx)):
            # No IPv6: the kernel would add router solicitations of its own to the count.
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
            sh("ip", "-n", ns, "link", "set", dev, "mtu", "9000", "up")
        yield tx_ns, rx_ns, tx, rx
    finally:
        for ns in (tx_ns, rx_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def five_tuples(records: list[dict]) -> set[tuple]:
    return {(r["transport"], r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"]) for r in records}


def test_replay_through_two_rings_adds_up(sender: Path, veth: tuple[str, str, str, str], work: Path) -> None:
    tx_ns, rx_ns, tx, rx = veth
    capture = work / "mix.pcap"
    sh(sys.executable, str(ROOT / "benchmarks" / "gen_capture.py"), "--packets", str(PACKETS), "--concurrent", "200",
       "--seed", "5", "-o", str(capture), "--quiet")
    # What the offline analysis finds in the same frames: the flows the monitor must report.
    offline = work / "offline.jsonl"
    done = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "-o", str(offline),
                           str(capture)], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert done.returncode in (0, 1), done.stderr  # 1: a finding reached --fail-on high
    expected = [json.loads(line) for line in offline.read_text().splitlines() if line.strip()]

    events = work / "events.jsonl"
    mon = MonitorProc(["-i", rx, "--workers", "2", "--jsonl", str(events), "--no-view", "--stats-interval", "1",
                       "--duration", "120"], work, netns=rx_ns)
    try:
        mon.wait_ready()
        out = sh("ip", "netns", "exec", tx_ns, str(sender), "--iface", tx, "--pcap", str(capture), "--rate",
                 str(RATE), "--count", str(PACKETS), "--batch", "64").stdout
        assert f"sent {PACKETS} frames, 0 refused" in out, out
        mon.signal(signal.SIGTERM)
        assert mon.proc.wait(60) == 0, mon.log()
    finally:
        mon.stop()
    log = mon.log()
    rings = [tuple(map(int, m[1:])) for m in RING.findall(log)]
    assert len(rings) == 2, log
    kernel_packets, drops, received, analysed = (sum(r[i] for r in rings) for i in range(4))
    assert received + drops == kernel_packets, log
    assert analysed == received, log
    assert kernel_packets == PACKETS, log  # nothing else on the link, every frame seen
    assert drops == 0, log  # 20,000 frames fit in the rings whatever the machine's load
    assert all(r[0] > 0 for r in rings), f"fanout left a ring idle: {rings}"

    lines = read_jsonl(events)
    flows = [e for e in lines if e["type"] == "flow"]
    # Every analysed packet is in exactly one flow record, and every flow of the capture is
    # reported, once (a flow split across the two rings would be reported twice).
    assert sum(f["packets_c2s"] + f["packets_s2c"] for f in flows) == analysed
    assert five_tuples(flows) == five_tuples(expected)
    assert len(flows) == len(expected)
    assert len({f["flow_id"] for f in flows}) == len(flows)
    classified_ids = {e["flow_id"] for e in lines if e["type"] == "classified"}
    assert classified_ids <= {f["flow_id"] for f in flows}
