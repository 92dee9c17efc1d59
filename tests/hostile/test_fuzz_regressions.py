"""Inputs the Python fuzz targets once failed on, kept (through the core) so the fixes stay fixed.

The core's own crash inputs replay under `cargo test` (core/tests/fuzz_regressions.rs)."""

from __future__ import annotations

import base64

from pcapkit import CLIENT, SERVER, analyze_path, write_pcap
from scapy.layers.inet import IP, TCP

from portwatch.pipeline import CaptureError

# sources: a gzip stream whose deflate data is corrupt past the header made zlib.error escape
# CaptureSource() (it caught OSError and EOFError only): a traceback from `portwatch analyze`.
GZIP_BAD_DEFLATE = (
    "H4sIAAAAAAACA7tyeNNCJgYWBhj4/5+BgRHE+BicCqJmQjETiMMEJhk5GFwZGLpByhzY0jK4GBmYgJhxjgPjbgao5gAJBYbifgYGMWZG"
    "hjigSBQzMwNBwCLMKMwEVKwLZAsw8DEwcKdWJOYW5KTqJefngkV4mDKMODJKSgr0DfUMGbQZmJmYWRihDp0LxcgObWRgYB1UjmWCwZRB"
    "9ct9IRNGaPABjYR6nRnkdaAgIyvUWG8oxupA8owGALu+SEqwAgAA"
)


def test_corrupt_deflate_is_a_capture_error(tmp_path):
    f = tmp_path / "x.pcap.gz"
    f.write_bytes(base64.b64decode(GZIP_BAD_DEFLATE))
    try:
        _, stats = analyze_path(f)
    except CaptureError as exc:  # only the documented error may escape
        assert "\n" not in str(exc)
    else:
        assert stats.error and "\n" not in stats.error


# reassembly: a held out-of-order segment was overwritten by a later in-order segment spanning
# it ("world" at 7 held, then "XXXXXXXXX" at 3): detection saw the later copy.
def test_first_copy_wins_over_a_held_segment(tmp_path):
    def seg(seq: int, data: bytes) -> bytes:
        return bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=40000, dport=7777, flags="PA", seq=seq, ack=1) / data)

    syn = bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=40000, dport=7777, flags="S", seq=1000))
    frames = [syn, seg(1008, b"world"), seg(1004, b"XXXXXXXXX"), seg(1001, b"hel")]
    f = write_pcap(tmp_path / "r.pcap", [(1_700_000_000.0 + i * 0.01, fr) for i, fr in enumerate(frames)],
                   linktype=101)
    (rec,), _ = analyze_path(f)
    assert bytes.fromhex(rec.meta["client_head"]) == b"helXXXXworld"
    assert rec.meta["tcp_overlap_conflicts"] == 1
