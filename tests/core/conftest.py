"""The default configuration and its loaded setup, shared by the core's tests."""

from __future__ import annotations

import pytest

from portwatch.pipeline import Config, Setup


@pytest.fixture(scope="module")
def core() -> tuple[Config, Setup]:
    config = Config()
    return config, Setup.load(config)
