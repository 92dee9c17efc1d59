"""The site policy: which ports count as egress, how severe each finding kind is, what is allowed.

Loaded from the built-in `data/default-policy.toml`, with a site file (`--policy FILE`) merged
over it. Errors name the file, the line and the key.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..model import FINDING_KINDS, SEVERITIES

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PolicyError(Exception):
    def __init__(self, path: str, line: int | None, key: str, problem: str) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")


@dataclass(slots=True, frozen=True)
class AllowRule:
    protocol: str | None  # None: any protocol
    port: int | None
    transport: str | None
    networks: tuple[Network, ...]  # server addresses it applies to; empty: everywhere
    kinds: frozenset[str]  # empty: every kind


@dataclass(slots=True)
class Policy:
    egress: dict[str, frozenset[int]] = field(default_factory=dict)
    severity: dict[str, str] = field(default_factory=dict)  # built-in default per kind
    severity_overrides: dict[str, str] = field(default_factory=dict)  # a site file's word is final
    disabled: frozenset[str] = frozenset()
    min_severity: str = "info"
    allow: list[AllowRule] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def is_egress(self, port: int, transport: str) -> bool:
        return port in self.egress.get(transport, ())


def _line_of(text: str, key: str) -> int | None:
    pat = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=", re.M)
    m = pat.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _merge(policy: Policy, doc: dict[str, Any], text: str, path: str) -> None:
    def fail(key: str, problem: str) -> PolicyError:
        return PolicyError(path, _line_of(text, key.rsplit(".", 1)[-1]), key, problem)

    known = {"egress", "severity", "disabled", "min_severity", "allow"}
    for key in doc:
        if key not in known:
            raise fail(key, f"unknown key (known: {', '.join(sorted(known))})")
    egress = doc.get("egress", {})
    if not isinstance(egress, dict):
        raise fail("egress", "must be a table of transport = [ports]")
    for transport, ports in egress.items():
        if transport not in ("tcp", "udp"):
            raise fail(f"egress.{transport}", "transport must be tcp or udp")
        if not isinstance(ports, list) or not all(isinstance(p, int) and 0 < p < 65536 for p in ports):
            raise fail(f"egress.{transport}", "must be a list of port numbers")
        policy.egress[transport] = frozenset(ports)
    severity = doc.get("severity", {})
    if not isinstance(severity, dict):
        raise fail("severity", "must be a table of kind = severity")
    for kind, sev in severity.items():
        if kind not in FINDING_KINDS:
            raise fail(f"severity.{kind}", f"unknown finding kind (known: {', '.join(FINDING_KINDS)})")
        if sev not in SEVERITIES:
            raise fail(f"severity.{kind}", f"must be one of {', '.join(SEVERITIES)}")
        (policy.severity if path.startswith("builtin:") else policy.severity_overrides)[kind] = sev
    if "disabled" in doc:
        disabled = doc["disabled"]
        if not isinstance(disabled, list) or not all(k in FINDING_KINDS for k in disabled):
            raise fail("disabled", f"must be a list of finding kinds ({', '.join(FINDING_KINDS)})")
        policy.disabled = frozenset(disabled)
    if "min_severity" in doc:
        if doc["min_severity"] not in SEVERITIES:
            raise fail("min_severity", f"must be one of {', '.join(SEVERITIES)}")
        policy.min_severity = doc["min_severity"]
    allow = doc.get("allow", [])
    if not isinstance(allow, list):
        raise fail("allow", "must be an array of tables ([[allow]])")
    for rule in allow:
        policy.allow.append(_allow_rule(rule, fail))


def _allow_rule(rule: Any, fail: Any) -> AllowRule:
    if not isinstance(rule, dict):
        raise fail("allow", "each entry must be a table")
    known = {"protocol", "port", "transport", "hosts", "kinds"}
    for key in rule:
        if key not in known:
            raise fail(f"allow.{key}", f"unknown key (known: {', '.join(sorted(known))})")
    port = rule.get("port")
    if port is not None and not (isinstance(port, int) and 0 < port < 65536):
        raise fail("allow.port", "must be a port number")
    transport = rule.get("transport")
    if transport not in (None, "tcp", "udp"):
        raise fail("allow.transport", "must be tcp or udp")
    nets = []
    for host in rule.get("hosts", []):
        try:
            nets.append(ipaddress.ip_network(host, strict=False))
        except (ValueError, TypeError):
            raise fail("allow.hosts", f"{host!r} is not an address or CIDR") from None
    kinds = rule.get("kinds", [])
    if not isinstance(kinds, list) or not all(k in FINDING_KINDS for k in kinds):
        raise fail("allow.kinds", "must be a list of finding kinds")
    protocol = rule.get("protocol")
    if protocol is not None and not isinstance(protocol, str):
        raise fail("allow.protocol", "must be a protocol name")
    return AllowRule(protocol, port, transport, tuple(nets), frozenset(kinds))


def _load_into(policy: Policy, text: str, path: str) -> None:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise PolicyError(path, int(m.group(1)) if m else None, "", f"invalid TOML: {exc}") from None
    _merge(policy, doc, text, path)
    policy.sources.append(path)


def load_policy(path: str | Path | None = None) -> Policy:
    policy = Policy()
    builtin = resources.files("portwatch") / "data" / "default-policy.toml"
    _load_into(policy, builtin.read_text(encoding="utf-8"), "builtin:default-policy.toml")
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(str(p), None, "", f"cannot read: {exc}") from None
        _load_into(policy, text, str(p))
    return policy
