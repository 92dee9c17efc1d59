"""Pieces of the monitor without processes: flow ids, active timeout, emitter, reload diff, BPF."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest

from portwatch import _core
from portwatch.model import FlowRecord
from portwatch.monitor import bpf
from portwatch.monitor import reload as reloading
from portwatch.monitor.analyzer import MonitorAnalyzer
from portwatch.monitor.emit import Emitter
from portwatch.pipeline import Config, Setup

SSH_PCAP = Path(__file__).parent / "data" / "ssh-443.pcap"


def frames_of(path: Path) -> list[tuple[float, int, bytes]]:
    """The capture's frames as Python would hand live ones to the core."""
    import dpkt

    with path.open("rb") as fh:
        reader = dpkt.pcap.Reader(fh)
        return [(ts, reader.datalink(), bytes(buf)) for ts, buf in reader]


def run_capture(limit: int | None = None, **cfg: object) -> tuple[MonitorAnalyzer, list[FlowRecord], list[FlowRecord]]:
    classified: list[FlowRecord] = []
    ended: list[FlowRecord] = []
    an = MonitorAnalyzer(Config(**cfg), on_record=ended.append, on_classified=classified.append, run_id="t-")
    records = frames_of(SSH_PCAP)
    an.run(records[:limit] if limit else records)
    return an, classified, ended


def test_flows_get_ids_and_are_classified_before_they_end() -> None:
    an, classified, ended = run_capture()
    assert [r.meta["flow_id"] for r in classified] == ["t-1"]
    assert classified[0].protocol == "ssh"
    assert "tunnel" in {f.kind for f in classified[0].findings}
    an.close()
    assert [r.meta["flow_id"] for r in ended] == ["t-1"]


def test_active_timeout_splits_a_flow_and_keeps_its_verdict() -> None:
    an, classified, ended = run_capture(limit=20)
    assert an.live_flows == 1 and len(classified) == 1, "settled: classified and metadata collected"
    start = classified[0].ts_start
    assert an.split_long_flows(active=3600, now=start + 1) == 0
    assert an.split_long_flows(active=0.001, now=start + 3600) == 1
    assert len(ended) == 1 and ended[0].meta["end_reason"] == "active-timeout"
    assert an.live_flows == 1, "the flow goes on as a new segment"
    an.run(frames_of(SSH_PCAP)[20:])
    an.close()
    assert len(classified) == 1, "no second classification for the continuation"
    last = ended[-1]
    assert last.meta["flow_id"] == ended[0].meta["flow_id"] == "t-1"
    assert last.meta["segment"] == 1 and last.protocol == "ssh"
    total = sum(r.packets_c2s + r.packets_s2c for r in ended)
    assert total == an.stats.packets


def test_emitter_reports_each_finding_once_per_flow_across_segments() -> None:
    out = io.StringIO()
    em = Emitter(out, None, None)
    an = MonitorAnalyzer(Config(), on_record=em.on_record, on_classified=em.on_classified, run_id="e-")
    records = frames_of(SSH_PCAP)
    an.run(records[:20])
    an.split_long_flows(active=0.001, now=records[19][0] + 1)
    an.run(records[20:])
    an.close()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    types = [e["type"] for e in events]
    assert types.count("classified") == 1 and types.count("flow") == 2
    kinds = [e["kind"] for e in events if e["type"] == "finding"]
    assert "tunnel" in kinds and len(kinds) == len(set(kinds))
    assert all(e["flow_id"] == "e-1" for e in events)
    assert em.reported == {}, "per-flow state is dropped when the flow really ends"
    assert em.tally.by_kind["tunnel"] == 1


def test_reload_changes_name_what_changed(tmp_path: Path) -> None:
    old = Setup.load(Config())
    policy = tmp_path / "p.toml"
    policy.write_text('disabled = ["tunnel"]\n[egress]\ntcp = [443]\n')
    new, error = reloading.load(Config(policy_path=str(policy)))
    assert new is not None and error == ""
    changes = reloading.changes(old, new)
    assert any(c.startswith("policy disabled: [] -> ['tunnel']") for c in changes)
    assert any(c.startswith("policy egress:") for c in changes)
    assert reloading.changes(old, Setup.load(Config())) == []


def test_reload_error_is_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text("[egress\n")
    new, error = reloading.load(Config(policy_path=str(bad)))
    assert new is None and "invalid TOML" in error and str(bad) in error
    new, error = reloading.load(Config(signature_dirs=(str(tmp_path / "missing"),)))
    assert new is None and error


def test_bpf_compile_and_attach() -> None:
    prog = bpf.compile_filter("tcp port 443")
    assert 4 < len(prog) < 64 and prog[-1][0] == 0x06  # ends in a return
    with pytest.raises(bpf.BpfError, match="bad filter"):
        bpf.compile_filter("tcp port nosuchport")
    assert bpf.parse_dd("{ 0x6, 0, 0, 0x00040000 },\n") == [(6, 0, 0, 0x40000)]
    with pytest.raises(bpf.BpfError):
        bpf.parse_dd("garbage")
    # SO_ATTACH_FILTER works on any socket: the kernel validates the program on attach.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        bpf.attach(s, prog)
        with pytest.raises(OSError):
            bpf.attach(s, [(0xFFFF, 0, 0, 0)])  # not an instruction


def test_monitor_loop_survives_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from portwatch.monitor.loop import Limits, Monitor

    out = io.StringIO()
    em = Emitter(out, None, None)
    config = Config()
    an = MonitorAnalyzer(config, on_record=em.on_record, on_classified=em.on_classified, run_id="x-")
    real = MonitorAnalyzer._emit
    calls = [0]

    def flaky(self: MonitorAnalyzer, raws: list) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise RuntimeError("a bug between the core and the sinks")
        real(self, raws)

    monkeypatch.setattr(MonitorAnalyzer, "_emit", flaky)
    mon = Monitor(an, _core.Capture(str(SSH_PCAP)), em, config, Limits())
    snap = mon.run()
    assert snap.errors == 1
    assert mon.stop_reason == "end of capture"
    assert snap.packets > 10, "the packets after the failing one were still analysed"
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["type"] for e in events].count("flow") == 1, "the flow was still reported at the end"


def test_rich_view_renders_and_escapes_markup() -> None:
    from rich.console import Console

    from portwatch.model import Finding
    from portwatch.monitor.emit import Tally
    from portwatch.monitor.view import RichView, Snapshot

    buf = io.StringIO()
    view = RichView(Console(file=buf, width=200, force_terminal=False), "eth1")
    tally = Tally()
    rec = FlowRecord(ts_start=1.0, ts_end=2.0, transport="tcp", src_ip="10.0.0.2", src_port=5, dst_ip="10.0.0.1",
                     dst_port=443, orientation="handshake", protocol="ssh")
    tally.recent.append((1.0, rec, Finding("tunnel", "high", "banner [bold red]x[/]")))
    tally.by_kind["tunnel"] += 1
    snap = Snapshot(uptime=3, packets=10, pps=5, live_flows=1, flows_done=0, kernel_drops=2, evicted=0,
                    fragments_dropped=0, truncated=0, malformed=0)
    view.tick(snap, tally)
    view.close()
    text = buf.getvalue()
    assert "kernel drops 2" in text and "tunnel 1" in text
    assert "banner [bold red]x[/]" in text, "markup in attacker text is shown, not interpreted"


def test_lookup_unknown_user() -> None:
    from portwatch.monitor import privdrop

    with pytest.raises(privdrop.PrivilegeError, match="no such user"):
        privdrop.lookup("pw-no-such-user")


def udp_frame(sport: int, dport: int, payload: bytes, src: bytes, dst: bytes) -> bytes:
    import struct

    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp


def test_unknown_flow_is_reported_when_given_up_not_only_at_its_end() -> None:
    import random

    rng = random.Random(5)
    a, b = bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1])
    frames = []
    for _ in range(4):
        frames.append(udp_frame(40001, 47123, rng.randbytes(200), a, b))
        frames.append(udp_frame(47123, 40001, rng.randbytes(200), b, a))
    classified: list[FlowRecord] = []
    ended: list[FlowRecord] = []
    an = MonitorAnalyzer(Config(), on_record=ended.append, on_classified=classified.append, run_id="u-")
    an.run([(1000.0 + i, 1, f, 0, len(f)) for i, f in enumerate(frames)])
    assert len(classified) == 1 and not ended, "reported while the flow is still open"
    assert classified[0].protocol == "unknown"
    assert "entropy_client" in classified[0].meta


def test_reload_changes_report_services_and_signatures(tmp_path: Path) -> None:
    services = tmp_path / "services"
    services.write_text("ssh\t22/tcp\nhttps\t443/tcp\nportwatch-test\t47000/tcp\n")
    old = Setup.load(Config(services_path=str(services)))
    services.write_text("ssh\t22/tcp\nhttps\t443/tcp\n")
    sigs = tmp_path / "sigs"
    sigs.mkdir()
    (sigs / "pwtest.toml").write_text(
        'protocol = "pwtest"\ndescription = "test"\ntransports = ["tcp"]\n\n'
        '[[match]]\ndirection = "server"\nprefix = "PWTEST "\n'
    )
    new, error = reloading.load(Config(services_path=str(services), signature_dirs=(str(sigs),)))
    assert new is not None, error
    changes = reloading.changes(old, new)
    assert "services: 0 entries added, 1 removed" in changes
    assert "signatures added: pwtest" in changes
