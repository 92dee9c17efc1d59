"""The commands tune the garbage collector for a long run; the library leaves it to its host."""

from __future__ import annotations

import gc
import subprocess
import sys
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


def _collector_after(args: list[str]) -> str:
    """The collector's state once the `portwatch` entry point ran `args` in a process of its own."""
    code = ("import gc, sys\nfrom portwatch.launch import main\nsys.argv = ['portwatch', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(gc.isenabled(), gc.get_freeze_count() > 0, gc.get_threshold()[0])\n")
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    return run.stdout.splitlines()[-1]


def test_the_entry_point_turns_the_collector_back_on_for_every_command(tmp_path: Path) -> None:
    # It loads the command line with the collector off; a command finds it on, what was loaded
    # frozen, and `analyze` tunes it further.
    assert _collector_after(["services", "22"]) == "True True 700"
    out = str(tmp_path / "o.jsonl")
    assert _collector_after(["analyze", "-q", "--format", "jsonl", "-o", out, CAPTURE]) == \
        f"True True {YOUNG_COLLECTION_EVERY}"
