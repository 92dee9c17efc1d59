"""BitTorrent between two python3-libtorrent sessions, over TCP (captures/bittorrent-6881.pcap)
and over uTP (captures/bittorrent-utp-6881.pcap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pcapkit import analyze_path

pytest.importorskip("portwatch._core")

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
INFO_HASH = "08621a1a795903cc39c4034c174ec8ea720acfd9"  # the seeded 64 KiB file's v1 torrent


def test_the_handshakes_give_the_info_hash_the_clients_and_their_extensions() -> None:
    records, _ = analyze_path(CAPTURES / "bittorrent-6881.pcap")
    assert [(r.protocol, r.transport, r.dst_port) for r in records] == [("bittorrent", "tcp", 6881)]
    meta = records[0].meta
    assert meta["bt_info_hash"] == INFO_HASH
    assert meta["bt_client"] == meta["bt_client_server"] == "-LT2080-"
    assert meta["bt_extensions"] == ["extension_protocol", "dht", "fast"]
    assert [(f.kind, f.severity) for f in records[0].findings] == [("unassigned-port", "info")]


def test_utp_with_libtorrents_close_reason_is_bittorrent_from_the_syns_sender() -> None:
    records, _ = analyze_path(CAPTURES / "bittorrent-utp-6881.pcap")
    assert [(r.protocol, r.transport, r.src_ip, r.dst_ip) for r in records] == [
        ("bittorrent", "udp", "10.77.0.2", "10.77.0.1")]
    assert records[0].meta["utp_type"] == "syn"
