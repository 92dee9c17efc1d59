"""Captures of real daemons: FRRouting's ldpd, miredo, freeDiameter, Samba's samba-dcerpcd and
OsmoGGSN (captures/ldp-646, teredo-3544, diameter-3868, dcerpc-135, gtp-2152)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_ldp_hellos_and_the_session_opened_by_the_higher_transport_address() -> None:
    records, _ = analyze_path(CAPTURES / "ldp-646.pcap")
    hellos = [r for r in records if r.transport == "udp"]
    assert {(r.src_ip, r.dst_ip, r.protocol) for r in hellos} == {
        ("10.77.0.1", "224.0.0.2", "ldp"), ("10.77.0.2", "224.0.0.2", "ldp")}
    (session,) = [r for r in records if r.transport == "tcp"]
    # RFC 5036 2.5.2: the LSR with the higher transport address is the active one
    assert (session.protocol, session.src_ip, session.dst_port, session.state) == ("ldp", "10.77.0.2", 646, "SF")
    assert not any(r.findings for r in records)


def test_teredo_qualification_and_peers_on_nat_mapped_ports() -> None:
    records, _ = analyze_path(CAPTURES / "teredo-3544.pcap")
    assert {(r.dst_port, r.protocol) for r in records} == {(3544, "teredo"), (50011, "teredo"), (50001, "teredo")}
    qualification = next(r for r in records if r.dst_port == 3544)
    assert qualification.meta["teredo_inner"] == 58  # ICMPv6: the router solicitation
    # peers talk between the ports their NATs mapped (RFC 4380 5.2): the policy's `negotiated`
    assert not any(r.findings for r in records)


def test_diameter_peers_and_the_relayed_request() -> None:
    records, _ = analyze_path(CAPTURES / "diameter-3868.pcap")
    assert [(r.protocol, r.dst_port, r.state) for r in records] == [("diameter", 3868, "SF")] * 2
    # each connection opens with a capabilities exchange that names both peers (RFC 6733 5.3)
    peers = [(r.meta["diameter_command"], r.meta["diameter_origin_host"], r.meta["diameter_product"],
              r.meta["diameter_command_server"], r.meta["diameter_origin_host_server"], r.meta["diameter_result_code"])
             for r in records]
    assert sorted(peers) == [
        ("capabilities-exchange-request", "cli.example.test", "freeDiameter",
         "capabilities-exchange-answer", "srv.example.test", 2001),
        ("capabilities-exchange-request", "py.example.test", "portwatch-pydiameter",
         "capabilities-exchange-answer", "srv.example.test", 2001),
    ]
    assert {(f.kind, f.severity) for r in records for f in r.findings} == {("unassigned-port", "info")}
    iana, _ = analyze_path(CAPTURES / "diameter-3868.pcap", services_path="iana")
    assert all(r.assigned == ["diameter"] and not r.findings for r in iana)


def test_dcerpc_endpoint_mapper_and_the_port_it_maps() -> None:
    records, _ = analyze_path(CAPTURES / "dcerpc-135.pcap")
    assert sorted((r.dst_port, r.protocol) for r in records) == [(135, "dcerpc")] * 5 + [(49152, "dcerpc")] * 4
    # the endpoint mapper hands out 49152: the policy's `negotiated`, no "why is this offered"
    assert not any(r.findings for r in records)
    # each connection binds one interface; the signed ones say how the caller authenticated
    calls = [(r.dst_port, r.meta["dcerpc_ptype"], r.meta["dcerpc_ptype_server"], r.meta["dcerpc_interface"],
              r.meta.get("dcerpc_auth")) for r in records]
    assert calls == [
        (135, "bind", "bind_ack", "epmapper", None),
        (135, "bind", "bind_ack", "epmapper", None),
        (49152, "bind", "bind_ack", "samr", None),
        (135, "bind", "bind_ack", "epmapper", None),
        (49152, "bind", "bind_ack", "samr", "ntlmssp"),
        (135, "bind", "bind_ack", "epmapper", None),
        (49152, "bind", "bind_ack", "samr", "ntlmssp"),
        (135, "bind", "bind_ack", "epmapper", None),
        (49152, "bind", "bind_ack", "lsarpc", "ntlmssp"),
    ]
    # each mapped connection points at the endpoint-mapper answer that named its port
    # (C706 appendix L); the lookup's list of endpoints (flow 1) is no announcement of 135
    by_id = {r.flow_id: r for r in records}
    for r in records:
        if r.dst_port == 49152:
            mapper = by_id[r.meta["control_flow_id"]]
            assert (mapper.dst_port, r.meta["announced_by"], r.confidence) == (135, "epm", 1.0)
            assert r.meta["control_community_id"] == mapper.community_id
            assert {"endpoint": "10.77.0.1:49152", "transport": "tcp", "protocol": "dcerpc", "by": "epm"} in (
                mapper.meta["announced"])
        else:
            assert "control_flow_id" not in r.meta


def test_gtp_control_user_plane_and_what_the_tunnel_carries() -> None:
    records, _ = analyze_path(CAPTURES / "gtp-2152.pcap")
    by_port = {(r.transport, r.dst_port): r for r in records}
    assert set(by_port) == {("udp", 2123), ("udp", 2152), ("udp", 53), ("tcp", 80)}
    control, user = by_port[("udp", 2123)], by_port[("udp", 2152)]
    assert (control.protocol, control.meta["gtp_version"], control.meta["gtp_message"]) == ("gtp", 1, "echo-request")
    assert control.meta["gtp_message_server"] == "echo-response"
    # sgsnemu's Create PDP Context and OsmoGGSN's answer (TS 29.060 7.3.1-7.3.2): the APN, each
    # side's data and control TEIDs at its GSN address, the cause; not the subscriber.
    assert control.meta["gtp_apn"] == "internet"
    assert control.meta["gtp_fteid"] == ["10.77.0.2 teid 0x00000001 data", "10.77.0.2 teid 0x00000001 control"]
    assert control.meta["gtp_fteid_server"] == ["10.77.0.1 teid 0x00000001 data",
                                                "10.77.0.1 teid 0x00000001 control"]
    assert control.meta["gtp_cause_server"] == 128
    assert "240010123456789" not in repr(control.meta) and "2123456" not in repr(control.meta)
    assert (user.protocol, user.meta["gtp_message"]) == ("gtp", "g-pdu")
    dns, http = by_port[("udp", 53)], by_port[("tcp", 80)]
    assert (dns.protocol, dns.meta["dns_query"]) == ("dns", "www.example.test.")
    assert (http.protocol, http.meta["http_host"], http.state) == ("http", "www.example.test", "SF")
    for inner in (dns, http):
        assert inner.meta["encap"] == ["gtpu"] and inner.meta["tunnel_community_id"] == user.community_id
