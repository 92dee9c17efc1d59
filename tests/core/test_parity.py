"""The Rust core gives the records the Python engine gives, on every shipped real capture.

The Python engine is the oracle while the core replaces it (tests/oracle/compare_engines.py
runs the same comparison over any captures, e.g. the evaluation corpus).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tests" / "oracle"))

from compare_engines import core_records, differences, python_records  # noqa: E402

from portwatch.core_engine import CoreSetup  # noqa: E402
from portwatch.pipeline import Config, Setup  # noqa: E402

CAPTURES = sorted((REPO / "captures").glob("*.pcap")) + [REPO / "tests" / "monitor" / "data" / "ssh-443.pcap"]


@pytest.fixture(scope="module")
def engines():
    config = Config()
    setup = Setup.load(config)
    return setup, config, CoreSetup.of(setup, config)


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_core_records_equal_python_records(capture, engines):
    setup, config, core = engines
    py, py_err = python_records(str(capture), setup, config)
    co, co_err = core_records(str(capture), setup, config, core)
    assert py, "the oracle found flows"
    assert differences(py, co) == []
    assert co_err == py_err


def test_core_reports_an_unreadable_file_as_python_does(tmp_path, engines):
    setup, config, core = engines
    for name, data in (("empty.pcap", b""), ("text.pcap", b"hello world\n")):
        path = tmp_path / name
        path.write_bytes(data)
        py, py_err = python_records(str(path), setup, config)
        co, co_err = core_records(str(path), setup, config, core)
        assert (py, co) == ([], [])
        assert co_err == py_err and co_err


def test_core_keeps_the_flows_before_a_cut(tmp_path, engines):
    setup, config, core = engines
    data = (REPO / "captures" / "http-80.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: len(data) * 2 // 3])
    py, py_err = python_records(str(path), setup, config)
    co, co_err = core_records(str(path), setup, config, core)
    assert co_err == py_err and co_err
    assert differences(py, co) == []
