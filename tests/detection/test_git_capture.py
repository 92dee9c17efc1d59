"""The git daemon protocol from `git daemon` and `git clone` (captures/git-9418.pcap): protocol
versions 0 and 2."""

from __future__ import annotations

from pathlib import Path

import dpkt
import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURE = Path(__file__).resolve().parents[2] / "captures" / "git-9418.pcap"


def first_request() -> bytes:
    """The first client segment with more than a pkt-line length (git sends the length apart)."""
    with CAPTURE.open("rb") as fh:
        for _, frame in dpkt.pcap.Reader(fh):
            tcp = dpkt.ethernet.Ethernet(frame).data.data
            if tcp.dport == 9418 and len(tcp.data) > 4:
                return bytes(tcp.data)
    raise AssertionError("no request")


def test_two_clones_are_git_from_the_upload_pack_request() -> None:
    assert first_request().startswith(b"git-upload-pack /repo.git\0host=10.77.0.1")
    records, _ = analyze_path(CAPTURE)
    assert [(r.protocol, r.dst_port, r.state) for r in records] == [("git", 9418, "SF")] * 2
    # The request's four-byte length came in a segment of its own: the head is the reassembled stream.
    heads = {bytes.fromhex(r.meta["client_head"])[:22] for r in records}
    assert heads == {b"002dgit-upload-pack /r", b"0038git-upload-pack /r"}
    # Protocol version 2 asks for it in the request's extra parameters; the server says so first.
    v2 = max(records, key=lambda r: r.packets_c2s)
    assert bytes.fromhex(v2.meta["server_head"]).startswith(b"000eversion 2\n")
    assert [f for r in records for f in r.findings] == []
