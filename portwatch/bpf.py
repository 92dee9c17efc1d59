"""Compile a pcap-filter(7) expression to classic BPF: the one compiler of `analyze -f` and
`monitor --bpf`.

Compilation is libpcap's, through `tcpdump -dd` (a process per link type, all run at once at
start-up): for files with `-r` on a header-only savefile of the link type, so the program is the
one `tcpdump -r` runs (savefiles differ from live sockets for NULL: any BSD's AF_INET6); for a
socket with `-y EN10MB`. scapy's `compile_filter` (libpcap through ctypes, as pcap_open_dead) is
the fallback when tcpdump is not installed. The live monitor attaches the Ethernet program to
its socket (the kernel runs it); for files the core runs the program of each frame's own link
type (`core/src/bpf.rs`), before decoding, as libpcap's `bpf_filter` would: a pcapng whose
interfaces differ in link type gets each its own program.
"""

from __future__ import annotations

import re
import struct
import time
from pathlib import Path

BPF_MAXINSNS = 4096
_INSN = re.compile(r"\{\s*(0x[0-9a-fA-F]+|\d+),\s*(\d+),\s*(\d+),\s*(0x[0-9a-fA-F]+|\d+)\s*\}")
SNAPLEN = 262144
COMPILE_TIMEOUT = 30.0

Program = list[tuple[int, int, int, int]]
# Link types the core decodes (core/src/decode/mod.rs SUPPORTED_LINKTYPES) and libpcap's name of
# each: the name `tcpdump -y` takes. The savefile link types 12, 14 and 101 are all raw IP.
LINK_NAMES: dict[int, str] = {
    0: "NULL", 1: "EN10MB", 9: "PPP", 12: "RAW", 14: "RAW", 50: "PPP_SERIAL", 101: "RAW",
    104: "C_HDLC", 108: "LOOP", 113: "LINUX_SLL", 228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2",
    10: "FDDI", 105: "IEEE802_11", 119: "PRISM_HEADER", 127: "IEEE802_11_RADIO", 163: "IEEE802_11_RADIO_AVS",
    192: "PPI", 239: "NFLOG",
}
# The savefile link type of each name (the header `tcpdump -r` compiles for).
_LINKTYPE_OF_NAME = {"NULL": 0, "EN10MB": 1, "PPP": 9, "RAW": 101, "PPP_SERIAL": 50, "C_HDLC": 104, "LOOP": 108,
                     "LINUX_SLL": 113, "IPV4": 228, "IPV6": 229, "LINUX_SLL2": 276, "FDDI": 10,
                     "IEEE802_11": 105, "PRISM_HEADER": 119, "IEEE802_11_RADIO": 127, "IEEE802_11_RADIO_AVS": 163,
                     "PPI": 192, "NFLOG": 239}
# scapy (pcap_open_dead) takes libpcap's DLT numbers.
_DLT_OF_NAME = {"NULL": 0, "EN10MB": 1, "PPP": 9, "RAW": 12, "PPP_SERIAL": 50, "C_HDLC": 104, "LOOP": 108,
                "LINUX_SLL": 113, "IPV4": 228, "IPV6": 229, "LINUX_SLL2": 276, "FDDI": 10, "IEEE802_11": 105,
                "PRISM_HEADER": 119, "IEEE802_11_RADIO": 127, "IEEE802_11_RADIO_AVS": 163, "PPI": 192, "NFLOG": 239}


class BpfError(Exception):
    """A filter that cannot be compiled: the message is one line for the user."""


def parse_dd(text: str) -> Program:
    """Instructions from `tcpdump -dd` output (C array initialisers)."""
    prog = [(int(c, 0), int(jt), int(jf), int(k, 0)) for c, jt, jf, k in _INSN.findall(text)]
    if not prog:
        raise BpfError("no BPF instructions in compiler output")
    if len(prog) > BPF_MAXINSNS:
        raise BpfError(f"filter too long ({len(prog)} instructions, the kernel takes {BPF_MAXINSNS})")
    return prog


def _tcpdump_args(tcpdump: str, link: str, expr: str, snaplen: int, savefiles: Path | None) -> list[str]:
    if savefiles is None:
        return [tcpdump, "-y", link, "-s", str(snaplen), "-dd", "--", expr]
    # Compiled for reading a savefile of this link type, as `tcpdump -r` compiles: for NULL that
    # accepts every BSD's AF_INET6 value, not only this host's.
    header = savefiles / f"{link}.pcap"
    header.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, _LINKTYPE_OF_NAME.get(link, 1)))
    return [tcpdump, "-r", str(header), "-dd", "--", expr]


def _shown(expr: str) -> str:
    """The expression as an error quotes it: cut, as a long one (thousands of clauses) made the
    one-line error thousands of characters long."""
    return repr(expr) if len(expr) <= 120 else repr(expr[:117]) + "... (" + str(len(expr)) + " characters)"


def _tcpdump_error(expr: str, stderr: str) -> BpfError:
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Warning")]
    return BpfError(f"bad filter {_shown(expr)}: {lines[-1] if lines else 'tcpdump failed'}")


def compile_filter(expr: str, snaplen: int = SNAPLEN, link: str = "EN10MB") -> Program:
    """Compile `expr` for one link type (libpcap's name; Ethernet, as AF_PACKET frames are)."""
    prog = compile_links(expr, (link,), snaplen)[link]
    assert prog is not None  # compile_links raises when the expression compiles for no link type
    return prog


def find_tcpdump() -> str | None:
    """tcpdump's path, None when it is not installed."""
    # Imported here (shutil, tempfile, subprocess): every command imports this module, and
    # only a capture filter runs tcpdump.
    import shutil

    return shutil.which("tcpdump")


def compile_links(expr: str, links: tuple[str, ...], snaplen: int = SNAPLEN,
                  savefile: bool = False) -> dict[str, Program | None]:
    """`expr` compiled for each link type name; None for a link type it does not apply to
    (`vlan` on raw IP). `savefile`: for frames read from a file (else from a live socket).
    BpfError when it compiles for none of them (a bad expression), or when neither tcpdump nor
    scapy is there to compile it."""
    if not expr.strip():
        raise BpfError("empty filter expression")
    import tempfile  # here, as in find_tcpdump

    tcpdump = find_tcpdump()
    if tcpdump and savefile:
        with tempfile.TemporaryDirectory(prefix="portwatch-bpf-") as tmp:
            return _compile_tcpdump(tcpdump, expr, links, snaplen, Path(tmp))
    if tcpdump:
        return _compile_tcpdump(tcpdump, expr, links, snaplen, None)
    out: dict[str, Program | None] = {}
    errors: dict[str, BpfError] = {}
    for link in links:
        try:
            out[link] = _compile_scapy(expr, _DLT_OF_NAME.get(link, 1))
        except BpfError as exc:
            if "neither tcpdump nor scapy" in str(exc):
                raise
            errors[link] = exc
    return _outcome(links, out, errors)


def _outcome(links: tuple[str, ...], out: dict[str, Program | None],
             errors: dict[str, BpfError]) -> dict[str, Program | None]:
    if not out:
        # The Ethernet message when there is one: the link type most expressions are written for.
        raise errors.get("EN10MB") or next(iter(errors.values()))
    for link in links:
        out.setdefault(link, None)
    return out


def _compile_tcpdump(tcpdump: str, expr: str, links: tuple[str, ...], snaplen: int,
                     savefiles: Path | None) -> dict[str, Program | None]:
    import subprocess

    out: dict[str, Program | None] = {}
    errors: dict[str, BpfError] = {}
    # One process per link type, all at once: start-up costs one compile, not several.
    procs = {link: subprocess.Popen(_tcpdump_args(tcpdump, link, expr, snaplen, savefiles),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                    text=True)
             for link in links}
    # One deadline for them all: libpcap's optimizer is superlinear (1,000 `or` clauses took 13 s
    # a process), and a timeout each, waited for in turn, added up to minutes.
    deadline = time.monotonic() + COMPILE_TIMEOUT
    for link, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            errors[link] = BpfError(f"bad filter {_shown(expr)}: tcpdump took over {COMPILE_TIMEOUT:.0f} s")
            continue
        if proc.returncode != 0:
            errors[link] = _tcpdump_error(expr, stderr)
            continue
        try:
            out[link] = parse_dd(stdout)
        except BpfError as exc:
            errors[link] = exc
    return _outcome(links, out, errors)


def compile_for_capture(expr: str, snaplen: int = SNAPLEN) -> dict[int, Program | None]:
    """`expr` for every link type the core decodes, by savefile link type number (what the core
    takes: `_core.Analyzer.set_filter`)."""
    names = tuple(dict.fromkeys(LINK_NAMES.values()))
    by_name = compile_links(expr, names, snaplen, savefile=True)
    return {linktype: by_name[name] for linktype, name in LINK_NAMES.items()}


def _compile_scapy(expr: str, dlt: int) -> Program:
    try:
        from scapy.arch.common import compile_filter as scapy_compile
        from scapy.error import Scapy_Exception
    except ImportError as exc:
        raise BpfError(f"cannot compile the BPF filter: neither tcpdump nor scapy is installed ({exc})") from None
    if dlt == 0:
        # scapy reads linktype 0 as "none given" and would guess from an interface instead.
        raise BpfError(f"bad filter {_shown(expr)}: scapy cannot compile for link type NULL")
    try:
        fprog = scapy_compile(expr, linktype=dlt)
    except ImportError as exc:  # scapy is there, the libpcap it loads is not
        raise BpfError(f"cannot compile the BPF filter: neither tcpdump nor scapy is installed ({exc})") from None
    except (Scapy_Exception, OSError) as exc:
        raise BpfError(f"bad filter {_shown(expr)}: {exc}") from None
    # scapy's bpf_insn declares k signed: a mask such as 0xfffff000 comes back negative.
    return [(i.code, i.jt, i.jf, i.k & 0xFFFFFFFF) for i in fprog.bf_insns[: fprog.bf_len]]
