"""The site policy: which ports count as egress, how severe each finding kind is, what is allowed.

Loaded from the built-in `data/default-policy.toml`, with a site file (`--policy FILE`) merged
over it. Every error is one line naming the file, the line and the key, because people write
these files by hand and the first thing they need is where to look.

Schema (all keys optional):

    min_severity = "low"                    # findings below this are dropped
    disabled = ["unassigned-port"]          # finding kinds never raised
    negotiated = ["tftp", "rtp"]            # protocols on run-time negotiated high ports: no mismatch there
    dns_allowed = ["sophosxl.net"]          # registered domains whose encoded names are expected (AV look-ups)
    tunnel_contents_raise = ["socks"]       # confident tunnel contents (tunnels.KINDS) that make `tunnel` high
    [egress]                                # ports a firewall lets out: tunnels there are `tunnel`
    tcp = [80, 443]
    [severity]                              # kind = severity; a site file's word is final
    port-mismatch = "high"
    [protocol_services]                     # protocol = extra /etc/services names it may serve
    dns = ["mdns"]
    [insecure_services]                     # /etc/services name = why offering it is insecure
    finger = "discloses user names"
    [insecure_versions.tls_version_server]  # a fact of what the server agreed to: value = why
    "1.0" = "TLS 1.0, deprecated by RFC 8996"
    [insecure_settings.rfb_auth]            # a fact of a session left open (no authentication): value = why
    "none" = "a VNC desktop with no authentication"
    [[allow]]                               # a finding matching every given key is not raised
    protocol = "ssh"                        # any protocol when absent
    port = 443                              # or ports = [443, 8443]
    transport = "tcp"
    hosts = ["192.0.2.10", "10.0.0.0/8"]    # server addresses/CIDRs; anywhere when absent
    clients = ["10.1.0.0/16"]               # client addresses/CIDRs; anyone when absent
    kinds = ["tunnel", "port-mismatch"]     # every kind when absent
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import FINDING_KINDS, SEVERITIES
from ..packagedata import data_file
from ..tomlguard import check_text
from ..userfile import read_bounded

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRANSPORTS = ("tcp", "udp")
# A site policy file at most (the shipped one is 6 KiB): past it, /dev/zero or a runaway file.
MAX_POLICY_BYTES = 16 << 20


class PolicyError(Exception):
    def __init__(self, path: str, line: int | None, key: str, problem: str) -> None:
        self.path, self.line, self.key, self.problem = path, line, key, problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


@dataclass(slots=True, frozen=True)
class AllowRule:
    protocol: str | None  # None: any protocol
    ports: frozenset[int]  # empty: any port
    transport: str | None
    networks: tuple[Network, ...]  # server addresses it applies to; empty: everywhere
    clients: tuple[Network, ...]  # client addresses it applies to; empty: any client
    kinds: frozenset[str]  # empty: every kind


@dataclass(slots=True)
class Policy:
    egress: dict[str, frozenset[int]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)  # built-in default per kind
    severity_overrides: dict[str, str] = field(default_factory=dict)  # a site file's word is final
    disabled: frozenset[str] = frozenset()
    min_severity: str = "info"
    allow: list[AllowRule] = field(default_factory=list)
    protocol_services: dict[str, frozenset[str]] = field(default_factory=dict)
    insecure_services: dict[str, str] = field(default_factory=dict)
    insecure_versions: dict[str, dict[str, str]] = field(default_factory=dict)  # meta fact -> value -> why
    insecure_settings: dict[str, dict[str, str]] = field(default_factory=dict)  # meta fact -> value -> why
    negotiated: frozenset[str] = frozenset()
    dns_allowed: frozenset[str] = frozenset()
    tunnel_contents_raise: frozenset[str] = frozenset()
    sources: list[str] = field(default_factory=list)

    def is_egress(self, port: int, transport: str) -> bool:
        return port in self.egress.get(transport, ())


class _Locator:
    """Line numbers for dotted keys, found in the source text (tomllib does not keep them)."""

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"-]+?)\s*\]\]?\s*(?:#.*)?$")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def _key_re(self, key: str) -> re.Pattern[str]:
        return re.compile(rf"^\s*(?:\"{re.escape(key)}\"|'{re.escape(key)}'|{re.escape(key)})\s*=")

    def line(self, table: str | None, key: str | None, index: int | None = None) -> int | None:
        """Line of `key` inside `[table]` (the index-th `[[table]]`), or of the header, or of a top key."""
        start, end = 0, len(self.lines)
        if table is not None:
            seen = -1
            found = None
            for i, raw in enumerate(self.lines):
                m = self._HEADER.match(raw)
                if m and m.group(2).strip('"') == table:
                    seen += 1
                    if index is None or seen == index:
                        found = i
                        break
            if found is None:
                # `table = {...}` or `table = [...]` written inline
                pat = self._key_re(table)
                for i, raw in enumerate(self.lines):
                    if pat.match(raw):
                        return i + 1
                return None
            start = found + 1
            for j in range(start, len(self.lines)):
                if self._HEADER.match(self.lines[j]):
                    end = j
                    break
            if key is None:
                return found + 1
        elif key is not None:
            # a top-level key ends where the first table begins
            for j, raw in enumerate(self.lines):
                if self._HEADER.match(raw):
                    end = j
                    break
        if key is None:
            return None
        pat = self._key_re(key)
        for i in range(start, end):
            if pat.match(self.lines[i]):
                return i + 1
        return start if table is not None else None


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _merge(policy: Policy, doc: dict[str, Any], text: str, path: str) -> None:
    loc = _Locator(text)
    builtin = path.startswith("builtin:")

    def fail(table: str | None, key: str | None, problem: str, index: int | None = None) -> PolicyError:
        label = ".".join(p for p in (table if index is None else f"{table}[{index}]", key) if p)
        return PolicyError(path, loc.line(table, key, index), label, problem)

    known = {"egress", "severity", "disabled", "min_severity", "allow", "protocol_services", "insecure_services",
             "insecure_versions", "insecure_settings", "negotiated", "dns_allowed", "tunnel_contents_raise"}
    for key in doc:
        if key not in known:
            raise fail(None, key, f"unknown key (known: {', '.join(sorted(known))})")

    egress = doc.get("egress", {})
    if not isinstance(egress, dict):
        raise fail(None, "egress", "must be a table of transport = [ports]")
    for transport, ports in egress.items():
        if transport not in TRANSPORTS:
            raise fail("egress", transport, "transport must be tcp or udp")
        if not isinstance(ports, list) or not all(_is_port(p) for p in ports):
            raise fail("egress", transport, "must be a list of port numbers 1-65535")
        policy.egress[transport] = frozenset(ports)

    severity = doc.get("severity", {})
    if not isinstance(severity, dict):
        raise fail(None, "severity", "must be a table of kind = severity")
    for kind, sev in severity.items():
        if kind not in FINDING_KINDS:
            raise fail("severity", kind, f"unknown finding kind (known: {', '.join(FINDING_KINDS)})")
        if sev not in SEVERITIES:
            raise fail("severity", kind, f"must be one of {', '.join(SEVERITIES)}, not {sev!r}")
        (policy.severity if builtin else policy.severity_overrides)[kind] = sev

    if "disabled" in doc:
        disabled = doc["disabled"]
        if not _names(disabled):
            raise fail(None, "disabled", "must be a list of finding kinds")
        for k in disabled:
            if k not in FINDING_KINDS:
                raise fail(None, "disabled", f"unknown finding kind {k!r} (known: {', '.join(FINDING_KINDS)})")
        policy.disabled = frozenset(disabled)

    if "negotiated" in doc:
        if not _names(doc["negotiated"]):
            raise fail(None, "negotiated", "must be a list of protocol names")
        policy.negotiated = frozenset(n.lower() for n in doc["negotiated"])

    if "dns_allowed" in doc:
        if not _names(doc["dns_allowed"]):
            raise fail(None, "dns_allowed", "must be a list of domain names")
        policy.dns_allowed = policy.dns_allowed | {d.lower().strip(".") for d in doc["dns_allowed"]}

    if "tunnel_contents_raise" in doc:
        from ..tunnels import KINDS

        raise_ = doc["tunnel_contents_raise"]
        if not _names(raise_) or any(k not in KINDS for k in raise_):
            raise fail(None, "tunnel_contents_raise", f"must be a list of tunnel contents ({', '.join(KINDS)})")
        policy.tunnel_contents_raise = frozenset(raise_)

    if "min_severity" in doc:
        if doc["min_severity"] not in SEVERITIES:
            raise fail(None, "min_severity", f"must be one of {', '.join(SEVERITIES)}")
        policy.min_severity = doc["min_severity"]

    extra = doc.get("protocol_services", {})
    if not isinstance(extra, dict):
        raise fail(None, "protocol_services", "must be a table of protocol = [service names]")
    for proto, names in extra.items():
        if not _names(names):
            raise fail("protocol_services", proto, "must be a list of /etc/services names")
        policy.protocol_services[proto] = policy.protocol_services.get(proto, frozenset()) | {
            n.lower() for n in names
        }

    def merge_reasons(kept: dict[str, str], table: dict[str, Any], where: str, what: str, lower: bool) -> None:
        for name, why in table.items():
            if not isinstance(why, str):
                raise fail(where, name, f"must be a string saying why the {what} is insecure")
            key = name.lower() if lower else name
            if why:
                kept[key] = why
            else:  # an empty reason lets a site take a built-in entry back
                kept.pop(key, None)

    insecure = doc.get("insecure_services", {})
    if not isinstance(insecure, dict):
        raise fail(None, "insecure_services", "must be a table of service name = reason")
    merge_reasons(policy.insecure_services, insecure, "insecure_services", "service", lower=True)

    for name, listing, what in (("insecure_versions", policy.insecure_versions, "version"),
                                ("insecure_settings", policy.insecure_settings, "setting")):
        facts = doc.get(name, {})
        if not isinstance(facts, dict):
            raise fail(None, name, "must be tables of meta fact = {value = reason}")
        for fact, table in facts.items():
            if not isinstance(table, dict):
                raise fail(name, fact, "must be a table of value = reason")
            merge_reasons(listing.setdefault(fact, {}), table, f"{name}.{fact}", what, lower=False)

    allow = doc.get("allow", [])
    if not isinstance(allow, list):
        raise fail(None, "allow", "must be an array of tables ([[allow]])")
    for i, rule in enumerate(allow):
        policy.allow.append(_allow_rule(rule, lambda key, problem, i=i: fail("allow", key, problem, i)))


def _is_port(p: Any) -> bool:
    return isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536


def _networks(values: Any, key: str, fail: Any) -> tuple[Network, ...]:
    if not isinstance(values, list):
        raise fail(key, "must be a list of addresses or CIDRs")
    nets = []
    for host in values:
        try:
            nets.append(ipaddress.ip_network(host, strict=False))
        except (ValueError, TypeError):
            raise fail(key, f"{host!r} is not an address or CIDR") from None
    return tuple(nets)


def _allow_rule(rule: Any, fail: Any) -> AllowRule:
    if not isinstance(rule, dict):
        raise fail(None, "each entry must be a table")
    known = {"protocol", "port", "ports", "transport", "hosts", "clients", "kinds"}
    for key in rule:
        if key not in known:
            raise fail(key, f"unknown key (known: {', '.join(sorted(known))})")
    ports: set[int] = set()
    if "port" in rule:
        if not _is_port(rule["port"]):
            raise fail("port", "must be a port number 1-65535")
        ports.add(rule["port"])
    if "ports" in rule:
        if not isinstance(rule["ports"], list) or not all(_is_port(p) for p in rule["ports"]):
            raise fail("ports", "must be a list of port numbers 1-65535")
        ports.update(rule["ports"])
    transport = rule.get("transport")
    if transport not in (None, *TRANSPORTS):
        raise fail("transport", "must be tcp or udp")
    kinds = rule.get("kinds", [])
    if not _names(kinds):
        raise fail("kinds", "must be a list of finding kinds")
    for k in kinds:
        if k not in FINDING_KINDS:
            raise fail("kinds", f"unknown finding kind {k!r} (known: {', '.join(FINDING_KINDS)})")
    protocol = rule.get("protocol")
    if protocol is not None and not (isinstance(protocol, str) and protocol):
        raise fail("protocol", "must be a protocol name")
    return AllowRule(
        protocol.lower() if protocol else None,
        frozenset(ports),
        transport,
        _networks(rule.get("hosts", []), "hosts", fail),
        _networks(rule.get("clients", []), "clients", fail),
        frozenset(kinds),
    )


def _load_into(policy: Policy, text: str, path: str) -> None:
    check_text(text, path, PolicyError)  # tomllib recurses per nesting level: 2,000 raise RecursionError
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise PolicyError(path, int(m.group(1)) if m else None, "", f"invalid TOML: {exc}") from None
    except RecursionError:
        raise PolicyError(path, None, "", "nested too deep to parse") from None
    _merge(policy, doc, text, path)
    policy.sources.append(path)


def load_policy(path: str | Path | None = None) -> Policy:
    policy = Policy()
    builtin = data_file("default-policy.toml")
    _load_into(policy, builtin.read_text(encoding="utf-8"), "builtin:default-policy.toml")
    if path is not None:
        p = Path(path)
        try:
            text = read_bounded(p, MAX_POLICY_BYTES).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise PolicyError(str(p), None, "", f"cannot read: {reason}") from None
        _load_into(policy, text, str(p))
    return policy
