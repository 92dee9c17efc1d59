"""PTPv2 between two linuxptp ptp4l instances (captures/ptp-319.pcap): multicast only."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "ptp-319.pcap"

def test_event_and_general_messages_are_ptp_on_their_own_ports() -> None:
    records, _ = analyze_path(CAPTURE)
    got = sorted((r.protocol, r.src_ip, r.dst_port, r.assigned) for r in records)
    assert got == [("ptp", "10.77.0.1", 319, ["ptp-event"]), ("ptp", "10.77.0.1", 320, ["ptp-general"]),
                   ("ptp", "10.77.0.2", 319, ["ptp-event"])]
    for r in records:
        assert r.dst_ip == "224.0.1.129" and r.packets_s2c == 0 and r.findings == []
        # the low nibble of the first byte is the message type; versionPTP 2 follows
        kind = bytes.fromhex(r.meta["client_head"])[0] & 0x0F
        assert bytes.fromhex(r.meta["client_head"])[1] & 0x0F == 2
        # Sync (0) from the master, Delay_Req (1) from the slave, Announce (11) on the general port
        assert kind == {(319, "10.77.0.1"): 0, (319, "10.77.0.2"): 1, (320, "10.77.0.1"): 11}[(r.dst_port, r.src_ip)]
