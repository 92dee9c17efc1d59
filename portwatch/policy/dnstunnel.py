"""DNS used as a carrier (iodine, dns2tcp, dnscat2 and exfiltration scripts).

A tunnel has to push its bytes through query names (upstream) and answers (downstream), so it
leaves three marks that ordinary resolution rarely does:
  - long, high-entropy labels: encoded data (base32/base64/hex) fills labels up to 63 bytes;
  - many unique names under one registered domain: each query carries new data, so names never
    repeat, and the tunnel's domain collects hundreds of them;
  - unusual record types in volume: NULL, TXT, CNAME, MX, SRV or private types carry the
    downstream, where ordinary clients ask for A/AAAA/HTTPS.

One flow record shows only the first question of its flow (the probe's `dns_query`), so the
tracker aggregates across flows per registered domain. State is bounded: at most MAX_DOMAINS
domains (least recently seen evicted) with at most MAX_NAMES remembered name hashes each, so a
flood of random names costs a fixed amount of memory (past MAX_NAMES a domain's unique-name
count becomes an upper bound: a repeat of a name no longer remembered counts again).
"""

from __future__ import annotations

import math
import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple

from .. import _core
from ..model import FlowRecord, peek

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
_LARGE_KINDS_INITIALS = frozenset("NKTC")


class NameShape(NamedTuple):
    """What a query name looks like (made for every DNS record the policy reads: a tuple, which
    takes half the time of a frozen dataclass to make)."""

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


# A NameShape made by tuple's own constructor: the NamedTuple's generated __new__ is one Python call
# more, a third of a microsecond at every DNS record.
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


def _large_answer(answers: list[object]) -> str | None:
    for a in answers:
        # Only NULL, KEY, TYPEnnn, TXT and CNAME answers can be large: the rest (A, AAAA...) are
        # passed over on their first letter.
        if not isinstance(a, str) or a[:1] not in _LARGE_KINDS_INITIALS:
            continue
        kind, _, rest = a.partition(" ")
        if kind in ("NULL", "KEY") or kind.startswith("TYPE"):
            m = re.match(r"\((\d+) bytes\)", rest)
            if m and int(m.group(1)) >= LARGE_ANSWER:
                return f"{kind} answer of {m.group(1)} bytes"
        elif kind == "TXT" and len(rest) >= LARGE_ANSWER:
            return f"TXT answer of {len(rest)}+ characters"
        elif kind == "CNAME":
            shape = name_shape(rest)
            if shape is not None and shape.suspicious:
                return f"CNAME answer with encoded-looking labels ({shape.longest_label}-character label)"
    return None


def _unusual(qtype: str) -> bool:
    return qtype in UNUSUAL_QTYPES or _private_use(qtype)


def _private_use(qtype: str) -> bool:
    """A private-use type (RFC 6895: 65280-65534), which iodine offers as "PRIVATE"."""
    return qtype[:4] == "TYPE" and qtype[4:].isdigit() and 65280 <= int(qtype[4:]) <= 65534


@dataclass(slots=True)
class _Domain:
    names: set[int] = field(default_factory=set)
    unique: int = 0
    suspicious: int = 0
    unusual_queries: int = 0
    queries: int = 0
    qtypes: dict[str, int] = field(default_factory=dict)  # queries per type (a Counter costs more to make)
    longest_label: int = 0
    max_entropy: float = 0.0


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


@dataclass(slots=True)
class DnsTunnelTracker:
    domains: OrderedDict[str, _Domain] = field(default_factory=OrderedDict)
    evicted: int = 0
    # queries already counted per flow: the monitor reports a flow when it is classified and again
    # when it ends, and the second report must only add what came in between
    flows: OrderedDict[tuple, int] = field(default_factory=OrderedDict)
    allowed: frozenset[str] = frozenset()  # registered domains the site expects encoded names under

    def observe(self, rec: FlowRecord, server: str, where: str) -> DnsVerdict | None:
        """Account one DNS flow; a verdict when it, or its domain so far, looks like a tunnel."""
        found = self.account(rec)
        return None if found is None else found.verdict(server, where)

    def account(self, rec: FlowRecord) -> DnsSignal | None:
        """Account one DNS flow; what it showed when it, or its domain so far, looks like a
        tunnel (`DnsSignal.verdict` words it). Most flows show nothing, and for them no text is
        made: the policy names the server and its port only for a flow that has something."""
        if rec.protocol != "dns" or not NOT_RESOLUTION.isdisjoint(rec.assigned):
            return None
        meta = rec.meta
        qname = meta.get("dns_query")
        if not isinstance(qname, str):
            return None
        shape = name_shape(qname)
        if shape is None:
            return None
        # Runs for every DNS record: the shape's fields unpacked once, no max() calls, `_unusual`
        # written out so that the common query types pass without a call.
        domain, longest, _, suspicious = shape
        if domain.endswith("arpa") or domain in self.allowed:
            return None  # reverse look-ups: many unique names by design
        qtype = str(meta.get("dns_qtype", ""))
        unusual = qtype in UNUSUAL_QTYPES or (qtype[:4] == "TYPE" and _private_use(qtype))
        packets = rec.packets_c2s
        queries = packets if packets > 1 else 1
        flow_key = (rec.src_ip, rec.src_port, rec.dst_ip, rec.dst_port, rec.ts_start)
        flows = self.flows
        counted = flows.pop(flow_key, 0)
        flows[flow_key] = queries
        if len(flows) > MAX_DOMAINS:
            flows.popitem(last=False)
        new_queries = queries - counted if queries > counted else 0
        d = self._domain(domain)
        key = hash(qname.lower())
        names = d.names
        if key not in names:
            if len(names) < MAX_NAMES:
                names.add(key)
            d.unique += 1
            if suspicious:
                d.suspicious += 1
        d.queries += new_queries
        qtypes = d.qtypes
        qtypes[qtype] = qtypes.get(qtype, 0) + new_queries
        if unusual:
            d.unusual_queries += new_queries
        if longest > d.longest_label:
            d.longest_label = longest
        if suspicious:
            d.max_entropy = max(d.max_entropy, shape.entropy)
        answers = peek(meta, "dns_answers")
        answer = _large_answer(answers) if isinstance(answers, (list, tuple)) else None

        reasons = []
        if d.suspicious >= AGG_SUSPICIOUS_NAMES and d.suspicious >= AGG_SUSPICIOUS_SHARE * d.unique:
            reasons.append(f"{d.suspicious} of {d.unique} unique names under {domain} carry encoded-looking "
                           f"labels (up to {d.longest_label} characters, {d.max_entropy:.2f} bits/character)")
        if d.unusual_queries >= AGG_UNUSUAL_QUERIES and d.unique >= AGG_UNUSUAL_NAMES:
            reasons.append(f"{d.unusual_queries} {_types(d.qtypes)} queries over {d.unique} unique names "
                           f"under {domain}")
        if queries >= FLOW_QUERIES and (unusual or suspicious or answer):
            reasons.append(f"one client socket sent {queries} queries ({qtype or '?'} for names under "
                           f"{domain})")
        if not reasons and not suspicious and not answer:
            return None
        return DnsSignal(rec.src_ip, qname, qtype, shape, answer, reasons)

    def _domain(self, name: str) -> _Domain:
        d = self.domains.get(name)
        if d is None:
            if len(self.domains) >= MAX_DOMAINS:
                self.domains.popitem(last=False)
                self.evicted += 1
            d = self.domains[name] = _Domain()
        else:
            self.domains.move_to_end(name)
        return d


def _types(qtypes: dict[str, int]) -> str:
    return "/".join(t for t, _ in Counter(qtypes).most_common(3) if _unusual(t)) or "unusual-type"
