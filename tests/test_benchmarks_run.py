"""The benchmark runners still drive the current portwatch (its CLI, and the core through
portwatch.pipeline), on a small capture: a change of the CLI or its summary line shows up here,
not in the middle of a long measurement."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
CAPTURE = REPO / "captures" / "ssh-443.pcap"
PORTWATCH = f"{sys.executable} -m portwatch analyze --format jsonl -o /dev/null --quiet"


def bench(script: str, *args: str, cwd: Path = BENCH) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_run_measures_portwatch_and_reports_missing_peers(tmp_path):
    out = tmp_path / "run.json"
    r = bench("run.py", "--capture", str(CAPTURE), "--tools", "portwatch,nfstream", "--no-startup", "--no-compile",
              "--quiet", "--portwatch-cmd", f"{PORTWATCH} {{pcap}}", "--json", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    pw = report["results"]["portwatch"]
    assert pw["status"] == "ok" and pw["best"]["exit"] in (0, 1)
    assert report["capture"]["packets"] > 0
    assert report["results"]["nfstream"]["status"] in ("ok", "missing")


def test_run_takes_turns_between_tools(tmp_path):
    """With --repeat, every tool runs once per round (a drift of the machine's speed then lands
    on every tool alike), and each keeps its fastest run."""
    out = tmp_path / "run.json"
    r = bench("run.py", "--capture", str(CAPTURE), "--tools", "portwatch,tcpdump", "--repeat", "2", "--no-startup",
              "--no-compile", "--quiet", "--portwatch-cmd", f"{PORTWATCH} {{pcap}}", "--json", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    if report["results"]["tcpdump"]["status"] == "missing":
        pytest.skip("tcpdump is not installed (tests/install-deps.sh installs it)")
    assert report["order"] == [["portwatch", 1], ["tcpdump", 1], ["portwatch", 2], ["tcpdump", 2]]
    for tool in ("portwatch", "tcpdump"):
        runs = report["results"][tool]["runs"]
        assert [run["round"] for run in runs] == [1, 2]
        assert report["results"][tool]["best"]["wall_s"] == min(run["wall_s"] for run in runs)


def test_scale_runs_core_threads(tmp_path):
    out = tmp_path / "scale.json"
    r = bench("scale.py", "--capture", str(CAPTURE), "--workers", "1,2", "--no-compile", "--json", str(out),
              "--command", f"{PORTWATCH} --workers {{workers}} {{pcap}}")
    assert r.returncode == 0, r.stderr
    assert [row["workers"] for row in json.loads(out.read_text())["runs"]] == [1, 2]


def test_memory_curve_in_process(tmp_path):
    out = tmp_path / "curve.json"
    r = bench("memory.py", "--curve", str(CAPTURE), "--every", "10", "--json", str(out))
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["packets"] == report["curve"][-1]["packets"] > 10
    assert all(p["rss_mb"] > 0 for p in report["curve"])


def test_record_work_times_each_protocols_records():
    r = bench("record_work.py", str(REPO / "captures" / "dns-53.pcap"), "--rounds", "2")
    assert r.returncode == 0, r.stderr
    head, *rows = r.stdout.splitlines()
    assert head.startswith(f"{sum(int(row.split()[1].replace(',', '')) for row in rows):,} records: ")
    assert [row.split()[0] for row in rows if row.split()[0] == "dns"] == ["dns"]
    assert all(float(row.split()[3]) > 0 for row in rows)


def test_phases_writes_what_the_cli_writes_and_names_each_phase(tmp_path):
    """phases.py takes the CLI's jsonl path: its lines are the CLI's, byte for byte."""
    ours, cli = tmp_path / "phases.jsonl", tmp_path / "cli.jsonl"
    r = bench("phases.py", str(CAPTURE), "-o", str(ours))
    assert r.returncode == 0, r.stderr
    assert [line.split()[0] for line in r.stdout.splitlines()] == ["phase", "set-up", "read", "drain", "total"]
    subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "-o", str(cli), str(CAPTURE)],
                   capture_output=True, timeout=120)
    assert ours.read_bytes() == cli.read_bytes() != b""


def test_phases_says_in_one_line_that_a_capture_cannot_be_read(tmp_path):
    r = bench("phases.py", str(tmp_path / "absent.pcap"))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"phases.py: {tmp_path / 'absent.pcap'}: No such file or directory"]


def test_phases_counts_a_thread_that_ended_inside_a_phase(monkeypatch):
    """The core's reader ends before the read phase does: its CPU still lands in that phase."""
    import ctypes
    import hashlib
    import threading
    import time

    PR_SET_NAME = 15
    monkeypatch.syspath_prepend(str(BENCH))
    import phases

    block = bytes(256 * 1024)

    def burn() -> None:
        # The kernel's name for the thread, as the core names its own (Python 3.11 names none).
        ctypes.CDLL(None).prctl(PR_SET_NAME, b"burner", 0, 0, 0)
        end = time.thread_time() + 0.2
        # Hashing a large block runs without the GIL, as the core's threads do: a Python loop
        # would hold it and starve the sampler, which measures then only when the switch lets it.
        while time.thread_time() < end:
            hashlib.sha256(block).digest()

    marks = phases.Marks(every=0.005)
    marks.mark("start")
    worker = threading.Thread(target=burn, name="burner")
    worker.start()
    worker.join()
    time.sleep(0.05)
    marks.mark("burnt")
    marks.mark("idle")
    marks.stop()
    (_, _, burnt), (_, _, idle) = marks.phases()
    assert burnt.get("burner", 0.0) >= 0.15, burnt
    assert idle.get("burner", 0.0) == 0.0


@pytest.fixture
def flood(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import flood

    return flood


def test_flood_reads_the_console_summary(flood, tmp_path, monkeypatch):
    pcap = tmp_path / "syn.pcap"
    subprocess.run([sys.executable, str(BENCH / "gen_flood.py"), "syn", "--flows", "3000", "--answered", "0",
                    "-o", str(pcap)], check=True, capture_output=True, timeout=120)
    monkeypatch.setattr(flood, "DATA", tmp_path)  # its scratch output
    r = flood.run(pcap, 1000, "console")
    assert (r["packets"], r["flows"], r["evicted"]) == (3000, 3000, 2000)


def test_shapes_measures_each_shape_and_deletes_what_it_generated(tmp_path):
    data, summary = tmp_path / "data", tmp_path / "shapes.json"
    r = bench("shapes.py", "--data", str(data), "--shape", "mix", "--shape", "link-3191s", "--scale", "0.001",
              "--repeat", "2", "--portwatch-cmd", f"{PORTWATCH} {{pcap}}", "--json", str(summary),
              "--check-cmd", f"{sys.executable} -m portwatch analyze --format jsonl -o {{out}} --quiet {{pcap}}")
    assert r.returncode == 0, r.stderr
    rows = json.loads(summary.read_text())["rows"]
    assert [(row["shape"], row["packets"]) for row in rows] == [("mix", 2000), ("link-3191s", 1000)]
    for row in rows:
        assert row["flows"] > 0 and row["portwatch_s"] > 0
        low, high = row["portwatch_rss_range"]
        assert low <= row["portwatch_rss_mb"] <= high
        assert row["peer"] in ("ok", "missing")
        if row["peer"] == "ok":  # best against best lies within the rounds' own ratios
            assert row["ratio_range"][0] <= row["ratio"] <= row["ratio_range"][1]
        # Every record is matched to a generated flow, and one that carried payload is named right.
        check = row["truth_check"]
        assert check["right"] > 0 and check["unknown_with_payload"] == check["wrong"] == check["unmatched"] == 0
    table = r.stdout.splitlines()
    assert len(table) == 2 + len(rows) and table[2].startswith("| mix | `--packets 2000` |")
    mix = rows[0]["truth_check"]
    assert table[2].endswith(f"| {mix['right']:,} / {mix['unknown_no_payload']:,} / 0 |")
    assert sorted(p.name for p in (tmp_path / "shapes-runs").iterdir()) == ["link-3191s.json", "mix.json"]
    assert list(data.iterdir()) == []


def test_shapes_goes_on_past_a_failed_shape_and_exits_2(tmp_path):
    """A shape that fails (here its check) is a row that says so, the next shape is still tried, and the
    run exits 2."""
    summary = tmp_path / "shapes.json"
    r = bench("shapes.py", "--data", str(tmp_path / "data"), "--shape", "mix", "--shape", "open-200", "--scale",
              "0.001", "--repeat", "1", "--peer", "tcpdump", "--portwatch-cmd", f"{PORTWATCH} {{pcap}}",
              "--json", str(summary), "--check-cmd", f"{sys.executable} -m portwatch analyze --no-such-option {{pcap}}")
    assert r.returncode == 2
    rows = json.loads(summary.read_text())["rows"]
    assert [row["shape"] for row in rows] == ["mix", "open-200"]
    assert all("exited 2" in row["error"] for row in rows)
    assert all(line.startswith("| ") and "| failed: " in line for line in r.stdout.splitlines()[2:])
