"""Files shipped inside the package (`portwatch/data/`)."""

from __future__ import annotations

from pathlib import Path

# The package is installed as files (a maturin wheel, or the source tree): a path beside this
# module is the file. `importlib.resources` would say the same, but importing it (tempfile,
# shutil, the zip machinery) for every command was, with bpf's tcpdump helpers, 5% of the
# instructions of a one-flow `portwatch analyze`.
DATA_DIR = Path(__file__).resolve().parent / "data"


def data_file(name: str) -> Path:
    return DATA_DIR / name
