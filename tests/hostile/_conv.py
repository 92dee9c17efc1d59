"""Hand-placed TCP segments for evasion tests: every sequence number is the test's choice.

Offsets are relative to the first data byte of each direction (ISN + 1), so a test reads like the
byte layout it builds, as in Ptacek & Newsham's figures.
"""

from __future__ import annotations

from pathlib import Path

from pcapkit import CLIENT, SERVER, analyze_path, ether, timed, write_pcap
from scapy.layers.inet import IP, TCP


class Conv:
    def __init__(self, sport: int = 40000, dport: int = 80, cisn: int = 1000, sisn: int = 5000) -> None:
        self.sport, self.dport, self.cisn, self.sisn = sport, dport, cisn, sisn
        self.frames: list[bytes] = []

    def _pkt(self, from_client: bool, seq: int, ack: int, flags: str, data: bytes) -> Conv:
        if from_client:
            ip, tcp = IP(src=CLIENT, dst=SERVER), TCP(sport=self.sport, dport=self.dport)
        else:
            ip, tcp = IP(src=SERVER, dst=CLIENT), TCP(sport=self.dport, dport=self.sport)
        tcp.flags, tcp.seq, tcp.ack = flags, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF
        self.frames.append(ether(bytes(ip / tcp / data)))
        return self

    def handshake(self, syn_data: bytes = b"") -> Conv:
        self._pkt(True, self.cisn, 0, "S", syn_data)
        self._pkt(False, self.sisn, self.cisn + 1, "SA", b"")
        return self._pkt(True, self.cisn + 1, self.sisn + 1, "A", b"")

    def c(self, off: int, data: bytes, flags: str = "PA") -> Conv:
        return self._pkt(True, self.cisn + 1 + off, self.sisn + 1, flags, data)

    def s(self, off: int, data: bytes, flags: str = "PA") -> Conv:
        return self._pkt(False, self.sisn + 1 + off, self.cisn + 1, flags, data)

    def close(self, c_off: int, s_off: int) -> Conv:
        self._pkt(True, self.cisn + 1 + c_off, self.sisn + 1 + s_off, "FA", b"")
        return self._pkt(False, self.sisn + 1 + s_off, self.cisn + 2 + c_off, "FA", b"")

    def run(self, tmp_path: Path, **config: object) -> tuple[list, object]:
        f = write_pcap(tmp_path / "evasion.pcap", timed(self.frames))
        return analyze_path(f, **config)


def chunks(data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [(i, data[i : i + size]) for i in range(0, len(data), size)]
