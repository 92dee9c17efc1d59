import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CAPTURES = REPO / "captures"
sys.path.insert(0, str(TESTS))


@pytest.fixture
def captures_dir() -> Path:
    return CAPTURES


def is_root() -> bool:
    return os.geteuid() == 0
