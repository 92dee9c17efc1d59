"""The `portwatch` command's entry point ([project.scripts] and `python -m portwatch`)."""

from __future__ import annotations

import gc


def main() -> None:
    """Load the command line with the cyclic collector off, and run it.

    Loading makes ~100,000 objects and frees none of them, yet each pass of the collector walked
    them: 3% of the instructions of `analyze` on a small capture (callgrind). `cli_common.Main`
    freezes what was loaded and turns the collector back on before any command runs.
    """
    gc.disable()
    from .cli import main as cli

    cli()
