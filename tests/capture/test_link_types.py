"""Wireless, NFLOG and FDDI link types: the packets of real captures re-wrapped in 802.11 data
frames (plain, radiotap with its FCS, PPI, Prism, AVS) and FDDI give the records the Ethernet
original gives; a real NFLOG capture (captures/record-nflog.sh) gives its flows and protocols.

The 802.11 headers are crafted with scapy around the captured IP packets, unchanged; frames that
carry no packet (beacons, null data, encrypted data) are mixed in and counted, never malformed.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import dpkt
import pytest
from pcapkit import analyze_path, write_pcap, write_pcapng
from scapy.layers.dot11 import Dot11, Dot11Beacon, Dot11QoS, PrismHeader, RadioTap
from scapy.layers.l2 import LLC, SNAP

from tests.conftest import CAPTURES

REAL = ["http-80.pcap", "https-443.pcap", "dns-53.pcap"]
AP, STA, ROUTER, PEER = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03", "02:00:00:00:00:04"
LT_FDDI, LT_80211, LT_PRISM, LT_RADIOTAP, LT_AVS, LT_PPI, LT_NFLOG = 10, 105, 119, 127, 163, 192, 239


def ethernet_frames(name: str) -> list[tuple[float, bytes]]:
    path = CAPTURES / name
    if not path.exists():
        pytest.skip(f"{name} not recorded")
    with open(path, "rb") as fh:
        return [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]


def rows(path: Path, drop: tuple[str, ...] = ("pcap",)) -> tuple[list[dict], object]:
    records, stats = analyze_path(path)
    assert stats.error is None
    return [{k: v for k, v in r.as_dict().items() if k not in drop} for r in records], stats


def snap(ethertype: int, payload: bytes) -> bytes:
    return bytes(LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=ethertype)) + payload


def dot11(frame: bytes, shape: int, first_src: bytes) -> bytes:
    """The Ethernet frame's payload as an 802.11 data frame of one of four header shapes: to or
    from the AP by direction, QoS with +HTC (4 bytes of HT control), and WDS (four addresses)."""
    ethertype = struct.unpack("!H", frame[12:14])[0]
    body = snap(ethertype, frame[14:])
    up = frame[6:12] == first_src
    if shape == 0:
        return bytes(Dot11(type=2, subtype=0, FCfield=1 if up else 2, addr1=AP if up else STA,
                           addr2=STA if up else AP, addr3=ROUTER)) + body
    if shape == 1:
        head = Dot11(type=2, subtype=8, FCfield=0x81 if up else 0x82, addr1=AP, addr2=STA, addr3=ROUTER)
        return bytes(head / Dot11QoS(TID=5)) + b"\x00\x00\x00\x80" + body
    if shape == 2:
        return bytes(Dot11(type=2, subtype=0, FCfield=3, addr1=AP, addr2=PEER, addr3=ROUTER, addr4=STA)) + body
    return bytes(Dot11(type=2, subtype=8, FCfield=1, addr1=AP, addr2=STA, addr3=ROUTER) / Dot11QoS(TID=0)) + body


def with_fcs(frame: bytes) -> bytes:
    return frame + struct.pack("<I", zlib.crc32(frame))


def radiotap(frame: bytes) -> bytes:
    """Radiotap with TSFT before Flags (alignment) and the FCS flag: the FCS follows the frame."""
    head = RadioTap(present="TSFT+Flags+Rate+Channel", mac_timestamp=1, Flags="FCS", Rate=12,
                    ChannelFrequency=2437, ChannelFlags="2GHz+CCK")
    return bytes(head) + with_fcs(frame)


def ppi(frame: bytes) -> bytes:
    """PPI with an 802.11-Common field whose flags say an FCS ends the frame."""
    common = struct.pack("<QHHHHBBbb", 1, 0x0001, 2, 2437, 0x00A0, 0, 0, -40, -90)
    field = struct.pack("<HH", 2, len(common)) + common
    return struct.pack("<BBHI", 0, 0, 8 + len(field), LT_80211) + field + with_fcs(frame)


def prism(frame: bytes) -> bytes:
    return bytes(PrismHeader(dev="wlan0")) + frame


def avs(frame: bytes) -> bytes:
    head = struct.pack(">II", 0x80211001, 64)
    return head + b"\x00" * (64 - len(head)) + frame


def fddi(frame: bytes) -> bytes:
    ethertype = struct.unpack("!H", frame[12:14])[0]
    return b"\x50" + frame[:12] + snap(ethertype, frame[14:])


WRAPS = {
    LT_80211: lambda f, i, src: dot11(f, i % 4, src),
    LT_RADIOTAP: lambda f, i, src: radiotap(dot11(f, i % 4, src)),
    LT_PPI: lambda f, i, src: ppi(dot11(f, i % 4, src)),
    LT_PRISM: lambda f, i, src: prism(dot11(f, i % 4, src)),
    LT_AVS: lambda f, i, src: avs(dot11(f, i % 4, src)),
    LT_FDDI: lambda f, i, src: fddi(f),
}


def rewrapped(frames: list[tuple[float, bytes]], linktype: int) -> list[tuple[float, bytes]]:
    first_src = frames[0][1][6:12]
    return [(ts, WRAPS[linktype](f, i, first_src)) for i, (ts, f) in enumerate(frames)]


@pytest.mark.parametrize("name", REAL)
@pytest.mark.parametrize("linktype", sorted(WRAPS), ids=lambda lt: f"linktype{lt}")
def test_rewrapped_real_packets_give_the_ethernet_records(tmp_path, name, linktype):
    frames = ethernet_frames(name)
    want, want_stats = rows(CAPTURES / name)
    got, stats = rows(write_pcap(tmp_path / "w.pcap", rewrapped(frames, linktype), linktype=linktype))
    assert got == want
    assert (stats.packets, stats.malformed, stats.non_ip) == (want_stats.packets, 0, want_stats.non_ip)


def test_frames_without_a_packet_are_counted_not_malformed(tmp_path):
    """Beacons, null data and encrypted data frames between the real ones: not IP (the encrypted
    ones counted as such too), never malformed, and the flows unchanged."""
    frames = ethernet_frames("http-80.pcap")
    first_src = frames[0][1][6:12]
    beacon = bytes(Dot11(type=0, subtype=8, addr1="ff:ff:ff:ff:ff:ff", addr2=AP, addr3=AP)
                   / Dot11Beacon(cap="ESS+privacy"))
    null = bytes(Dot11(type=2, subtype=4, FCfield=1, addr1=AP, addr2=STA, addr3=AP))
    ack = bytes.fromhex("d4000000") + bytes.fromhex(STA.replace(":", ""))
    out = []
    encrypted = 0
    for i, (ts, f) in enumerate(frames):
        out.append((ts, radiotap(dot11(f, i % 4, first_src))))
        protected = bytearray(dot11(f, 0, first_src))
        protected[1] |= 0x40  # the body is now ciphertext as far as the header says
        out += [(ts, radiotap(beacon)), (ts, radiotap(bytes(protected))), (ts, radiotap(null)),
                (ts, radiotap(ack))]
        encrypted += 1
    # flow_id numbers the flow's first packet in the capture, which the extra frames shift.
    drop = ("pcap", "flow_id")
    want, _ = rows(CAPTURES / "http-80.pcap", drop)
    got, stats = rows(write_pcap(tmp_path / "mixed.pcap", out, linktype=LT_RADIOTAP), drop)
    assert got == want
    assert stats.malformed == 0
    assert stats.non_ip == 4 * len(frames)
    assert stats.encrypted_frames == encrypted


def test_pcapng_interfaces_of_different_wireless_link_types(tmp_path):
    frames = ethernet_frames("https-443.pcap")
    first_src = frames[0][1][6:12]
    kinds = [LT_RADIOTAP, LT_PPI, LT_80211, 1, LT_FDDI]
    packets = []
    for i, (ts, f) in enumerate(frames):
        ifid = i % len(kinds)
        lt = kinds[ifid]
        packets.append((ifid, ts, f if lt == 1 else WRAPS[lt](f, i, first_src)))
    want, _ = rows(CAPTURES / "https-443.pcap")
    got, stats = rows(write_pcapng(tmp_path / "w.pcapng", kinds, packets))
    assert got == want
    assert (stats.malformed, stats.unsupported_link) == (0, 0)


def test_real_nflog_capture_gives_its_flows():
    """captures/nflog-http-dns.pcap: tcpdump on nflog:5, fed by nftables log rules in a namespace."""
    path = CAPTURES / "nflog-http-dns.pcap"
    with open(path, "rb") as fh:
        assert dpkt.pcap.Reader(fh).datalink() == LT_NFLOG
    records, stats = rows(path)
    assert (stats.malformed, stats.non_ip, stats.unsupported_link) == (0, 0, 0)
    flows = sorted((r["transport"], r["dst_port"], r["protocol"], ":" in r["dst_ip"]) for r in records)
    assert flows == [("tcp", 80, "http", False), ("tcp", 80, "http", True),
                     ("udp", 53, "dns", False), ("udp", 53, "dns", False)]
    assert all(r["orientation"] == "handshake" for r in records)
    # The HTTP exchange is read whole: the request line and the server's reply are both seen.
    for r in records:
        if r["protocol"] == "http":
            assert r["bytes_c2s"] > 0 and r["bytes_s2c"] > r["bytes_c2s"]
