"""Parse /proc/net/{tcp,tcp6,udp,udp6} and /proc/PID/status. Pure: text in, facts out.

Addresses in /proc/net are the kernel's 32-bit words printed in host byte order, so on a
little-endian machine each 4-byte group reads backwards; `byteorder` says how to undo that.
A listener is a TCP socket in LISTEN, or a UDP socket bound to a port and connected to nobody
(a connected UDP socket is some client's, not a service).
"""

from __future__ import annotations

import ipaddress
import re
import sys

from .model import Listener

TCP_LISTEN = 0x0A
UDP_UNCONNECTED = 0x07  # TCP_CLOSE, which is what an unconnected UDP socket reports
_SOCKET_LINK = re.compile(r"^socket:\[(\d+)\]$")


def decode_address(hexaddr: str, byteorder: str = sys.byteorder) -> str:
    raw = bytes.fromhex(hexaddr)
    if len(raw) not in (4, 16):
        raise ValueError(f"address of {len(raw)} bytes")
    if byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    addr = ipaddress.ip_address(raw)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def parse_proc_net(
    text: str, transport: str, byteorder: str = sys.byteorder
) -> tuple[list[Listener], list[tuple[int, str]]]:
    """Listeners of one /proc/net table, and (line, reason) for each line that could not be read."""
    listeners: list[Listener] = []
    problems: list[tuple[int, str]] = []
    lines = text.splitlines()
    for lineno, line in enumerate(lines[1:], 2):  # the first line is the column header
        fields = line.split()
        if not fields:
            continue
        try:
            local, remote, state = fields[1], fields[2], int(fields[3], 16)
            uid, inode = int(fields[7]), int(fields[9])
            laddr, lport = local.split(":")
            _, rport = remote.split(":")
            address = decode_address(laddr, byteorder)
            port, remote_port = int(lport, 16), int(rport, 16)
        except (IndexError, ValueError) as exc:
            problems.append((lineno, f"unreadable socket line: {exc}"))
            continue
        if transport == "tcp":
            if state != TCP_LISTEN:
                continue
        elif state != UDP_UNCONNECTED or remote_port != 0 or port == 0:
            continue
        family = 6 if len(laddr) == 32 else 4
        listeners.append(Listener(transport, family, address, port, inode, uid))
    return listeners, problems


def socket_inode(link: str) -> int | None:
    """The inode of a /proc/PID/fd link target such as 'socket:[12345]'."""
    m = _SOCKET_LINK.match(link)
    return int(m.group(1)) if m else None


def effective_uid(status: str) -> int | None:
    """The effective uid from /proc/PID/status ('Uid: real effective saved fs')."""
    for line in status.splitlines():
        if line.startswith("Uid:"):
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                return int(parts[2])
    return None
