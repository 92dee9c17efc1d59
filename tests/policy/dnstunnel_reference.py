"""The DNS-tunnel bookkeeping as Python wrote it before the core took it over: the oracle the
core's `DnsTunnelTracker` is checked against (test_dnstunnel.py), record by record."""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

from portwatch.model import FlowRecord, peek
from portwatch.policy.dnstunnel import (
    AGG_SUSPICIOUS_NAMES,
    AGG_SUSPICIOUS_SHARE,
    AGG_UNUSUAL_NAMES,
    AGG_UNUSUAL_QUERIES,
    FLOW_QUERIES,
    LARGE_ANSWER,
    NOT_RESOLUTION,
    UNUSUAL_QTYPES,
    name_shape,
)


def _large_answer(answers: list[object]) -> str | None:
    for a in answers:
        if not isinstance(a, str) or a[:1] not in "NKTC":
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
    return qtype in UNUSUAL_QTYPES or (qtype[:4] == "TYPE" and qtype[4:].isdigit()
                                       and 65280 <= int(qtype[4:]) <= 65534)


@dataclass
class Domain:
    names: set[int] = field(default_factory=set)
    unique: int = 0
    suspicious: int = 0
    unusual_queries: int = 0
    queries: int = 0
    qtypes: dict[str, int] = field(default_factory=dict)
    longest_label: int = 0
    max_entropy: float = 0.0


@dataclass
class ReferenceTracker:
    max_domains: int
    max_names: int
    domains: OrderedDict[str, Domain] = field(default_factory=OrderedDict)
    evicted: int = 0
    flows: OrderedDict[tuple, int] = field(default_factory=OrderedDict)

    def account(self, rec: FlowRecord) -> tuple | None:
        """(qname, qtype, shape, answer, reasons) as the core's `account` gives them, or None."""
        if rec.protocol != "dns" or not NOT_RESOLUTION.isdisjoint(rec.assigned):
            return None
        qname = rec.meta.get("dns_query")
        if not isinstance(qname, str):
            return None
        shape = name_shape(qname)
        if shape is None or shape.domain.endswith("arpa"):
            return None
        domain, longest, _, suspicious = shape
        qtype = str(rec.meta.get("dns_qtype", ""))
        unusual = _unusual(qtype)
        queries = max(rec.packets_c2s, 1)
        key = (rec.src_ip, rec.src_port, rec.dst_ip, rec.dst_port, rec.ts_start)
        counted = self.flows.pop(key, 0)
        self.flows[key] = queries
        if len(self.flows) > self.max_domains:
            self.flows.popitem(last=False)
        new = max(queries - counted, 0)
        d = self.domains.get(domain)
        if d is None:
            if len(self.domains) >= self.max_domains:
                self.domains.popitem(last=False)
                self.evicted += 1
            d = self.domains[domain] = Domain()
        else:
            self.domains.move_to_end(domain)
        h = hash(qname.lower())
        if h not in d.names:
            if len(d.names) < self.max_names:
                d.names.add(h)
            d.unique += 1
            d.suspicious += suspicious
        d.queries += new
        d.qtypes[qtype] = d.qtypes.get(qtype, 0) + new
        if unusual:
            d.unusual_queries += new
        d.longest_label = max(d.longest_label, longest)
        if suspicious:
            d.max_entropy = max(d.max_entropy, shape.entropy)
        answers = peek(rec.meta, "dns_answers")
        answer = _large_answer(answers) if isinstance(answers, (list, tuple)) else None
        reasons = []
        if d.suspicious >= AGG_SUSPICIOUS_NAMES and d.suspicious >= AGG_SUSPICIOUS_SHARE * d.unique:
            reasons.append(f"{d.suspicious} of {d.unique} unique names under {domain} carry encoded-looking "
                           f"labels (up to {d.longest_label} characters, {d.max_entropy:.2f} bits/character)")
        if d.unusual_queries >= AGG_UNUSUAL_QUERIES and d.unique >= AGG_UNUSUAL_NAMES:
            types = "/".join(t for t, _ in Counter(d.qtypes).most_common(3) if _unusual(t)) or "unusual-type"
            reasons.append(f"{d.unusual_queries} {types} queries over {d.unique} unique names under {domain}")
        if queries >= FLOW_QUERIES and (unusual or suspicious or answer):
            reasons.append(f"one client socket sent {queries} queries ({qtype or '?'} for names under {domain})")
        if not reasons and not suspicious and not answer:
            return None
        return qname, qtype, tuple(shape), answer, reasons
