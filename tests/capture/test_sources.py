"""Capture framing, read by the core: classic pcap in every variant, pcapng, compression, stdin, and broken files."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pcapkit import analyze_path, ether, tcp_session, timed, unknown_block, write_pcap, write_pcapng

from portwatch.pipeline import CaptureError, open_capture

SSH = [b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"]


def frames(n_sessions: int = 1) -> list[bytes]:
    out = []
    for i in range(n_sessions):
        out += [ether(p) for p in tcp_session(SSH, SSH, sport=40000 + i, dport=22, server_first=True)]
    return out


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_variants(tmp_path, big_endian, nano):
    f = write_pcap(tmp_path / "x.pcap", timed(frames(), start=1_700_000_000.25, step=0.5), big_endian=big_endian,
                   nano=nano)
    records, stats = analyze_path(f)
    assert [r.protocol for r in records] == ["ssh"]
    assert stats.error is None and stats.packets == 8
    assert records[0].ts_start == pytest.approx(1_700_000_000.25, abs=1e-6)
    assert records[0].ts_end == pytest.approx(1_700_000_000.25 + 7 * 0.5, abs=1e-6)


def test_pcapng_interfaces_with_their_own_link_types(tmp_path):
    LINKTYPE_RAW = 101
    eth = frames(1)
    raw = [p for p in tcp_session(SSH, SSH, sport=41000, dport=22, server_first=True)]
    packets = [(0, 1_700_000_000 + i, f) for i, f in enumerate(eth)]
    packets += [(1, 1_700_000_100 + i, f) for i, f in enumerate(raw)]
    f = write_pcapng(tmp_path / "x.pcapng", [1, LINKTYPE_RAW], packets, extra_blocks=[unknown_block()])
    records, stats = analyze_path(f)
    assert sorted(r.src_port for r in records) == [40000, 41000]
    assert all(r.protocol == "ssh" for r in records)
    assert stats.error is None


def test_gzipped_capture_is_read(tmp_path):
    f = write_pcap(tmp_path / "x.pcap", timed(frames()))
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    records, stats = analyze_path(gz)
    assert [r.protocol for r in records] == ["ssh"]


def test_stdin(tmp_path):
    f = write_pcap(tmp_path / "x.pcap", timed(frames()))
    out = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl", "-"],
                         input=f.read_bytes(), capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert b'"protocol":"ssh"' in out.stdout
    assert b'"pcap"' not in out.stdout  # live/stdin records carry no file name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"this is not a capture at all", "not a pcap or pcapng"),
    ],
)
def test_not_a_capture(tmp_path, content, message):
    f = tmp_path / "bad.pcap"
    f.write_bytes(content)
    with pytest.raises(CaptureError, match=message):
        open_capture(str(f))


def test_missing_file_is_a_capture_error(tmp_path):
    with pytest.raises(CaptureError, match="No such file"):
        open_capture(str(tmp_path / "nope.pcap"))


def _truncations(data: bytes) -> dict[str, bytes]:
    return {
        "file header": data[:10],
        "record header": data[: len(data) - 70] + data[len(data) - 70 : len(data) - 62],
        "packet data": data[:-20],
    }


@pytest.mark.parametrize("where", ["file header", "record header", "packet data"])
def test_truncated_pcap_keeps_flows_read_so_far(tmp_path, where):
    whole = write_pcap(tmp_path / "whole.pcap", timed(frames(3))).read_bytes()
    last_len = len(frames(3)[-1])
    cuts = {
        "file header": whole[:10],
        # stop inside the header of the last record
        "record header": whole[: len(whole) - last_len - 16 + 7],
        "packet data": whole[:-5],
    }
    f = tmp_path / "cut.pcap"
    f.write_bytes(cuts[where])
    records, stats = analyze_path(f)
    assert stats.error and "truncated" in stats.error
    if where != "file header":
        assert len(records) == 3  # every flow read so far is reported
        assert stats.packets == 23


def test_caplen_beyond_limit_stops_with_error(tmp_path):
    f = write_pcap(tmp_path / "x.pcap", timed(frames()), snaplen=65535)
    data = bytearray(f.read_bytes())
    # corrupt the caplen of the 4th record to 2**30
    off = 24
    for _ in range(3):
        caplen = int.from_bytes(data[off + 8 : off + 12], "little")
        off += 16 + caplen
    data[off + 8 : off + 12] = (1 << 30).to_bytes(4, "little")
    f.write_bytes(bytes(data))
    records, stats = analyze_path(f)
    assert f"corrupt record at byte offset {off}: caplen 1073741824" in stats.error  # a file offset
    assert stats.packets == 3
    assert len(records) == 1


def test_zero_length_records_are_malformed_not_fatal(tmp_path):
    fr = timed(frames())
    fr.insert(3, (fr[3][0], b""))
    f = write_pcap(tmp_path / "x.pcap", fr)
    records, stats = analyze_path(f)
    assert stats.error is None
    assert stats.malformed == 1
    assert [r.protocol for r in records] == ["ssh"]


def test_unknown_link_type_is_counted(tmp_path):
    f = write_pcap(tmp_path / "x.pcap", timed(frames()), linktype=147)  # LINKTYPE_USER0
    records, stats = analyze_path(f)
    assert records == []
    assert stats.unsupported_link == stats.packets == 8


def test_corrupt_pcapng_block_stops_with_flows_so_far(tmp_path):
    packets = [(0, 1_700_000_000 + i, fr) for i, fr in enumerate(frames(2))]
    f = write_pcapng(tmp_path / "x.pcapng", [1], packets)
    data = bytearray(f.read_bytes())
    # the last block's length field becomes an impossible 13
    last_len = int.from_bytes(data[-4:], "little")
    data[len(data) - last_len + 4 : len(data) - last_len + 8] = (13).to_bytes(4, "little")
    f.write_bytes(bytes(data))
    records, stats = analyze_path(f)
    assert "corrupt pcapng block" in stats.error
    assert len(records) == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=12),
    cut=st.integers(0, 40),
    gz=st.booleans(),
)
def test_cut_captures_keep_the_whole_records_before_the_cut(tmp_path, sizes, cut, gz):
    # A cut at any point keeps the whole records before it and names what was cut, gzipped or not.
    frames = [bytes([i % 256]) * n for i, n in enumerate(sizes)]
    f = write_pcap(tmp_path / "x.pcap", timed(frames))
    data = f.read_bytes()
    if cut:
        data = data[: max(24, len(data) - cut)]
    f.write_bytes(gzip.compress(data) if gz else data)
    _, stats = analyze_path(f)
    body = data[24:]
    whole, off = 0, 0
    while off + 16 <= len(body):
        n = int.from_bytes(body[off + 8 : off + 12], "little")
        if off + 16 + n > len(body):
            break
        whole += 1
        off += 16 + n
    assert stats.packets == whole
    if off == len(body):
        assert stats.error is None
    elif len(body) - off < 16:
        assert stats.error == "x.pcap: truncated record header at end of file"
    else:
        assert stats.error.startswith("x.pcap: truncated packet data at end of file")


@pytest.mark.parametrize("big_endian", [False, True])
def test_pcapng_reads_what_dpkt_reads(tmp_path, big_endian):
    # An independent parser as the reference: every packet block (enhanced and obsolete), in order,
    # with the other blocks skipped; each packet its own flow, so the flows show what was read.
    import dpkt
    from pcapkit import write_pcapng_mixed
    from scapy.layers.inet import IP, UDP

    frames = [(1_700_000_000.0 + i * 0.001 + (i % 7) * 1e-6,
               ether(bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=10000 + i, dport=9) / bytes(i % 13))))
              for i in range(300)]
    path = write_pcapng_mixed(tmp_path / "x.pcapng", frames, big_endian=big_endian, obsolete_every=5, other_every=9)
    with open(path, "rb") as fh:
        expected = [(ts, bytes(data)) for ts, data in dpkt.pcapng.Reader(fh)]
    records, stats = analyze_path(path)
    assert stats.error is None and stats.malformed == 0 and stats.packets == len(expected) == 300
    got = sorted((r.src_port, r.ts_start, r.bytes_c2s) for r in records)
    assert [g[0] for g in got] == [10000 + i for i in range(300)]
    assert all(abs(g[1] - e[0]) < 1e-6 for g, e in zip(got, expected, strict=True))
    assert [g[2] for g in got] == [len(d) - 14 - 28 for _, d in expected]


def test_pcapng_corrupt_block_message_gives_its_file_offset(tmp_path):
    import struct as st_

    frames = [(1_700_000_000.0 + i, ether(bytes(40 + i % 30))) for i in range(200)]
    path = write_pcapng(tmp_path / "x.pcapng", [1], [(0, ts, f) for ts, f in frames])
    data = bytearray(path.read_bytes())
    off = 0
    for _ in range(150):  # the 150th block
        off += st_.unpack_from("<I", data, off + 4)[0]
    data[off + 4 : off + 8] = st_.pack("<I", 13)
    path.write_bytes(bytes(data))
    _, stats = analyze_path(path)
    assert stats.packets == 150 - 2  # the blocks before it, less the section and interface headers
    assert f"corrupt pcapng block at byte offset {off} " in stats.error


@pytest.mark.parametrize("name", ["dns-53.pcap", "ssh-22.pcap", "http-80.pcap"])
def test_pcap_and_pcapng_of_one_capture_give_the_same_records(tmp_path, name):
    # Timestamps included: a pcapng count of microseconds is split into seconds and fraction as a
    # classic pcap stores them, not multiplied out (which is off in the last place).
    import dpkt
    from pcapkit import write_pcapng_mixed

    from tests.conftest import CAPTURES

    src = CAPTURES / name
    if not src.exists():
        pytest.skip(f"{name} not recorded")
    with open(src, "rb") as fh:
        frames = [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(fh)]
    ng = write_pcapng_mixed(tmp_path / "x.pcapng", frames, obsolete_every=5, other_every=7)

    def rows(path):
        records, stats = analyze_path(path)
        return [{k: v for k, v in r.as_dict().items() if k != "pcap"} for r in records], stats.packets

    assert rows(ng) == rows(src)
