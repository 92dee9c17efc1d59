"""Refuse signature patterns that can make `re` backtrack for too long on hostile bytes.

`re` cannot be interrupted once a search starts, so the check happens when a signature is
loaded. Shapes known to blow up are spotted in the parse tree: a variable repeat inside another
((a+)+, (?:.*,){10}), alternation inside a repeat ((a|aa)*), more than two long variable repeats
(.*.*.*x: polynomial). Many such shapes are harmless in practice because a mandatory separator
keeps the repeats apart ((?: [!-~]{1,250}){0,6}); so a flagged user pattern is then *measured*: it
is searched over 4 KiB of crafted inputs in a child process, and refused if that takes longer than
a second. Shipped signatures are measured by the test suite instead of at every start.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from typing import Any

try:
    import re._constants as _c  # type: ignore[import-not-found]
    import re._parser as _p  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

LONG_REPEAT = 64
MAX_LONG_REPEATS = 2
BUDGET_SECONDS = 1.0
SAMPLE = 4096
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)}


def structural_risk(pattern: str) -> str | None:
    long_repeats = 0

    def walk(items: Any, inside: bool) -> str | None:
        nonlocal long_repeats
        for op, av in items:
            if op in _REPEATS:
                lo, hi, sub = av
                variable = lo != hi
                if variable and inside:
                    return "nested variable repeats (like (a+)+) can backtrack catastrophically"
                if variable and (hi == _c.MAXREPEAT or hi - lo > LONG_REPEAT):
                    long_repeats += 1
                found = walk(sub, inside or hi > 1)
            elif op is _c.SUBPATTERN:
                found = walk(av[-1], inside)
            elif op is _c.BRANCH:
                if inside:
                    return "alternation inside a repeat (like (a|aa)*) can backtrack catastrophically"
                found = next((f for f in (walk(b, inside) for b in av[1]) if f), None)
            elif op in (_c.ASSERT, _c.ASSERT_NOT):
                found = walk(av[1], inside)
            else:
                found = None
            if found:
                return found
        return None

    found = walk(_p.parse(pattern), False)
    if found:
        return found
    if long_repeats > MAX_LONG_REPEATS:
        return f"{long_repeats} long variable repeats (like .*.*.*x) backtrack polynomially"
    return None


def crafted_inputs(pattern: bytes, depth: int) -> list[bytes]:
    """Runs of each byte the pattern names and of pairs of them, each ending in a byte that breaks
    the match at the last position searched: what makes overlapping repeats try every split."""
    named = sorted({b for b in pattern if 0x20 <= b < 0x7F} | {0x61, 0x20, 0x2C, 0x00})[:24]
    runs = [bytes([b]) for b in named] + [bytes(p) for p in itertools.pairwise(named)]
    runs.append(bytes(range(0x20, 0x7F)))
    out = []
    for run in runs:
        body = (run * (depth // len(run) + 1))[: depth - 1]
        out += [body + b"\xff", body + b"!"]
    return out


_CHILD = """
import json, re, sys
req = json.load(sys.stdin)
rx = re.compile(req["p"].encode("latin-1"), re.DOTALL)
for s in req["inputs"]:
    rx.search(s.encode("latin-1"), 0, req["depth"])
"""


def too_slow(pattern: bytes, depth: int, budget: float = BUDGET_SECONDS) -> bool:
    """True when searching the crafted inputs takes longer than `budget` seconds (in a child)."""
    request = json.dumps({"p": pattern.decode("latin-1"), "depth": depth,
                          "inputs": [x.decode("latin-1") for x in crafted_inputs(pattern, depth)]})
    try:
        subprocess.run([sys.executable, "-I", "-S", "-c", _CHILD], input=request, text=True, timeout=budget + 1.0,
                       check=True, capture_output=True)
    except subprocess.TimeoutExpired:
        return True
    except (OSError, subprocess.CalledProcessError):
        return True  # cannot vouch for it
    return False


def backtracking_risk(pattern: str, source: bytes, depth: int, trusted: bool) -> str | None:
    """Why the pattern is refused, or None."""
    risk = structural_risk(source)  # type: ignore[arg-type]  # parsed as bytes, as compiled: (?L) is legal
    if risk is None or trusted:
        return None
    return risk if too_slow(source, depth) else None
