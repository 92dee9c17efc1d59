"""Issue 18 item 1: input that was not read prints nothing that looks like a clean report."""

from __future__ import annotations

import pytest
from _kit import CAPTURES, SERVICES, run


@pytest.fixture
def bad_inputs(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pcap"
    text.write_text("hello, not a capture\n")
    folder = tmp_path / "nothing-here"
    folder.mkdir()
    return {"missing": str(tmp_path / "missing.pcap"), "empty": str(empty), "text": str(text),
            "empty directory": str(folder)}


@pytest.mark.parametrize("case", ["missing", "empty", "text", "empty directory"])
@pytest.mark.parametrize("extra", [[], ["--findings-only"], ["--servers"]])
def test_nothing_on_stdout_for_input_not_read(bad_inputs, case, extra):
    res = run("analyze", *SERVICES, *extra, bad_inputs[case])
    assert res.exit_code == 2
    assert res.stdout == ""  # no "No findings.", no empty table, no "0 packets, 0 flows from"
    assert "portwatch: error:" in res.stderr


def test_a_bad_capture_among_good_ones_still_reports_the_good(bad_inputs):
    res = run("analyze", *SERVICES, bad_inputs["empty"], str(CAPTURES / "ssh-443.pcap"))
    assert res.exit_code == 2
    assert "tunnel" in res.stdout and "from ssh-443.pcap" in res.stdout
    assert "empty.pcap" not in res.stdout
