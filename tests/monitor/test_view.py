"""The live view reads at 80 columns: every finding's severity, kind, server and message whole.

Rendered directly (a terminal of 80x24 and of 40 columns, and no terminal at all), and end to end
in a real terminal: `portwatch monitor -r` in an 80x24 tmux pane, whose screen is read back with
`tmux capture-pane` (the final summary must be there too, below the view's last frame).
"""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import dpkt
import pytest
from rich.console import Console

from portwatch.model import Finding, FlowRecord
from portwatch.monitor.emit import Tally
from portwatch.monitor.view import RichView, Snapshot

from .helpers import ROOT, read_jsonl

V6_SERVER = "2001:db8:85a3:1234:5678:8a2e:370:7334"
V6_CLIENT = "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"


def squash(text: str) -> str:
    """Text without whitespace: a message wrapped over lines and indented still matches."""
    return re.sub(r"\s+", "", text)


def tally_of(n: int) -> Tally:
    tally = Tally()
    for i in range(n):
        v6 = i % 2 == 1
        rec = FlowRecord(ts_start=1.0, ts_end=2.0, transport="tcp", src_ip=V6_CLIENT if v6 else "10.77.0.2",
                         src_port=40000 + i, dst_ip=V6_SERVER if v6 else "10.77.0.1", dst_port=443,
                         orientation="handshake", protocol="ssh")
        msg = (f"finding number {i}: ssh server on 443/tcp (/etc/services: https), a port firewalls commonly "
               f"let out: a tunnel carrying forwarded-http [banner: SSH-2.0-OpenSSH_9.2p1 [bold]x[/]]")
        tally.recent.append((1_700_000_000.0 + i, rec, Finding("tunnel", "high" if v6 else "medium", msg)))
        tally.by_kind["tunnel"] += 1
    return tally


def render(width: int, height: int, terminal: bool, n: int = 6) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, height=height, force_terminal=terminal, color_system=None,
                      legacy_windows=False)
    view = RichView(console, "eth1")
    snap = Snapshot(uptime=3725, packets=123_456_789, pps=301_234, live_flows=2000, flows_done=1_234_567,
                    kernel_drops=2, evicted=0, fragments_dropped=0, truncated=0, malformed=0)
    view.stop(snap, tally_of(n))
    view.close()
    text = buf.getvalue()
    # The last frame of the live display: what follows its last cursor-up/erase sequence.
    return re.split(r"\x1b\[2K(?!.*\x1b\[2K)", text, flags=re.S)[-1].replace("\x1b[?25h", "")


def shown(screen: str, n: int) -> list[int]:
    """Numbers of the findings on the screen, in the order shown."""
    flat = squash(screen)
    found = [(flat.find(squash(f"finding number {i}:")), i) for i in range(n)]
    return [i for pos, i in sorted(found) if pos >= 0]


def assert_whole(screen: str, i: int) -> None:
    v6 = i % 2 == 1
    flat = squash(screen)
    server = f"[{V6_SERVER}]:443/tcp" if v6 else "10.77.0.1:443/tcp"
    sev = "HIGH" if v6 else "MEDIUM"
    head = squash(f"{sev} tunnel {server} ssh from {V6_CLIENT if v6 else '10.77.0.2'}")
    assert head in flat, f"finding {i}: heading not whole\n{screen}"
    msg = tally_of(i + 1).recent[-1][2].message
    assert squash(msg) in flat, f"finding {i}: message not whole (markup must be shown as text)\n{screen}"


def test_80x24_terminal_shows_the_newest_findings_whole_and_fits() -> None:
    screen = render(80, 24, terminal=True)
    lines = screen.rstrip("\n").split("\n")
    assert len(lines) <= 24, screen
    assert max(len(line.rstrip()) for line in lines) <= 80, screen
    assert "kernel drops 2" in screen and "tunnel 6" in screen and "301,234 pkt/s" in screen
    on_screen = shown(screen, 6)
    assert on_screen and on_screen == list(range(5, 5 - len(on_screen), -1)), "newest first, none skipped"
    assert len(on_screen) >= 3, screen
    for i in on_screen:
        assert_whole(screen, i)
    # An address is never cut: both IPv6 addresses appear whole on one line at 80 columns.
    assert any(V6_SERVER in line for line in lines) and any(V6_CLIENT in line for line in lines)
    assert f"({len(on_screen)} of the last 6)" in screen


def test_narrow_terminal_still_shows_whole_findings() -> None:
    screen = render(40, 24, terminal=True)
    assert max(len(line.rstrip()) for line in screen.split("\n")) <= 40, screen
    on_screen = shown(screen, 6)
    assert on_screen and on_screen[0] == 5
    for i in on_screen:
        assert_whole(screen, i)


def test_without_a_terminal_size_every_recent_finding_is_shown_whole() -> None:
    screen = render(80, 24, terminal=False, n=12)
    assert shown(screen, 12) == list(range(11, -1, -1))
    for i in range(12):
        assert_whole(screen, i)


# ---- end to end, in tmux ---------------------------------------------------------------------

@pytest.fixture
def work() -> Iterator[Path]:
    # World-readable: as root the monitor drops to an unprivileged account before reading -r.
    d = Path(tempfile.mkdtemp(prefix="pw-view-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def merged_captures(path: Path) -> None:
    """Every Ethernet capture of captures/ one after the other: findings of many kinds."""
    with open(path, "wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=dpkt.pcap.DLT_EN10MB)
        t = 1_700_000_000.0
        for src in sorted((ROOT / "captures").glob("*.pcap")):
            with open(src, "rb") as f:
                reader = dpkt.pcap.Reader(f)
                if reader.datalink() != dpkt.pcap.DLT_EN10MB:
                    continue
                first = None
                for ts, frame in reader:
                    first = ts if first is None else first
                    writer.writepkt(frame, t + float(ts - first))
            t += 100.0
    path.chmod(0o644)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (tests/install-deps.sh installs it)")
def test_live_view_in_an_80x24_tmux_pane(work: Path) -> None:
    pcap, events, done = work / "all.pcap", work / "events.jsonl", work / "done"
    merged_captures(pcap)
    session = f"pwview{os.getpid()}"
    env = f"PYTHONPATH={shlex.quote(str(ROOT))}"
    cmd = (f"cd {shlex.quote(str(ROOT))} && env {env} {shlex.quote(sys.executable)} -m portwatch monitor "
           f"-r {shlex.quote(str(pcap))} --jsonl {shlex.quote(str(events))}; echo $? > {shlex.quote(str(done))}; "
           "sleep 120")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True)
    try:
        deadline = time.monotonic() + 60
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.exists(), "the monitor did not finish"
        assert done.read_text().strip() == "0"
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session, "-S", "-200"],
                                capture_output=True, text=True, check=True).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True, check=False)
    lines = screen.rstrip("\n").split("\n")
    assert max(len(line) for line in lines) <= 80
    # The final summary, on a terminal too, below the view's last frame.
    assert "stopped (end of capture)" in screen and "flows classified" in screen, screen
    assert screen.rindex("Newest findings") < screen.rindex("stopped (end of capture)")
    findings = [e for e in read_jsonl(events) if e["type"] == "finding"]
    assert len(findings) >= 10
    flat = squash(screen[screen.rindex("Newest findings"):])
    whole = []
    for f in findings:
        host = f"[{f['dst_ip']}]" if ":" in f["dst_ip"] else f["dst_ip"]
        head = squash(f"{f['severity'].upper()} {f['kind']} {host}:{f['dst_port']}/{f['transport']} "
                      f"{f['protocol']} from {f['src_ip']}")
        if head in flat and squash(f["message"]) in flat:
            whole.append(f)
    # The newest finding, and as many before it as fit in the pane, each with its whole message.
    assert findings[-1] in whole, screen
    assert len(whole) >= 3, screen
    heads = re.findall(r"^\d\d:\d\d:\d\d (HIGH|MEDIUM|LOW|INFO)\s", screen[screen.rindex("Newest findings"):], re.M)
    assert len(heads) <= len(whole), "every finding heading on the screen has its message whole"
