#!/usr/bin/env python3
"""portwatch against one peer on every shape of generated traffic, one command.

    python benchmarks/shapes.py --data /dev/shm --repeat 3

Each shape is `gen_capture.py` with its own options (`SHAPES`): flows open at once, link rate,
length, address family. For each, the capture is generated if missing (with its truth CSV),
`run.py` times portwatch and the peer in alternating rounds, and the capture is deleted again
unless `--keep` (they are 0.05-1.7 GB each and come back byte for byte from their options).
Prints one Markdown row per shape: the generator's flows, each tool's best wall time and its peak
RSS, the ratio of best to best (the peer's wall time over portwatch's: 3.00x means portwatch ran
in a third of the time) and the range of that ratio round by round, the range of portwatch's
peak RSS over the rounds, and portwatch's records checked against the truth file (one more run,
untimed): named as the truth says, unknown without payload (nothing to name them from), other.
The summary goes to `--json`, and run.py's report of each shape (every run's figures) to a folder
beside it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from run import PEERS  # beside this script: the tools run.py times portwatch against

HERE = Path(__file__).resolve().parent

# (name, gen_capture.py options, what the shape stresses). Packet counts are scaled by --scale.
SHAPES: list[tuple[str, list[str], str]] = [
    ("mix", [], "the default mix: 20,000 flows open at once, 1.5 Gbit/s, 9 s"),
    ("open-200", ["--concurrent", "200", "--seed", "9"], "few flows, long bulk transfers"),
    ("open-1k", ["--concurrent", "1000", "--seed", "3"], "1,000 flows open at once"),
    ("open-5k-v6", ["--concurrent", "5000", "--seed", "5", "--ipv6", "0.2"], "5,000 open, a fifth IPv6"),
    ("open-30k", ["--concurrent", "30000", "--seed", "11", "--ipv6", "0.3"], "30,000 open"),
    ("open-60k-slow", ["--concurrent", "60000", "--gbps", "0.2", "--seed", "8"], "60,000 open at 0.2 Gbit/s"),
    ("open-100k", ["--concurrent", "100000", "--seed", "7", "--ipv6", "0.5"], "100,000 open, half IPv6"),
    ("link-319s", ["--packets", "1000000", "--gbps", "0.02"], "a slow link: 319 s of traffic"),
    ("link-1064s", ["--packets", "1000000", "--gbps", "0.006", "--seed", "4"], "1,064 s of traffic"),
    ("link-3191s", ["--packets", "1000000", "--gbps", "0.002"], "3,191 s: idle timeouts split flows"),
    ("ipv6-all", ["--ipv6", "1.0", "--seed", "12"], "every flow over IPv6"),
    ("gbps-10", ["--gbps", "10", "--seed", "14"], "a 10 Gbit/s link"),
    ("packets-300k", ["--packets", "300000", "--seed", "13"], "300,000 packets: start-up counts"),
    ("packets-100k", ["--packets", "100000", "--seed", "15"], "100,000 packets: five a flow"),
]
DEFAULT_PACKETS = 2_000_000
CHECK_CMD = "portwatch analyze --format jsonl -o {out} --quiet {pcap}"


def gen_options(options: list[str], scale: float) -> list[str]:
    """`options` with the packet count (given or the generator's default) multiplied by `scale`."""
    out = list(options)
    if "--packets" in out:
        i = out.index("--packets") + 1
        out[i] = str(max(1, round(int(out[i]) * scale)))
    elif scale != 1:
        out += ["--packets", str(max(1, round(DEFAULT_PACKETS * scale)))]
    return out


def generate(capture: Path, truth: Path, options: list[str]) -> None:
    subprocess.run([sys.executable, str(HERE / "gen_capture.py"), *options, "-o", str(capture),
                    "--truth", str(truth), "--quiet"], check=True)


def truth_flows(truth: Path) -> int:
    with truth.open(newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def truth_check(capture: Path, truth: Path, command: str) -> dict[str, int]:
    """portwatch's records against the generator's truth file, matched by endpoints: `right`,
    `unknown_no_payload` (a flow cut in its handshake, the last ACKs of a flow the idle timeout
    split: no byte to name it from), `unknown_with_payload`, `wrong` and `unmatched`."""
    protocols: dict[tuple, str] = {}
    with truth.open(newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["transport"], row["client_ip"], int(row["client_port"]), row["server_ip"],
                   int(row["server_port"]))
            protocols[key] = row["protocol"]
    counts = dict.fromkeys(("right", "unknown_no_payload", "unknown_with_payload", "wrong", "unmatched"), 0)
    with tempfile.TemporaryDirectory(prefix="pw-shapes-") as tmp:
        out = Path(tmp) / "records.jsonl"
        argv = [a.format(out=out, pcap=capture) for a in shlex.split(command)]
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode not in (0, 1):  # 1: a finding reached --fail-on
            raise RuntimeError(f"{argv[0]} exited {done.returncode}: {done.stderr.strip()[-300:]}")
        with out.open() as fh:
            for line in fh:
                rec = json.loads(line)
                ends = ((rec["src_ip"], rec["src_port"]), (rec["dst_ip"], rec["dst_port"]))
                truth_protocol = next((protocols[key] for key in
                                       ((rec["transport"], *ends[0], *ends[1]), (rec["transport"], *ends[1], *ends[0]))
                                       if key in protocols), None)
                if truth_protocol is None:
                    counts["unmatched"] += 1
                elif rec["protocol"] == truth_protocol:
                    counts["right"] += 1
                elif rec["protocol"] == "unknown":
                    payload = (rec.get("bytes_c2s") or 0) + (rec.get("bytes_s2c") or 0)
                    counts["unknown_with_payload" if payload else "unknown_no_payload"] += 1
                else:
                    counts["wrong"] += 1
    return counts


def measure(capture: Path, peer: str, repeat: int, out: Path, portwatch_cmd: str | None,
            compile_first: bool) -> dict:
    argv = [sys.executable, str(HERE / "run.py"), "--capture", str(capture), "--tools", f"portwatch,{peer}",
            "--repeat", str(repeat), "--no-startup", "--quiet", "--json", str(out)]
    if portwatch_cmd:
        argv += ["--portwatch-cmd", portwatch_cmd]
    if not compile_first:
        argv.append("--no-compile")
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def summarise(name: str, flows: int, report: dict, peer: str, check: dict[str, int]) -> dict:
    """One shape's row: best against best, the spread of the rounds, the truth check."""
    pw, other = report["results"]["portwatch"], report["results"][peer]
    row: dict = {"shape": name, "flows": flows, "packets": report["capture"]["packets"], "truth_check": check}
    if pw.get("status") != "ok":
        raise RuntimeError(f"portwatch: {pw.get('status')} {pw.get('message', '')}".strip())
    pw_runs = [r for r in pw["runs"] if r["status"] == "ok"]
    row.update(portwatch_s=pw["best"]["wall_s"], portwatch_rss_mb=pw["best"]["maxrss_mb"],
               portwatch_rss_range=[min(r["maxrss_mb"] for r in pw_runs), max(r["maxrss_mb"] for r in pw_runs)])
    if other.get("status") != "ok":
        row["peer"] = other.get("status", "missing")
        return row
    by_round = {r["round"]: r["wall_s"] for r in pw_runs}
    ratios = [r["wall_s"] / by_round[r["round"]] for r in other["runs"]
              if r["status"] == "ok" and r["round"] in by_round]
    row.update(peer="ok", peer_s=other["best"]["wall_s"], peer_rss_mb=other["best"]["maxrss_mb"],
               ratio=other["best"]["wall_s"] / pw["best"]["wall_s"], ratio_range=[min(ratios), max(ratios)])
    return row


def markdown(rows: list[dict], peer: str, options: dict[str, list[str]]) -> str:
    lines = [f"| shape | `gen_capture.py` options | flows generated | portwatch s / MB | {peer} s / MB "
             "| best ÷ best (rounds) | portwatch MB, rounds | records: as the truth / unknown, no payload / other |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        opts = f"`{' '.join(options[r['shape']])}`" if options[r["shape"]] else "(defaults)"
        if "error" in r:
            lines.append(f"| {r['shape']} | {opts} | | failed: {r['error']} | | | | |")
            continue
        c = r["truth_check"]
        other = c["unknown_with_payload"] + c["wrong"] + c["unmatched"]
        checked = f"{c['right']:,} / {c['unknown_no_payload']:,} / {other:,}"
        lo, hi = r["portwatch_rss_range"]
        pw = f"{r['portwatch_s']:.2f} / {r['portwatch_rss_mb']:.1f}"
        if r["peer"] != "ok":
            peer_cell, ratio = r["peer"], ""
        else:
            peer_cell = f"{r['peer_s']:.2f} / {r['peer_rss_mb']:.1f}"
            ratio = f"{r['ratio']:.2f}x ({r['ratio_range'][0]:.2f}x-{r['ratio_range'][1]:.2f}x)"
        lines.append(f"| {r['shape']} | {opts} | {r['flows']:,} | {pw} | {peer_cell} | {ratio} "
                     f"| {lo:.1f}-{hi:.1f} | {checked} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    names = [s[0] for s in SHAPES]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE / "data" / "shapes"), help="folder for the captures")
    ap.add_argument("--shape", action="append", choices=names, help="only these (repeatable; default all)")
    ap.add_argument("--peer", default="ndpi", choices=PEERS, help="the tool portwatch is set against")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per shape (best of them is kept)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every shape's packet count")
    ap.add_argument("--keep", action="store_true", help="keep the captures generated here")
    ap.add_argument("--portwatch-cmd", help="passed to run.py")
    ap.add_argument("--check-cmd", default=CHECK_CMD, help="the untimed run checked against the truth file "
                    "({out} and {pcap} are replaced)")
    ap.add_argument("--json", help="summary file (default benchmarks/results/shapes-<date>.json)")
    a = ap.parse_args(argv)

    data = Path(a.data)
    data.mkdir(parents=True, exist_ok=True)
    path = Path(a.json) if a.json else HERE / "results" / f"shapes-{dt.date.today().isoformat()}.json"
    runs_dir = path.parent / f"{path.stem}-runs"  # run.py's report of each shape
    runs_dir.mkdir(parents=True, exist_ok=True)
    wanted = [s for s in SHAPES if not a.shape or s[0] in a.shape]
    options = {name: gen_options(opts, a.scale) for name, opts, _ in wanted}
    rows = []
    for i, (name, _, what) in enumerate(wanted):
        stem = f"shape-{name}" if a.scale == 1 else f"shape-{name}-scale{a.scale:g}"
        capture, truth = data / f"{stem}.pcap", data / f"{stem}.truth.csv"
        made = not capture.exists() or not truth.exists()
        try:
            if made:
                print(f"{name}: generating ({what})", file=sys.stderr)
                generate(capture, truth, options[name])
            print(f"{name}: measuring", file=sys.stderr)
            report = measure(capture, a.peer, a.repeat, runs_dir / f"{name}.json", a.portwatch_cmd, i == 0)
            check = truth_check(capture, truth, a.check_cmd)
            rows.append(summarise(name, truth_flows(truth), report, a.peer, check))
        except (subprocess.CalledProcessError, RuntimeError, OSError, ValueError, KeyError) as e:
            # The other shapes still run; the table and the summary say which one failed.
            print(f"{name}: failed: {e}", file=sys.stderr)
            rows.append({"shape": name, "error": str(e).splitlines()[0][:200] if str(e) else type(e).__name__})
        finally:
            if made and not a.keep:
                capture.unlink(missing_ok=True)
                truth.unlink(missing_ok=True)
    table = markdown(rows, a.peer, options)
    print(table)
    summary = {"date": dt.datetime.now().isoformat(timespec="seconds"), "peer": a.peer, "repeat": a.repeat,
               "scale": a.scale, "rows": rows, "options": options}
    path.write_text(json.dumps(summary, indent=2))
    print(f"summary written to {path}", file=sys.stderr)
    return 2 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
