"""Industrial protocols from real stacks (captures/s7comm-102, iec104-2404, bacnet-47808 and
dnp3-20000: Snap7, lib60870, bacpypes3 and opendnp3, each from PyPI as Debian packages none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def test_snap7_sessions_are_s7comm_on_iso_tsap() -> None:
    records, _ = analyze_path(CAPTURES / "s7comm-102.pcap")
    assert [(r.protocol, r.dst_port, r.assigned) for r in records] == [("s7comm", 102, ["iso-tsap"])] * 3
    assert all(r.src_ip == "10.77.0.2" and not r.findings for r in records)
    # TPKT + COTP connection request both ways, then S7's protocol id under a COTP DT header
    assert all("client bytes" in r.meta["evidence"] and "server bytes" in r.meta["evidence"] for r in records)
    # rack 0 slot 1 from the called TSAP; past the communication setup, what each connection asked
    assert [(r.meta["s7_rack"], r.meta["s7_slot"], r.meta["s7_function"]) for r in records] == [
        (0, 1, "read_var"), (0, 1, "userdata_cpu_functions"), (0, 1, "userdata_cpu_functions")]
    assert {(r.meta["s7_rosctr_server"], r.meta["s7_function_server"]) for r in records} == {
        ("ack_data", "setup_communication")}


def test_lib60870_sessions_open_with_startdt() -> None:
    records, _ = analyze_path(CAPTURES / "iec104-2404.pcap")
    assert [(r.protocol, r.meta["iec104_first"], r.meta["iec104_first_server"]) for r in records] == [
        ("iec104", "startdt-act", "startdt-con")] * 2
    # past STARTDT, the general interrogation of station 47 and its activation confirmation
    assert [(r.meta["iec104_asdu"], r.meta["iec104_common_address"], r.meta["iec104_asdu_server"])
            for r in records] == [("C_IC_NA_1", 47, "C_IC_NA_1")] * 2
    # Debian's /etc/services has no 2404: only the inventory's note; IANA assigns it to iec-104
    assert {(f.kind, f.severity) for r in records for f in r.findings} == {("unassigned-port", "info")}
    iana, _ = analyze_path(CAPTURES / "iec104-2404.pcap", services_path="iana")
    assert all(r.assigned == ["iec-104"] and not r.findings for r in iana)


def test_bacnet_broadcast_and_unicast_name_their_bvlc_function() -> None:
    records, _ = analyze_path(CAPTURES / "bacnet-47808.pcap")
    assert {(r.protocol, r.dst_ip, r.meta["bvlc_function"]) for r in records} == {
        ("bacnet", "10.77.0.255", "original-broadcast"),
        ("bacnet", "10.77.0.1", "original-unicast"),
    }


def test_bacnet_roles_follow_the_apdus_not_the_first_datagram() -> None:
    # The unicast flow begins with device 1001's I-Am (answering the broadcast Who-Is): the device
    # answers, so it is the server, and the side that asks (Who-Is, then ReadProperty and
    # WriteProperty) the client (ASHRAE 135 clause 20.1).
    records, _ = analyze_path(CAPTURES / "bacnet-47808.pcap")
    unicast = next(r for r in records if r.dst_ip != "10.77.0.255")
    assert (unicast.src_ip, unicast.dst_ip, unicast.orientation) == ("10.77.0.2", "10.77.0.1", "inferred")
    assert (unicast.meta["bacnet_service"], unicast.meta["bacnet_service_server"]) == ("who-is", "i-am")
    assert unicast.meta["bacnet_apdu"] == unicast.meta["bacnet_apdu_server"] == "unconfirmed-request"
    broadcast = next(r for r in records if r.dst_ip == "10.77.0.255")
    assert (broadcast.src_ip, broadcast.meta["bacnet_service"]) == ("10.77.0.2", "who-is")


def test_opendnp3_sessions_name_their_link_addresses() -> None:
    records, _ = analyze_path(CAPTURES / "dnp3-20000.pcap")
    assert len(records) == 2
    for r in records:
        assert (r.protocol, r.dst_port, r.src_ip) == ("dnp3", 20000, "10.77.0.2")
        assert (r.meta["dnp3_src"], r.meta["dnp3_dst"]) == (1, 10)  # the master's address, the outstation's
        # the master's first request, and the outstation's unsolicited (null) response at start-up
        assert (r.meta["dnp3_app_function"], r.meta["dnp3_app_function_server"]) == (
            "disable_unsolicited", "unsolicited_response")
