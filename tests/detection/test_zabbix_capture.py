"""Zabbix passive checks from zabbix_agentd (captures/zabbix-10050.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "zabbix-10050.pcap"

def test_each_passive_check_is_zabbix_on_the_agents_port() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.assigned, r.findings) for r in records] == [
        ("zabbix", 10050, ["zabbix-agent"], [])] * 3
    keys = {bytes.fromhex(r.meta["client_head"])[13:] for r in records}
    assert keys == {b"agent.ping", b"agent.version", b"agent.hostname"}
    # ZBXD, protocol flags 0x01, then the little-endian length of the data that follows
    for r in records:
        answer = bytes.fromhex(r.meta["server_head"])
        assert answer[:5] == b"ZBXD\x01" and int.from_bytes(answer[5:9], "little") == len(answer) - 13
