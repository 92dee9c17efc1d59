"""Connections a control connection announced are named by it (core/src/flow/expect.rs): FTP data
connections (PASV, EPSV, PORT, EPRT) and RTP/RTCP (SIP's SDP, RTSP's Transport header) get
`ftp-data`/`rtp`/`rtcp` and `meta.control_flow_id`/`control_community_id` of the announcing flow;
a PORT naming a third host names nothing and is an `ftp-bounce`.

Real captures (captures/record.sh: vsftpd and curl, sipp's uac_pcap call with RTP) for FTP and SIP;
RTSP is crafted from RFC 2326's SETUP example (no RTSP server in Debian 12 main worth its weight).
"""

from __future__ import annotations

from pathlib import Path

from pcapkit import CLIENT, SERVER, analyze_path, ether, tcp_session, timed, write_pcap
from scapy.layers.inet import IP, UDP

REPO = Path(__file__).resolve().parent.parent.parent
CAPTURES = REPO / "captures"


def by_id(records: list) -> dict:
    return {r.flow_id: r for r in records}


def check_named(records: list, protocol: str, by: set[str], count: int) -> list:
    flows = by_id(records)
    named = [r for r in records if r.protocol == protocol]
    assert len(named) == count, [(r.protocol, r.dst_port) for r in records]
    for r in named:
        control = flows[r.meta["control_flow_id"]]
        assert r.meta["control_community_id"] == control.community_id
        assert r.meta["announced_by"] in by
        assert r.confidence == 1.0 and not r.findings
        assert any(a["endpoint"].endswith(f":{r.dst_port}") or a["endpoint"].endswith(f":{r.src_port}")
                   for a in control.meta["announced"])
    return named


def test_pasv_data_connections_are_ftp_data() -> None:
    records, _ = analyze_path(CAPTURES / "ftp-pasv-21.pcap")
    named = check_named(records, "ftp-data", {"PASV"}, 2)
    assert {r.dst_port for r in named} == {50000}


def test_active_mode_data_connections_from_port_20_are_ftp_data() -> None:
    records, _ = analyze_path(CAPTURES / "ftp-active-21.pcap")
    named = check_named(records, "ftp-data", {"PORT", "EPRT"}, 2)
    assert {r.meta["announced_by"] for r in named} == {"PORT", "EPRT"}
    # the server connects: it is the data flow's client, from ftp-data's own port 20
    assert all(r.src_port == 20 and r.src_ip == "10.77.0.1" for r in named)


def test_a_sip_call_names_its_rtp_from_the_sdp() -> None:
    records, _ = analyze_path(CAPTURES / "sip-call-5060.pcap")
    (rtp,) = check_named(records, "rtp", {"SDP"}, 1)
    assert {rtp.src_port, rtp.dst_port} == {6000, 7000}
    sip = by_id(records)[rtp.meta["control_flow_id"]]
    assert sip.protocol == "sip"
    assert {a["endpoint"] for a in sip.meta["announced"]} == {
        "10.77.0.2:6000", "10.77.0.2:6001", "10.77.0.1:7000", "10.77.0.1:7001"}


def rtp(seq: int) -> bytes:
    header = bytes([0x80, 0x00]) + seq.to_bytes(2, "big") + (seq * 160).to_bytes(4, "big") + b"\x11\x22\x33\x44"
    return header + b"\xd5" * 160


def test_rtsp_setup_names_the_rtp_and_rtcp_flows(tmp_path: Path) -> None:
    # RFC 2326 section 12.39 / 10.4: SETUP with client_port, the reply adds server_port
    setup = (b"SETUP rtsp://example.com/foo/bar/baz.rm RTSP/1.0\r\nCSeq: 302\r\n"
             b"Transport: RTP/AVP;unicast;client_port=4588-4589\r\n\r\n")
    reply = (b"RTSP/1.0 200 OK\r\nCSeq: 302\r\nDate: 23 Jan 1997 15:35:06 GMT\r\nSession: 47112344\r\n"
             b"Transport: RTP/AVP;unicast;client_port=4588-4589;server_port=6256-6257\r\n\r\n")
    frames = tcp_session([setup], [reply], sport=40000, dport=554)
    frames += [bytes(IP(src=SERVER, dst=CLIENT) / UDP(sport=6256, dport=4588) / rtp(i)) for i in range(8)]
    receiver_report = bytes([0x81, 0xC9, 0, 7]) + bytes(28)
    frames += [bytes(IP(src=CLIENT, dst=SERVER) / UDP(sport=4589, dport=6257) / receiver_report)]
    path = write_pcap(tmp_path / "rtsp.pcap", [(t, ether(f)) for t, f in timed(frames)])
    records, _ = analyze_path(path)
    control = next(r for r in records if r.dst_port == 554)
    assert control.protocol == "rtsp"
    check_named(records, "rtp", {"RTSP"}, 1)
    check_named(records, "rtcp", {"RTSP"}, 1)


def test_port_naming_a_third_host_is_an_ftp_bounce_and_names_nothing(tmp_path: Path) -> None:
    third = "192.0.2.99"
    ctl = tcp_session([b"USER anonymous\r\n", b"PASS x@y\r\n", b"PORT 192,0,2,99,0,25\r\n", b"RETR x\r\n"],
                      [b"220 ProFTPD Server ready.\r\n", b"331 Password required\r\n", b"230 Logged in\r\n",
                       b"200 PORT command successful\r\n", b"150 Opening data connection\r\n"],
                      sport=40000, dport=21, server_first=True)
    # the server goes to the third host's SMTP port
    data = tcp_session([], [b"220 mail.example ESMTP\r\n"], sport=20, dport=25, client=SERVER, server=third)
    path = write_pcap(tmp_path / "bounce.pcap", [(t, ether(f)) for t, f in timed(ctl + data)])
    records, _ = analyze_path(path)
    control = next(r for r in records if r.dst_port == 21)
    assert control.meta["announced_foreign"] == [
        {"endpoint": "192.0.2.99:25", "transport": "tcp", "protocol": "ftp-data", "by": "PORT"}]
    assert "announced" not in control.meta
    assert "ftp-bounce" in {f.kind for f in control.findings}
    assert not any(r.protocol == "ftp-data" for r in records)
