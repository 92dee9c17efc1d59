"""A brief run of every fuzz target (fuzz/targets.py) under hypothesis, for CI.

Each target gets a few hundred inputs: arbitrary bytes and mutations of its seeds. The long runs
are `fuzz/run.sh` (atheris, or hypothesis where atheris is missing); see fuzz/README.md.
Derandomised, so a CI failure reproduces locally with the same command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fuzz"))

import hypo_main
import targets

EXAMPLES = {"decode": 400, "sources": 300, "reassembly": 400, "probes": 300, "signature": 300, "policy": 200}


@pytest.mark.parametrize("name", sorted(targets.TARGETS))
def test_fuzz_target_briefly(name):
    target = targets.TARGETS[name]

    @settings(max_examples=EXAMPLES[name], deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(hypo_main.inputs(name))
    def run(data: bytes) -> None:
        target(data)

    run()


def test_every_registered_probe_is_fuzzed():
    from portwatch.detect.probes import PROBES

    assert set(targets._PROBE_NAMES) == set(PROBES)
