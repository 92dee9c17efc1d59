"""Attach a compiled classic BPF program to a socket (SO_ATTACH_FILTER).

The kernel runs the filter before a frame is copied to user space, so whatever the expression
excludes costs the monitor nothing. The program comes from the one compiler of every command,
`portwatch.bpf` (libpcap's, for Ethernet: AF_PACKET SOCK_RAW frames are Ethernet).
"""

from __future__ import annotations

import ctypes
import socket

from ..bpf import BPF_MAXINSNS, BpfError, Program, compile_filter, parse_dd

__all__ = ["BPF_MAXINSNS", "BpfError", "Program", "attach", "compile_filter", "parse_dd"]

SO_ATTACH_FILTER = 26


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
