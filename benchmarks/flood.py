#!/usr/bin/env python3
"""Flood benchmark: peak memory and throughput of `portwatch analyze` under adversarial captures.

    python benchmarks/flood.py                          # both floods, default and small flow tables
    python benchmarks/flood.py --cases syn --max-flows 200000,20000 --format jsonl

Cases (captures made by benchmarks/gen_flood.py when missing, same seed, same bytes):
  syn  a SYN flood of 1,000,000 distinct flows (benchmarks/data/flood-syn-1m.pcap)
  ooo  500,000 out-of-order, duplicated and held-back segments into 4 flows (benchmarks/data/flood-ooo.pcap)
  hold the reassembly worst case, made here: --hold-flows flows (default 100,000) that each leave a
       gap at stream offset 0 and send 4,095 bytes after it in each direction, so every flow holds
       its full out-of-order allowance and never classifies (benchmarks/data/flood-hold.pcap)

Each run is `python -m portwatch analyze` as a direct child, so `os.wait4` returns that process'
own peak RSS (ru_maxrss) and CPU time. Packets, flows and evictions are read from the console
summary line. Results are printed as a table and written as JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CASES = {
    "syn": ("flood-syn-1m.pcap", ["syn"]),
    "ooo": ("flood-ooo.pcap", ["ooo"]),
    "hold": ("flood-hold.pcap", []),
}
HOLD_FLOWS = 100_000
# The console summary: "55,021 packets, 50,000 flows from x.pcap (48,000 flows evicted (...)".
SUMMARY = re.compile(r"^([\d,]+) packets?, ([\d,]+) flows? from ", re.M)
EVICTED = re.compile(r"([\d,]+) flows? evicted")


def capture(case: str) -> Path:
    name, args = CASES[case]
    path = DATA / name
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        if case == "hold":
            hold_flood(path, HOLD_FLOWS)
            return path
        subprocess.run([sys.executable, str(HERE / "gen_flood.py"), *args, "-o", str(path)], check=True, cwd=HERE)
    return path


def hold_flood(path: Path, flows: int, seed: int = 1) -> None:
    """Each flow: handshake, then one 4,095-byte segment per direction one byte past the stream start."""
    import random
    import struct

    rng = random.Random(seed)
    eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"

    def frame(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes) -> bytes:
        tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(data), 0, 0x4000, 64, 6, 0, src, dst)
        return eth + ip + tcp + data

    with open(path, "wb", buffering=1 << 22) as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1_715_680_800.0
        for i in range(flows):
            c, s = bytes([10, 20 + (i >> 16), (i >> 8) & 255, i & 255]), bytes([198, 18, 3, 1 + i % 200])
            cp, sp = 1024 + i % 60000, 8000 + i % 50
            ci, si = rng.getrandbits(32), rng.getrandbits(32)
            junk = rng.randbytes(4095)
            for fr in (
                frame(c, s, cp, sp, ci, 0, 0x02, b""),
                frame(s, c, sp, cp, si, ci + 1, 0x12, b""),
                frame(c, s, cp, sp, ci + 1, si + 1, 0x10, b""),
                frame(c, s, cp, sp, (ci + 2) & 0xFFFFFFFF, si + 1, 0x18, junk),
                frame(s, c, sp, cp, (si + 2) & 0xFFFFFFFF, ci + 1, 0x18, junk[::-1]),
            ):
                t += 2e-6
                fh.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(fr), len(fr)) + fr)


def run(pcap: Path, max_flows: int | None, fmt: str) -> dict:
    cmd = [sys.executable, "-m", "portwatch", "analyze", "--format", fmt]
    if max_flows:
        cmd += ["--max-flows", str(max_flows)]
    out_path = DATA / "flood-out.txt"
    if fmt != "console":
        cmd += ["-o", os.devnull]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "200"  # the summary line on one line
    with open(out_path, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([*cmd, str(pcap)], stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited {code}: {stderr.strip()}")
    packets = flows = evicted = None
    if fmt == "console":
        text = out_path.read_text()
        m = SUMMARY.search(text)
        if m:
            packets, flows = int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))
        e = EVICTED.search(text)
        evicted = int(e.group(1).replace(",", "")) if e else 0
    if packets is None:
        packets = count_records(pcap)
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "capture": pcap.name,
        "max_flows": max_flows,
        "format": fmt,
        "packets": packets,
        "flows": flows,
        "evicted": evicted,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "pps": round(packets / wall) if wall else None,
        "pps_cpu": round(packets / cpu) if cpu else None,  # robust when other work shares the cores
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports kilobytes
        "exit": code,
    }


def count_records(pcap: Path) -> int:
    sys.path.insert(0, str(HERE))
    import run as bench  # benchmarks/run.py

    return bench.count_packets(str(pcap))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="syn,ooo,hold", help="comma-separated: syn, ooo, hold")
    ap.add_argument("--max-flows", default="default,20000",
                    help="comma-separated flow-table sizes to try ('default' = portwatch's own)")
    ap.add_argument("--format", default="console", choices=("console", "jsonl", "csv"),
                    help="console reads evictions from the summary; jsonl/csv measure serialisation too")
    ap.add_argument("--json", type=Path, help="write results here [benchmarks/results/flood-<time>.json]")
    a = ap.parse_args(argv)
    results = []
    print(f"{'capture':<14} {'max-flows':>9} {'packets':>9} {'flows':>9} {'evicted':>9} {'wall s':>7} "
          f"{'pkt/s':>8} {'pkt/cpu-s':>9} {'peak MB':>8}")
    for case in a.cases.split(","):
        pcap = capture(case)
        for mf in a.max_flows.split(","):
            max_flows = None if mf == "default" else int(mf)
            r = run(pcap, max_flows, a.format)
            results.append(r)
            print(f"{r['capture']:<14} {max_flows or 'default'!s:>9} {r['packets']:>9} {r['flows']!s:>9} "
                  f"{r['evicted']!s:>9} {r['wall_s']:>7} {r['pps']!s:>8} {r['pps_cpu']!s:>9} {r['peak_rss_mb']:>8}",
                  flush=True)
    dest = a.json or HERE / "results" / f"flood-{time.strftime('%Y%m%d-%H%M%S')}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
