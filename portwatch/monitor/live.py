"""Live capture from AF_PACKET sockets, one per interface, yielding the records of capture/sources.py.

Records are `(ts, 1, frame, 0, length)`: AF_PACKET SOCK_RAW delivers whole Ethernet frames
(linktype 1). Each frame is received into one reused buffer and copied out at its exact length:
`recv(n)` would allocate n bytes for every frame and shrink them, and n must be large (GRO), and
the decoder needs immutable bytes (addresses sliced from the frame become dictionary keys).

Why the socket module and not scapy: scapy's L2 listen socket builds a packet object per frame
and reads through its own select loop; benchmarks/monitor_rate.py measured it at a small
fraction of the rate of `recv_into` on a plain socket (the figures are in docs/monitor.md), and
the decoder needs raw bytes anyway. scapy remains the fallback BPF compiler (bpf.py).

`batch()` yields frames for a bounded time and then returns, so the monitor loop gets control back
several times a second (timers, signals, expiry) even when the link is silent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from . import bpf

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_STATISTICS = 6
PACKET_MR_PROMISC = 1
SO_RCVBUFFORCE = 33  # not exported by the socket module; root may exceed net.core.rmem_max
MSG_TRUNC = socket.MSG_TRUNC
FRAME_MAX = 262144  # GRO/TSO on the capturing host can hand up frames far beyond the MTU
DRAIN_MAX = 256  # frames read from one socket before the others get a turn
log = logging.getLogger("portwatch.monitor")


class LiveError(Exception):
    pass


@dataclass(slots=True)
class LiveStats:
    received: int = 0  # frames handed to the analyzer
    kernel_drops: int = 0  # PACKET_STATISTICS tp_drops, summed over sockets and reads
    kernel_seen: int = 0  # PACKET_STATISTICS tp_packets (frames that passed the filter)
    truncated: int = 0  # frames longer than the receive buffer (cut, still analyzed)
    socket_errors: int = 0  # errors the sockets reported (interface down...)


class LiveSource:
    def __init__(
        self, interfaces: list[str], bpf_expr: str | None = None, promisc: bool = True,
        rcvbuf: int = 32 << 20,
    ) -> None:
        self.interfaces = list(interfaces)
        self.stats = LiveStats()
        self.socks: list[socket.socket] = []
        self.buf = bytearray(FRAME_MAX)
        self.view = memoryview(self.buf)
        prog = bpf.compile_filter(bpf_expr) if bpf_expr else None
        try:
            for name in self.interfaces:
                self.socks.append(self._open(name, prog, promisc, rcvbuf))
        except BaseException:
            self.close()
            raise
        self._fds = {s.fileno(): s for s in self.socks}
        self._names = {s.fileno(): name for s, name in zip(self.socks, self.interfaces, strict=True)}
        self.poller = select.poll()
        for s in self.socks:
            self.poller.register(s, select.POLLIN)

    @staticmethod
    def _open(name: str, prog: bpf.Program | None, promisc: bool, rcvbuf: int) -> socket.socket:
        try:
            ifindex = socket.if_nametoindex(name)
        except OSError:
            raise LiveError(f"{name}: no such interface") from None
        try:
            # Protocol 0 receives nothing until bind(): the filter is attached before the first
            # frame can be queued, so no unfiltered frame from any interface slips in.
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        except PermissionError:
            raise LiveError("opening a packet socket needs root or CAP_NET_RAW") from None
        try:
            if prog is not None:
                bpf.attach(sock, prog)
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if promisc:
                mreq = struct.pack("iHH8s", ifindex, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.bind((name, ETH_P_ALL))
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise LiveError(f"{name}: {exc.strerror or exc}") from None
        return sock

    def batch(self, seconds: float, stop: list[bool] | None = None, max_packets: int | None = None) -> Iterator:
        """Yield frames for about `seconds`, or until `stop[0]` is set or `max_packets` are yielded."""
        deadline = time.monotonic() + seconds
        view = self.view
        stats = self.stats
        now = time.time
        n = 0
        limit = max_packets if max_packets is not None else -1
        while True:
            if stop is not None and stop[0]:
                return
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return
            try:
                ready = self.poller.poll(timeout * 1000)
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for old kernels
                continue
            for fd, _ev in ready:
                recv_into = self._fds[fd].recv_into
                for _ in range(DRAIN_MAX):
                    try:
                        length = recv_into(view, FRAME_MAX, MSG_TRUNC)
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        # The interface went down (ENETDOWN) or similar: the kernel reports it
                        # once; capture resumes by itself when the link comes back.
                        self._socket_error(fd, exc)
                        break
                    if length > FRAME_MAX:
                        stats.truncated += 1
                        length = FRAME_MAX
                    stats.received += 1
                    yield (now(), 1, bytes(view[:length]), 0, length)
                    n += 1
                    if n == limit or (stop is not None and stop[0]):
                        return

    def _socket_error(self, fd: int, exc: OSError) -> None:
        self.stats.socket_errors += 1
        name = self._names.get(fd, "?")
        log.warning("%s: %s; capture goes on when the interface is back", name, exc.strerror or exc)

    def kernel_counters(self) -> LiveStats:
        """Fold PACKET_STATISTICS into `stats` (the kernel resets its counters on every read)."""
        for s in self.socks:
            try:
                seen, drops = struct.unpack("II", s.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
            except OSError:
                continue
            self.stats.kernel_seen += seen
            self.stats.kernel_drops += drops
        return self.stats

    def close(self) -> None:
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()
        self.socks = []


def interface_exists(name: str) -> bool:
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return os.path.exists(f"/sys/class/net/{name}")
