"""Load and validate signature files (TOML, one protocol per file; format in signatures/README.md).

Validation errors name the file, the line and the field, because users write these files by hand.
Patterns are bytes regexes searched only in the first `depth` bytes of a direction, and patterns
whose structure can backtrack catastrophically (a repeat inside a repeat) are refused at load time:
Python's `re` has no time limit, so the loader is the place to stop them.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .regex_safety import backtracking_risk

DIRECTIONS = ("client", "server", "either")
TRANSPORTS = ("tcp", "udp")
MAX_DEPTH = 4096
DEFAULT_DEPTH = 256
DEFAULT_PATTERN_CONFIDENCE = 0.8
DEFAULT_PROBE_CONFIDENCE = 0.95
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,31}$")

TOP_FIELDS = {
    "protocol": str,
    "description": str,
    "transports": list,
    "services": list,
    "ports": list,
    "tunnel": bool,
    "any_port": bool,
    "encrypted": bool,
    "cleartext_auth": bool,
    "insecure": bool,
    "priority": int,
    "require_both_directions": bool,
    "prelude": bool,
    "match": list,
}
MATCH_FIELDS = {
    "direction": str,
    "transports": list,
    "prefix": str,
    "prefix_hex": str,
    "offset": int,
    "regex": str,
    "depth": int,
    "probe": str,
    "confidence": float,
    "min_length": int,
    "ports": list,
}


class SignatureError(Exception):
    """A signature file is invalid; str() is one line: file:line: field: problem."""

    def __init__(self, path: str, line: int | None, fieldname: str, problem: str) -> None:
        self.path, self.line, self.field, self.problem = path, line, fieldname, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {fieldname}: {problem}" if fieldname else f"{where}: {problem}")


@dataclass(slots=True, frozen=True)
class Match:
    direction: str
    transports: tuple[str, ...]
    prefix: bytes | None
    offset: int
    regex: re.Pattern[bytes] | None
    depth: int
    probe: str | None
    confidence: float
    min_length: int
    ports: frozenset[int] = frozenset()  # when set, holds only if either endpoint uses one of these ports


@dataclass(slots=True)
class Signature:
    protocol: str
    description: str
    transports: tuple[str, ...]
    services: tuple[str, ...]
    ports: tuple[int, ...]
    tunnel: bool
    any_port: bool  # runs on negotiated or arbitrary ports (RTP, BitTorrent): no mismatch off its ports
    encrypted: bool
    cleartext_auth: bool
    insecure: bool
    priority: int
    require_both_directions: bool
    matches: tuple[Match, ...]
    # Often only opens a flow that another protocol then carries (STUN before DTLS or RTP): it names
    # the flow only when no other protocol is recognised by the end of the evidence.
    prelude: bool = False
    source: str = ""
    origin: str = "builtin"
    probe_names: tuple[str, ...] = field(default=())


def default_signature_dir() -> Path:
    """The shipped signature set in a checkout (top-level signatures/); an installed wheel has no
    such folder and carries the same files inside the core (`builtin_signature_texts`)."""
    return _CHECKOUT / "signatures"


def in_checkout() -> bool:
    """Whether portwatch runs from its source tree (an editable install) rather than a wheel."""
    return (_CHECKOUT / "pyproject.toml").is_file() and (_CHECKOUT / "signatures").is_dir()


_CHECKOUT = Path(__file__).resolve().parent.parent.parent


def builtin_signature_texts() -> list[tuple[str, str]]:
    """(file name, TOML text) of the shipped set, as the core embedded it at build time."""
    from .. import _core

    return list(_core.builtin_signatures())


def _line_of(text: str, key: str, block: int | None) -> int | None:
    """Best-effort line number of `key` (inside the block-th [[match]] when given)."""
    lines = text.splitlines()
    start = 0
    if block is not None:
        seen = -1
        for i, line in enumerate(lines):
            if line.strip().startswith("[[match]]"):
                seen += 1
                if seen == block:
                    start = i
                    break
        else:
            return None
    pat = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, len(lines)):
        if pat.match(lines[i]):
            return i + 1
        if block is not None and i > start and lines[i].strip().startswith("[["):
            break
    return start + 1 if block is not None else None


def _text_bytes(value: str) -> bytes:
    """Signature strings stand for bytes: each code point 0-255 is one byte (TOML's \\u00XX)."""
    return value.encode("latin-1")


def parse_signature(text: str, path: str, origin: str = "builtin") -> Signature:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise SignatureError(path, int(m.group(1)) if m else None, "", f"invalid TOML: {exc}") from None

    def fail(key: str, problem: str, block: int | None = None) -> SignatureError:
        label = f"match[{block}].{key}" if block is not None else key
        return SignatureError(path, _line_of(text, key, block), label, problem)

    for key, value in doc.items():
        if key not in TOP_FIELDS:
            raise fail(key, f"unknown field (known: {', '.join(sorted(TOP_FIELDS))})")
        want = TOP_FIELDS[key]
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise fail(key, f"must be {want.__name__}, not {type(value).__name__}")
    proto = doc.get("protocol")
    if proto is None:
        raise SignatureError(path, 1, "protocol", "missing (every file names its protocol)")
    if not NAME_RE.match(proto):
        raise fail("protocol", "must be a short lowercase name (a-z, 0-9, '_', '.', '-')")
    transports = tuple(doc.get("transports", ["tcp"]))
    for t in transports:
        if t not in TRANSPORTS:
            raise fail("transports", f"{t!r} is not one of {TRANSPORTS}")
    services = doc.get("services", [])
    if not all(isinstance(s, str) and s for s in services):
        raise fail("services", "must be a list of service names")
    ports = doc.get("ports", [])
    if not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
        raise fail("ports", "must be a list of port numbers 1-65535")
    raw_matches = doc.get("match", [])
    if not raw_matches:
        raise SignatureError(path, len(text.splitlines()) or 1, "match", "at least one [[match]] table is required")
    matches = []
    for i, m in enumerate(raw_matches):
        if not isinstance(m, dict):
            raise fail("match", "must be an array of tables ([[match]])")
        matches.append(_parse_match(m, i, transports, fail, trusted=origin == "builtin"))
    directions = {m.direction for m in matches}
    both = doc.get("require_both_directions", False)
    if both and not ({"client", "either"} & directions and {"server", "either"} & directions):
        raise fail("require_both_directions", "needs a client-side and a server-side match")
    return Signature(
        protocol=proto,
        description=doc.get("description", ""),
        transports=transports,
        services=tuple(services),
        ports=tuple(ports),
        tunnel=doc.get("tunnel", False),
        any_port=doc.get("any_port", False),
        encrypted=doc.get("encrypted", False),
        cleartext_auth=doc.get("cleartext_auth", False),
        insecure=doc.get("insecure", False),
        priority=doc.get("priority", 0),
        require_both_directions=both,
        matches=tuple(matches),
        prelude=doc.get("prelude", False),
        source=path,
        origin=origin,
        probe_names=tuple(sorted({m.probe for m in matches if m.probe})),
    )


def _parse_match(m: dict[str, Any], i: int, transports: tuple[str, ...], fail: Any, trusted: bool) -> Match:
    from .probes import PROBES  # probes register by module; imported late to keep loading cheap

    for key, value in m.items():
        if key not in MATCH_FIELDS:
            raise fail(key, f"unknown field (known: {', '.join(sorted(MATCH_FIELDS))})", i)
        want = MATCH_FIELDS[key]
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise fail(key, f"must be {want.__name__}, not {type(value).__name__}", i)
    direction = m.get("direction", "either")
    if direction not in DIRECTIONS:
        raise fail("direction", f"must be one of {', '.join(DIRECTIONS)}", i)
    m_transports = tuple(m.get("transports", transports))
    if not set(m_transports) <= set(transports):
        raise fail("transports", "must be a subset of the signature's transports", i)
    prefix: bytes | None = None
    if "prefix" in m and "prefix_hex" in m:
        raise fail("prefix_hex", "give prefix or prefix_hex, not both", i)
    if "prefix" in m:
        try:
            prefix = _text_bytes(m["prefix"])
        except UnicodeEncodeError:
            raise fail("prefix", "characters above \\u00ff cannot stand for a byte", i) from None
    elif "prefix_hex" in m:
        try:
            prefix = bytes.fromhex(m["prefix_hex"])
        except ValueError:
            raise fail("prefix_hex", "not a hex string", i) from None
    if prefix is not None and not prefix:
        raise fail("prefix", "must not be empty", i)
    offset = m.get("offset", 0)
    if not 0 <= offset < MAX_DEPTH:
        raise fail("offset", f"must be 0..{MAX_DEPTH - 1}", i)
    depth = m.get("depth", DEFAULT_DEPTH)
    if not 1 <= depth <= MAX_DEPTH:
        raise fail("depth", f"must be 1..{MAX_DEPTH}", i)
    regex = None
    if "regex" in m:
        try:
            source = _text_bytes(m["regex"])
        except UnicodeEncodeError:
            raise fail("regex", "characters above \\u00ff cannot stand for a byte", i) from None
        if len(source) > 1024:
            raise fail("regex", "pattern longer than 1024 characters", i)
        try:
            regex = re.compile(source, re.DOTALL)
        except (re.error, OverflowError, RecursionError) as exc:  # a{99999999999}, ((((...: fuzz-found
            raise fail("regex", f"invalid pattern: {exc}", i) from None
        risk = backtracking_risk(m["regex"], source, m.get("depth", DEFAULT_DEPTH), trusted)
        if risk:
            raise fail("regex", risk, i)
    probe = m.get("probe")
    if probe is not None and probe not in PROBES:
        raise fail("probe", f"unknown probe {probe!r} (known: {', '.join(sorted(PROBES))})", i)
    if prefix is None and regex is None and probe is None:
        raise fail("match", "needs a prefix, prefix_hex, regex or probe", i)
    default_conf = DEFAULT_PROBE_CONFIDENCE if probe else DEFAULT_PATTERN_CONFIDENCE
    confidence = m.get("confidence", default_conf)
    if not 0.0 < confidence <= 1.0:
        raise fail("confidence", "must be in (0, 1]", i)
    min_length = m.get("min_length", 1)
    if not 1 <= min_length <= MAX_DEPTH:
        raise fail("min_length", f"must be 1..{MAX_DEPTH}", i)
    ports = m.get("ports", [])
    valid = all(isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports)
    if "ports" in m and not (ports and valid):
        raise fail("ports", "must be a non-empty list of port numbers 1-65535", i)
    return Match(
        direction, m_transports, prefix, offset, regex, depth, probe, float(confidence), min_length, frozenset(ports)
    )


def load_file(path: Path, origin: str) -> Signature:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SignatureError(str(path), None, "", f"cannot read: {exc}") from None
    return parse_signature(text, str(path), origin)


def load_signatures(extra_dirs: list[str] | tuple[str, ...] = (), include_default: bool = True) -> list[Signature]:
    """The default set, then each user directory in order; a user file replaces a same-named protocol."""
    by_protocol: dict[str, Signature] = {}
    dirs: list[tuple[Path, str]] = []
    if include_default:
        dirs.append((default_signature_dir(), "builtin"))
    for d in extra_dirs:
        p = Path(d)
        if not p.is_dir():
            if p.is_file():
                dirs.append((p, "user"))
                continue
            raise SignatureError(str(p), None, "", "no such signature directory")
        dirs.append((p, "user"))
    if include_default and not in_checkout():
        dirs.pop(0)
        for name, text in builtin_signature_texts():
            sig = parse_signature(text, name, "builtin")
            by_protocol[sig.protocol] = sig
    for d, origin in dirs:
        files = [d] if d.is_file() else sorted(d.glob("*.toml"))
        for f in files:
            sig = load_file(f, origin)
            by_protocol[sig.protocol] = sig
    return sorted(by_protocol.values(), key=lambda s: s.protocol)
