"""DNS used as a carrier (iodine, dns2tcp, dnscat2 and exfiltration scripts).

A tunnel has to push its bytes through query names (upstream) and answers (downstream), so it
leaves three marks that ordinary resolution rarely does:
  - long, high-entropy labels: encoded data (base32/base64/hex) fills labels up to 63 bytes;
  - many unique names under one registered domain: each query carries new data, so names never
    repeat, and the tunnel's domain collects hundreds of them;
  - unusual record types in volume: NULL, TXT, CNAME, MX, SRV or private types carry the
    downstream, where ordinary clients ask for A/AAAA/HTTPS.

One flow record shows only the first question of its flow (the probe's `dns_query`), so the
tracker aggregates across flows per registered domain. The core keeps the counts (its
`dns_tunnel` module: this runs for every DNS record) with the thresholds below; this module
words what it finds. State is bounded: at most MAX_DOMAINS domains and as many client sockets
(least recently seen evicted) with at most MAX_NAMES remembered name hashes and 16 query types
counted by name each, so a flood of random names costs a fixed amount of memory (past MAX_NAMES
a domain's unique-name count becomes an upper bound: a repeat of a name no longer remembered
counts again).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import NamedTuple

from .. import _core
from ..model import FlowRecord

MAX_DOMAINS = 4096
MAX_NAMES = 64  # enough to decide: the thresholds below need a few dozen names
LONG_LABEL = 40  # encoders fill labels towards 63; hostnames this long are rare
LONG_DATA = 64  # characters of subdomain in front of the registered domain
MIN_CHAR_ENTROPY = 3.5  # bits per character: hex is ~3.9 over 40+ characters, words stay below 3.5
UNUSUAL_QTYPES = frozenset({"NULL", "TXT", "CNAME", "MX", "SRV", "KEY", "PRIVATE"})
LARGE_ANSWER = 200  # bytes of a NULL/TXT answer, or characters of a CNAME target

# Aggregate thresholds, per registered domain.
AGG_SUSPICIOUS_NAMES = 5  # unique names with encoded-looking labels...
AGG_SUSPICIOUS_SHARE = 0.3  # ...making up this share of the domain's unique names
AGG_UNUSUAL_QUERIES = 20  # NULL/TXT/... queries...
AGG_UNUSUAL_NAMES = 10  # ...spread over this many unique names
FLOW_QUERIES = 20  # one flow (one client socket) sending this many queries of a tunnel shape

# Ports of DNS-format protocols that are not the DNS resolution service (mDNS, LLMNR, NetBIOS).
NOT_RESOLUTION = frozenset({"mdns", "llmnr", "netbios-ns"})
# Second-level labels under which ccTLDs register names (co.uk, com.au...): a heuristic in place
# of the Public Suffix List, which portwatch does not ship.
_SLD = frozenset({"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go", "gob", "mil", "nic"})
_ESCAPE = re.compile(r"\\(\d{3}|.)")


class NameShape(NamedTuple):
    """What a query name looks like."""

    domain: str  # registered domain, lowercase, no trailing dot
    longest_label: int
    data: str  # the characters in front of the registered domain (an escaped byte as one)
    suspicious: bool

    @property
    def data_chars(self) -> int:
        return len(self.data)

    @property
    def entropy(self) -> float:
        """Bits per character of `data` (worked out when asked: most names are too short to matter)."""
        return _char_entropy(self.data)

    def describe(self) -> str:
        return (f"longest label {self.longest_label} characters, {self.data_chars} characters in front of "
                f"{self.domain}, {self.entropy:.2f} bits/character")


# A NameShape made by tuple's own constructor (the NamedTuple's generated __new__ is one Python call
# more), from a tuple of its fields.
_new_shape = tuple.__new__


def _char_entropy(text: str) -> float:
    n = len(text)
    if not n:
        return 0.0
    # each character's count in order of first appearance (a Counter's order, so the same sum to the
    # last bit), without building one: names are short
    return -sum(c / n * math.log2(c / n) for c in map(text.count, dict.fromkeys(text)))


def registered_domain(labels: list[str]) -> list[str]:
    """The labels of the registered domain (example.com, example.co.uk) at the end of `labels`."""
    return labels[-_registered_labels(labels):]


def _registered_labels(labels: list[str]) -> int:
    return 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SLD else 2


def name_shape(name: str) -> NameShape | None:
    # Runs for every DNS record the policy reads. The core splits an ASCII name (every name the
    # DNS probe writes: it escapes other bytes); a name with other characters is split here.
    parts = _split_ascii(name) if name.isascii() else split_name(name)
    if parts is None:
        return None
    domain, data, longest = parts
    suspicious = (longest >= LONG_LABEL or len(data) >= LONG_DATA) and _char_entropy(data) >= MIN_CHAR_ENTROPY
    return _new_shape(NameShape, (domain, longest, data, suspicious))


def split_name(name: str) -> tuple[str, str, int] | None:
    """(registered domain, the characters in front of it, the longest of their labels) by Python's
    rules for any text (`_core.DnsNameSplitter` gives the same for ASCII names); None when the name
    has fewer than two labels. An escaped byte (\\123 or \\.) counts as one character of data."""
    labels = name.lower().rstrip(".").split(".")
    if "" in labels:
        labels = [lab for lab in labels if lab]
    count = len(labels)
    if count < 2:
        return None
    split = count - _registered_labels(labels)
    data_labels = labels[:split]
    if "\\" in name:
        data_labels = [_ESCAPE.sub("x", lab) if "\\" in lab else lab for lab in data_labels]
    longest = max(map(len, data_labels)) if data_labels else 0
    return ".".join(labels[split:]), "".join(data_labels), longest


_split_ascii = _core.DnsNameSplitter(_SLD).split


@dataclass(slots=True)
class DnsVerdict:
    severity: str
    message: str


@dataclass(slots=True)
class DnsSignal:
    """What one DNS flow showed (`DnsTunnelTracker.account`): the reasons to call its domain a
    tunnel, or the marks of data carried in DNS seen once."""

    client: str
    qname: str
    qtype: str
    shape: NameShape
    answer: str | None
    reasons: list[str]

    def verdict(self, server: str, where: str) -> DnsVerdict:
        client, qname, answer = self.client, self.qname, self.answer
        if self.reasons:
            extra = f"; {answer}" if answer else ""
            return DnsVerdict("high", f"DNS to {server} on {where} looks like a tunnel (iodine/dns2tcp style) "
                              f"from client {client}: {'; '.join(self.reasons)}{extra} [query: {qname}]")
        # an encoded-looking query name is what exfiltration sends; a long answer alone is
        # common (CDN CNAME chains, SPF/DKIM TXT), so it is only a note until it comes in volume
        suspicious = self.shape.suspicious
        why = self.shape.describe() if suspicious else answer
        return DnsVerdict("low" if suspicious else "info",
                          f"DNS query from {client} to {server} on {where} has the shape of data carried in "
                          f"DNS ({why}); not yet seen in volume [query: {qname}, {self.qtype}]")


class DnsTunnelTracker:
    """The per-domain and per-socket bookkeeping (the core's `DnsTunnelTracker`, with this
    module's thresholds and lists), and the policy's words for what it finds."""

    __slots__ = ("_core",)

    def __init__(self, allowed: frozenset[str] = frozenset(), *, max_domains: int = MAX_DOMAINS,
                 max_names: int = MAX_NAMES) -> None:
        self._core = _core.DnsTunnelTracker(_settings(max_domains, max_names, allowed), split_name)

    def allow(self, domains: frozenset[str]) -> None:
        """Registered domains the site expects encoded names under (the policy's `dns_allowed`),
        in place of any before."""
        self._core.set_allowed(set(domains))

    @property
    def evicted(self) -> int:
        """Domains pushed out to keep MAX_DOMAINS."""
        return int(self._core.evicted)

    def __len__(self) -> int:
        return len(self._core)

    def counts(self, domain: str) -> dict[str, int | float] | None:
        """A kept registered domain's counts (unique, suspicious, queries, unusual_queries,
        remembered_names, longest_label, max_entropy); None when it is not kept."""
        return self._core.counts(domain)

    def observe(self, rec: FlowRecord, server: str, where: str) -> DnsVerdict | None:
        """Account one DNS flow; a verdict when it, or its domain so far, looks like a tunnel."""
        found = self.account(rec)
        return None if found is None else found.verdict(server, where)

    def account(self, rec: FlowRecord) -> DnsSignal | None:
        """Account one DNS flow; what it showed when it, or its domain so far, looks like a
        tunnel (`DnsSignal.verdict` words it). Most flows show nothing, and for them no text is
        made: the policy names the server and its port only for a flow that has something."""
        return self.signal(rec, self._core.account(rec))

    @property
    def core(self) -> _core.DnsTunnelTracker:
        """The core's bookkeeping, for an analyzer that counts DNS records itself
        (`_core.Analyzer.quiet_records`)."""
        return self._core

    @staticmethod
    def signal(rec: FlowRecord, found: tuple | None) -> DnsSignal | None:
        """What the core's `account` answered for `rec`, as `account` returns it."""
        if found is None:
            return None
        qname, qtype, shape, answer, reasons = found
        return DnsSignal(rec.src_ip, qname, qtype, _new_shape(NameShape, shape), answer, reasons)


def _settings(max_domains: int, max_names: int, allowed: frozenset[str]) -> dict[str, object]:
    return {
        "max_domains": max_domains, "max_names": max_names, "long_label": LONG_LABEL, "long_data": LONG_DATA,
        "min_char_entropy": MIN_CHAR_ENTROPY, "large_answer": LARGE_ANSWER,
        "agg_suspicious_names": AGG_SUSPICIOUS_NAMES, "agg_suspicious_share": AGG_SUSPICIOUS_SHARE,
        "agg_unusual_queries": AGG_UNUSUAL_QUERIES, "agg_unusual_names": AGG_UNUSUAL_NAMES,
        "flow_queries": FLOW_QUERIES, "unusual_qtypes": set(UNUSUAL_QTYPES), "not_resolution": set(NOT_RESOLUTION),
        "second_levels": set(_SLD), "allowed": set(allowed),
    }
