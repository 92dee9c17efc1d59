"""Bound the nesting of user TOML before tomllib sees it.

tomllib parses arrays and inline tables by recursion: `x = [[[[...]]]]` 2,000 levels deep raises
RecursionError (a traceback, or a monitor that dies on SIGHUP) instead of an error naming the file.
Every TOML file a user hands portwatch (`--policy`, `--signatures`, `signatures check`) is scanned
first, in one linear pass that skips strings and comments, and refused past MAX_TOML_NESTING
levels with `file:line: nested deeper than N levels`. No real file comes near: the deepest shipped
signature is 3 levels, the default policy 2. Dotted keys and table headers (`[a.b.c]`) nest the
result, not the parser, and are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from .userfile import read_bounded

MAX_TOML_NESTING = 32
# The core's limit on a signature file (signature::MAX_FILE): a larger one it refuses, unread here.
MAX_SIGNATURE_BYTES = 1 << 20

_SPECIAL = re.compile(r"""["'#\[\]{}\n]""")
_TOO_DEEP = f"nested deeper than {MAX_TOML_NESTING} levels (arrays and inline tables)"


def too_deep_line(text: str, limit: int = MAX_TOML_NESTING) -> int | None:
    """The line where `text` opens its (limit+1)th nested array or inline table, else None."""
    depth, line, i, n = 0, 1, 0, len(text)
    while True:
        m = _SPECIAL.search(text, i)
        if m is None:
            return None
        c, i = m.group(), m.end()
        if c == "\n":
            line += 1
        elif c == "#":
            nl = text.find("\n", i)
            if nl < 0:
                return None
            i = nl
        elif c in "[{":
            depth += 1
            if depth > limit:
                return line
        elif c in "]}":
            depth = max(depth - 1, 0)
        else:  # a string: skip it, counting its lines
            end = _string_end(text, i - 1, n)
            line += text.count("\n", i, end)
            i = end


def _string_end(text: str, start: int, n: int) -> int:
    """Index just past the string opening at `start` (or the end of the text if unterminated)."""
    q = text[start]
    multi = text.startswith(q * 3, start)
    i = start + (3 if multi else 1)
    while i < n:
        c = text[i]
        if c == "\\" and q == '"':
            i += 2
            continue
        if c == "\n" and not multi:
            return i
        if c == q:
            if not multi:
                return i + 1
            if text.startswith(q * 3, i):
                i += 3
                while i < n and text[i] == q:  # up to two quotes may end the content: """a"""""
                    i += 1
                return i
        i += 1
    return n


def check_text(text: str, path: str, error: type[Exception]) -> None:
    """Raise `error(path, line, "", problem)` (SignatureError, PolicyError) if `text` nests too deep."""
    line = too_deep_line(text)
    if line is not None:
        raise error(path, line, "", _TOO_DEEP)


def signature_files(dirs: Iterable[str]) -> list[Path]:
    """The user signature files `load_signatures(dirs)` reads (a missing one is its error to report)."""
    out: list[Path] = []
    for d in dirs:
        p = Path(d)
        if p.is_dir():
            out += sorted(p.glob("*.toml"))
        elif p.is_file():
            out.append(p)
    return out


def check_signature_dirs(dirs: Iterable[str]) -> None:
    """SignatureError naming the first user signature file that nests too deep."""
    from .signatures import SignatureError

    for f in signature_files(dirs):
        try:
            # A regular file of the core's size at most (its signature::MAX_FILE), else unread:
            # a FIFO or /dev/zero among the files is the loader's to report, not to wait on.
            text = read_bounded(f, MAX_SIGNATURE_BYTES, regular=True).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # the loader reports it, with its own wording
        check_text(text, str(f), SignatureError)
