"""Link-layer and IP decoding: every supported link type, VLAN stacks, IPv6 extension headers,
encapsulations, and bounded fragment reassembly."""

from __future__ import annotations

import struct

import pytest
from pcapkit import CLIENT, SERVER
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import GRE, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN

from portwatch.capture import decode as d
from portwatch.capture.fragments import Defragmenter

PAYLOAD = b"SSH-2.0-OpenSSH_9.2\r\n"
IP4 = IP(src=CLIENT, dst=SERVER) / TCP(sport=40000, dport=443, flags="PA", seq=7) / PAYLOAD
IP6 = IPv6(src="fd00::2", dst="fd00::1") / TCP(sport=40000, dport=443, flags="PA", seq=7) / PAYLOAD


def run(linktype: int, frame: bytes):
    return d.decode(linktype, frame, 0, len(frame))


def check(pkt, payload=PAYLOAD, sport=40000, dport=443, proto=d.TCP):
    assert pkt is not None and pkt is not d.MALFORMED
    p, src, dst, s, dp, flags, seq, buf, poff, pend, encap = pkt
    assert (p, s, dp) == (proto, sport, dport)
    assert buf[poff:pend] == payload
    return pkt


def test_ethernet_ipv4():
    pkt = check(run(d.LINKTYPE_ETHERNET, bytes(Ether() / IP4)))
    assert pkt[1] == bytes([10, 1, 0, 2]) and pkt[6] == 7 and pkt[5] == 0x18


def test_ethernet_padding_is_not_payload():
    small = IP(src=CLIENT, dst=SERVER) / UDP(sport=1, dport=2) / b"ab"
    frame = bytes(Ether() / small) + b"\x00" * 20  # Ethernet pads to 60 bytes
    check(run(d.LINKTYPE_ETHERNET, frame), payload=b"ab", sport=1, dport=2, proto=d.UDP)


@pytest.mark.parametrize("tags", [[Dot1Q(vlan=10)], [Dot1AD(vlan=100), Dot1Q(vlan=10)]])
def test_vlan_and_qinq(tags):
    frame = Ether()
    for t in tags:
        frame = frame / t
    check(run(d.LINKTYPE_ETHERNET, bytes(frame / IP4)))


def test_linux_sll_and_sll2():
    sll = struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", 0x0800) + bytes(IP4)
    check(run(d.LINKTYPE_LINUX_SLL, sll))
    sll2 = struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, b"\x02" * 8) + bytes(IP6)
    check(run(d.LINKTYPE_LINUX_SLL2, sll2))


@pytest.mark.parametrize("linktype", [d.LINKTYPE_RAW, d.LINKTYPE_RAW_BSD, d.LINKTYPE_IPV4, d.LINKTYPE_IPV6])
def test_raw_ip(linktype):
    packet = IP6 if linktype == d.LINKTYPE_IPV6 else IP4
    check(run(linktype, bytes(packet)))
    check(run(d.LINKTYPE_RAW, bytes(IP6)))


@pytest.mark.parametrize("order", ["<", ">"])
def test_bsd_null_in_either_byte_order(order):
    check(run(d.LINKTYPE_NULL, struct.pack(order + "I", 2) + bytes(IP4)))
    check(run(d.LINKTYPE_NULL, struct.pack(order + "I", 30) + bytes(IP6)))


def test_openbsd_loop_is_network_order():
    check(run(d.LINKTYPE_LOOP, struct.pack("!I", 2) + bytes(IP4)))


def test_ipv6_extension_headers_are_skipped():
    pkt = IPv6(src="fd00::2", dst="fd00::1") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting()
    pkt = pkt / TCP(sport=40000, dport=443, flags="PA") / PAYLOAD
    check(run(d.LINKTYPE_RAW, bytes(pkt)))


def test_encapsulations_keep_outer_layers():
    inner = bytes(IP4)
    cases = {
        "ipip": IP(src="192.0.2.1", dst="192.0.2.2", proto=4) / inner,
        "6in4": IP(src="192.0.2.1", dst="192.0.2.2", proto=41) / bytes(IP6),
        "gre": IP(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=0x0800) / inner,
        "vxlan": IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=5555, dport=4789) / VXLAN(vni=42) / Ether() / IP4,
        "mpls": None,
        "pppoe": None,
    }
    for layer, outer in cases.items():
        if outer is None:
            continue
        pkt = check(run(d.LINKTYPE_RAW, bytes(outer)))
        assert pkt[10][-1] == layer
    mpls = Ether(type=0x8847) / MPLS(label=100, s=1) / IP4
    assert check(run(d.LINKTYPE_ETHERNET, bytes(mpls)))[10] == ("mpls",)
    pppoe = Ether() / PPPoE(sessionid=1) / PPP(proto=0x0021) / IP4
    assert check(run(d.LINKTYPE_ETHERNET, bytes(pppoe)))[10] == ("pppoe",)
    check(run(d.LINKTYPE_PPP, bytes(PPP(proto=0x0021) / IP4)))
    check(run(d.LINKTYPE_C_HDLC, b"\x0f\x00\x08\x00" + bytes(IP4)))


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00" * 13,
        bytes(Ether() / IP4)[:20],  # cut inside the IP header
        bytes(Ether(type=0x0800)) + b"\x45" + b"\x00" * 10,
        bytes(Ether(type=0x0800)) + b"\x4f" + bytes(IP4)[1:],  # IHL 15 beyond a short packet
    ],
)
def test_malformed_frames_are_flagged_not_raised(frame):
    assert run(d.LINKTYPE_ETHERNET, frame) is d.MALFORMED


def test_non_ip_is_none():
    arp = bytes(Ether(type=0x0806)) + b"\x00" * 28
    assert run(d.LINKTYPE_ETHERNET, arp) is None
    assert run(999, b"\x00" * 40) is None


@pytest.mark.parametrize("v6", [False, True])
def test_ip_fragments_reassemble(v6):
    data = bytes(range(256)) * 12
    if v6:
        whole = IPv6(src="fd00::2", dst="fd00::1") / IPv6ExtHdrFragment() / UDP(sport=5000, dport=53) / data
        from scapy.layers.inet6 import fragment6

        frags = [bytes(f) for f in fragment6(whole, 600)]
    else:
        whole = IP(src=CLIENT, dst=SERVER, id=77) / UDP(sport=5000, dport=53) / data
        frags = [bytes(f) for f in fragment(whole, fragsize=600)]
    assert len(frags) > 3
    defrag = Defragmenter()
    out = None
    for i, raw in enumerate(reversed(frags)):  # out of order on purpose
        f = run(d.LINKTYPE_RAW, raw)
        assert f[0] == d.FRAGMENT
        _, src, dst, key, proto, offset, more, buf, doff, dend, encap = f
        out = defrag.add(key, offset, more, buf[doff:dend], float(i))
    assert out is not None
    pkt = d.decode_ip_payload(d.UDP, src, dst, out, 0, len(out), None)
    check(pkt, payload=data, sport=5000, dport=53, proto=d.UDP)
    assert not defrag.pending


def test_fragment_table_is_bounded():
    defrag = Defragmenter(max_datagrams=8, timeout=1.0)
    for i in range(100):
        assert defrag.add((4, b"a", b"b", i, 17), 0, 1, b"x" * 8, float(i)) is None
    assert len(defrag.pending) <= 8
    assert defrag.dropped >= 92
