"""Far-future capture times in the Python API (issue "Hostile input, second round", item 10).

A pcapng timestamp is 64 bits of (by default) microseconds: the year 3000 and 2^64-1 (the year
586,524) are both valid on the wire, and both are past what a datetime64[ns] holds (2262). The
API keeps such a time as NaT in ts_start/ts_end, keeps the seconds in meta["time_out_of_range"],
and never raises: not in analyze(), .servers, .summary(), repr(), the notebook HTML, packets(),
to_parquet() nor read().
"""

from __future__ import annotations

import struct
from pathlib import Path

import pandas as pd
import pytest
from pcapkit import _block, ether, tcp_session

import portwatch
from portwatch.frames import TIME_RAW_KEY

YEAR_3000 = 32_503_680_000  # 3000-01-01T00:00:00Z, in seconds


def _capture(path: Path, micros: list[int]) -> Path:
    frames = [ether(p) for p in tcp_session([b"SSH-2.0-client\r\n"], [b"SSH-2.0-server\r\n"], dport=443)]
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    parts = [shb, _block(1, struct.pack("<HHI", 1, 0, 65535))]
    for i, f in enumerate(frames):
        t = min(micros[0] + i * micros[1], 2**64 - 1)
        parts.append(_block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(f), len(f)) + f))
    path.write_bytes(b"".join(parts))
    return path


@pytest.mark.parametrize(("micros", "seconds"), [
    ((YEAR_3000 * 1_000_000, 1_000_000), float(YEAR_3000)),
    ((2**64 - 1, 0), (2**64 - 1) / 1e6),
], ids=["year-3000", "2^64-1"])
def test_far_future_times_are_kept_as_numbers(tmp_path: Path, micros: tuple[int, int], seconds: float) -> None:
    a = portwatch.analyze(_capture(tmp_path / "future.pcapng", list(micros)), progress=False)
    assert len(a.flows) == 1
    row = a.flows.iloc[0]
    assert row["ts_start"] is pd.NaT and row["ts_end"] is pd.NaT
    assert str(a.flows["ts_start"].dtype) == "datetime64[ns, UTC]"
    raw = row["meta"][TIME_RAW_KEY]
    assert raw["ts_start"] == pytest.approx(seconds, rel=1e-12)
    assert raw["ts_end"] >= raw["ts_start"]
    # Everything a notebook does next works.
    assert len(a.servers) == 1 and a.servers["first_seen"].isna().all()
    assert "1 flows" in repr(a)
    assert "portwatch" in a._repr_html_()
    assert len(a.summary()) == len(a.findings) >= 1
    assert len(a.packets(0)) == 8
    parquet = a.to_parquet(tmp_path / "pq")
    assert parquet.exists()
    back = portwatch.read(parquet).flows
    assert back["ts_start"].isna().all()
    assert back["meta"][0][TIME_RAW_KEY]["ts_start"] == pytest.approx(seconds, rel=1e-12)


def test_out_of_range_times_read_back_from_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "flows.jsonl"
    line = ('{"ts_start": %r, "ts_end": %r, "transport": "tcp", "src_ip": "10.0.0.2", "src_port": 40000, '
            '"dst_ip": "10.0.0.1", "dst_port": 22, "orientation": "handshake", "protocol": "ssh", "confidence": 1.0, '
            '"assigned": ["ssh"], "packets_c2s": 1, "packets_s2c": 1, "bytes_c2s": 1, "bytes_s2c": 1, "meta": {}, '
            '"findings": []}\n')
    p.write_text(line % (1.8e13, 1.8e13) + line % (1e300, float("1e308")) + line % (1_700_000_000.0, 1_700_000_001.0))
    flows = portwatch.read(p).flows
    assert flows["ts_start"].isna().tolist() == [True, True, False]
    assert flows["meta"][0][TIME_RAW_KEY] == {"ts_start": 1.8e13, "ts_end": 1.8e13}
    assert TIME_RAW_KEY not in flows["meta"][2]
