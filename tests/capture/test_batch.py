"""Counting settled flows a chunk at a time (portwatch.batch) must change nothing in the output.

Every case analyzes one capture twice, record by record and with the chunk counter forced on
(tiny chunks, so flows cross many chunk boundaries), and compares every flow record and counter.
The random captures aim at what could make the two differ: idle gaps that end flows, time going
backwards, a settled flow's packets arriving VLAN-tagged or as IP fragments, ports reused after
a close, RSTs, SYN floods filling the table.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import portwatch.batch as batch
from portwatch.capture import settled as settled_mod
from portwatch.capture.fast_path import key_words, keys_as_words
from portwatch.capture.settled import SettledFlows
from portwatch.capture.sources import CaptureSource
from portwatch.pipeline import Analyzer, Config, Setup
from portwatch.services import fallback_path
from tests.pcapkit import write_pcap, write_pcapng_mixed

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted(p for p in (ROOT / "captures").glob("*.pcap"))
BASE = Config(services_path=str(fallback_path()))


def run(path: Path, batched: bool, chunk: int = 4096, **config: object) -> tuple[list[dict], dict, bool]:
    cfg = dataclasses.replace(BASE, batch_min_bytes=0 if batched else 1 << 62, batch_chunk=chunk, **config)
    records: list[dict] = []
    with CaptureSource(path) as source:
        analyzer = Analyzer(cfg, on_record=lambda r: records.append(r.as_dict()), setup=_setup(), pcap_name="x")
        analyzer.run(analyzer.records_of(source))
        stats = analyzer.close()
        stats.error = source.stats.error
    return records, dataclasses.asdict(stats), analyzer.settled is not None


_SETUP: list[Setup] = []


def _setup() -> Setup:
    if not _SETUP:
        _SETUP.append(Setup.load(BASE))
    return _SETUP[0]


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "MIN_RECORDS", 1)
    monkeypatch.setattr(batch, "ADMIT_AT", 1)


def same_both_ways(path: Path, **config: object) -> list[dict]:
    plain = run(path, False, **config)
    for chunk in (1500, 4096, 1 << 20):
        counted = run(path, True, chunk, **config)
        assert counted[2], "the chunk counter did not run"
        assert counted[0] == plain[0], f"records differ with {chunk}-byte chunks"
        assert counted[1] == plain[1], f"counters differ with {chunk}-byte chunks"
    return plain[0]


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_real_captures_same_records(path: Path) -> None:
    same_both_ways(path)


# ---- the same through pcapng ----------------------------------------------------------------

_PCAPNG_VARIANTS = [
    {},
    {"big_endian": True, "nano_second_interface": True},
    {"obsolete_every": 7, "other_every": 11},
    {"simple_every": 13, "new_section_at": 40},  # a Simple Packet Block has no time: time goes back
]


def _frames(path: Path) -> list[tuple[float, bytes]]:
    with CaptureSource(path) as source:
        out = []
        for ts, linktype, buf, off, length in source:
            assert linktype == 1
            out.append((ts, bytes(buf[off : off + length])))
    return out


@pytest.mark.parametrize(("path", "variant"), [(p, i % len(_PCAPNG_VARIANTS)) for i, p in enumerate(CAPTURES)],
                         ids=lambda x: x.name if isinstance(x, Path) else str(x))
def test_real_captures_as_pcapng_same_records(tmp_path: Path, path: Path, variant: int) -> None:
    ng = write_pcapng_mixed(tmp_path / (path.stem + ".pcapng"), _frames(path), **_PCAPNG_VARIANTS[variant])
    same_both_ways(ng)


@pytest.mark.parametrize("path", CAPTURES[::4], ids=lambda p: p.name)
def test_pcap_and_pcapng_of_one_capture_give_the_same_records(tmp_path: Path, path: Path) -> None:
    # Timestamps included: a pcapng count of microseconds is split into seconds and fraction as a
    # classic pcap stores them, not multiplied out (which is off in the last place).
    ng = write_pcapng_mixed(tmp_path / (path.stem + ".pcapng"), _frames(path), obsolete_every=5)
    assert run(ng, False)[0] == run(path, False)[0]
    assert run(ng, True)[0] == run(path, True)[0]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(50, 700), variant=st.integers(0, len(_PCAPNG_VARIANTS) - 1))
def test_random_captures_as_pcapng_same_records(tmp_path: Path, seed: int, n: int, variant: int) -> None:
    path = write_pcapng_mixed(tmp_path / f"r{seed}.pcapng", random_capture(seed, n), **_PCAPNG_VARIANTS[variant])
    same_both_ways(path)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), cut=st.floats(0.05, 0.999), flip=st.integers(4, 2000))  # not the magic
@example(seed=0, cut=0.75, flip=5)  # a corrupt block length: its message once gave a buffer offset
def test_cut_or_corrupt_pcapng_same_records_and_error(tmp_path: Path, seed: int, cut: float, flip: int) -> None:
    # A file cut anywhere (inside a block header, a packet, a trailing length) or with one byte
    # changed: the flows so far and the same error message, both ways.
    path = write_pcapng_mixed(tmp_path / f"c{seed}.pcapng", random_capture(seed, 300), obsolete_every=9,
                              other_every=17)
    data = bytearray(path.read_bytes()[: int(len(path.read_bytes()) * cut)])
    if flip < len(data):
        data[flip] ^= 0x5A
    path.write_bytes(bytes(data))
    same_both_ways(path)


def test_pcapng_shards_same_records(mix: Path, tmp_path: Path) -> None:
    ng = write_pcapng_mixed(tmp_path / "mix.pcapng", _frames(mix), obsolete_every=50, other_every=97)
    flows = sum(len(same_both_ways(ng, shard_index=i, shard_count=2)) for i in range(2))
    assert flows == len(run(mix, False)[0])


def _gen_capture():
    name = "gen_capture"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "gen_capture.py")
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = mod
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return sys.modules[name]


@pytest.fixture(scope="module")
def mix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mix") / "mix.pcap"
    _gen_capture().generate(str(path), 20000, 300, seed=5)
    return path


def test_generated_mix_same_records_and_most_packets_counted(mix: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = mix
    counted = []
    original = SettledFlows.count

    def spy(self: SettledFlows, vals: np.ndarray, ts: np.ndarray, payload: np.ndarray) -> None:
        counted.append(len(vals))
        original(self, vals, ts, payload)

    monkeypatch.setattr(SettledFlows, "count", spy)
    records = same_both_ways(path)
    assert len(records) > 300
    # The point of it all: most packets of a realistic mix never reach the per-packet loop.
    assert sum(counted) / 3 > 0.6 * 20000


# ---- random captures aimed at the corner cases ---------------------------------------------

def _frame(flow: dict, from_client: bool, flags: int, payload: bytes, vlan: bool) -> bytes:
    c, s = flow["client"], flow["server"]
    if from_client:
        src, dst, sport, dport = c, s, flow["sport"], flow["dport"]
    else:
        src, dst, sport, dport = s, c, flow["dport"], flow["sport"]
    if flow["proto"] == 6:
        seq = flow["seq"][from_client]
        flow["seq"][from_client] = (seq + len(payload) + (1 if flags & 3 else 0)) & 0xFFFFFFFF
        l4 = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    else:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if len(src) == 4:
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, flow["proto"], 0, src, dst) + l4
        ethertype = 0x0800
    else:
        ip = struct.pack("!IHBB16s16s", 6 << 28, len(l4), flow["proto"], 64, src, dst) + l4
        ethertype = 0x86DD
    mac = b"\x02" * 6 + b"\x04" * 6
    if vlan:
        return mac + struct.pack("!HHH", 0x8100, 7, ethertype) + ip
    return mac + struct.pack("!H", ethertype) + ip


def _fragments(frame: bytes) -> list[bytes]:
    """An IPv4 frame cut into two fragments (the first carries 8 bytes of the transport header)."""
    eth, ip = frame[:14], frame[14:]
    body = ip[20:]
    head = bytearray(ip[:20])
    first, second = body[:8], body[8:]
    h1 = bytearray(head)
    struct.pack_into("!H", h1, 2, 28)
    struct.pack_into("!H", h1, 6, 0x2000)  # more fragments
    h2 = bytearray(head)
    struct.pack_into("!H", h2, 2, 20 + len(second))
    struct.pack_into("!H", h2, 6, 1)  # at 8 bytes
    return [eth + bytes(h1) + first, eth + bytes(h2) + second]


def random_capture(seed: int, n_packets: int) -> list[tuple[float, bytes]]:
    rng = random.Random(seed)
    flows = []
    for i in range(rng.randint(2, 12)):
        v6 = rng.random() < 0.3
        prefix = b"\x20\x01\x0d\xb8" + bytes(11) if v6 else b"\x0a\x00\x00"
        flows.append({
            "proto": rng.choice((6, 6, 17)), "client": prefix + bytes([1 + i]), "server": prefix + b"\xc8",
            "sport": 40000 + rng.randint(0, 3), "dport": rng.choice((443, 53, 8080, 22)), "seq": {True: 1, False: 9},
        })
    ts = 1_700_000_000.0
    out: list[tuple[float, bytes]] = []
    while len(out) < n_packets:
        r = rng.random()
        if r < 0.01:
            ts += rng.choice((11.0, 61.0, 301.0, 2.5))  # past the DNS, UDP, TCP idle timeouts; past linger
        elif r < 0.015:
            ts -= rng.uniform(0.0, 3.0)  # time goes backwards
        else:
            ts += rng.expovariate(200.0)
        flow = rng.choice(flows)
        from_client = rng.random() < 0.6
        r = rng.random()
        flags = 0x10
        if flow["proto"] == 6:
            if r < 0.02:
                flags = 0x02  # SYN: may reopen a closed flow
            elif r < 0.04:
                flags = 0x11  # FIN
            elif r < 0.05:
                flags = 0x04  # RST
            elif r < 0.5:
                flags = 0x18
        payload = rng.randbytes(rng.choice((0, 0, 1, 40, 300))) if flags & 0x08 or flow["proto"] == 17 else b""
        frame = _frame(flow, from_client, flags, payload, vlan=rng.random() < 0.03)
        fragmentable = len(flow["client"]) == 4 and frame[12:14] == b"\x08\x00" and len(frame) > 14 + 20 + 16
        if fragmentable and rng.random() < 0.02:
            for piece in _fragments(frame):
                out.append((ts, piece))
            continue
        out.append((ts, frame))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(50, 900))
def test_random_captures_same_records(tmp_path: Path, seed: int, n: int) -> None:
    path = write_pcap(tmp_path / f"r{seed}.pcap", random_capture(seed, n))
    same_both_ways(path)


@pytest.mark.parametrize("count", [2, 3])
def test_shards_same_records(mix: Path, count: int) -> None:
    # Other shards' packets are skipped a chunk at a time; the loop's own shard test must agree.
    flows = 0
    for index in range(count):
        flows += len(same_both_ways(mix, shard_index=index, shard_count=count))
    assert flows == len(run(mix, False)[0])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(2, 3))
def test_random_captures_shards_same_records(tmp_path: Path, seed: int, count: int) -> None:
    path = write_pcap(tmp_path / f"s{seed}.pcap", random_capture(seed, 400))
    for index in range(count):
        same_both_ways(path, shard_index=index, shard_count=count)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_full_table_same_records(tmp_path: Path, seed: int) -> None:
    # Evictions happen per packet: the counter must leave such chunks to the loop.
    path = write_pcap(tmp_path / "t.pcap", random_capture(seed, 600))
    same_both_ways(path, max_flows=3)


# ---- the settled-flow table ------------------------------------------------------------------

class _Flow:
    """What SettledFlows reads of a Flow."""

    def __init__(self, key_a: bytes, key_b: bytes, proto: int) -> None:
        from portwatch.capture.flows import Side

        self.key_a, self.key_b, self.proto = key_a, key_b, proto
        self.sides = (Side(self, 0, 1.0), Side(self, 1, 2.0))  # type: ignore[arg-type]
        for side in self.sides:
            side.inspecting = False
        self.slot = None
        self.closed_at = None


def _v4_key(i: int) -> tuple[bytes, bytes]:
    a, b = bytes([10, 0, i >> 8, i & 255]), bytes([10, 9, 0, 1])
    return a + b + struct.pack("!HH", 40000, 443), b + a + struct.pack("!HH", 443, 40000)


def _lookup(table: SettledFlows, keys: list[bytes], proto: int = 6) -> list[int]:
    head = np.zeros((len(keys), 68), dtype=np.uint8)
    for i, k in enumerate(keys):
        head[i, 26:38] = np.frombuffer(k, dtype=np.uint8)
    words, nwords = key_words(head, np.zeros(len(keys), dtype=bool))
    return table.lookup(words, np.full(len(keys), proto), nwords).tolist()


@pytest.mark.parametrize("collide", [False, True])
def test_settled_table_finds_exactly_its_live_keys(monkeypatch: pytest.MonkeyPatch, collide: bool) -> None:
    if collide:  # every key hashes alike: found only by probing, told apart only by the stored key
        monkeypatch.setattr(settled_mod, "key_hashes", lambda words, *_: np.full(len(words), 12345, np.uint64))
        monkeypatch.setattr(settled_mod, "MAX_PROBES", 10_000)
    table = SettledFlows(capacity=4)
    flows = [_Flow(*_v4_key(i), 6) for i in range(50)]
    table.waiting.extend(flows)
    table.admit_waiting()  # grows past its first capacity
    assert len(table) == 50
    keys = [f.key_a for f in flows] + [f.key_b for f in flows]
    want = [2 * f.slot for f in flows] + [2 * f.slot + 1 for f in flows]  # type: ignore[operator]
    assert _lookup(table, keys) == want
    assert _lookup(table, [flows[0].key_a], proto=17) == [-1]  # same addresses and ports, other transport
    assert _lookup(table, [_v4_key(999)[0]]) == [-1]
    gone = flows[7]
    table.release(gone)  # type: ignore[arg-type]
    assert _lookup(table, [gone.key_a, gone.key_b, flows[8].key_a]) == [-1, -1, 2 * flows[8].slot]  # type: ignore[operator]


def test_settled_counts_reach_the_sides_once() -> None:
    table = SettledFlows()
    flow = _Flow(*_v4_key(1), 6)
    table.waiting.append(flow)
    table.admit_waiting()
    slot = flow.slot
    assert slot is not None
    table.count(np.array([2 * slot, 2 * slot, 2 * slot + 1]), np.array([5.0, 6.0, 7.0]), np.array([10, 20, 30]))
    table.flush()
    a, b = flow.sides
    assert (a.pkts, a.bytes, a.ts, b.pkts, b.bytes, b.ts) == (2, 30, 6.0, 1, 30, 7.0)
    table.flush()
    table.release(flow)  # type: ignore[arg-type]
    assert (a.pkts, b.pkts) == (2, 1)
    assert flow.slot is None


def test_keys_as_words_matches_frames() -> None:
    key_a, _ = _v4_key(3)
    key6 = bytes(range(1, 33)) + bytes([0x9C, 0x40, 0x01, 0xBB])  # IPv6 addresses + ports
    head = np.zeros((2, 68), dtype=np.uint8)
    head[0, 26:38] = np.frombuffer(key_a, dtype=np.uint8)
    head[0, 38:42] = 0xFF  # the bytes after the key do not count
    head[1, 22:58] = np.frombuffer(key6, dtype=np.uint8)
    head[1, 58:62] = 0xFF
    words, nwords = key_words(head, np.array([False, True]))
    assert nwords.tolist() == [2, 5]
    given_words, given_nwords = keys_as_words([key_a, key6])
    assert (words == given_words).all() and given_nwords.tolist() == [2, 5]


# ---- targeted: what each safeguard is for ----------------------------------------------------

def _flow(proto: int, i: int) -> dict:
    return {"proto": proto, "client": bytes([10, 0, 0, i]), "server": bytes([10, 0, 0, 200]),
            "sport": 40000 + i, "dport": 5555, "seq": {True: 1, False: 9}}


def _settled_stream(flow: dict, start: float, count: int, step: float) -> list[tuple[float, bytes]]:
    """Payload packets enough to end inspection (random bytes: given up as unknown), then more."""
    rng = random.Random(flow["sport"])
    return [(start + k * step, _frame(flow, k % 3 != 2, 0x18 if flow["proto"] == 6 else 0, rng.randbytes(64), False))
            for k in range(count)]


def test_timer_fires_among_counted_packets(tmp_path: Path) -> None:
    # Y goes idle at t=0; only X's counted packets cross the sweep that expires it (a tick).
    y = _flow(17, 1)
    frames = [(0.0, _frame(y, True, 0, b"hello", False))]
    frames += _settled_stream(_flow(17, 2), 0.5, 200, 0.5)
    records = same_both_ways(write_pcap(tmp_path / "t.pcap", [(1e9 + t, f) for t, f in frames]))
    idle = [r for r in records if r["src_port"] == 40001]
    assert idle and idle[0]["meta"].get("end_reason") == "idle"


@pytest.mark.parametrize("how", ["vlan", "fragments"])
def test_settled_flow_closed_off_the_fast_path(tmp_path: Path, how: str) -> None:
    # X is settled; its FINs come VLAN-tagged or fragmented, so only decoding them shows they are
    # X's. Packets more than the linger time later start a new flow.
    x = _flow(6, 3)
    frames = _settled_stream(x, 0.0, 40, 0.01)
    t = frames[-1][0]
    for k, from_client in enumerate((True, False)):
        fin = _frame(x, from_client, 0x11, b"", how == "vlan")
        pieces = _fragments(_frame(x, from_client, 0x19, b"x" * 40, False)) if how == "fragments" else [fin]
        frames += [(t + 0.01 * (k + 1), p) for p in pieces]
    frames += [(t + 5 + k * 0.01, f) for k, (_, f) in enumerate(_settled_stream(x, 0, 20, 0))]
    records = same_both_ways(write_pcap(tmp_path / "c.pcap", [(1e9 + t, f) for t, f in frames]))
    assert len([r for r in records if r["src_port"] == 40003]) == 2


def test_chunk_that_may_fill_the_table_goes_to_the_loop(tmp_path: Path) -> None:
    # X is settled and oldest; new flows arriving among its packets evict it at the cap, and its
    # next packets start a new flow: only the per-packet loop sees that happen in order.
    x = _flow(6, 4)
    frames = _settled_stream(x, 0.0, 40, 0.01)
    t = frames[-1][0]
    more = _settled_stream(x, 0, 30, 0)
    for k in range(30):
        frames.append((t + 0.01 * (2 * k + 1), more[k][1]))
        frames.append((t + 0.01 * (2 * k + 2), _frame(_flow(6, 100 + k), True, 0x02, b"", False)))
    records = same_both_ways(write_pcap(tmp_path / "e.pcap", [(1e9 + t, f) for t, f in frames]), max_flows=3)
    assert len([r for r in records if r["src_port"] == 40004]) > 1


def _mutate(rng: random.Random, frame: bytes) -> bytes:
    """A header byte changed (lengths, versions, flags, ports...) or the frame cut short."""
    data = bytearray(frame)
    if rng.random() < 0.3:
        return bytes(data[: rng.randint(0, len(data))])
    for _ in range(rng.randint(1, 3)):
        at = rng.randint(12, min(len(data), 70) - 1)
        data[at] = rng.choice((0, 0xFF, 0x45, 0x46, 0x60, 0x11, 0x06, 0x08, 0x86, 0x12, rng.randint(0, 255)))
    return bytes(data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_mangled_headers_same_records(tmp_path: Path, seed: int) -> None:
    # Malformed and odd frames among settled flows' packets: the chunk decoder must take exactly
    # the frames the loop's fast path takes, and leave the rest (malformed, other paths) to it.
    rng = random.Random(seed)
    frames = [(t, _mutate(rng, f) if rng.random() < 0.2 else f) for t, f in random_capture(seed, 700)]
    same_both_ways(write_pcap(tmp_path / f"m{seed}.pcap", frames))
