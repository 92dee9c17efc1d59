"""Which capture files a list of paths means: a file as it is, a directory as every capture in it.

Shared by `portwatch analyze` (positional paths and -r FILE) and `portwatch.analyze()`. Imports
nothing heavy: the CLI uses it before anything is loaded.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz", ".cap.gz")


class NoCaptures(ValueError):
    """A directory holds no capture file; str() names it."""


def expand(paths: Iterable[str | os.PathLike[str]], strict: bool = True) -> list[str]:
    """Each path as given, a directory replaced by its capture files (by name, sorted, not recursing).
    With `strict`, a directory without any raises NoCaptures."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if os.fspath(p) != "-" and path.is_dir():
            found = [str(f) for f in sorted(path.iterdir()) if f.name.endswith(CAPTURE_SUFFIXES) and f.is_file()]
            if not found and strict:
                raise NoCaptures(f"{os.fspath(p)}: a directory without captures ({', '.join(CAPTURE_SUFFIXES)})")
            out.extend(found)
        else:
            out.append(os.fspath(p))
    return out
