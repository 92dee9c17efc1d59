"""The commands tune the garbage collector for a long run; the library leaves it to its host."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import portwatch
from portwatch.cli import main
from portwatch.cli_common import YOUNG_COLLECTION_EVERY

CAPTURE = str(Path(__file__).resolve().parents[1] / "captures" / "ssh-443.pcap")


@pytest.fixture
def collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.unfreeze()  # other tests' commands ran in this process too
    gc.set_threshold(700, 10, 10)
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_analyze_command_freezes_what_is_loaded_and_collects_young_objects_less_often(collector: None) -> None:
    result = CliRunner().invoke(main, ["analyze", "--format", "jsonl", "--quiet", CAPTURE])
    assert result.exit_code == 1, result.output  # SSH on 443: a high finding
    assert '"protocol":"ssh"' in result.output
    assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY
    assert gc.get_freeze_count() > 0


def test_the_library_leaves_the_notebook_collector_alone(collector: None) -> None:
    analysis = portwatch.analyze(CAPTURE, progress=False)
    assert set(analysis.flows["protocol"]) == {"ssh"}
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
