"""Media streaming from real servers: RTSP RECORD into ffmpeg (captures/rtsp-554.pcap), with the
RTP and RTCP its SETUP announced, and RTMP publish and play through nginx-rtmp
(captures/rtmp-1935.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_rtsp_names_the_media_flows_its_setup_announced() -> None:
    records, _ = analyze_path(CAPTURES / "rtsp-554.pcap")
    assert [(r.protocol, r.transport, r.dst_port) for r in records] == [
        ("rtsp", "tcp", 554), ("rtcp", "udp", 5001), ("rtp", "udp", 5000), ("rtsp", "tcp", 554)]
    control, rtcp, rtp, interleaved = records
    assert {(a["endpoint"], a["protocol"]) for a in control.meta["announced"]} >= {
        ("10.77.0.1:5000", "rtp"), ("10.77.0.1:5001", "rtcp")}
    for media in (rtcp, rtp):
        assert media.meta["control_flow_id"] == control.flow_id and media.meta["announced_by"] == "RTSP"
    assert rtcp.meta["rtcp_first"] == "sr" and rtp.meta["rtp_payload_type"] == 96
    # RTP/AVP/TCP: the media rides in the RTSP connection, nothing is announced
    assert "announced" not in interleaved.meta
    assert all(not r.findings for r in records)


def test_rtmp_reads_the_connect_command_after_a_digest_handshake() -> None:
    records, _ = analyze_path(CAPTURES / "rtmp-1935.pcap")
    assert [(r.protocol, r.dst_port) for r in records] == [("rtmp", 1935), ("rtmp", 1935)]
    publisher, player = records
    for r in records:
        assert r.meta["rtmp_command"] == "connect" and r.meta["rtmp_app"] == "live"
        assert r.meta["rtmp_tc_url"] == "rtmp://10.77.0.1:1935/live"
    # ffmpeg names itself as an encoder when it publishes, as Flash Player 9 on Linux when it plays
    assert publisher.meta["rtmp_flash_ver"].startswith("FMLE/3.0")
    assert player.meta["rtmp_flash_ver"] == "LNX 9,0,124,2"
    # Debian's /etc/services has no 1935 (IANA's macromedia-fcs): the inventory note only
    assert {(f.kind, f.severity) for r in records for f in r.findings} == {("unassigned-port", "info")}
