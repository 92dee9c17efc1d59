"""TCP reassembly per direction: order, overlaps (first copy wins), wrap-around, bounds."""

from __future__ import annotations

from portwatch.capture.reassembly import MAX_PENDING_SEGMENTS, StreamBuffer

ISN = 1000


def stream(depth: int = 4096, isn: int = ISN) -> StreamBuffer:
    s = StreamBuffer(depth)
    s.syn(isn)
    return s


def test_in_order():
    s = stream()
    assert s.add(ISN + 1, b"hello ")
    assert s.add(ISN + 7, b"world")
    assert bytes(s.data) == b"hello world" and s.anomalies == 0


def test_out_of_order_is_held_then_placed():
    s = stream()
    assert not s.add(ISN + 7, b"world")
    assert bytes(s.data) == b""
    assert s.add(ISN + 1, b"hello ")
    assert bytes(s.data) == b"hello world"
    assert not s.pending


def test_one_byte_segments_in_reverse():
    s = stream()
    text = b"SSH-2.0-OpenSSH_9.2\r\n"
    for i in reversed(range(len(text))):
        s.add(ISN + 1 + i, text[i : i + 1])
    assert bytes(s.data) == text


def test_identical_retransmission_is_not_an_anomaly():
    s = stream()
    s.add(ISN + 1, b"abcdef")
    s.add(ISN + 1, b"abcdef")
    s.add(ISN + 3, b"cdefgh")
    assert bytes(s.data) == b"abcdefgh" and s.anomalies == 0


def test_conflicting_overlap_keeps_first_copy_and_counts():
    s = stream()
    s.add(ISN + 1, b"GET /index")
    s.add(ISN + 5, b"XXXXXX.html")  # rewrites "/index" and adds ".html"
    assert bytes(s.data) == b"GET /index.html"
    assert s.anomalies == 1


def test_conflicting_out_of_order_copies():
    s = stream()
    s.add(ISN + 11, b"first")
    s.add(ISN + 11, b"other")
    s.add(ISN + 1, b"0123456789")
    assert bytes(s.data) == b"0123456789first"
    assert s.anomalies == 1


def test_sequence_wrap_around():
    isn = 0xFFFFFFF0
    s = stream(isn=isn)
    s.add((isn + 1) & 0xFFFFFFFF, b"A" * 10)
    s.add((isn + 11) & 0xFFFFFFFF, b"B" * 10)  # crosses 2**32
    s.add((isn + 21) & 0xFFFFFFFF, b"C" * 4)
    assert bytes(s.data) == b"A" * 10 + b"B" * 10 + b"CCCC"


def test_mid_stream_pickup_starts_at_first_data():
    s = StreamBuffer()
    s.add(123456, b"220 mail.example ESMTP\r\n")
    s.add(123456 - 10, b"0123456789")  # data before the pickup point is ignored, not prepended
    assert bytes(s.data) == b"220 mail.example ESMTP\r\n"


def test_depth_bounds_memory():
    s = stream(depth=100)
    for i in range(50):
        s.add(ISN + 1 + i * 10, b"x" * 10)
    assert len(s.data) == 100 and s.full
    assert s.pending_bytes <= 100


def test_pending_segments_are_bounded():
    s = stream(depth=4096)
    for i in range(1000):
        s.add(ISN + 100 + i * 2, b"z")  # holes everywhere
    assert len(s.pending) <= MAX_PENDING_SEGMENTS
    assert s.gaps > 0


def test_data_on_syn_starts_at_isn_plus_one():
    s = StreamBuffer()
    s.syn(ISN)
    s.add(ISN + 1, b"early data")
    assert bytes(s.data) == b"early data"
