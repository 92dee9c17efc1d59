"""X11 over TCP from two Xvfb servers, xdpyinfo and xlsclients (captures/x11-6000.pcap): the connection
setup each side opens with, accepted and refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from _engine import classify

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "x11-6000.pcap"


def test_the_setup_says_who_accepted_and_why_one_refused() -> None:
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.assigned) for r in records] == [
        ("x11", 6000, ["x11"]), ("x11", 6000, ["x11"]), ("x11", 6001, ["x11-1"])]
    accepted, _, refused = records
    # :0 runs with access control off: no authorization, a Success naming the X server's vendor
    assert "x11_auth" not in accepted.meta
    assert (accepted.meta["x11_setup"], accepted.meta["x11_vendor"]) == ("success", "The X.Org Foundation")
    # :1 refuses a cookie it never issued; the cookie itself is in no field of the record
    assert refused.meta["x11_auth"] == "MIT-MAGIC-COOKIE-1"
    assert (refused.meta["x11_setup"], refused.meta["x11_refused"]) == ("failed", "Invalid MIT-MAGIC-COOKIE-1 key")
    for r in records:
        assert "server bytes confirmed by the x11 probe" in r.meta["evidence"]
        assert [(f.kind, f.severity) for f in r.findings] == [("insecure-protocol", "medium")]
        assert "X11 over the network in clear" in r.findings[0].message


def test_x11_on_another_port_is_named_by_its_bytes() -> None:
    setup = bytes.fromhex("6c000b0000000000000000000000")[:12]
    reply = bytes.fromhex("01000b0000000000")
    d = classify("tcp", [setup], [reply], 443)
    assert (d.protocol, "server bytes" in d.evidence) == ("x11", True)
    # a server's Success alone, never preceded by a request, is no evidence off X's ports
    assert classify("tcp", [], [reply + bytes(40)], 443).protocol != "x11"
