"""Inputs the fuzz targets (fuzz/targets.py) once failed on, kept so the fixes stay fixed."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))

import targets

from portwatch.capture.reassembly import StreamBuffer
from portwatch.capture.sources import CaptureSource

# sources: a gzip stream whose deflate data is corrupt past the header made zlib.error escape
# CaptureSource() (it caught OSError and EOFError only): a traceback from `portwatch analyze`.
GZIP_BAD_DEFLATE = (
    "H4sIAAAAAAACA7tyeNNCJgYWBhj4/5+BgRHE+BicCqJmQjETiMMEJhk5GFwZGLpByhzY0jK4GBmYgJhxjgPjbgao5gAJBYbifgYGMWZG"
    "hjigSBQzMwNBwCLMKMwEVKwLZAsw8DEwcKdWJOYW5KTqJefngkV4mDKMODJKSgr0DfUMGbQZmJmYWRihDp0LxcgObWRgYB1UjmWCwZRB"
    "9ct9IRNGaPABjYR6nRnkdaAgIyvUWG8oxupA8owGALu+SEqwAgAA"
)


def test_corrupt_deflate_is_a_capture_error(tmp_path):
    data = base64.b64decode(GZIP_BAD_DEFLATE)
    targets.fuzz_sources(data)
    f = tmp_path / "x.pcap.gz"
    f.write_bytes(data)
    try:
        with CaptureSource(f) as src:
            list(src)
            assert src.stats.error and "\n" not in src.stats.error
    except Exception as exc:  # only the documented error may escape
        assert type(exc).__name__ == "CaptureError", exc


# reassembly: a held out-of-order segment was overwritten by a later in-order segment spanning
# it ("hello" at 0, "world" at 7 held, then "XXXXX" at 3): detection saw the later copy.
REASSEMBLY_SEED = b"\x01\x00" + b"\xff\xff\xff\xfe" + b"\x01" + (
    b"\x40\x00\x00\x05hello" + b"\x40\x00\x07\x05world" + b"\x60\x00\x03\x05XXXXX" + b"\x40\x00\x05\x02, "
)


def test_first_copy_wins_over_a_held_segment():
    targets.fuzz_reassembly(REASSEMBLY_SEED)
    s = StreamBuffer()
    s.syn(1000)
    s.add(1008, b"world")  # held: bytes 7..11
    assert not s.add(1004, b"XXXXXXXXX")  # 3..11: fills the gap 3..7, conflicts on 7..11
    assert bytes(s.data) == b""  # nothing from 0..3 yet
    assert s.add(1001, b"hel")
    assert bytes(s.data) == b"helXXXXworld"
    assert s.anomalies == 1


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_every_seed_passes(name):
    import seeds

    for data in seeds.seeds(name):
        targets.TARGETS[name](data)
