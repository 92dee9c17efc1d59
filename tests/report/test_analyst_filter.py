"""Issue 18 item 8: a BPF capture filter on files (`analyze -f EXPR`, `portwatch.analyze(bpf=)`,
`monitor -r FILE --bpf`), run by the core on every frame before decode with libpcap's semantics.

libpcap is the oracle: for each expression the frames the core keeps are exactly those `tcpdump -r
FILE -w OUT EXPR` writes, on every shipped capture, on crafted VLAN/IPv6 frames, on a capture cut
by a snap length (loads past the captured bytes reject, `len` is the wire length) and on pcapng,
one link type per interface. A filtered analysis gives the records an analysis of tcpdump's
output gives, except that flow ids keep counting every packet of the original file.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import dpkt
import pytest
from _kit import CAPTURES, SERVICES, run
from pcapkit import write_pcap, write_pcapng
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import ARP, Dot1Q
from scapy.layers.l2 import Ether as L2

import portwatch
from portwatch import _core, bpf
from portwatch.pipeline import Config, Setup, analyze_path

pytestmark = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is the oracle")

EXPRESSIONS = [
    "host 10.77.0.1",
    "port 53",
    "tcp port 443",
    "vlan",
    "vlan and tcp port 80",
    "ip6",
    "tcp[tcpflags] & tcp-syn != 0",
    "udp[100:4] = 0 or tcp[60] > 0",  # reads past the end of most packets
    "greater 200",  # `len`: the wire length, not the captured one
    "not arp and less 80",
]
PCAPS = sorted(CAPTURES.glob("*.pcap"))


def _frames(path: Path) -> list[tuple[float, bytes]]:
    with path.open("rb") as f:
        ng = f.read(4) == b"\x0a\x0d\x0d\x0a"
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if ng else dpkt.pcap.Reader(f)
        return [(float(ts), bytes(buf)) for ts, buf in reader]


def tcpdump_kept(path: Path, expr: str, tmp: Path) -> list[int]:
    """Indices of the frames of `path` that libpcap's filter keeps (tcpdump -w keeps their order)."""
    out = tmp / "kept.pcap"
    done = subprocess.run(["tcpdump", "-r", str(path), "-w", str(out), "--", expr], capture_output=True, text=True)
    if done.returncode != 0:
        # libpcap cannot compile the expression for this file's link type (`vlan` on NFLOG, any
        # filter on NFLOG): the core keeps none of its frames. A file tcpdump cannot read at all
        # would fail the comparison, since the core keeps its frames.
        assert "reading from file" in done.stderr, done.stderr
        return []
    kept = _frames(out)
    frames = _frames(path)
    idx, j = [], 0
    for i, fr in enumerate(frames):
        if j < len(kept) and kept[j][1] == fr[1] and abs(kept[j][0] - fr[0]) < 1e-5:
            idx.append(i)
            j += 1
    assert j == len(kept), "tcpdump's output is not a subsequence of its input"
    return idx


@pytest.fixture(scope="module")
def programs():
    return {expr: bpf.compile_for_capture(expr) for expr in EXPRESSIONS}


def write_truncated(path: Path, frames: list[tuple[float, bytes]], snaplen: int) -> Path:
    """A classic pcap whose records are cut to `snaplen` bytes, their original length kept."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)]
    for ts, data in frames:
        sec = int(ts)
        cut = data[:snaplen]
        out.append(struct.pack("<IIII", sec, round((ts - sec) * 1e6), len(cut), len(data)) + cut)
    path.write_bytes(b"".join(out))
    return path


def crafted_frames() -> list[bytes]:
    """Ethernet frames the shipped captures lack: VLAN tags, IPv6, ARP, ICMP, tiny and odd frames."""
    a, b, a6, b6 = "10.77.0.2", "10.77.0.1", "2001:db8::2", "2001:db8::1"
    macs = {"src": "02:00:00:00:00:02", "dst": "02:00:00:00:00:01"}

    def Ether() -> L2:  # fixed addresses: scapy would look them up (and warn)
        return L2(**macs)

    pkts = [
        Ether() / IP(src=a, dst=b) / TCP(sport=40000, dport=80, flags="S"),
        Ether() / Dot1Q(vlan=10) / IP(src=a, dst=b) / TCP(sport=40001, dport=80, flags="S"),
        Ether() / Dot1Q(vlan=10) / IP(src=a, dst=b) / TCP(sport=40001, dport=80, flags="PA") / (b"GET / \r\n" * 20),
        Ether() / Dot1Q(vlan=20) / Dot1Q(vlan=30) / IP(src=a, dst="10.0.0.9") / UDP(dport=53) / (b"\0" * 99),
        Ether() / Dot1Q(vlan=20) / IPv6(src=a6, dst=b6) / TCP(sport=40002, dport=443, flags="S"),
        Ether() / IPv6(src=a6, dst=b6) / TCP(sport=40003, dport=443, flags="SA"),
        Ether() / IPv6(src=a6, dst=b6) / UDP(sport=5353, dport=53) / (b"\1" * 300),
        Ether() / ARP(psrc=a, pdst=b),
        Ether() / IP(src=a, dst=b) / ICMP(),
        Ether() / IP(src=a, dst=b, flags="MF", frag=0) / UDP(sport=1, dport=53) / (b"\0" * 64),
        Ether() / IP(src=a, dst=b, frag=100) / (b"\0" * 64),  # a later fragment: no ports to read
    ]
    frames = [bytes(p) for p in pkts]
    frames.append(frames[0][:20])  # shorter than an IPv4 header
    frames.append(b"\xff" * 6)  # shorter than an Ethernet header
    return frames


@pytest.fixture(scope="module")
def extra_captures(tmp_path_factory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("bpf")
    crafted = [(1_790_000_000.0 + i / 10, f) for i, f in enumerate(crafted_frames())]
    dpkt_path = tmp / "crafted.pcap"
    with dpkt_path.open("wb") as f:
        w = dpkt.pcap.Writer(f, snaplen=65535)
        for ts, fr in crafted:
            w.writepkt(fr, ts=ts)
    real = _frames(CAPTURES / "http-on-443.pcap") + _frames(CAPTURES / "dns-53.pcap")
    short = write_truncated(tmp / "snap64.pcap", real, 64)
    ng = write_pcapng(tmp / "crafted.pcapng", [1], [(0, ts, fr) for ts, fr in crafted + real[:40]])
    return [dpkt_path, short, ng]


def test_the_core_keeps_what_libpcap_keeps(programs, extra_captures, tmp_path):
    checked = 0
    for path in [*PCAPS, *extra_captures]:
        for expr in EXPRESSIONS:
            want = tcpdump_kept(path, expr, tmp_path)
            got = _core.filter_capture(str(path), programs[expr])
            assert got == want, f"{path.name}: {expr!r}"
            checked += 1
    assert checked == (len(PCAPS) + 3) * len(EXPRESSIONS)


def test_nontrivial_oracle_cases(programs, extra_captures, tmp_path):
    """The oracle comparison above is not vacuous: each expression keeps some frames and drops some."""
    crafted, short, _ = extra_captures
    for expr in EXPRESSIONS:
        kept = sum(len(tcpdump_kept(p, expr, tmp_path)) for p in [crafted, short, *PCAPS])
        assert kept > 0, expr
    # In the cut capture every frame has 64 bytes captured: `greater 200` keeps frames by their
    # wire length, and port loads of TCP reach past 64 bytes only for options-laden headers.
    assert tcpdump_kept(short, "greater 200", tmp_path)
    assert _core.filter_capture(str(short), programs["greater 200"]) == tcpdump_kept(short, "greater 200", tmp_path)


def test_each_interface_of_a_pcapng_gets_its_own_link_type(tmp_path):
    """Ethernet and raw-IP interfaces in one pcapng (libpcap cannot read it): each frame is judged by
    the program of its own interface's link type, as tcpdump judges each link type's own file."""
    eth = [(1_790_000_000.0 + i, f) for i, f in enumerate(crafted_frames())]
    raw_pkts = [IP(src="10.77.0.2", dst="10.77.0.1") / TCP(sport=41000 + i, dport=(443, 80)[i % 2], flags="S")
                for i in range(6)] + [IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=1, dport=53)]
    raw = [(1_790_000_100.0 + i, bytes(p)) for i, p in enumerate(raw_pkts)]
    eth_file = write_pcap(tmp_path / "eth.pcap", eth, linktype=1)
    raw_file = write_pcap(tmp_path / "raw.pcap", raw, linktype=101)
    # (interface, index in its own file), interleaved: a raw frame after every second Ethernet one.
    order = [(0, i) for i in range(len(eth))]
    for k in range(len(raw)):
        order.insert(3 * k + 2, (1, k))
    files = (eth, raw)
    ng = write_pcapng(tmp_path / "mixed.pcapng", [1, 101], [(ifid, *files[ifid][i]) for ifid, i in order])
    for expr in ("tcp port 443", "ip6", "host 10.77.0.1 and tcp[tcpflags] & tcp-syn != 0", "greater 60", "vlan"):
        keep = (set(tcpdump_kept(eth_file, expr, tmp_path)),
                set() if expr == "vlan" else set(tcpdump_kept(raw_file, expr, tmp_path)))
        want = [n for n, (ifid, i) in enumerate(order) if i in keep[ifid]]
        assert want, expr
        assert _core.filter_capture(str(ng), bpf.compile_for_capture(expr)) == want, expr


def test_vlan_does_not_apply_to_raw_ip():
    progs = bpf.compile_for_capture("vlan")
    assert progs[1] is not None and progs[101] is None and progs[12] is None


@functools.cache
def _setup(expr: str | None) -> tuple[Config, Setup]:
    config = Config(services_path=SERVICES[1], bpf=expr)
    return config, Setup.load(config)


def _records(path: Path, expr: str | None, workers: int = 1) -> tuple[list[dict], object]:
    config, setup = _setup(expr)
    out: list[dict] = []
    stats = analyze_path(str(path), setup, config, lambda r: out.append(r.as_dict()), workers=workers)
    return out, stats


def _without_flow_ids(rec: dict) -> dict:
    """A record without the flow ids, its own and its control flow's (an announced RTP flow's
    `meta.control_flow_id`, which its evidence names too): they number the packets of the file
    the analysis read."""
    out = {k: v for k, v in rec.items() if k != "flow_id"}
    meta = {k: v for k, v in rec["meta"].items() if k != "control_flow_id"}
    if isinstance(meta.get("evidence"), str):
        meta["evidence"] = re.sub(r" flow \d+ ", " flow N ", meta["evidence"])
    out["meta"] = meta
    return out


@pytest.mark.parametrize("expr", ["tcp port 443", "host 10.77.0.2 and not port 22", "udp", "greater 100"])
def test_a_filtered_analysis_is_the_analysis_of_tcpdumps_output(expr, tmp_path):
    """Same records and counters as analysing what tcpdump -w keeps; only the flow ids differ, as
    they number the packets of the original file."""
    for path in PCAPS:
        out = tmp_path / path.name
        done = subprocess.run(["tcpdump", "-r", str(path), "-w", str(out), "--", expr], capture_output=True)
        got, stats = _records(path, expr)
        if done.returncode != 0:  # libpcap cannot filter this link type (NFLOG): nothing is kept
            assert got == [] and stats.packets == 0 and stats.filtered == len(_frames(path)), path.name
            continue
        want, want_stats = _records(out, None)
        assert [_without_flow_ids(r) for r in got] == [_without_flow_ids(r) for r in want], f"{path.name}: {expr}"
        assert stats.packets == want_stats.packets and stats.bytes == want_stats.bytes
        assert stats.packets + stats.filtered == len(_frames(path))
        # The flow ids are those the unfiltered analysis gives the same flows.
        whole = {(r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["ts_start"]): r["flow_id"]
                 for r in _records(path, None)[0]}
        for r in got:
            key = (r["src_ip"], r["src_port"], r["dst_ip"], r["dst_port"], r["ts_start"])
            if key in whole:
                assert r["flow_id"] == whole[key], f"{path.name}: {expr}: {key}"


def test_flow_ids_count_every_packet_of_the_file():
    recs, stats = _records(CAPTURES / "https-443.pcap", "tcp port 34068")
    whole, _ = _records(CAPTURES / "https-443.pcap", None)
    assert [r["src_port"] for r in recs] == [34068]
    assert recs[0]["flow_id"] == next(r["flow_id"] for r in whole if r["src_port"] == 34068) > 1
    assert stats.filtered > 0 and stats.malformed == 0


def test_eve_of_the_filtered_captures_validates_and_holds_only_port_443():
    from test_analyst_eve import VALIDATOR

    res = run("analyze", *SERVICES, "-f", "tcp port 443", *map(str, PCAPS), "--format", "eve")
    assert res.exit_code in (0, 1), res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert {e["event_type"] for e in events} == {"alert", "flow"}
    for e in events:
        VALIDATOR.validate(e)
        assert e["proto"] == "TCP" and 443 in (e["src_port"], e["dest_port"]), e
    flows = [e for e in events if e["event_type"] == "flow"]
    assert len(flows) == 6


@pytest.mark.parametrize("fmt", ["jsonl", "eve"])
def test_workers_give_the_same_records_with_a_filter(fmt):
    outs = []
    for workers in ("1", "2"):
        res = run("analyze", *SERVICES, "-f", "tcp or udp port 53", "--workers", workers, "--format", fmt,
                  str(CAPTURES))
        assert res.exit_code in (0, 1), res.stderr
        outs.append(res.stdout)
    assert outs[0] == outs[1] and outs[0].count("\n") > 10


def test_read_option_directory_and_console_counter():
    res = run("analyze", *SERVICES, "-f", "tcp port 443", "-r", str(CAPTURES / "https-443.pcap"), str(CAPTURES))
    assert res.exit_code in (0, 1), res.stderr
    assert "left out by the filter" in res.stdout


def test_api_analyze_takes_a_filter():
    a = portwatch.analyze(CAPTURES, bpf="tcp port 443", services=SERVICES[1], progress=False)
    assert len(a.flows) == 6 and set(a.flows["dst_port"]) == {443}
    assert a.stats.filtered > 0
    with pytest.raises(bpf.BpfError, match="bad filter"):
        portwatch.analyze(CAPTURES, bpf="tcp port", services=SERVICES[1], progress=False)


@pytest.mark.parametrize("expr", ["tcp port", "host 999.1.1.1", "nosuchkeyword", "  "])
def test_a_bad_expression_is_one_line_and_exit_2(expr):
    res = run("analyze", *SERVICES, "-f", expr, str(CAPTURES / "ssh-22.pcap"))
    assert res.exit_code == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("portwatch: error: "), res.stderr


def test_a_filter_libpcap_takes_too_long_on_is_one_bounded_error(monkeypatch):
    """libpcap's optimizer is superlinear (1,000 `or` clauses: ~13 s a link type): the compiles share one
    deadline, so a run gives up after it, not after it once per link type, and quotes the expression cut."""
    import time

    monkeypatch.setattr(bpf, "COMPILE_TIMEOUT", 1.0)
    expr = " or ".join(f"tcp port {p}" for p in range(1000))
    start = time.monotonic()
    with pytest.raises(bpf.BpfError, match=r"took over 1 s") as err:
        bpf.compile_for_capture(expr)
    assert time.monotonic() - start < 5  # one deadline for the nine link types' processes
    assert len(str(err.value)) < 250 and f"({len(expr)} characters)" in str(err.value)


def test_no_compiler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(bpf, "find_tcpdump", lambda: None)
    monkeypatch.setitem(sys.modules, "scapy.arch.common", None)  # import fails
    with pytest.raises(bpf.BpfError, match="neither tcpdump nor scapy"):
        bpf.compile_for_capture("tcp")
    res = run("analyze", *SERVICES, "-f", "tcp", str(CAPTURES / "ssh-22.pcap"))
    assert res.exit_code == 2 and "neither tcpdump nor scapy" in res.stderr


def test_scapy_compiles_when_tcpdump_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(bpf, "find_tcpdump", lambda: None)
    try:
        progs = bpf.compile_for_capture("tcp port 443")
    except bpf.BpfError as exc:  # scapy without a libpcap to load
        pytest.skip(str(exc))
    path = CAPTURES / "https-443.pcap"
    assert _core.filter_capture(str(path), progs) == tcpdump_kept(path, "tcp port 443", tmp_path)


def test_the_core_refuses_unsound_programs():
    with pytest.raises(ValueError, match="jump"):
        _core.filter_capture(str(PCAPS[0]), {1: [(0x05, 0, 0, 5), (0x06, 0, 0, 1)]})
    with pytest.raises(ValueError, match="division"):
        _core.filter_capture(str(PCAPS[0]), {1: [(0x34, 0, 0, 0), (0x06, 0, 0, 1)]})
    with pytest.raises(ValueError):
        _core.filter_capture(str(PCAPS[0]), {1: [(0x06, 0, 0, 1)] * 4097})


def test_null_link_type_takes_every_bsd_inet6_value(tmp_path):
    """A BSD loopback capture (link type NULL) says IPv6 as 24, 28 or 30 in the writer's byte order:
    compiled for a savefile, as tcpdump -r compiles, every one of them is IPv6."""
    ip6 = bytes(IPv6(src="::1", dst="::1") / UDP(sport=5000, dport=1194) / b"x")
    ip4 = bytes(IP(src="127.0.0.1", dst="127.0.0.1") / UDP(sport=5000, dport=1194) / b"x")
    frames = [struct.pack("<I", af) + pkt for af, pkt in ((30, ip6), (24, ip6), (28, ip6), (10, ip6), (2, ip4))]
    path = write_pcap(tmp_path / "null.pcap", [(1_790_000_000.0 + i, f) for i, f in enumerate(frames)], linktype=0)
    for expr in ("ip6", "udp", "ip"):
        want = tcpdump_kept(path, expr, tmp_path)
        assert _core.filter_capture(str(path), bpf.compile_for_capture(expr)) == want, expr
    assert tcpdump_kept(path, "ip6", tmp_path) == [0, 1, 2]


def test_every_link_type_the_core_decodes_has_a_compiler_name():
    """A link type missing here would let every frame of it through the filter unjudged."""
    source = (Path(__file__).parents[2] / "core/src/decode/mod.rs").read_text()
    listed = source.split("SUPPORTED_LINKTYPES: &[u32] = &[", 1)[1].split("]", 1)[0]
    supported = {int(n) for n in listed.replace("\n", " ").split(",") if n.strip()}
    assert supported == set(bpf.LINK_NAMES)


def test_a_link_type_libpcap_cannot_filter_keeps_nothing(programs):
    """libpcap has no filter for NFLOG (tcpdump refuses): its frames are left out, not let through."""
    nflog = CAPTURES / "nflog-http-dns.pcap"
    assert _core.filter_capture(str(nflog), programs["host 10.77.0.1"]) == []
