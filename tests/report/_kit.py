"""Shared helpers of the analyst-experience tests (issue 18)."""

from __future__ import annotations

import io
from pathlib import Path

from click.testing import CliRunner

from portwatch.model import Finding, FlowRecord
from portwatch.services import fallback_path

CAPTURES = Path(__file__).resolve().parent.parent.parent / "captures"
SERVICES = ["--services", str(fallback_path())]


def run(*args: str, env: dict[str, str] | None = None):
    from portwatch.cli import main

    return CliRunner().invoke(main, list(args), env={"COLUMNS": "80", **(env or {})}, catch_exceptions=False)


def record(i: int = 1, *, server: str = "192.0.2.1", port: int = 443, protocol: str = "ssh",
           findings: list[Finding] | None = None, assigned: list[str] | None = None, meta: dict | None = None,
           transport: str = "tcp") -> FlowRecord:
    return FlowRecord(
        ts_start=1_790_000_000.0 + i, ts_end=1_790_000_001.5 + i, transport=transport,
        src_ip=f"10.0.{i // 250}.{i % 250 + 1}", src_port=40000 + i, dst_ip=server, dst_port=port,
        orientation="handshake", protocol=protocol, confidence=0.95,
        assigned=["https"] if assigned is None else assigned, packets_c2s=5, packets_s2c=4, bytes_c2s=1234,
        bytes_s2c=5678, meta=dict(meta or {}), findings=list(findings or []), pcap="x.pcap", flow_id=i,
        community_id="1:abcdefghijklmnopqrstuvwxyz0=", duration=1.5, state="SF", history="ShADadFf",
    )


def lines_of(text: str) -> list[str]:
    return text.splitlines()


def squash(text: str) -> str:
    """Whitespace collapsed: a message wrapped over several lines reads as one string again."""
    return " ".join(text.split())


def stream() -> io.StringIO:
    return io.StringIO()
