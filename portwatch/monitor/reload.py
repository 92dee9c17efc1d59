"""SIGHUP: build a new Setup from the files and say what changed; a bad file changes nothing.

The flow table is not part of the Setup, so swapping `analyzer.setup` keeps every live flow; flows
classified from now on are judged by the new signatures, services and policy.
"""

from __future__ import annotations

import tomllib

from ..detect.signature import SignatureError
from ..pipeline import Config, Setup
from ..policy.config import Policy, PolicyError
from ..sanitize import clean_text
from ..tomlguard import check_signature_dirs

RELOAD_ERRORS = (SignatureError, PolicyError, OSError, ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError)


def load(config: Config) -> tuple[Setup | None, str]:
    try:
        check_signature_dirs(config.signature_dirs)
        return Setup.load(config), ""
    except RELOAD_ERRORS as exc:
        return None, clean_text(str(exc), 500)
    except RecursionError:  # what the nesting check did not foresee: still not the monitor's death
        return None, "a configuration file is nested too deep to parse"


def _set_diff(label: str, old: set, new: set) -> list[str]:
    out = []
    if new - old:
        out.append(f"{label} added: {', '.join(sorted(map(str, new - old)))}")
    if old - new:
        out.append(f"{label} removed: {', '.join(sorted(map(str, old - new)))}")
    return out


def _policy_view(p: Policy) -> dict[str, object]:
    return {
        "egress": {t: sorted(ports) for t, ports in sorted(p.egress.items())},
        "severity": dict(sorted({**p.severity, **p.severity_overrides}.items())),
        "disabled": sorted(p.disabled),
        "min_severity": p.min_severity,
        "allow rules": len(p.allow),
    }


def changes(old: Setup, new: Setup) -> list[str]:
    out: list[str] = []
    old_sigs = {s.protocol: s for s in old.signatures}
    new_sigs = {s.protocol: s for s in new.signatures}
    out += _set_diff("signatures", set(old_sigs), set(new_sigs))
    changed = sorted(p for p in set(old_sigs) & set(new_sigs) if old_sigs[p] != new_sigs[p])
    if changed:
        out.append(f"signatures changed: {', '.join(changed)}")
    old_svc = {(e.port, e.transport, e.name) for e in old.services.entries}
    new_svc = {(e.port, e.transport, e.name) for e in new.services.entries}
    if old_svc != new_svc:
        out.append(f"services: {len(new_svc - old_svc)} entries added, {len(old_svc - new_svc)} removed")
    op, np_ = _policy_view(old.policy), _policy_view(new.policy)
    for key in op:
        if op[key] != np_[key]:
            out.append(f"policy {key}: {op[key]} -> {np_[key]}")
    return out
