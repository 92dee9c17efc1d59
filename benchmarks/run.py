#!/usr/bin/env python3
"""Throughput and memory of portwatch against its peers, on the same capture, in one run.

    python benchmarks/run.py --capture benchmarks/data/mix-2m.pcap --repeat 3

Each tool runs as a child process on the same (page-cached) file; for each we record the
wall time, user+system CPU time, the peak RSS of the largest process (``ru_maxrss`` from
``os.wait4``) and the peak RSS of the whole process tree (sampled from /proc every 20 ms,
which matters for nfstream's meter processes), packets per second (packet count read from
the pcap itself) and the ratio of portwatch's wall time to the peer's. With ``--repeat N``
the tools take turns for N rounds (a drift in the machine's speed lands on all of them) and
each one's fastest run is kept. Start-up cost is measured apart, on a one-packet capture.

A missing tool is reported as such and does not stop the others.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

DEFAULT_PORTWATCH = "portwatch analyze --format jsonl -o /dev/null --quiet {pcap}"

NFSTREAM_SCRIPT = """
import sys
from nfstream import NFStreamer
n = 0
for _flow in NFStreamer(source=sys.argv[1], n_dissections=20, statistical_analysis=False,
                        n_meters=int(sys.argv[2])):
    n += 1
print(n, "flows")
"""

# name -> (argv template, what it does); {pcap} is replaced by the capture path.
PEERS = {
    "ndpi": ("ndpiReader -i {pcap} -q",
             "nDPI 'ndpiReader': full DPI classification of every flow, quiet (no per-flow output)"),
    "nfstream": (f"{{python}} -c {shlex.quote(NFSTREAM_SCRIPT)} {{pcap}} {{meters}}",
                 "nfstream NFStreamer(n_dissections=20), every flow iterated in Python"),
    "tshark": ("tshark -n -r {pcap} -q -z conv,tcp",
               "tshark: all dissectors (TCP reassembly, TLS/HTTP/SSH/SMTP/DNS) + TCP conversation table"),
    "tshark-full": ("tshark -n -r {pcap} -V",
                    "tshark -V: the same dissection plus the full packet tree printed (to /dev/null)"),
    "tcpdump": ("tcpdump -n -r {pcap} -w /dev/null",
                "tcpdump: read and write every packet, no decoding: the floor"),
}
DEFAULT_TOOLS = "portwatch,ndpi,nfstream,tshark,tcpdump"
# portwatch analyze exits 1 when a finding reaches --fail-on (the capture has SSH on 443)
OK_EXIT = {"portwatch": (0, 1)}


# --------------------------------------------------------------------------- helpers

def count_packets(path: str) -> int:
    """Packets in a classic pcap (either byte order, µs or ns); falls back to capinfos."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            rec = struct.Struct("<IIII")
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            rec = struct.Struct(">IIII")
        else:
            rec = None
        if rec is not None:
            fh.seek(24)
            n = 0
            read, seek = fh.read, fh.seek
            while True:
                h = read(16)
                if len(h) < 16:
                    return n
                seek(rec.unpack(h)[2], 1)
                n += 1
    if shutil.which("capinfos"):
        out = subprocess.run(["capinfos", "-c", "-M", path], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "Number of packets" in line:
                return int(line.split(":")[1].strip())
    raise SystemExit(f"cannot count the packets of {path} (not a classic pcap and no capinfos)")


def tree_rss_kb(pid: int) -> int:
    """RSS of a process and all its descendants, in KiB (0 when it is gone)."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            continue
    return total


GNU_TIME = "/usr/bin/time"


def measure(argv: list[str], env: dict, timeout: float, stdout_path: str | None = None,
            ok_exit: tuple = (0,)) -> dict:
    """Run argv once; wall time, rusage of the child, sampled peak RSS of its tree.

    The child is started through GNU time when it is there: ``ru_maxrss`` of a child forked
    straight from this Python process would include the ~30 MB that the child had before
    its exec (Linux keeps that high-water mark), which swamps small tools like tcpdump."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    err = tempfile.TemporaryFile()  # noqa: SIM115
    tfile = None
    if os.access(GNU_TIME, os.X_OK):
        fd, tfile = tempfile.mkstemp(prefix="portwatch-bench-time-")
        os.close(fd)
        argv = [GNU_TIME, "-q", "-f", "%M %U %S", "-o", tfile, *argv]
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    except FileNotFoundError as e:
        return {"status": "missing", "message": str(e)}
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], tree_rss_kb(proc.pid))

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
        done.set()
        th.join()
        if stdout_path:
            out.close()
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss_kb, user, system = ru.ru_maxrss, ru.ru_utime, ru.ru_stime
    if tfile:
        with open(tfile) as fh:
            fields = fh.read().split()
        os.unlink(tfile)
        if len(fields) >= 3 and fields[-3].isdigit():
            maxrss_kb, user, system = int(fields[-3]), float(fields[-2]), float(fields[-1])
    err.seek(0)
    tail = err.read()[-2000:].decode(errors="replace")
    err.close()
    res = {
        "status": "ok" if proc.returncode in ok_exit else "failed",
        "exit": proc.returncode,
        "wall_s": round(wall, 4),
        "user_s": round(user, 3),
        "sys_s": round(system, 3),
        "maxrss_mb": round(maxrss_kb / 1024, 1),
        "tree_rss_mb": round(max(peak[0], maxrss_kb) / 1024, 1),
    }
    if proc.returncode not in ok_exit:
        res["message"] = " | ".join(tail.strip().splitlines()[-5:]) or f"exit status {proc.returncode}"
    return res


def measured_env() -> dict:
    """The environment for measured commands: byte-code writing allowed (the machine sets
    PYTHONDONTWRITEBYTECODE=1, which would make every Python start compile from source)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("LC_ALL", "C.UTF-8")
    return env


def precompile(env: dict, quiet: bool) -> list[str]:
    """Byte-compile portwatch and the heavy Python dependencies once, so that measured
    runs import from .pyc files like an installed package would."""
    dirs = []
    for mod in ("portwatch", "pandas", "scapy", "dpkt", "nfstream", "click", "rich", "pyarrow", "numpy"):
        try:
            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            spec = None
        if spec and spec.submodule_search_locations:
            dirs.extend(spec.submodule_search_locations)
    if dirs:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", *dirs], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        if not quiet:
            print(f"byte-compiled {len(dirs)} packages in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return dirs


def tool_version(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (r.stdout or r.stderr).strip().splitlines()
    return next((ln.strip() for ln in text if ln.strip()), "")


def versions(python: str) -> dict:
    v = {"python": platform.python_version()}
    if shutil.which("ndpiReader"):
        out = subprocess.run(["ndpiReader", "-h"], capture_output=True, text=True).stdout
        v["ndpi"] = next((ln for ln in out.splitlines() if "nDPI" in ln), "").strip()
    if shutil.which("tshark"):
        v["tshark"] = tool_version(["tshark", "--version"])
    if shutil.which("tcpdump"):
        v["tcpdump"] = tool_version(["tcpdump", "--version"])
    if python_has(python, "nfstream"):
        v["nfstream"] = tool_version([python, "-c", "import nfstream; print(nfstream.__version__)"])
    v["portwatch"] = tool_version([python, "-c", "import portwatch; print(portwatch.__version__)"])
    return v


def python_has(python: str, module: str) -> bool:
    """Can `python` import `module` (nfstream runs in a child Python)?"""
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def one_packet_capture(path: Path):
    """A valid classic pcap with a single TCP SYN (for start-up time)."""
    sys.path.insert(0, str(HERE))
    from gen_capture import generate

    generate(str(path), 1, 1, 1)


def expand(template: str, pcap: str, python: str, meters: int) -> list[str]:
    return [a.format(pcap=pcap, python=python, meters=meters) for a in shlex.split(template)]


def machine() -> dict:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem, 1),
            "kernel": platform.release(), "host": platform.node()}


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--capture", default=str(HERE / "data" / "mix-2m.pcap"),
                    help="classic pcap to measure on (generate with gen_capture.py)")
    ap.add_argument("--tools", default=DEFAULT_TOOLS,
                    help=f"comma-separated, from portwatch,{','.join(PEERS)} (default {DEFAULT_TOOLS})")
    ap.add_argument("--portwatch-cmd", default=os.environ.get("PORTWATCH_CMD", DEFAULT_PORTWATCH),
                    help="command line for portwatch, {pcap} is the capture (env PORTWATCH_CMD)")
    ap.add_argument("--portwatch-version-cmd", default="portwatch --version")
    ap.add_argument("--nfstream-meters", type=int, default=1,
                    help="nfstream n_meters (1 = one worker, as single-threaded as the others; 0 = auto)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="rounds, each running every tool once; each tool's fastest run is kept")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per run before it is killed")
    ap.add_argument("--json", help="results file (default benchmarks/results/<date>.json)")
    ap.add_argument("--no-startup", action="store_true", help="skip the start-up measurements")
    ap.add_argument("--no-compile", action="store_true", help="skip the byte-compilation step")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)

    capture = os.path.abspath(a.capture)
    if not os.path.exists(capture):
        print(f"{capture} does not exist; generate it first:\n  python {HERE / 'gen_capture.py'} "
              f"-o {capture} --truth {capture.rsplit('.', 1)[0]}.truth.csv", file=sys.stderr)
        return 2
    tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    unknown = [t for t in tools if t != "portwatch" and t not in PEERS]
    if unknown:
        ap.error(f"unknown tools: {', '.join(unknown)}")
    log = (lambda *x: None) if a.quiet else (lambda *x: print(*x, file=sys.stderr))
    env = measured_env()
    python = sys.executable
    if not a.no_compile:
        precompile(env, a.quiet)

    # warm the page cache so that no tool pays for the first read from disk
    t0 = time.perf_counter()
    with open(capture, "rb") as fh:
        while fh.read(1 << 24):
            pass
    npk = count_packets(capture)
    size = os.path.getsize(capture)
    log(f"{capture}: {npk:,} packets, {size / 1e6:,.0f} MB (read and counted in {time.perf_counter() - t0:.1f} s)")

    templates = {"portwatch": (a.portwatch_cmd, "portwatch analyze (jsonl to /dev/null)")}
    templates.update(PEERS)

    results: dict[str, dict] = {}
    commands: dict[str, list[str]] = {}
    for tool in tools:
        template, what = templates[tool]
        cmd = expand(template, capture, python, a.nfstream_meters)
        exe = cmd[0]
        entry = {"command": " ".join(shlex.quote(c) for c in cmd) if tool != "nfstream"
                 else f"{python} -c <NFStreamer script> {capture} {a.nfstream_meters}",
                 "what": what, "runs": []}
        results[tool] = entry
        absent = shutil.which(exe) is None and not os.path.exists(exe)
        if tool == "nfstream" and not absent and not python_has(python, "nfstream"):
            absent, exe = True, "the nfstream module"
        if absent:
            hint = {"portwatch": "portwatch is not installed (pip install -e .) or its CLI is not written yet; "
                                 "set --portwatch-cmd",
                    "ndpi": "apt-get install -y libndpi-bin", "nfstream": "pip install nfstream",
                    "tshark": "apt-get install -y tshark", "tshark-full": "apt-get install -y tshark",
                    "tcpdump": "apt-get install -y tcpdump"}.get(tool, "")
            entry.update(status="missing", message=f"{exe} not found. {hint}")
            log(f"{tool:12s} missing: {entry['message']}")
            continue
        commands[tool] = cmd

    # Rounds, each tool once per round: the machine's speed drifts (a shared VM), and a drift
    # then lands on every tool alike instead of on whichever ran last.
    order: list[list] = []
    stdout_paths = {tool: os.path.join(tempfile.gettempdir(), "portwatch-bench-nfstream.out")
                    if tool == "nfstream" else "/dev/null" for tool in commands}
    failed: set[str] = set()
    for i in range(a.repeat):
        for tool, cmd in commands.items():
            if tool in failed:
                continue
            r = measure(cmd, env, a.timeout, stdout_paths[tool], OK_EXIT.get(tool, (0,)))
            r["round"] = i + 1
            results[tool]["runs"].append(r)
            order.append([tool, i + 1])
            if r["status"] != "ok":
                log(f"{tool:12s} run {i + 1}: {r['status']} {r.get('message', '')}")
                failed.add(tool)
                continue
            log(f"{tool:12s} run {i + 1}: {r['wall_s']:8.2f} s  {npk / r['wall_s']:>12,.0f} pkt/s  "
                f"peak RSS {r['maxrss_mb']:8.1f} MB (tree {r['tree_rss_mb']:.1f} MB)")

    for tool in commands:
        entry = results[tool]
        ok = [r for r in entry["runs"] if r["status"] == "ok"]
        if not ok:
            entry["status"] = entry["runs"][-1]["status"] if entry["runs"] else "missing"
            entry["message"] = entry["runs"][-1].get("message", "") if entry["runs"] else ""
            continue
        best = min(ok, key=lambda r: r["wall_s"])
        entry.update(status="ok", best=best, pps=round(npk / best["wall_s"]),
                     mbps=round(size * 8 / best["wall_s"] / 1e6, 1),
                     max_tree_rss_mb=max(r["tree_rss_mb"] for r in ok))
        if tool == "nfstream":
            with contextlib.suppress(OSError), open(stdout_paths[tool]) as fh:
                entry["output"] = fh.read().strip()

    pw = results.get("portwatch", {})
    for tool, e in results.items():
        if tool != "portwatch" and e.get("status") == "ok" and pw.get("status") == "ok":
            e["portwatch_time_ratio"] = round(pw["best"]["wall_s"] / e["best"]["wall_s"], 2)
            pcpu, ecpu = (pw["best"]["user_s"] + pw["best"]["sys_s"]), (e["best"]["user_s"] + e["best"]["sys_s"])
            e["portwatch_cpu_ratio"] = round(pcpu / ecpu, 2) if ecpu > 0 else None
            e["portwatch_rss_ratio"] = round(pw["best"]["maxrss_mb"] / e["best"]["maxrss_mb"], 2)

    startup = {}
    if not a.no_startup:
        with tempfile.TemporaryDirectory() as td:
            one = Path(td) / "one.pcap"
            one_packet_capture(one)
            runs = {"portwatch --version": shlex.split(a.portwatch_version_cmd)}
            for tool in tools:
                runs[f"{tool} (1-packet capture)"] = expand(templates[tool][0], str(one), python,
                                                             a.nfstream_meters)
            for name, cmd in runs.items():
                if (shutil.which(cmd[0]) is None and not os.path.exists(cmd[0])) or (
                        name.startswith("nfstream ") and results.get("nfstream", {}).get("status") == "missing"):
                    startup[name] = {"status": "missing"}
                    continue
                ok_exit = OK_EXIT.get(name.split(" ")[0], (0,))
                rs = [measure(cmd, env, 300, None, ok_exit) for _ in range(max(3, a.repeat))]
                ok = [r for r in rs if r["status"] == "ok"]
                startup[name] = min(ok, key=lambda r: r["wall_s"]) if ok else rs[-1]

    report = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(python),
        "capture": {"path": capture, "packets": npk, "bytes": size},
        "repeat": a.repeat,
        "order": order,
        "results": results,
        "startup": startup,
    }
    print_table(report)
    out = a.json or str(HERE / "results" / f"{dt.date.today().isoformat()}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(report, fh, indent=2)
    log(f"results written to {out}")
    return 0


def print_table(rep: dict):
    npk = rep["capture"]["packets"]
    print(f"\ncapture: {rep['capture']['path']}  {npk:,} packets  {rep['capture']['bytes'] / 1e6:,.0f} MB"
          f"  (best of {rep['repeat']})")
    hdr = f"{'tool':12s} {'wall s':>9s} {'cpu s':>8s} {'packets/s':>12s} {'Mbit/s':>8s} {'RSS MB':>8s} " \
          f"{'tree MB':>8s} {'pw/peer':>8s} {'pw/peer cpu':>11s}"
    print(hdr)
    print("-" * len(hdr))
    for tool, e in rep["results"].items():
        if e.get("status") != "ok":
            print(f"{tool:12s} {e.get('status', '?')}: {e.get('message', '')}")
            continue
        b = e["best"]
        ratio = e.get("portwatch_time_ratio")
        cratio = e.get("portwatch_cpu_ratio")
        print(f"{tool:12s} {b['wall_s']:9.2f} {b['user_s'] + b['sys_s']:8.2f} {e['pps']:12,d} {e['mbps']:8.0f} "
              f"{b['maxrss_mb']:8.1f} {b['tree_rss_mb']:8.1f} {'' if ratio is None else f'{ratio:.2f}x':>8s} "
              f"{'' if cratio is None else f'{cratio:.2f}x':>11s}")
    if rep["startup"]:
        print("\nstart-up (best wall time, peak RSS)")
        for name, r in rep["startup"].items():
            if r.get("status") != "ok":
                print(f"  {name:34s} {r.get('status')}")
            else:
                print(f"  {name:34s} {r['wall_s']:7.3f} s  {r['maxrss_mb']:7.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
