"""Capture in the core, end to end: a generated mixed capture replayed onto a veth at 20,000
packets/s into `portwatch monitor -i ... --workers 2 --jsonl`, and the counts must add up; a
SIGHUP reaches the analyzer thread of every ring; a consumer slower than the link makes the
threads wait (bounded outboxes), the kernel drop, and the counts still add up.

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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import ROOT, MonitorProc, read_jsonl, wait_for

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, packet sockets)"),
]

SENDER = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "core" / "target") / "release" / "examples" / "udp_burst"
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


def gen_capture(path: Path, packets: int, seed: int, concurrent: int = 200) -> None:
    sh(sys.executable, str(ROOT / "benchmarks" / "gen_capture.py"), "--packets", str(packets), "--concurrent",
       str(concurrent), "--seed", str(seed), "-o", str(path), "--quiet")


def send(veth: tuple[str, str, str, str], sender: Path, capture: Path, packets: int, rate: int = RATE) -> None:
    tx_ns, _, tx, _ = veth
    out = sh("ip", "netns", "exec", tx_ns, str(sender), "--iface", tx, "--pcap", str(capture), "--rate", str(rate),
             "--count", str(packets), "--batch", "64").stdout
    assert f"sent {packets} frames, 0 refused" in out, out


def ring_of(flow_id: str, rings: int = 2) -> int:
    """Ring i of n numbers its flows i+1, n+i+1, ... (after the run's prefix)."""
    return (int(flow_id.rsplit("-", 1)[-1]) - 1) % rings


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


MARK = "flagged by the reloaded policy"


def test_sighup_reaches_every_rings_thread(sender: Path, veth: tuple[str, str, str, str], work: Path) -> None:
    """A policy changed by SIGHUP judges the flows of both rings: DNS made an insecure service."""
    _, rx_ns, _, rx = veth
    before, after = work / "before.pcap", work / "after.pcap"
    gen_capture(before, 6000, seed=5, concurrent=100)
    gen_capture(after, 6000, seed=6, concurrent=100)  # other flows: a flow keeps its first verdict
    policy = work / "policy.toml"
    policy.write_text("# nothing changed yet\n")
    policy.chmod(0o644)
    events = work / "events.jsonl"
    mon = MonitorProc(["-i", rx, "--workers", "2", "--jsonl", str(events), "--no-view", "--stats-interval", "1",
                       "--policy", str(policy), "--duration", "120"], work, netns=rx_ns)
    try:
        mon.wait_ready()
        send(veth, sender, before, 6000)
        def dns_rings() -> set[int]:
            return {ring_of(e["flow_id"]) for e in read_jsonl(events)
                    if e["type"] == "classified" and e["protocol"] == "dns"}
        assert wait_for(lambda: dns_rings() == {0, 1}, timeout=15), f"DNS flows on both rings: {dns_rings()}"
        policy.write_text(f'[insecure_services]\ndns = "{MARK}"\n')
        mon.signal(signal.SIGHUP)
        reload = wait_for(lambda: [e for e in read_jsonl(events) if e["type"] == "reload"], timeout=10)
        assert reload[0]["ok"] is True, mon.log()
        time.sleep(0.5)  # every thread takes a new engine within 0.2 s
        send(veth, sender, after, 6000)
        time.sleep(1.5)
        mon.signal(signal.SIGTERM)
        assert mon.proc.wait(60) == 0, mon.log()
    finally:
        mon.stop()
    lines = read_jsonl(events)
    at = next(i for i, e in enumerate(lines) if e["type"] == "reload")
    marked = [e for e in lines if e["type"] == "finding" and MARK in e["message"]]
    dns_after = {e["flow_id"] for e in lines[at:] if e["type"] == "classified" and e["protocol"] == "dns"}
    assert dns_after, "the second capture's DNS flows were classified after the reload"
    # Every DNS flow classified after the reload, on either ring, got the new policy's finding...
    assert {e["flow_id"] for e in marked} >= dns_after
    assert {ring_of(f) for f in dns_after} == {0, 1}, "both rings' threads judged by the new policy"
    # ...and nothing reported before it was. (A flow seen before the reload that ends after it is
    # judged at its end by the policy then in force: the new one.)
    assert not [e for e in lines[:at] if e["type"] == "finding" and MARK in e["message"]]


def test_slow_consumer_blocks_the_threads_and_the_counts_add_up(sender: Path, veth: tuple[str, str, str, str],
                                                                work: Path) -> None:
    """The design: each ring's outbox holds at most max_pending records; past that its thread
    waits, its ring fills and the kernel drops (counted); nothing is dropped inside. So: sent =
    kernel packets = received + kernel drops; analysed = received; every analysed packet is in
    exactly one flow record; and the records waited in the bounded outboxes, not in memory."""
    _, rx_ns, _, rx = veth
    capture = work / "mix.pcap"
    gen_capture(capture, PACKETS, seed=5)
    max_pending, ring_kib = 20, 256
    consumer = subprocess.Popen(
        ["ip", "netns", "exec", rx_ns, sys.executable, "-m", "tests.monitor.slow_consumer", rx, str(max_pending),
         str(ring_kib)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert consumer.stdout is not None and consumer.stdin is not None
        assert consumer.stdout.readline().strip() == "ready", consumer.stderr.read() if consumer.stderr else ""
        send(veth, sender, capture, PACKETS)
        time.sleep(0.5)
        out, err = consumer.communicate("go\n", timeout=120)
    finally:
        if consumer.poll() is None:
            consumer.kill()
    assert consumer.returncode == 0, err
    r = json.loads(out.strip().splitlines()[-1])
    rings = r["rings"]
    kernel_packets, drops, received, analysed = (sum(x[k] for x in rings) for k in
                                                 ("kernel_packets", "kernel_drops", "received", "packets"))
    assert kernel_packets == PACKETS, rings  # nothing else on the link
    assert received + drops == kernel_packets, rings
    assert drops > 0, f"a ring of {ring_kib} KiB behind a stalled consumer must overflow: {rings}"
    assert sum(x["stalls"] for x in rings) > 0, "the threads waited for the consumer"
    assert analysed == received, "no frame taken from a ring is dropped inside"
    assert sum(x["flows_evicted"] + x["fragments_dropped"] + x["truncated"] for x in rings) == 0
    assert r["packets_in_records"] == analysed - sum(x["non_ip"] for x in rings)
    assert r["flow_ids"] == r["flow_records"]
    # While nothing was taken, the outboxes held at most max_pending records (plus the records
    # of the block being published) per ring, not every record of the run.
    assert r["first_poll"] < r["flow_records"], r
