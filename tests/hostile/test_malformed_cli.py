"""Malformed captures through `portwatch analyze`: every case has a defined result.

Each case checks the flows written so far (JSONL), the malformed count (console summary), the
one-line error on stderr with no traceback, and the exit status (2 for unreadable or truncated
input, DESIGN.md). docs/hostile-input.md has the same cases as a table.
"""

from __future__ import annotations

import gzip
import struct

import pytest
from _cli import analyze, one_line_error
from pcapkit import _block, ether, tcp_session, timed, unknown_block, write_pcap, write_pcapng

LINKTYPE_RAW = 101  # raw IPv4/IPv6, no link header
SSH = [b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"]


def session(i: int) -> list[bytes]:
    return [ether(p) for p in tcp_session(SSH, SSH, sport=40000 + i, dport=22, server_first=True)]


def frames(n: int) -> list[bytes]:
    return [f for i in range(n) for f in session(i)]


def three_sessions(tmp_path, **kw):
    return write_pcap(tmp_path / "three.pcap", timed(frames(3)), **kw)


def ports(run) -> list[int]:
    return sorted(r["src_port"] for r in run.records)


def test_intact_capture_reference(tmp_path):
    run = analyze(tmp_path, three_sessions(tmp_path))
    assert run.code == 0 and run.stderr == ""
    assert ports(run) == [40000, 40001, 40002] and {r["protocol"] for r in run.records} == {"ssh"}


def test_truncated_record_header(tmp_path):
    data = three_sessions(tmp_path).read_bytes()
    f = tmp_path / "cut.pcap"
    f.write_bytes(data + struct.pack("<II", 1_700_000_100, 0))  # 8 of a 16-byte record header
    run = analyze(tmp_path, f)
    assert run.code == 2
    one_line_error(run, "cut.pcap: truncated record header")
    assert ports(run) == [40000, 40001, 40002]  # nothing read before the cut is lost


def test_truncated_packet(tmp_path):
    f = tmp_path / "cut.pcap"
    f.write_bytes(three_sessions(tmp_path).read_bytes()[:-5])
    run = analyze(tmp_path, f)
    assert run.code == 2
    one_line_error(run, "cut.pcap: truncated packet data")
    assert ports(run) == [40000, 40001, 40002]
    assert all(r["protocol"] == "ssh" for r in run.records)


@pytest.mark.parametrize("content", [b"\x00\x01\x02\x03" + bytes(40), b"GIF89a not a capture", b"\xd4\xc3"])
def test_bad_magic(tmp_path, content):
    f = tmp_path / "bad.pcap"
    f.write_bytes(content)
    run = analyze(tmp_path, f)
    assert run.code == 2 and run.records == []
    one_line_error(run, "bad.pcap: not a pcap or pcapng capture")


def test_empty_file(tmp_path):
    f = tmp_path / "empty.pcap"
    f.write_bytes(b"")
    run = analyze(tmp_path, f)
    assert run.code == 2 and run.records == []
    one_line_error(run, "empty.pcap: empty file, not a capture")


def test_caplen_over_snaplen_is_read_whole(tmp_path):
    # A header snaplen of 64 with full-size records: what a tool that ignores its own snaplen
    # writes. Wireshark and libpcap read such records; so does portwatch, counting nothing.
    f = three_sessions(tmp_path, snaplen=64)
    run = analyze(tmp_path, f)
    assert run.code == 0 and run.stderr == ""
    assert ports(run) == [40000, 40001, 40002] and {r["protocol"] for r in run.records} == {"ssh"}


def test_caplen_over_record_limit(tmp_path):
    data = bytearray(three_sessions(tmp_path).read_bytes())
    off = 24
    for _ in range(len(session(0)) * 2):  # the first two sessions stay whole
        off += 16 + int.from_bytes(data[off + 8 : off + 12], "little")
    data[off + 8 : off + 12] = (1 << 30).to_bytes(4, "little")
    f = tmp_path / "huge.pcap"
    f.write_bytes(bytes(data))
    run = analyze(tmp_path, f)
    assert run.code == 2
    one_line_error(run, "huge.pcap: corrupt record", "caplen 1073741824 exceeds")
    assert ports(run) == [40000, 40001]


def test_caplen_over_file_size(tmp_path):
    data = three_sessions(tmp_path).read_bytes()
    last = frames(3)[-1]
    # the last record claims 9000 bytes where the file has only its real length left
    head = len(data) - len(last) - 16
    f = tmp_path / "short.pcap"
    f.write_bytes(data[: head + 8] + struct.pack("<II", 9000, 9000) + data[head + 16 :])
    run = analyze(tmp_path, f)
    assert run.code == 2
    one_line_error(run, "short.pcap: truncated packet data", f"({len(last)} of 9000 bytes)")
    assert ports(run) == [40000, 40001, 40002]


def test_zero_length_records(tmp_path):
    fr = timed(frames(2))
    fr.insert(3, (fr[3][0], b""))
    fr.insert(10, (fr[10][0], b""))
    f = write_pcap(tmp_path / "zero.pcap", fr)
    run = analyze(tmp_path, f)
    assert run.code == 0 and run.stderr == ""
    assert ports(run) == [40000, 40001]
    console = analyze(tmp_path, f, fmt="console")
    assert console.code == 0
    assert "18 packets" in console.stdout and "2 malformed" in console.stdout


def test_unknown_link_type(tmp_path):
    f = write_pcap(tmp_path / "user0.pcap", timed(frames(1)), linktype=147)
    run = analyze(tmp_path, f)
    assert run.code == 2 and run.records == []
    one_line_error(run, "user0.pcap: unsupported link type, no packet could be decoded")


def test_pcapng_unknown_blocks_are_skipped(tmp_path):
    packets = [(0, 1_700_000_000 + i, fr) for i, fr in enumerate(frames(2))]
    custom = _block(0x00000BAD, b"\xff" * 64)
    f = write_pcapng(tmp_path / "x.pcapng", [1], packets, extra_blocks=[unknown_block(), custom])
    run = analyze(tmp_path, f)
    assert run.code == 0 and run.stderr == ""
    assert ports(run) == [40000, 40001]


def test_pcapng_corrupt_block(tmp_path):
    packets = [(0, 1_700_000_000 + i, fr) for i, fr in enumerate(frames(2))]
    data = write_pcapng(tmp_path / "x.pcapng", [1], packets).read_bytes()
    # a block whose length field is not a multiple of 4 follows the whole capture
    f = tmp_path / "corrupt.pcapng"
    f.write_bytes(data + struct.pack("<II", 6, 13) + bytes(20))
    run = analyze(tmp_path, f)
    assert run.code == 2
    one_line_error(run, "corrupt.pcapng: corrupt pcapng block", "length 13")
    assert ports(run) == [40000, 40001]


def test_pcapng_packet_on_undeclared_interface_is_malformed(tmp_path):
    packets = [(0, 1_700_000_000 + i, fr) for i, fr in enumerate(frames(1))]
    packets.insert(4, (7, 1_700_000_000.5, packets[4][2]))  # interface 7 was never described
    f = write_pcapng(tmp_path / "x.pcapng", [1], packets)
    console = analyze(tmp_path, f, fmt="console")
    assert console.code == 0 and "Traceback" not in console.stderr
    assert "1 malformed" in console.stdout


def test_pcapng_interfaces_with_different_link_types(tmp_path):
    eth = [(0, 1_700_000_000 + i, fr) for i, fr in enumerate(session(0))]
    raw = [(1, 1_700_000_100 + i, p) for i, p in enumerate(tcp_session(SSH, SSH, sport=41000, dport=22,
                                                                        server_first=True))]
    odd = [(2, 1_700_000_200 + i, fr) for i, fr in enumerate(session(5))]  # LINKTYPE_USER0
    f = write_pcapng(tmp_path / "multi.pcapng", [1, LINKTYPE_RAW, 147], eth + raw + odd)
    run = analyze(tmp_path, f)
    assert run.code == 0 and run.stderr == ""
    assert ports(run) == [40000, 41000] and {r["protocol"] for r in run.records} == {"ssh"}
    console = analyze(tmp_path, f, fmt="console")
    assert "8 on unsupported link types" in console.stdout


def test_gzip_input(tmp_path):
    gz = tmp_path / "x.pcap.gz"
    gz.write_bytes(gzip.compress(three_sessions(tmp_path).read_bytes()))
    run = analyze(tmp_path, gz)
    assert run.code == 0 and run.stderr == ""
    assert ports(run) == [40000, 40001, 40002]


def test_gzip_truncated(tmp_path):
    gz = tmp_path / "cut.pcap.gz"
    gz.write_bytes(gzip.compress(three_sessions(tmp_path).read_bytes())[:-30])
    run = analyze(tmp_path, gz)
    assert run.code == 2
    one_line_error(run, "cut.pcap.gz: read error", "Compressed file ended")
    assert ports(run) == [40000, 40001, 40002]  # what inflated before the cut is analysed


def test_gzip_corrupt_deflate_stream(tmp_path):
    # Found by the sources fuzz target: zlib.error escaped as a traceback.
    whole = bytearray(gzip.compress(three_sessions(tmp_path).read_bytes(), mtime=0))
    whole[20:40] = b"\xff" * 20
    gz = tmp_path / "bad.pcap.gz"
    gz.write_bytes(bytes(whole))
    run = analyze(tmp_path, gz)
    assert run.code == 2 and run.records == []
    one_line_error(run, "bad.pcap.gz: corrupt gzip data")


def test_gzip_of_garbage(tmp_path):
    gz = tmp_path / "junk.gz"
    gz.write_bytes(gzip.compress(b"this is not a capture"))
    run = analyze(tmp_path, gz)
    assert run.code == 2
    one_line_error(run, "junk.gz: not a pcap or pcapng capture")


def test_a_bad_file_does_not_hide_the_good_ones(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"garbage!")
    good = three_sessions(tmp_path)
    run = analyze(tmp_path, bad, good)
    assert run.code == 2
    one_line_error(run, "bad.pcap: not a pcap")
    assert ports(run) == [40000, 40001, 40002]


def test_missing_file(tmp_path):
    run = analyze(tmp_path, tmp_path / "nope.pcap")
    assert run.code == 2
    one_line_error(run, "No such file")


def test_truncated_stdin(tmp_path):
    data = three_sessions(tmp_path).read_bytes()[:-5]
    run = analyze(tmp_path, "-", stdin=data)
    assert run.code == 2
    one_line_error(run, "truncated packet data")
    assert ports(run) == [40000, 40001, 40002]
