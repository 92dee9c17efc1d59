"""A TCP connection outlives its flow's idle timeout: when a real OpenSSH session on 443 falls
silent for longer than `idle_tcp` and speaks again, the second flow continues the first (its
protocol, roles and findings) instead of being mid-stream bytes nobody can name."""

from __future__ import annotations

import json
from pathlib import Path

import dpkt
from click.testing import CliRunner
from pcapkit import write_pcap

from portwatch.cli import main

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
SILENCE = 400.0  # longer than the default idle_tcp (300 s)


def session_with_a_silence(tmp_path: Path, after_data_packets: int) -> Path:
    """captures/ssh-443.pcap with every frame from the given payload-carrying packet on moved
    `SILENCE` seconds later: the connection goes quiet in the middle of its encrypted session."""
    frames = []
    data_seen = 0
    shift = 0.0
    with open(CAPTURES / "ssh-443.pcap", "rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            tcp = dpkt.ethernet.Ethernet(buf).data.data
            if tcp.data:
                data_seen += 1
                if data_seen == after_data_packets:
                    shift = SILENCE
            frames.append((ts + shift, buf))
    assert shift, "the capture has fewer payload packets than asked for"
    return write_pcap(tmp_path / "ssh-443-silent.pcap", frames)


def records(path: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["analyze", "--format", "jsonl", "--quiet", *args, str(path)])
    assert result.exit_code in (0, 1), result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_an_ssh_session_quiet_past_its_idle_timeout_is_continued_not_unknown(tmp_path: Path) -> None:
    path = session_with_a_silence(tmp_path, after_data_packets=20)
    first, then = records(path)
    assert (first["protocol"], first["meta"]["end_reason"]) == ("ssh", "idle")
    assert then["protocol"] == "ssh"
    assert then["meta"]["resumes"] == first["flow_id"]
    assert then["meta"]["evidence"].startswith(f"resumes flow {first['flow_id']} after ")
    assert (then["src_ip"], then["src_port"], then["dst_port"]) == (first["src_ip"], first["src_port"], 443)
    assert then["orientation"] == "inferred"
    assert then["community_id"] == first["community_id"]
    # SSH on 443 is still SSH on 443; what mid-stream bytes alone would have said is not.
    kinds = {f["kind"] for f in then["findings"]}
    assert "port-mismatch" in kinds
    assert not kinds & {"encrypted-unknown", "cleartext-on-secure-port"}


def test_the_continuation_is_the_same_for_every_worker_count(tmp_path: Path) -> None:
    path = session_with_a_silence(tmp_path, after_data_packets=20)
    assert records(path, "--workers", "2") == records(path)


def test_a_shorter_silence_leaves_one_flow(tmp_path: Path) -> None:
    frames = []
    with open(CAPTURES / "ssh-443.pcap", "rb") as fh:
        for i, (ts, buf) in enumerate(dpkt.pcap.Reader(fh)):
            frames.append((ts + (200.0 if i >= 40 else 0.0), buf))
    (only,) = records(write_pcap(tmp_path / "ssh-443-pause.pcap", frames))
    assert only["protocol"] == "ssh" and "resumes" not in only["meta"]
