#!/usr/bin/env python3
"""Regenerate portwatch/data/iana-services.gz, the registry behind `--services iana`.

The source is IANA's Service Name and Transport Protocol Port Number Registry, read either as
Wireshark ships it (`/usr/share/wireshark/services`, Debian package libwireshark-data: Wireshark's
tools/make-services.py builds it from IANA's CSV, merging transports as `name port/tcp/udp`) or as
IANA publishes it (`--csv service-names-port-numbers.csv`, from
https://www.iana.org/assignments/service-names-port-numbers/service-names-port-numbers.csv).

The output is plain services(5), the format portwatch's parser reads (portwatch/services.py): one
line per name, port and transport (merged transports and port ranges expanded), descriptions
dropped, a header saying where the data came from, when, and under which terms. gzip with a fixed
mtime, so the same input gives the same bytes.

    python3 contrib/iana-services.py                     # from /usr/share/wireshark/services
    python3 contrib/iana-services.py --csv FILE --date 2026-12-01
    python3 contrib/iana-services.py --check             # does the shipped file match the source?

Not run by the tests (they check the shipped file, not the machine's Wireshark).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import io
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "portwatch" / "data" / "iana-services.gz"
WIRESHARK = Path("/usr/share/wireshark/services")
IANA_CSV_URL = "https://www.iana.org/assignments/service-names-port-numbers/service-names-port-numbers.csv"
TERMS = ("IANA's protocol registries may be freely used by any party for any purpose: IANA and the IETF Trust "
         "dedicate them to the public domain under CC0 1.0 (https://www.iana.org/help/licensing-terms, "
         "joint statement of 10 November 2021)")
TRANSPORTS = ("tcp", "udp", "sctp", "dccp")  # what the registry assigns and portwatch's parser accepts
MAX_RANGE = 1024  # a registry line naming more ports than this is an error, not 64k output lines

Entry = tuple[int, str, str]  # port, transport, name


def _ports(text: str) -> range:
    lo, _, hi = text.partition("-")
    first, last = int(lo), int(hi or lo)
    if not 0 <= first <= last <= 65535 or last - first >= MAX_RANGE:
        raise ValueError(f"bad port or range {text!r}")
    return range(first, last + 1)


def from_wireshark(text: str) -> Iterator[Entry]:
    """`name port[-port]/proto[/proto...] [# description]` lines."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ValueError(f"line {lineno}: expected 'name port/protocols', got {raw!r}")
        name, spec = fields
        port_s, _, protos = spec.partition("/")
        for port in _ports(port_s):
            for proto in protos.lower().split("/"):
                if proto in TRANSPORTS:
                    yield port, proto, name


def from_iana_csv(text: str) -> Iterator[Entry]:
    """IANA's CSV: rows without a service name or port (reserved, unassigned) are skipped."""
    for row in csv.DictReader(io.StringIO(text)):
        name = (row.get("Service Name") or "").strip()
        port_s = (row.get("Port Number") or "").strip()
        proto = (row.get("Transport Protocol") or "").strip().lower()
        if not name or not port_s or proto not in TRANSPORTS or any(c.isspace() for c in name):
            continue
        for port in _ports(port_s):
            yield port, proto, name


def render(entries: Iterable[Entry], header: list[str]) -> bytes:
    lines = [f"# {h}" for h in header]
    seen: set[Entry] = set()
    # by port, then transport in the registry's usual order; names in source order within a port
    order = {t: i for i, t in enumerate(TRANSPORTS)}
    for port, proto, name in sorted(entries, key=lambda e: (e[0], order[e[1]])):
        if (port, proto, name) in seen:
            continue
        seen.add((port, proto, name))
        lines.append(f"{name}\t{port}/{proto}")
    return ("\n".join(lines) + "\n").encode()


def package_of(path: Path) -> str | None:
    """`package version` of the Debian package that owns `path`, if any."""
    try:
        owner = subprocess.run(["dpkg-query", "-S", str(path)], capture_output=True, text=True, check=True)
        pkg = owner.stdout.split(":", 1)[0].strip()
        version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True,
                                 check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{pkg} {version}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", type=Path, default=WIRESHARK, help="Wireshark's services file")
    ap.add_argument("--csv", type=Path, help="IANA's CSV instead of Wireshark's file")
    ap.add_argument("--date", help="the data's date (default: the source file's modification date)")
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="compare with the output file instead of writing it")
    args = ap.parse_args(argv)
    src: Path = args.csv or args.source
    text = src.read_text(encoding="utf-8", errors="replace")
    date = args.date or datetime.date.fromtimestamp(src.stat().st_mtime).isoformat()
    if args.csv:
        entries = list(from_iana_csv(text))
        origin = f"IANA's CSV ({IANA_CSV_URL}), file {src.name}"
    else:
        entries = list(from_wireshark(text))
        pkg = package_of(src)
        origin = (f"{src}{f' from Debian package {pkg}' if pkg else ''}, Wireshark's copy of IANA's CSV "
                  f"({IANA_CSV_URL})")
    header = [
        "IANA Service Name and Transport Protocol Port Number Registry, as services(5), for portwatch --services iana",
        f"Source: {origin}; file dated {date}",
        f"Terms: {TERMS}",
        "Regenerate: python3 contrib/iana-services.py (one line per name, port and transport; port ranges "
        "expanded; descriptions dropped)",
    ]
    data = render(entries, header)
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    if args.check:
        same = args.output.exists() and gzip.decompress(args.output.read_bytes()) == data
        print(f"{args.output}: {'matches' if same else 'differs from'} {src}")
        return 0 if same else 1
    args.output.write_bytes(packed)
    ports = {(p, t) for p, t, _ in entries}
    count = data.count(b"\n") - len(header)
    print(f"{args.output}: {count} entries, {len(ports)} port/transport pairs, "
          f"{len(data)} bytes, {len(packed)} gzipped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
