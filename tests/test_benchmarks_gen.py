"""The benchmark capture generator: deterministic, valid pcap, truth lists every flow."""

from __future__ import annotations

import csv
import importlib.util
import socket
import sys
from pathlib import Path

import dpkt
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and gen_flood look it up by name
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def gen():
    return _load("gen_capture")


def _ip(b: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(b) == 16 else socket.AF_INET, b)


def _flows_in(path: Path) -> tuple[int, set, dict]:
    """Packets, bidirectional 5-tuples, and client->server tuples of the SYNs."""
    n = 0
    keys = set()
    payload_starts = {}
    with open(path, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            n += 1
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            assert isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6)
            l4 = ip.data
            if isinstance(ip, dpkt.ip.IP):
                assert ip.len == len(buf) - 14
                assert dpkt.in_cksum(buf[14:34]) == 0  # header checksum is right
            else:
                assert ip.plen == len(buf) - 54
            proto = "tcp" if isinstance(l4, dpkt.tcp.TCP) else "udp"
            a, b = (_ip(ip.src), l4.sport), (_ip(ip.dst), l4.dport)
            keys.add((proto, *min(a, b), *max(a, b)))
            if proto == "tcp" and l4.data and (proto, a, b) not in payload_starts:
                payload_starts[(proto, a, b)] = bytes(l4.data[:4])
    return n, keys, payload_starts


def test_deterministic_valid_and_truth_complete(gen, tmp_path):
    p1, p2 = tmp_path / "a.pcap", tmp_path / "b.pcap"
    t1, t2 = tmp_path / "a.csv", tmp_path / "b.csv"
    s1 = gen.generate(str(p1), 2000, 100, seed=7, truth=str(t1))
    gen.generate(str(p2), 2000, 100, seed=7, truth=str(t2))
    assert p1.read_bytes() == p2.read_bytes()
    assert t1.read_text() == t2.read_text()
    gen.generate(str(p2), 2000, 100, seed=8)
    assert p1.read_bytes() != p2.read_bytes()

    n, keys, starts = _flows_in(p1)
    assert n == 2000 == s1["packets"]
    rows = list(csv.DictReader(t1.open()))
    truth = set()
    for r in rows:
        a, b = (r["client_ip"], int(r["client_port"])), (r["server_ip"], int(r["server_port"]))
        truth.add((r["transport"], *min(a, b), *max(a, b)))
    assert truth == keys  # every flow in the capture is listed, and nothing else
    assert sum(int(r["packets"]) for r in rows) == n
    protos = {r["protocol"] for r in rows}
    assert {"tls", "http", "ssh", "smtp", "dns"} <= protos
    # the first client bytes match the protocol the truth names
    first = {"tls": b"\x16\x03\x01", "http": b"GET ", "ssh": b"SSH-"}
    for r in rows:
        key = ("tcp", (r["client_ip"], int(r["client_port"])), (r["server_ip"], int(r["server_port"])))
        if r["protocol"] in first and key in starts:
            assert starts[key].startswith(first[r["protocol"]]), r
    misuse = [r for r in rows if r["findings"]]
    assert all((r["protocol"], r["server_port"]) in {("ssh", "443"), ("tls", "22")} for r in misuse)


def test_tcp_sequence_numbers_follow_the_stream(gen, tmp_path):
    p = tmp_path / "c.pcap"
    gen.generate(str(p), 1500, 20, seed=3)
    nxt = {}
    with open(p, "rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(buf).data
            tcp = ip.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                continue
            key = (bytes(ip.src), tcp.sport, bytes(ip.dst), tcp.dport)
            if key in nxt:
                assert tcp.seq == nxt[key], key
            step = len(tcp.data) + (1 if tcp.flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN) else 0)
            nxt[key] = (tcp.seq + step) & 0xFFFFFFFF


def test_flood_generators(gen, tmp_path):
    flood = _load("gen_flood")
    p = tmp_path / "syn.pcap"
    n = flood.syn_flood(str(p), 500, seed=1, answered=0.0)
    with open(p, "rb") as fh:
        pk = list(dpkt.pcap.Reader(fh))
    assert n == len(pk) == 500
    keys = {(bytes(ip.src), ip.data.sport) for ip in (dpkt.ethernet.Ethernet(b).data for _, b in pk)}
    assert len(keys) == 500
    p = tmp_path / "ooo.pcap"
    n = flood.ooo_flood(str(p), 2, 600, seed=1, window=16, dup=0.05, hole=0.2)
    with open(p, "rb") as fh:
        assert sum(1 for _ in dpkt.pcap.Reader(fh)) == n
