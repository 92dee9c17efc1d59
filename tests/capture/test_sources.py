"""Capture framing: classic pcap in every variant, pcapng, compression, stdin, and broken files."""

from __future__ import annotations

import gzip
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pcapkit import analyze_path, ether, tcp_session, timed, unknown_block, write_pcap, write_pcapng

from portwatch.capture.sources import CaptureError, CaptureSource

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
    recs = list(CaptureSource(f))
    assert len(recs) == 8
    assert recs[0][0] == pytest.approx(1_700_000_000.25, abs=1e-6)
    assert recs[1][0] == pytest.approx(1_700_000_000.75, abs=1e-6)
    assert all(r[1] == 1 for r in recs)
    records, stats = analyze_path(f)
    assert [r.protocol for r in records] == ["ssh"]
    assert stats.error is None and stats.packets == 8


def test_pcapng_interfaces_with_their_own_link_types(tmp_path):
    from portwatch.capture.decode import LINKTYPE_RAW

    eth = frames(1)
    raw = [p for p in tcp_session(SSH, SSH, sport=41000, dport=22, server_first=True)]
    packets = [(0, 1_700_000_000 + i, f) for i, f in enumerate(eth)]
    packets += [(1, 1_700_000_100 + i, f) for i, f in enumerate(raw)]
    f = write_pcapng(tmp_path / "x.pcapng", [1, LINKTYPE_RAW], packets, extra_blocks=[unknown_block()])
    recs = list(CaptureSource(f))
    assert {r[1] for r in recs} == {1, LINKTYPE_RAW}
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
        CaptureSource(f)


def test_missing_file_is_a_capture_error(tmp_path):
    with pytest.raises(CaptureError, match="No such file"):
        CaptureSource(tmp_path / "nope.pcap")


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


def _records(path, chunk: int, monkeypatch) -> tuple[list[tuple[float, int, bytes]], str | None]:
    import portwatch.capture.sources as sources

    monkeypatch.setattr(sources, "CHUNK", chunk)
    src = CaptureSource(path)
    out = [(ts, lt, bytes(buf[off : off + n])) for ts, lt, buf, off, n in src]
    src.close()
    return out, src.stats.error


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(0, 300), min_size=1, max_size=12),
    chunk=st.sampled_from([1, 3, 16, 17, 40, 257, 4096]),
    cut=st.integers(0, 40),
    gz=st.booleans(),
)
def test_records_across_chunk_boundaries(tmp_path, monkeypatch, sizes, chunk, cut, gz):
    # Records straddle chunks of every size (down to one byte, as a gzip stream or a pipe may
    # give); each comes out whole and in order, and a cut at any point keeps the whole records
    # before it and names what was cut.
    frames = [bytes([i % 256]) * n for i, n in enumerate(sizes)]
    f = write_pcap(tmp_path / "x.pcap", timed(frames))
    data = f.read_bytes()
    if cut:
        data = data[: max(24, len(data) - cut)]
    f.write_bytes(gzip.compress(data) if gz else data)
    got, error = _records(f, chunk, monkeypatch)
    body = data[24:]
    want, off = [], 0
    while off + 16 <= len(body):
        n = int.from_bytes(body[off + 8 : off + 12], "little")
        if off + 16 + n > len(body):
            break
        want.append(body[off + 16 : off + 16 + n])
        off += 16 + n
    assert [r[2] for r in got] == want
    assert all(r[1] == 1 for r in got)
    assert [r[0] for r in got] == pytest.approx([1_700_000_000.0 + i * 0.001 for i in range(len(got))], abs=1e-6)
    if off == len(body):
        assert error is None
    elif len(body) - off < 16:
        assert error == "x.pcap: truncated record header at end of file"
    else:
        assert error.startswith("x.pcap: truncated packet data at end of file")


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("read_size", [13, 100, 4096, 1 << 20])
def test_pcapng_chunks_read_what_dpkt_reads(tmp_path, big_endian, read_size):
    # An independent parser as the reference: every packet block (enhanced and obsolete), in order,
    # whatever the read size cuts blocks at, with the other blocks skipped.
    import dpkt
    from pcapkit import write_pcapng_mixed

    from portwatch.capture.sources import chunk_records

    frames = [(1_700_000_000.0 + i * 0.001 + (i % 7) * 1e-6, ether(bytes(20 + i % 50)) + bytes(i % 13))
              for i in range(300)]
    path = write_pcapng_mixed(tmp_path / "x.pcapng", frames, big_endian=big_endian, obsolete_every=5,
                              other_every=9)
    with open(path, "rb") as fh:
        expected = [(ts, bytes(data)) for ts, data in dpkt.pcapng.Reader(fh)]
    with CaptureSource(str(path)) as source:
        got = [(ts, bytes(buf[off : off + n])) for chunk in source.record_chunks(read_size)
               for ts, _lt, buf, off, n in chunk_records(chunk)]
        assert source.stats.error is None and source.stats.malformed == 0
    assert len(got) == len(expected) == 300
    assert [d for _, d in got] == [d for _, d in expected]
    assert all(abs(a - b) < 1e-6 for (a, _), (b, _) in zip(got, expected, strict=True))


@pytest.mark.parametrize("read_size", [13, 4096, 1 << 20])
def test_pcapng_corrupt_block_message_gives_its_file_offset(tmp_path, read_size):
    # The offset is the block's place in the file, whatever reads the file was taken in.
    import struct as st_

    from portwatch.capture.sources import chunk_records

    frames = [(1_700_000_000.0 + i, ether(bytes(40 + i % 30))) for i in range(200)]
    path = write_pcapng(tmp_path / "x.pcapng", [1], [(0, ts, f) for ts, f in frames])
    data = bytearray(path.read_bytes())
    off = 0
    for _ in range(150):  # the 150th block: past the first reads of every size tried
        off += st_.unpack_from("<I", data, off + 4)[0]
    data[off + 4 : off + 8] = st_.pack("<I", 13)
    path.write_bytes(bytes(data))
    with CaptureSource(str(path)) as source:
        n = sum(1 for chunk in source.record_chunks(read_size) for _ in chunk_records(chunk))
        assert n == 150 - 2  # the blocks before it, less the section and interface headers
        assert f"corrupt pcapng block at byte offset {off} " in source.stats.error
