"""SIGHUP: build a new Setup from the files and say what changed; a bad file changes nothing.

The flow table is not part of the Setup, so swapping `analyzer.setup` keeps every live flow; flows
classified from now on are judged by the new signatures, services and policy.

Whatever is wrong with a file (bad TOML, nesting 2,000 levels deep, a FIFO or a device that would
block or never end, a huge file, an exception nobody foresaw), `load` returns one line of error
and the monitor keeps its old configuration: a reload never kills it.
"""

from __future__ import annotations

import errno
import os
import stat
import tomllib

from ..bpf import BpfError
from ..pipeline import Config, Setup
from ..policy.config import Policy, PolicyError
from ..sanitize import clean_text
from ..services import IANA, with_hint
from ..signatures import SignatureError
from ..tomlguard import check_signature_dirs, signature_files

RELOAD_ERRORS = (SignatureError, PolicyError, BpfError, OSError, ValueError, UnicodeDecodeError,
                 tomllib.TOMLDecodeError)


MAX_CONFIG_BYTES = 64 << 20  # no policy or signature file comes near; services has its own cap


def check_files(config: Config) -> None:
    """OSError unless every file the reload reads is a regular file of sane size: a FIFO would
    block the monitor, /dev/zero would never end."""
    # `--services iana` names the registry shipped in the package, not a file to check
    paths = [p for p in (config.policy_path, config.services_path) if p is not None and p != IANA]
    for d in config.signature_dirs:
        try:
            if not stat.S_ISDIR(os.stat(d).st_mode):
                paths.append(d)
        except OSError:
            paths.append(d)
    paths += [str(p) for p in signature_files(config.signature_dirs)]
    for p in paths:
        try:
            st = os.stat(p)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(p))
        except OSError as exc:
            raise (with_hint(exc, p) if p == config.services_path else exc) from None
        if st.st_size > MAX_CONFIG_BYTES:
            raise OSError(errno.EFBIG, f"larger than {MAX_CONFIG_BYTES >> 20} MiB", str(p))


def _one_line(text: str) -> str:
    return clean_text(" ".join(text.split()), 500)


def load(config: Config) -> tuple[Setup | None, str]:
    try:
        check_files(config)
        check_signature_dirs(config.signature_dirs)
        return Setup.load(config), ""
    except OSError as exc:  # str(OSError) is "[Errno 22] ...": name the file first, as the others do
        where = f"{exc.filename}: " if exc.filename else ""
        return None, _one_line(f"{where}{exc.strerror or exc}")
    except RELOAD_ERRORS as exc:
        return None, _one_line(str(exc))
    except RecursionError:  # what the nesting check did not foresee: still not the monitor's death
        return None, "a configuration file is nested too deep to parse"
    except MemoryError:
        return None, "a configuration file is too large to load"
    except Exception as exc:  # a bug in a loader must not end weeks of monitoring either
        return None, _one_line(f"cannot load the configuration: {type(exc).__name__}: {exc}")


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
    try:
        return _changes(old, new)
    except Exception as exc:  # describing the change must not cost the reload
        return [_one_line(f"(changes not described: {type(exc).__name__}: {exc})")]


def _changes(old: Setup, new: Setup) -> list[str]:
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
