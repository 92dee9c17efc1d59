"""AFP over TCP (DSI): a session on 548, the same off its port, and one picked up in its middle.

The messages follow Apple's "AFP over TCP" (the 16-byte DSI header): DSIOpenSession with its
options, then DSICommand requests carrying AFP commands and their replies."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.pcapkit import analyze_path, ether, tcp_session, timed, write_pcap

pytest.importorskip("portwatch._core")

REQUEST, REPLY = 0, 1
OPEN_SESSION, COMMAND = 4, 2


def dsi(flags: int, command: int, request_id: int, data: bytes, code: int = 0) -> bytes:
    return struct.pack(">BBHiII", flags, command, request_id, code, len(data), 0) + data


# The client's attention quantum option; the server's request quantum (1 MiB).
OPEN = dsi(REQUEST, OPEN_SESSION, 1, bytes([0x01, 4]) + struct.pack(">I", 1024))
OPENED = dsi(REPLY, OPEN_SESSION, 1, bytes([0x00, 4]) + struct.pack(">I", 1 << 20))
# FPGetSrvrParms (16), then FPGetVolParms (17) for volume 2 and a reply of kFPObjectNotFound.
SRVR_PARMS = dsi(REQUEST, COMMAND, 2, bytes([16, 0]))
SRVR_REPLY = dsi(REPLY, COMMAND, 2, struct.pack(">IB", 0x66e0b2a1, 1) + bytes([0x80, 5]) + b"Share")
VOL_PARMS = dsi(REQUEST, COMMAND, 3, bytes([17, 0, 0, 2, 0x0E, 0x1C]))
NOT_FOUND = dsi(REPLY, COMMAND, 3, b"", code=-5018)


def run(tmp_path: Path, frames: list[bytes]) -> list:
    return analyze_path(write_pcap(tmp_path / "afp.pcap", timed([ether(f) for f in frames])))[0]


def test_an_afp_session_on_548(tmp_path: Path) -> None:
    frames = tcp_session([OPEN, SRVR_PARMS, VOL_PARMS], [OPENED, SRVR_REPLY, NOT_FOUND], dport=548)
    (rec,) = run(tmp_path, frames)
    assert rec.protocol == "afp"
    # Each side's first message; the side whose facts the engine read first names it.
    assert rec.meta["dsi_first"] in {"open-session request", "open-session reply"}
    assert "afpovertcp" in rec.assigned
    assert not [f for f in rec.findings if f.kind == "port-mismatch"]


def test_afp_off_its_port_is_named_and_a_mismatch(tmp_path: Path) -> None:
    # 3306 is mysql's in /etc/services
    frames = tcp_session([OPEN, SRVR_PARMS], [OPENED, SRVR_REPLY], dport=3306)
    (rec,) = run(tmp_path, frames)
    assert rec.protocol == "afp"
    assert "port-mismatch" in {f.kind for f in rec.findings}


def test_an_afp_session_picked_up_in_its_middle(tmp_path: Path) -> None:
    # Only the data segments of a session already open: no SYN either way.
    frames = tcp_session([VOL_PARMS, SRVR_PARMS], [NOT_FOUND, SRVR_REPLY], dport=548)[3:-3]
    (rec,) = run(tmp_path, frames)
    assert rec.protocol == "afp"
    assert rec.meta["dsi_first"] in {"command request", "command reply"}


def test_a_dsi_header_with_its_reserved_word_set_is_not_afp(tmp_path: Path) -> None:
    bad = OPEN[:12] + b"\x00\x00\x00\x01" + OPEN[16:]
    frames = tcp_session([bad], [], dport=8443)
    (rec,) = run(tmp_path, frames)
    assert rec.protocol != "afp"
