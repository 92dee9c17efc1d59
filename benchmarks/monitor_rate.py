#!/usr/bin/env python3
"""The packet rate `portwatch monitor -i` sustains: a mixed capture replayed onto a veth (root).

    python benchmarks/monitor_rate.py --capture benchmarks/data/mix-2m.pcap --max-frames 2000000 \
        --rates 300000 --seconds 60                     # the acceptance run (docs/monitor.md)
    python benchmarks/monitor_rate.py                   # generates a 300,000-packet capture first

Set-up: two network namespaces joined by a veth pair (created here, removed at the end, IPv6 off
so the kernel adds no frames of its own, GRO/GSO/TSO off). core/examples/udp_burst.rs (built here
if missing) replays the capture's Ethernet frames out of one end (sendmmsg(2) batches, or a
PACKET_TX_RING with --sender ring), paced to the rate, round and round until rate x seconds
frames have gone. `portwatch monitor -i <veth> --workers N --jsonl` captures on the other end
(as `--user nobody`, the default for root) and is stopped with SIGTERM 1.5 s after the sender is
done. --sender-cpu and --monitor-cpus pin them.

Per rate it reports: frames sent and the rate the sender kept (by its own clock, from its first
frame); the kernel's count on the rings (PACKET_STATISTICS packets), frames received from the
rings, frames analysed, kernel drops, internal drops (evicted flows, fragments, truncated
frames), the times a ring's thread waited for the outputs (Python taking its records); flow
records written and the packets they account for (every analysed IP packet must be in some flow
record: that is the check that no flow went unreported); the CPU seconds of the monitor and of
the sender (the sender's include the kernel's veth receive path, which runs in its context);
the load average when the run started. Results: benchmarks/results/monitor_rate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "core" / "target")
SENDER = TARGET / "release" / "examples" / "udp_burst"
TAG = f"pwr{os.getpid() % 100000}"
TX_NS, RX_NS = f"{TAG}t", f"{TAG}r"
TX, RX = f"{TAG}a", f"{TAG}b"

SUMMARY = re.compile(r"stopped \(.*?\) after [\d.]+s: (\d+) packets .*?kernel drops (\d+), internal drops (\d+)")
RING = re.compile(r"ring \d+ \((\S+)\): kernel packets (\d+), kernel drops (\d+), received (\d+), analysed (\d+), "
                  r"truncated (\d+), evicted (\d+), non-IP (\d+), waited for the outputs (\d+) times")


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def setup_ns() -> None:
    sh("ip", "netns", "add", TX_NS)
    sh("ip", "netns", "add", RX_NS)
    sh("ip", "link", "add", TX, "netns", TX_NS, "type", "veth", "peer", "name", RX, "netns", RX_NS)
    for ns, dev in ((TX_NS, TX), (RX_NS, RX)):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "-n", ns, "link", "set", dev, "mtu", "9000", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        # No offloads: every frame crosses the veth as it was captured (no GRO merging segments
        # into one frame the ring then counts once, no GSO/TSO splitting in the sender's path).
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", "off", "gso", "off", "tso", "off", check=False)


def teardown_ns() -> None:
    for ns in (TX_NS, RX_NS):
        sh("ip", "netns", "del", ns, check=False)


def build_sender() -> None:
    if not SENDER.exists():
        subprocess.run(["cargo", "build", "--release", "--example", "udp_burst"], cwd=ROOT / "core", check=True)


def taskset(cpus: str | None) -> list[str]:
    """Command prefix pinning a process (and the threads it starts) to a CPU list."""
    return ["taskset", "-c", cpus] if cpus else []


def wait_cpu(proc: subprocess.Popen) -> tuple[int, float]:
    """Reap a child and return (exit status, its user + system CPU seconds)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def flow_accounting(path: Path) -> tuple[int, int, int, int]:
    """(flow lines, packets in them, classified lines, distinct flow_ids of flow lines)."""
    flows = packets = classified = 0
    ids = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e["type"] == "flow":
                flows += 1
                packets += e["packets_c2s"] + e["packets_s2c"]
                ids.add(e["flow_id"])
            elif e["type"] == "classified":
                classified += 1
    return flows, packets, classified, len(ids)


def run_rate(capture: Path, pps: int, seconds: float, workers: int, work: Path, ring_mb: int, batch: int,
             opts: argparse.Namespace) -> dict:
    out, log = work / "out.jsonl", work / "monitor.log"
    for p in (out, log):
        if p.exists():
            p.unlink()
    count = int(pps * seconds)
    load_before = os.getloadavg()[0]  # how busy the machine was: the sender shares it with everything
    # The monitor is stopped (SIGTERM, as systemd does) 1.5 s after the sender is done, so that
    # the kernel's counters and the monitor's cover the same frames; --duration is only a cap.
    duration = 3 * seconds + 30
    with open(log, "w") as err:
        mon = subprocess.Popen(
            ["ip", "netns", "exec", RX_NS, *taskset(opts.monitor_cpus), sys.executable, "-m", "portwatch",
             "monitor", "-i", RX, "--workers",
             str(workers), "--buffer-mb", str(ring_mb), "--duration", str(duration), "--no-view",
             "--stats-interval", "1", "--jsonl", str(out)],
            stderr=err, stdout=subprocess.DEVNULL, cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    deadline = time.monotonic() + 60
    while "monitoring " not in log.read_text() and time.monotonic() < deadline and mon.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)  # the threads start right after the log line
    sender = subprocess.Popen(
        ["ip", "netns", "exec", TX_NS, str(SENDER), "--iface", TX, "--pcap", str(capture),
         "--rate", str(pps), "--count", str(count), "--batch", str(batch), "--max-frames", str(opts.max_frames),
         "--tx-ring", "1" if opts.sender == "ring" else "0",
         *(["--cpu", str(opts.sender_cpu)] if opts.sender_cpu is not None else [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert sender.stdout is not None
    sender_out = sender.stdout.read()
    _, sender_cpu = wait_cpu(sender)
    m = re.search(r"sent (\d+) frames, \d+ refused, in ([\d.]+) s", sender_out)
    if not m:
        raise RuntimeError(f"sender: {sender_out}")
    sent = int(m.group(1))
    send_seconds = float(m.group(2))  # the sender's own clock: from its first frame, after loading the capture
    time.sleep(1.5)
    mon.send_signal(signal.SIGTERM)
    rc, mon_cpu = wait_cpu(mon)
    text = log.read_text()
    s = SUMMARY.search(text)
    if not s:
        raise RuntimeError(f"no summary in the monitor log (exit {rc}):\n{text[-3000:]}")
    rings = [tuple(map(int, r[1:])) for r in RING.findall(text)]
    kernel_packets = sum(r[0] for r in rings)
    kernel_drops = sum(r[1] for r in rings)
    received = sum(r[2] for r in rings)
    analysed = sum(r[3] for r in rings)
    non_ip = sum(r[6] for r in rings)
    flows, flow_packets, classified, flow_ids = flow_accounting(out)
    return {
        "pps_target": pps, "workers": workers, "sent": sent, "send_seconds": round(send_seconds, 2),
        "sent_pps": round(sent / send_seconds), "kernel_packets": kernel_packets, "received": received,
        "analysed": analysed, "kernel_drops": kernel_drops, "internal_drops": int(s.group(3)),
        "drop_pct": round(100 * kernel_drops / max(1, kernel_packets), 4),
        "per_ring_kernel_packets": [r[0] for r in rings], "per_ring_drops": [r[1] for r in rings],
        # Times a ring's thread waited because Python had not taken its records yet: the outputs
        # fall behind; sustained, the ring then fills and the kernel drops.
        "stalls": sum(r[7] for r in rings),
        "flows_written": flows, "classified_written": classified, "distinct_flow_ids": flow_ids,
        "packets_in_flow_records": flow_packets, "ip_packets_analysed": analysed - non_ip,
        "all_packets_in_records": flow_packets == analysed - non_ip,
        "counts_add_up": received + kernel_drops == kernel_packets,
        "monitor_cpu_seconds": round(mon_cpu, 2), "sender_cpu_seconds": round(sender_cpu, 2), "exit": rc,
        "load_before": load_before, "sender": opts.sender,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", type=Path, help="pcap to replay [default: generate 300,000 packets]")
    ap.add_argument("--rates", default="50000,100000,200000,300000", help="comma-separated packets/s")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each run (60 for the acceptance run)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--buffer-mb", type=int, default=64, help="ring per worker (the monitor's --buffer-mb)")
    ap.add_argument("--batch", type=int, default=256, help="frames per sendmmsg (or per send of the TX ring)")
    ap.add_argument("--sender", choices=("mmsg", "ring"), default="mmsg",
                    help="sendmmsg batches, or a PACKET_TX_RING (TPACKET_V2) [default: mmsg]")
    ap.add_argument("--max-frames", type=int, default=300_000, help="frames of the capture loaded by the sender")
    ap.add_argument("--sender-cpu", type=int, help="pin the sender to this CPU")
    ap.add_argument("--monitor-cpus", help="pin the monitor (all its threads) to these CPUs (taskset -c list)")

    ap.add_argument("--out", type=Path, default=HERE / "results" / "monitor_rate.json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("monitor_rate.py needs root (network namespaces, packet sockets)")
    build_sender()
    with tempfile.TemporaryDirectory(prefix="pw-rate-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # the monitor drops to nobody; it writes its JSONL through the root-opened fd
        capture = args.capture
        if capture is None:
            capture = work / "mix.pcap"
            sh(sys.executable, str(HERE / "gen_capture.py"), "--packets", "300000", "--concurrent", "2000",
               "--seed", "3", "-o", str(capture), "--quiet")
        results: dict = {"capture": str(args.capture or "gen_capture.py --packets 300000 --concurrent 2000 --seed 3"),
                         "cpus": os.cpu_count(), "seconds": args.seconds, "runs": []}
        setup_ns()
        try:
            for pps in (int(x) for x in args.rates.split(",")):
                r = run_rate(capture, pps, args.seconds, args.workers, work, args.buffer_mb, args.batch, args)
                print(json.dumps(r), flush=True)
                results["runs"].append(r)
        finally:
            teardown_ns()
    clean = [r for r in results["runs"] if r["kernel_drops"] == 0 and r["all_packets_in_records"]]
    under = [r for r in results["runs"] if r["drop_pct"] < 0.1]
    # By the rate the sender achieved: on a loaded machine it may fall short of the one asked.
    results["highest_rate_no_drop"] = max((r["sent_pps"] for r in clean), default=0)
    results["highest_rate_under_0.1pct"] = max((r["sent_pps"] for r in under), default=0)
    print(f"no kernel drop up to {results['highest_rate_no_drop']} packets/s sent; "
          f"< 0.1% drops up to {results['highest_rate_under_0.1pct']} packets/s sent")
    args.out.parent.mkdir(exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
