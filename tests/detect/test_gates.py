"""Candidate gates: the engine skips a signature only when none of its matches could hold.

A probe may declare `first_bytes`, the bytes its input must start with; the engine then skips it
for units that start otherwise. A wrong declaration would silently lose a protocol, so each one
is checked against the probe itself, and whole captures must classify the same with and without
the gates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch.capture.sources import CaptureSource
from portwatch.detect import engine as engine_module
from portwatch.detect.probes import PROBES, get_probe
from portwatch.model import ProbeStatus
from portwatch.pipeline import Analyzer, Config, Setup
from portwatch.services import fallback_path

ROOT = Path(__file__).resolve().parent.parent.parent
CONFIG = Config(services_path=str(fallback_path()))
DECLARED = sorted(name for name in PROBES if getattr(get_probe(name), "first_bytes", None) is not None)


def test_some_probes_declare_first_bytes():
    assert {"smb", "stun", "dtls", "netbios_ssn"} <= set(DECLARED)


@pytest.mark.parametrize("name", DECLARED)
@settings(max_examples=300, deadline=None)
@given(data=st.binary(min_size=1, max_size=200), from_client=st.booleans())
def test_a_probe_never_matches_outside_its_first_bytes(name, data, from_client):
    fn = get_probe(name)
    allowed = fn.first_bytes
    outside = [b for b in range(256) if b not in allowed]
    unit = bytes([outside[data[0] % len(outside)]]) + data[1:]
    result = fn([unit], from_client) if getattr(fn, "units", False) else fn(unit, from_client)
    assert result.status is not ProbeStatus.MATCH


def _netbios_name(name: bytes) -> bytes:
    padded = name.ljust(16, b" ")
    return b"\x20" + bytes(c for byte in padded for c in (0x41 + (byte >> 4), 0x41 + (byte & 0xF))) + b"\x00"


REAL = ROOT / "tests" / "data" / "real"
PROBE_DATA = ROOT / "tests" / "probes" / "data"
POSITIVES = [
    ("smb", (REAL / "smb-negotiate.bin").read_bytes(), True),
    ("dtls", (PROBE_DATA / "dtls12_client_hello.bin").read_bytes(), True),
    ("dtls", (PROBE_DATA / "dtls12_server_reply.bin").read_bytes(), False),
    ("stun", bytes.fromhex("000100002112a442") + bytes(range(12)), True),  # binding request
    ("stun", bytes.fromhex("0101000c2112a442") + bytes(range(12)) + bytes.fromhex("0020000800011234a1b2c3d4"), False),
    ("netbios_ssn", b"\x81\x00\x00\x44" + _netbios_name(b"SERVER") + _netbios_name(b"CLIENT"), True),
    ("netbios_ssn", b"\x82\x00\x00\x00", False),
    ("quic", (PROBE_DATA / "rfc9001_a2_client_initial.bin").read_bytes(), True),
    ("quic_units", (PROBE_DATA / "rfc9369_a2_client_initial.bin").read_bytes(), True),
    ("utp_units", bytes.fromhex("4100") + bytes(range(2, 20)), True),  # uTP SYN (BEP 29)
]


@pytest.mark.parametrize(("name", "sample", "from_client"), POSITIVES)
def test_first_bytes_cover_every_first_byte_a_probe_accepts(name, sample, from_client):
    # Too narrow a declaration would lose real traffic: try every first byte on a real message.
    probe = get_probe(name)

    def fn(unit: bytes, from_client: bool):
        return probe([unit], from_client) if getattr(probe, "units", False) else probe(unit, from_client)

    assert fn(sample, from_client).status is ProbeStatus.MATCH
    accepted = {b for b in range(256) if fn(bytes([b]) + sample[1:], from_client).status is ProbeStatus.MATCH}
    assert accepted <= probe.first_bytes, sorted(accepted - probe.first_bytes)


def _records(setup: Setup) -> list[tuple]:
    out = []
    paths = sorted((ROOT / "captures").glob("*.pcap"))
    for path in paths:
        recs: list = []
        with CaptureSource(str(path)) as src:
            a = Analyzer(CONFIG, on_record=recs.append, setup=setup)
            a.run(src)
            a.close()
        out += [(path.name, r.src_port, r.dst_port, r.protocol, r.confidence, r.meta.get("evidence")) for r in recs]
    return out


def test_gates_change_no_verdict(monkeypatch):
    gated = _records(Setup.load(CONFIG))
    monkeypatch.setattr(engine_module, "_gate", lambda sig, transport, probes: None)
    ungated = _records(Setup.load(CONFIG))
    assert gated == ungated and len(gated) > 50


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (rb"^[\x00-\xff]{2}\x00\x01\x1a\x2b\x3c\x4d", (2, {0x00})),  # PPTP: length, then message type
        (rb"^[\x00-\xff][\x00-\xff]{3}(?:ab|cd)", (4, {ord("a"), ord("c")})),
        (rb"^[\x00-\xff]{2}(?:x)?y", (2, {ord("x"), ord("y")})),
        (rb"^[\x00-\xff]{2,6}\x06", None),  # variable length: no fixed offset
        (rb"[\x00-\xff]{2}x", None),  # unanchored
        (rb"^abc", None),  # the first byte is known already: regex_first_bytes's job
        (rb"^[\x00-\xff]{2}(?:x)*", None),  # may match empty there
    ],
)
def test_regex_byte_at(pattern, expected):
    import re

    from portwatch.detect.prefilter import regex_byte_at

    got = regex_byte_at(re.compile(pattern))
    assert (None if got is None else (got[0], set(got[1]))) == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=12))
def test_regex_byte_at_is_a_necessary_condition(data):
    import re

    from portwatch.detect.prefilter import regex_byte_at

    for pattern in (rb"^[\x00-\xff]{2}\x00\x01\x1a", rb"^[\x00-\xff]{3}[ab]c", rb"^[\x00-\xff]{2}(?:x)?y"):
        regex = re.compile(pattern)
        off, allowed = regex_byte_at(regex)
        if regex.search(data) is not None:
            assert len(data) > off and data[off] in allowed



ENGINE = Setup.load(CONFIG).engine
# Bytes that gates name (first bytes, bytes at later offsets), so that draws hit gates, not only miss them.
_GATE_BYTES = sorted({b for cands in ENGINE._candidates.values() for _, g, _, _ in cands if g is not None
                      for b in (*g.first, *(x for _, allowed in g.at for x in allowed))})
_BYTE = st.sampled_from(_GATE_BYTES) | st.integers(0, 255)
_UNITS = st.lists(st.lists(_BYTE, max_size=12).map(bytes), max_size=3)
_PORTS = st.frozensets(st.sampled_from(sorted({p for cands in ENGINE._candidates.values() for _, g, _, _ in cands
                                               if g is not None for p in g.ports} | {443, 40000})),
                       min_size=1, max_size=2)


def _admits(gate, firsts, client, server, ports) -> bool:
    """A gate's definition, written out: a possible first byte, a port, or a byte at its offset."""
    if gate.first & firsts or gate.ports & ports:
        return True
    return any(len(u) > off and u[off] in allowed for off, allowed in gate.at for u in (*client, *server))


@settings(max_examples=500, deadline=None)
@given(client=_UNITS, server=_UNITS, ports=_PORTS, transport=st.sampled_from(["tcp", "udp"]))
def test_admission_look_ups_agree_with_every_gate(client, server, ports, transport):
    # The bit set built from the look-up tables must be exactly the candidates whose gate admits.
    candidates = ENGINE._candidates[transport]
    firsts = {u[0] for u in client if u} | {u[0] for u in server if u}
    expected = {i for i, (_, gate, _, _) in enumerate(candidates)
                if gate is None or _admits(gate, firsts, client, server, ports)}
    mask = ENGINE._admission[transport].admitted(client, server, ports)
    assert {i for i in range(len(candidates)) if mask >> i & 1} == expected
