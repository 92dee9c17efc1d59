"""Fixtures for the scale tests: a generated capture (benchmarks/gen_capture.py), built once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CAPTURES = sorted((REPO / "captures").glob("*.pcap"))


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 packets, 500 concurrent flows: large enough (15 MB) that --workers splits it."""
    out = tmp_path_factory.mktemp("gen") / "gen20k.pcap"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "gen_capture.py"), "--packets", "20000",
                    "--concurrent", "500", "--seed", "7", "-o", str(out), "--quiet"], check=True, timeout=120)
    return out


@pytest.fixture(scope="session")
def slow_link(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 packets of a 2 Mbit/s link (about a minute): flows close and time out while it is
    read, as on a slow link's capture, not only in the drain at its end."""
    out = tmp_path_factory.mktemp("gen") / "slow20k.pcap"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "gen_capture.py"), "--packets", "20000",
                    "--concurrent", "500", "--seed", "7", "--gbps", "0.002", "-o", str(out), "--quiet"],
                   check=True, timeout=120)
    return out


def canonical(records, drop: tuple[str, ...] = ()) -> list[str]:
    """Records (FlowRecords, dicts or JSON lines) as sorted canonical JSON: order-free comparison.

    `drop`: fields left out of the comparison."""
    out = []
    for r in records:
        if isinstance(r, str):
            r = json.loads(r)
        elif not isinstance(r, dict):
            r = r.as_dict()
        out.append(json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True))
    return sorted(out)
