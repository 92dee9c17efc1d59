"""Issue 18 item 8 (Python half): -r FILE as well as the positional path, a directory as every
capture in it."""

from __future__ import annotations

import json

from _kit import CAPTURES, SERVICES, run


def _flows(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_dash_r_reads_a_capture():
    res = run("analyze", *SERVICES, "--format", "jsonl", "-r", str(CAPTURES / "ssh-443.pcap"))
    assert res.exit_code == 1, res.stderr
    assert {r["pcap"] for r in _flows(res.stdout)} == {"ssh-443.pcap"}


def test_dash_r_and_positional_together():
    res = run("analyze", *SERVICES, "--format", "jsonl", "-r", str(CAPTURES / "ssh-443.pcap"),
              str(CAPTURES / "http-80.pcap"))
    assert {r["pcap"] for r in _flows(res.stdout)} == {"ssh-443.pcap", "http-80.pcap"}


def test_a_directory_is_every_capture_in_it():
    res = run("analyze", *SERVICES, "--format", "jsonl", str(CAPTURES))
    assert res.exit_code in (0, 1), res.stderr
    expected = {p.name for p in CAPTURES.glob("*.pcap")}
    assert {r["pcap"] for r in _flows(res.stdout)} == expected


def test_no_capture_at_all_is_a_usage_error():
    res = run("analyze")
    assert res.exit_code == 2
    assert "no capture" in res.stderr
