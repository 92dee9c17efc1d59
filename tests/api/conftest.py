"""Fixtures for the API tests: the mixed capture (see _api_pcap.build_mixed), built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _api_pcap import build_mixed

# Headless: set before anything imports matplotlib (its backend is read at import time).
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def mixed_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mixed(tmp_path_factory.mktemp("pcap") / "mixed.pcap")
