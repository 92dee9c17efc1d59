"""Modbus/TCP from pymodbus's server to mbpoll (captures/modbus-502.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "modbus-502.pcap"


def test_each_poll_names_its_function_and_the_refused_read_its_exception() -> None:
    records, _ = analyze_path(CAPTURE)
    assert {(r.protocol, r.dst_port) for r in records} == {("modbus", 502)}
    calls = [(r.meta["modbus_function"], r.meta["modbus_function_server"], r.meta.get("modbus_exception"))
             for r in records]
    assert calls == [
        ("read_holding_registers", "read_holding_registers", None),
        ("read_coils", "read_coils", None),
        ("read_input_registers", "read_input_registers", None),
        ("write_single_register", "write_single_register", None),
        ("read_holding_registers", "read_holding_registers", "illegal_data_address"),
    ]
    assert all(r.meta["modbus_unit"] == 1 for r in records)
    assert "client bytes" in records[0].meta["evidence"] and "server bytes" in records[0].meta["evidence"]


def test_iana_assigns_502_to_mbap() -> None:
    records, _ = analyze_path(CAPTURE, services_path="iana")
    assert len(records) == 5 and all(not r.findings for r in records)
