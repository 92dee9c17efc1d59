#!/usr/bin/env python3
"""The packet rate `portwatch monitor` sustains without kernel drops (root; tcpreplay onto a veth).

    python benchmarks/monitor_rate.py                       # generate a capture, step the rate
    python benchmarks/monitor_rate.py --capture X.pcap --rates 20000,40000,80000
    python benchmarks/monitor_rate.py --compare-capture     # socket module vs scapy, capture only

Set-up: one network namespace holding a veth pair; tcpreplay sends the capture out of one end
at a fixed rate (`--pps`), the monitor captures on the other end with its usual options
(`--user nobody`, JSONL and SQLite outputs on). For each rate the script reports the packets the
monitor analyzed and the kernel drops it counted (PACKET_STATISTICS); the sustained rate is
the highest one with zero kernel drops. Results go to benchmarks/results/monitor_rate.json.

`--compare-capture` measures the receive path alone: a plain AF_PACKET socket with recv_into
against scapy's L2 listen socket (what `sniff()` uses), at tcpreplay's top speed, to justify
capturing with the socket module.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NS = f"pwbench{os.getpid() % 100000}"
TX, RX = "pwbtx", "pwbrx"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def setup_ns() -> None:
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "add", TX, "type", "veth", "peer", "name", RX)
    for dev in (TX, RX, "lo"):
        sh("ip", "-n", NS, "link", "set", dev, "up")


def teardown_ns() -> None:
    sh("ip", "netns", "del", NS, check=False)


def replay(capture: Path, pps: int | None, loops: int) -> int:
    rate = [f"--pps={pps}"] if pps else ["--topspeed"]
    out = sh("ip", "netns", "exec", NS, "tcpreplay", "-q", "-i", TX, *rate, f"--loop={loops}", str(capture))
    m = re.search(r"Actual: (\d+) packets", out.stdout + out.stderr)
    if not m:
        raise RuntimeError(f"tcpreplay: {out.stdout}{out.stderr}")
    return int(m.group(1))


def count_packets(capture: Path) -> int:
    from portwatch.capture.sources import CaptureSource

    with CaptureSource(capture) as src:
        return sum(1 for _ in src)


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process so far: on a shared machine, the honest cost per packet."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_monitor(capture: Path, pps: int, loops: int, work: Path) -> dict:
    log = work / "monitor.log"
    for p in work.glob("out.*"):
        p.unlink()
    with open(log, "w") as err:
        mon = subprocess.Popen(
            ["ip", "netns", "exec", NS, sys.executable, "-m", "portwatch", "monitor", "-i", RX, "--user", "nobody",
             "--no-view", "--stats-interval", "0.5", "--jsonl", str(work / "out.jsonl"), "--db", str(work / "out.db")],
            stderr=err, stdout=subprocess.DEVNULL, cwd=ROOT,
        )
    deadline = time.monotonic() + 30
    while "monitoring " not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    sent = replay(capture, pps, loops)
    elapsed = time.monotonic() - t0
    # Let the monitor drain its socket buffer: wait until its packet count stops moving.
    last, still = -1, time.monotonic()
    while time.monotonic() - still < 1.5 and time.monotonic() - t0 < elapsed + 120:
        counts = re.findall(r"status: (\d+) packets", log.read_text())
        now = int(counts[-1]) if counts else 0
        if now != last:
            last, still = now, time.monotonic()
        time.sleep(0.25)
    cpu = cpu_seconds(mon.pid)
    mon.send_signal(signal.SIGTERM)
    mon.wait(120)
    text = log.read_text()
    m = re.search(r"stopped \(.*?\) after [\d.]+s: (\d+) packets .*?kernel drops (\d+), internal drops (\d+)", text)
    if not m:
        raise RuntimeError(f"no summary in the monitor log:\n{text}")
    analyzed, kdrops, idrops = map(int, m.groups())
    return {"pps_target": pps, "sent": sent, "seconds": round(elapsed, 2), "analyzed": analyzed,
            "drain_seconds": round(time.monotonic() - t0 - elapsed, 1), "monitor_cpu_seconds": round(cpu, 2),
            "kernel_drops": kdrops, "internal_drops": idrops, "lost": sent - analyzed}


def replay_ceiling(capture: Path, work: Path) -> dict:
    """The same analysis from a file (`monitor -r`): the CPU ceiling without any socket."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "portwatch", "monitor", "-r", str(capture), "--user", "nobody",
                          "--no-view", "--jsonl", str(work / "replay.jsonl")], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    seconds = time.monotonic() - t0
    m = re.search(r"after [\d.]+s: (\d+) packets", out.stderr)
    packets = int(m.group(1)) if m else 0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    return {"mode": "replay -r (no socket)", "packets": packets, "seconds": round(seconds, 2),
            "pps": round(packets / seconds), "cpu_seconds": round(cpu, 2), "pps_per_cpu_second": round(packets / cpu)}


def capture_only(capture: Path, loops: int, which: str) -> dict:
    """Receive at top speed with one method; count frames received and kernel drops."""
    code = {
        "socket": (
            "import socket,struct,time,sys\n"
            f"s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,0);s.setsockopt(socket.SOL_SOCKET,33,32<<20)\n"
            f"s.bind(('{RX}',3));s.settimeout(2.0);buf=bytearray(262144);v=memoryview(buf);n=0\n"
            "print('ready',flush=True)\n"
            "t=None\n"
            "while True:\n"
            "  try: k=s.recv_into(v,262144,socket.MSG_TRUNC)\n"
            "  except socket.timeout: break\n"
            "  t=t or time.monotonic(); f=bytes(v[:k]); n+=1\n"
            "seen,drops=struct.unpack('II',s.getsockopt(263,6,8))\n"
            "print(n,drops,time.monotonic()-t-2.0)\n"
        ),
        "scapy": (
            "import time,struct\nfrom scapy.all import conf\n"
            f"s=conf.L2listen(iface='{RX}');n=0\n"
            "s.ins.setsockopt(1,33,32<<20)\n"
            "print('ready',flush=True)\n"
            "t=None;last=time.monotonic()\n"
            "import select\n"
            "while True:\n"
            "  r,_,_=select.select([s],[],[],2.0)\n"
            "  if not r: break\n"
            "  p=s.recv(); t=t or time.monotonic(); n+=1\n"
            "seen,drops=struct.unpack('II',s.ins.getsockopt(263,6,8))\n"
            "print(n,drops,time.monotonic()-t-2.0)\n"
        ),
    }[which]
    proc = subprocess.Popen(["ip", "netns", "exec", NS, sys.executable, "-c", code], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    sent = replay(capture, None, loops)
    out = proc.communicate(timeout=300)[0].split()
    received, drops, seconds = int(out[0]), int(out[1]), float(out[2])
    return {"method": which, "sent": sent, "received": received, "kernel_drops": drops,
            "receive_rate_pps": round(received / seconds) if seconds > 0 else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--capture", type=Path, help="pcap to replay [default: generate 100k packets]")
    ap.add_argument("--rates", default="5000,10000,20000,30000,40000,60000",
                    help="comma-separated packets/s to try")
    ap.add_argument("--seconds", type=float, default=10.0, help="approximate length of each run")
    ap.add_argument("--compare-capture", action="store_true", help="socket module vs scapy, capture only")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("monitor_rate.py needs root (network namespace, packet sockets)")
    with tempfile.TemporaryDirectory(prefix="pw-bench-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        capture = args.capture
        if capture is None:
            capture = work / "mix.pcap"
            sh(sys.executable, str(HERE / "gen_capture.py"), "--packets", "100000", "--concurrent", "2000",
               "--seed", "3", "-o", str(capture), "--quiet")
        total = count_packets(capture)
        results: dict = {"capture": str(capture if args.capture else "gen_capture.py --packets 100000 --seed 3"),
                         "capture_packets": total, "cpus": os.cpu_count(), "runs": []}
        setup_ns()
        try:
            if args.compare_capture:
                loops = max(1, 400_000 // total)
                for which in ("socket", "scapy"):
                    r = capture_only(capture, loops, which)
                    print(json.dumps(r), flush=True)
                    results["runs"].append(r)
            else:
                results["replay_ceiling"] = replay_ceiling(capture, work)
                print(json.dumps(results["replay_ceiling"]), flush=True)
                for pps in (int(x) for x in args.rates.split(",")):
                    loops = max(1, round(pps * args.seconds / total))
                    r = run_monitor(capture, pps, loops, work)
                    print(json.dumps(r), flush=True)
                    results["runs"].append(r)
                # IPv6 neighbour/router frames on the veth make `lost` slightly negative.
                clean = [r for r in results["runs"] if r["kernel_drops"] == 0 and r["lost"] <= 0]
                results["sustained_pps"] = max((r["pps_target"] for r in clean), default=0)
                print(f"sustained without kernel drops: {results['sustained_pps']} packets/s")
        finally:
            teardown_ns()
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    name = "monitor_capture_compare.json" if args.compare_capture else "monitor_rate.json"
    (out / name).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
