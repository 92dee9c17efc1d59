"""`portwatch monitor -r FILE`: the monitor path (events, JSONL, SQLite, lifecycle) without a network."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from .helpers import ROOT, portwatch_cmd, read_db, read_jsonl

SSH_PCAP = Path(__file__).parent / "data" / "ssh-443.pcap"  # one OpenSSH login to port 443 (record_capture.py)
USER = ["--user", "nobody"] if os.geteuid() == 0 else []


def monitor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*portwatch_cmd(), "monitor", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_replay_writes_classified_finding_and_flow_lines(tmp_path: Path) -> None:
    jsonl, db = tmp_path / "e.jsonl", tmp_path / "e.db"
    r = monitor("-r", str(SSH_PCAP), "--jsonl", str(jsonl), "--db", str(db), *USER)
    assert r.returncode == 0, r.stderr
    events = read_jsonl(jsonl)
    # Policy rules evolve: pin the order of the line types and the tunnel, not every finding kind.
    types = [e["type"] for e in events]
    assert types[0] == "classified" and types[-1] == "flow" and set(types[1:-1]) == {"finding"}
    classified, flow = events[0], events[-1]
    findings = {e["kind"]: e for e in events[1:-1]}
    assert all(e["flow_id"] == classified["flow_id"] == flow["flow_id"] for e in events)
    assert classified["protocol"] == "ssh" and classified["pcap"] == "ssh-443.pcap"
    # Classified early: with the first bytes, long before the flow's last packet.
    assert classified["packets_c2s"] + classified["packets_s2c"] < flow["packets_c2s"] + flow["packets_s2c"]
    finding = findings["tunnel"]
    assert finding["severity"] == "high" and finding["protocol"] == "ssh"
    assert (finding["src_ip"], finding["dst_ip"], finding["dst_port"]) == ("10.77.1.2", "10.77.1.1", 443)
    assert {f["kind"] for f in flow["findings"]} == set(findings)
    assert "flow_id" not in flow["meta"]
    rows = read_db(db, "SELECT flow_id, kind, protocol, dst_port, ts_start FROM findings ORDER BY id")
    assert rows == [(flow["flow_id"], kind, "ssh", 443, flow["ts_start"]) for kind in findings]
    (row,) = read_db(db, "SELECT flow_id, protocol, packets_c2s, findings, meta FROM flows")
    assert row[:3] == (flow["flow_id"], "ssh", flow["packets_c2s"])
    assert '"tunnel"' in row[3] and '"hassh"' in row[4]
    assert "1 flows classified, 1 flow records, findings: " in r.stderr and "tunnel 1" in r.stderr


def test_replay_appends_to_existing_outputs(tmp_path: Path) -> None:
    jsonl, db = tmp_path / "e.jsonl", tmp_path / "e.db"
    for _ in range(2):
        r = monitor("-r", str(SSH_PCAP), "--jsonl", str(jsonl), "--db", str(db), *USER)
        assert r.returncode == 0, r.stderr
    events = read_jsonl(jsonl)
    assert len(events) % 2 == 0 and [e["type"] for e in events].count("flow") == 2
    assert len({e["flow_id"] for e in events}) == 2, "flow ids differ between runs"
    assert read_db(db, "SELECT count(*) FROM findings") == [(len(events) - 4,)]
    assert read_db(db, "SELECT count(*) FROM flows") == [(2,)]


def test_max_packets_stops_early_and_flushes(tmp_path: Path) -> None:
    jsonl = tmp_path / "e.jsonl"
    r = monitor("-r", str(SSH_PCAP), "--max-packets", "5", "--jsonl", str(jsonl), *USER)
    assert r.returncode == 0, r.stderr
    assert "stopped (max-packets)" in r.stderr and " 5 packets" in r.stderr
    flows = [e for e in read_jsonl(jsonl) if e["type"] == "flow"]
    assert len(flows) == 1 and flows[0]["packets_c2s"] + flows[0]["packets_s2c"] == 5


def test_bad_policy_at_start_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("egress = 5\n")
    r = monitor("-r", str(SSH_PCAP), "--policy", str(bad), *USER)
    assert r.returncode == 2
    assert "egress" in r.stderr and "Traceback" not in r.stderr


def test_usage_errors() -> None:
    assert monitor(*USER).returncode == 2
    r = monitor("-r", str(SSH_PCAP), "-i", "lo", *USER)
    assert r.returncode == 2 and "either" in r.stderr
    r = monitor("-r", str(SSH_PCAP), "--user", "no-such-user-pw")
    assert r.returncode == 2 and "no such user" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="checks the default privilege drop")
def test_root_without_user_drops_to_the_default_account(tmp_path: Path) -> None:
    r = monitor("-r", str(SSH_PCAP))
    assert r.returncode == 0 and ("running as portwatch" in r.stderr or "running as nobody" in r.stderr), r.stderr
    r = monitor("-r", str(SSH_PCAP), "--user", "root", "--jsonl", str(tmp_path / "e.jsonl"))
    assert r.returncode == 0 and "packet parsers run as root" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to open a packet socket")
def test_missing_interface_is_an_error() -> None:
    r = monitor("-i", "pw-no-such-if", "--user", "nobody")
    assert r.returncode == 2 and "no such interface" in r.stderr


def syn_flood_pcap(path: Path, flows: int) -> None:
    """A classic pcap of `flows` TCP SYNs from distinct source ports (Ethernet, IPv4)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(flows):
        tcp = struct.pack("!HHIIBBHHH", 20000 + i, 8443, i, 0, 5 << 4, 0x02, 64240, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0,
                         bytes([10, 0, 0, 2]), bytes([10, 0, 0, 1]))
        frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp
        out.append(struct.pack("<IIII", 1_700_000_000, i, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


def test_flow_cap_evicts_oldest_and_reports_every_flow(tmp_path: Path) -> None:
    pcap, jsonl = tmp_path / "syn.pcap", tmp_path / "e.jsonl"
    syn_flood_pcap(pcap, 200)
    r = monitor("-r", str(pcap), "--max-flows", "16", "--jsonl", str(jsonl), *USER)
    assert r.returncode == 0, r.stderr
    flows = [e for e in read_jsonl(jsonl) if e["type"] == "flow"]
    assert len(flows) == 200, "an evicted flow is reported, not lost"
    evicted = [e for e in flows if e["meta"].get("end_reason") == "evicted"]
    assert len(evicted) == 200 - 16
    assert [e["src_port"] for e in evicted] == list(range(20000, 20000 + 184)), "oldest first"
    assert "evicted flows 184" in r.stderr


def test_replay_takes_a_capture_filter(tmp_path: Path) -> None:
    """`-r FILE --bpf EXPR`: the core filters the file's frames as the kernel filters a socket's."""
    jsonl = tmp_path / "e.jsonl"
    pcap = ROOT / "captures" / "https-443.pcap"
    r = monitor("--no-view", "-r", str(pcap), "--bpf", "tcp port 34068", "--jsonl", str(jsonl), *USER)
    assert r.returncode == 0, r.stderr
    flows = [e for e in read_jsonl(jsonl) if e["type"] == "flow"]
    assert [f["src_port"] for f in flows] == [34068]
    bad = monitor("--no-view", "-r", str(pcap), "--bpf", "tcp port", *USER)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "bad filter" in bad.stderr
