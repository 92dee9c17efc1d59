"""IKEv2 from strongSwan (captures/ike-500.pcap): charon answering charon-cmd, IKE_SA_INIT on 500,
then IKE_AUTH and INFORMATIONAL on 4500 behind the non-ESP marker (RFC 3948 2.2)."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "ike-500.pcap"


def datagrams_by_port() -> dict[int, int]:
    out: dict[int, int] = {}
    with CAPTURE.open("rb") as fh:
        for _, frame in dpkt.pcap.Reader(fh):
            udp = dpkt.ethernet.Ethernet(frame).data.data
            out[udp.dport] = out.get(udp.dport, 0) + 1
    return out


def test_ike_sa_init_on_500_and_the_rest_on_4500() -> None:
    records, _ = analyze_path(CAPTURE)
    by_port = {r.dst_port: r for r in records}
    assert sorted(by_port) == [500, 4500]
    assert {r.protocol for r in records} == {"ipsec"}
    assert {p: r.packets_c2s + r.packets_s2c for p, r in by_port.items()} == datagrams_by_port()
    init, auth = by_port[500], by_port[4500]
    assert (init.meta["ike_version"], init.meta["ike_exchange"]) == (2, "ike_sa_init")
    assert (init.packets_c2s, init.packets_s2c) == (1, 1)
    # On 4500 each IKE message follows four zero bytes; the first is IKE_AUTH (in two fragments).
    assert bytes.fromhex(auth.meta["client_head"]).startswith(b"\0\0\0\0")
    assert (auth.meta["ike_version"], auth.meta["ike_exchange"]) == (2, "ike_auth")
    assert init.assigned == ["isakmp"] and auth.assigned == ["ipsec-nat-t"]
    assert [f for r in records for f in r.findings] == []
