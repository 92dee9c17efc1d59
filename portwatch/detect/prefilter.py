"""Which first bytes can a signature match at all?

The engine skips a signature when no unit starts with a byte it could match, so most flows are
scored against a handful of candidates instead of the whole set. The set is derived from the
match's literal prefix or, for a regex anchored with `^`, from the regex's own parse tree; when it
cannot be bounded (a probe alone, an unanchored or multiline pattern, `.` or a negated class
first) the answer is None: always a candidate.
"""

from __future__ import annotations

import re
from typing import Any

try:
    import re._constants as _c  # type: ignore[import-not-found]
    import re._parser as _p  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python < 3.11 layout
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

Firsts = frozenset[int] | None
_ANCHORS = (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING)


def _cases(byte: int) -> set[int]:
    ch = chr(byte)
    return {byte, ord(ch.lower()) & 0xFF, ord(ch.upper()) & 0xFF} if ch.isalpha() else {byte}


def _first(items: Any, icase: bool) -> tuple[set[int] | None, bool]:
    """(possible first bytes, whether the sequence can match empty)."""
    out: set[int] = set()
    for op, av in items:
        if op is _c.AT:
            continue  # zero-width
        if op is _c.LITERAL:
            out |= _cases(av) if icase else {av}
            return out, False
        if op is _c.IN:
            found: set[int] = set()
            for sub_op, sub_av in av:
                if sub_op is _c.LITERAL:
                    found |= _cases(sub_av) if icase else {sub_av}
                elif sub_op is _c.RANGE:
                    for b in range(sub_av[0], sub_av[1] + 1):
                        found |= _cases(b) if icase else {b}
                else:  # NEGATE, CATEGORY: too wide to be worth bounding
                    return None, False
            return out | found, False
        if op is _c.SUBPATTERN:
            add_flags, del_flags, sub = av[1], av[2], av[3]
            sub_icase = (icase or bool(add_flags & _c.SRE_FLAG_IGNORECASE)) and not del_flags & _c.SRE_FLAG_IGNORECASE
            first, nullable = _first(sub, sub_icase)
            if first is None:
                return None, False
            out |= first
            if not nullable:
                return out, False
            continue
        if op is _c.BRANCH:
            nullable_any = False
            for alt in av[1]:
                first, nullable = _first(alt, icase)
                if first is None:
                    return None, False
                out |= first
                nullable_any |= nullable
            if not nullable_any:
                return out, False
            continue
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            lo, _hi, sub = av
            first, _ = _first(sub, icase)
            if first is None:
                return None, False
            out |= first
            if lo > 0:
                return out, False
            continue
        return None, False  # ANY, NOT_LITERAL, GROUPREF, assertions...
    return out, True


def regex_first_bytes(pattern: re.Pattern[bytes]) -> Firsts:
    if pattern.flags & re.MULTILINE:
        return None
    parsed = _p.parse(pattern.pattern.decode("latin-1"), pattern.flags & ~re.DOTALL)
    items = list(parsed)
    if not items or items[0][0] is not _c.AT or items[0][1] not in _ANCHORS:
        return None  # unanchored: the pattern may match anywhere in the unit
    first, nullable = _first(items[1:], bool(parsed.state.flags & _c.SRE_FLAG_IGNORECASE))
    if first is None or nullable:
        return None
    return frozenset(first)


def match_first_bytes(prefix: bytes | None, offset: int, regex: re.Pattern[bytes] | None) -> Firsts:
    """First bytes a unit must start with for one [[match]] to hold; None when any byte may."""
    if prefix is not None and offset == 0:
        return frozenset((prefix[0],))
    if regex is not None:
        return regex_first_bytes(regex)
    return None


def regex_byte_at(pattern: re.Pattern[bytes]) -> tuple[int, frozenset[int]] | None:
    """For an anchored pattern that opens with a fixed number of arbitrary bytes (a length field,
    `[\x00-\xff]{2}`), the offset after them and the bytes the unit must hold there; else None."""
    if pattern.flags & re.MULTILINE:
        return None
    parsed = _p.parse(pattern.pattern.decode("latin-1"), pattern.flags & ~re.DOTALL)
    items = list(parsed)
    if not items or items[0][0] is not _c.AT or items[0][1] not in _ANCHORS:
        return None
    icase = bool(parsed.state.flags & _c.SRE_FLAG_IGNORECASE)
    offset = 0
    for i, (op, av) in enumerate(items[1:], start=1):
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] == av[1] and _is_any_byte(av[2]):
            offset += av[0]
            continue
        if _is_any_byte([(op, av)]):
            offset += 1
            continue
        if offset == 0:
            return None  # the first byte is what regex_first_bytes is for
        first, nullable = _first(items[i:], icase)
        return None if first is None or nullable else (offset, frozenset(first))
    return None


def _is_any_byte(items: Any) -> bool:
    """One item that matches any single byte: `[\x00-\xff]` (or `.` under DOTALL)."""
    items = list(items)
    if len(items) != 1:
        return False
    op, av = items[0]
    if op is _c.IN:
        return len(av) == 1 and av[0][0] is _c.RANGE and av[0][1] == (0, 255)
    return False
