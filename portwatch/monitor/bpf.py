"""Compile a pcap-filter(7) expression to classic BPF and attach it to a socket (SO_ATTACH_FILTER).

The kernel runs the filter before a frame is copied to user space, so whatever the expression
excludes costs the monitor nothing. Compilation is libpcap's, through `tcpdump -dd` (one process
run at start-up and at no other time); scapy's `compile_filter` (libpcap through ctypes) is the
fallback when tcpdump is not installed.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import socket
import subprocess

SO_ATTACH_FILTER = 26
BPF_MAXINSNS = 4096
_INSN = re.compile(r"\{\s*(0x[0-9a-fA-F]+|\d+),\s*(\d+),\s*(\d+),\s*(0x[0-9a-fA-F]+|\d+)\s*\}")

Program = list[tuple[int, int, int, int]]


class BpfError(Exception):
    pass


def parse_dd(text: str) -> Program:
    """Instructions from `tcpdump -dd` output (C array initialisers)."""
    prog = [(int(c, 0), int(jt), int(jf), int(k, 0)) for c, jt, jf, k in _INSN.findall(text)]
    if not prog:
        raise BpfError("no BPF instructions in compiler output")
    if len(prog) > BPF_MAXINSNS:
        raise BpfError(f"filter too long ({len(prog)} instructions, the kernel takes {BPF_MAXINSNS})")
    return prog


def compile_filter(expr: str, snaplen: int = 262144) -> Program:
    """Compile `expr` for Ethernet (linktype 1), as AF_PACKET SOCK_RAW frames are."""
    tcpdump = shutil.which("tcpdump")
    if tcpdump:
        proc = subprocess.run(
            [tcpdump, "-y", "EN10MB", "-s", str(snaplen), "-dd", "--", expr],
            capture_output=True, text=True, timeout=30, check=False,
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("Warning")]
            raise BpfError(f"bad filter {expr!r}: {lines[-1] if lines else 'tcpdump failed'}")
        return parse_dd(proc.stdout)
    return _compile_scapy(expr)


def _compile_scapy(expr: str) -> Program:
    try:
        from scapy.arch.common import compile_filter as scapy_compile
        from scapy.error import Scapy_Exception
    except ImportError as exc:  # pragma: no cover - scapy is a dependency
        raise BpfError(f"cannot compile BPF filters: neither tcpdump nor scapy ({exc})") from None
    try:
        fprog = scapy_compile(expr, linktype=1)
    except Scapy_Exception as exc:
        raise BpfError(f"bad filter {expr!r}: {exc}") from None
    return [(i.code, i.jt, i.jf, i.k) for i in fprog.bf_insns[: fprog.bf_len]]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def attach(sock: socket.socket, prog: Program) -> None:
    """SO_ATTACH_FILTER: setsockopt copies the program, so the ctypes buffers may go right after."""
    insns = (_SockFilter * len(prog))(*[_SockFilter(c, jt, jf, k) for c, jt, jf, k in prog])
    fprog = _SockFprog(len(prog), ctypes.cast(insns, ctypes.POINTER(_SockFilter)))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(ctypes.string_at(ctypes.addressof(fprog),
                                                                            ctypes.sizeof(fprog))))
