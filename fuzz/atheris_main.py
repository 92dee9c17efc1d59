#!/usr/bin/env python3
"""Run one fuzz target under atheris (libFuzzer): python fuzz/atheris_main.py TARGET [libFuzzer flags].

The corpus directory (fuzz/corpus/TARGET, git-ignored) is seeded from fuzz/seeds.py on first use;
libFuzzer keeps the inputs that reach new code there. A crash is written as crash-<sha1> in the
current directory, to be turned into a regression test under tests/hostile/.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import atheris

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

with atheris.instrument_imports(include=["portwatch", "targets"]):
    import targets

import seeds  # noqa: E402 - not instrumented: it only builds the starting corpus


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(targets.TARGETS)}}} [libFuzzer flags]")
    name = sys.argv[1]
    corpus = HERE / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in seeds.seeds(name):
        (corpus / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    argv = [sys.argv[0], *sys.argv[2:], str(corpus)]
    atheris.Setup(argv, targets.TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
