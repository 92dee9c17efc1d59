"""Does a byte string look fully encrypted?

Byte entropy alone flags compressed data and many binary protocols. Wu et al. ("How the Great
Firewall of China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023) found the
censor exempts a connection's first data packet when any of these holds, and that the rules keep
false positives low on real traffic:
  Ex1  average popcount per byte <= 3.4 or >= 4.6 (random bytes average 4.0);
  Ex2  the first six bytes are printable ASCII (0x20-0x7e);
  Ex3  more than 50% of the bytes are printable ASCII;
  Ex4  more than 20 contiguous printable ASCII bytes;
  Ex5  the bytes match a known protocol (here: a signature matched, decided by the caller).
portwatch adds a Shannon-entropy floor scaled to the sample size, because a short sample cannot
reach 8 bits per byte.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

MIN_SAMPLE = 16
SAMPLE = 1024
_POPCOUNT = bytes(bin(i).count("1") for i in range(256))
_PRINTABLE = bytes(1 if 0x20 <= i <= 0x7E else 0 for i in range(256))


@dataclass(slots=True, frozen=True)
class EntropyFacts:
    length: int
    entropy: float  # bits per byte
    max_entropy: float  # the most `length` bytes can have: log2(min(length, 256))
    popcount: float  # average set bits per byte
    printable: float  # fraction of printable ASCII bytes
    printable_prefix: bool  # first six bytes printable (Ex2)
    longest_printable_run: int
    exempt_rule: str | None  # which GFW exemption applied, if any
    looks_encrypted: bool

    def describe(self) -> str:
        return (
            f"entropy {self.entropy:.2f}/{self.max_entropy:.2f} bits/byte over {self.length} bytes, "
            f"popcount {self.popcount:.2f}, printable {self.printable:.0%}, "
            f"longest printable run {self.longest_printable_run}"
        )

    def as_dict(self) -> dict[str, float | int | bool | str | None]:
        return {
            "length": self.length,
            "entropy": round(self.entropy, 3),
            "popcount": round(self.popcount, 3),
            "printable": round(self.printable, 3),
            "longest_printable_run": self.longest_printable_run,
            "exempt_rule": self.exempt_rule,
            "looks_encrypted": self.looks_encrypted,
        }


def shannon_entropy(data: bytes) -> float:
    n = len(data)
    if not n:
        return 0.0
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def entropy_facts(data: bytes) -> EntropyFacts:
    data = bytes(data[:SAMPLE])
    n = len(data)
    if n == 0:
        return EntropyFacts(0, 0.0, 0.0, 0.0, 0.0, False, 0, "empty", False)
    ent = shannon_entropy(data)
    max_ent = math.log2(min(n, 256)) if n > 1 else 1.0
    pop = sum(_POPCOUNT[b] for b in data) / n
    printable_mask = data.translate(_PRINTABLE)
    printable = printable_mask.count(1) / n
    prefix = n >= 6 and printable_mask[:6] == b"\x01" * 6
    run = max((len(r) for r in printable_mask.split(b"\x00")), default=0)
    exempt = None
    if pop <= 3.4 or pop >= 4.6:
        exempt = "Ex1 popcount"
    elif prefix:
        exempt = "Ex2 printable prefix"
    elif printable > 0.5:
        exempt = "Ex3 mostly printable"
    elif run > 20:
        exempt = "Ex4 printable run"
    # Expected entropy of n uniformly random bytes is below log2(n) for small n; 0.85 of the
    # attainable maximum separates random samples from structured ones at every size >= 16.
    looks = exempt is None and n >= MIN_SAMPLE and ent >= 0.85 * max_ent
    if exempt is None and n < MIN_SAMPLE:
        exempt = "too short"
    return EntropyFacts(n, ent, max_ent, pop, printable, prefix, run, exempt, looks)
